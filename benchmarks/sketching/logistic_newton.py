"""Target 4: Newton-LESS logistic regression vs scikit-learn LogisticRegression(lbfgs).

Objective (both): ``F(w, c) = ½‖w‖² + C Σ log(1 + exp(−y (x·w + c)))``. The reference
``F*`` is the smallest objective any run reached (including a tight Newton-LESS run).
scikit-learn is run at several ``tol`` values; its time to a relative gap of 1e-8 is
the fastest of its runs that reached it.

    PYTHONPATH=src python3 benchmarks/sketching/logistic_newton.py --quick
    PYTHONPATH=src python3 benchmarks/sketching/logistic_newton.py        # n = 10^6, d = 500
    PYTHONPATH=src python3 benchmarks/sketching/logistic_newton.py --sizes 10,20,40
        # Newton-LESS alone at sketch sizes m = k (d + 1): the sweep behind the default
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import timed, write_results
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from convexnn.sketching import (
    SketchedLogisticRegression,
    logistic_objective,
    newton_sketch_logistic,
)


def make_data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    x *= np.logspace(0, -1, d)
    w = rng.standard_normal(d) * 3 / np.sqrt(d)
    p = 1 / (1 + np.exp(-(x @ w + 0.5)))
    y = (rng.random(n) < p).astype(np.int64)
    return x, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=500)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--sk-tols", default="1e-4,1e-6,1e-8")
    ap.add_argument("--sketch-size", type=int, default=None)
    ap.add_argument("--sizes", default="",
                    help="comma-separated k: time Newton-LESS alone at m = k (d + 1)")
    args = ap.parse_args()
    n, d = (20_000, 50) if args.quick else (args.n, args.d)
    x, y = make_data(n, d)
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(np.where(y == 1, 1.0, -1.0))

    def obj(coef, icpt) -> float:
        return logistic_objective(xt, yt, torch.as_tensor(np.asarray(coef, dtype=np.float64)),
                                  float(icpt), args.C)

    runs = []
    if args.sizes:
        from convexnn.sketching._newton import default_sketch_size

        p = d + 1
        for k in (int(v) for v in args.sizes.split(",")):
            t, res = timed(lambda k=k: newton_sketch_logistic(
                xt, yt, C=args.C, sketch_size=k * p, tol=1e-8, random_state=0))
            runs.append({"solver": f"Newton-LESS m={k}(d+1)", "time_s": t,
                         "iters": res.n_iter, "F": res.objective})
        write_results("logistic_sizes_quick" if args.quick else "logistic_sizes", runs,
                      title=f"Newton-LESS sketch sizes, n = {n:,}, d = {d}, C = {args.C}",
                      notes=[f"default_sketch_size here: "
                             f"{default_sketch_size(n, d, p, min(p, 8)) // p}(d+1)",
                             "tol = 1e-8; time of newton_sketch_logistic alone"])
        return
    for tol in (1e-8, 1e-10):
        est = SketchedLogisticRegression(C=args.C, sketch="less", tol=tol,
                                         sketch_size=args.sketch_size, random_state=0)
        t, _ = timed(lambda est=est: est.fit(x, y))
        runs.append({"solver": f"Newton-LESS (tol={tol:g})", "time_s": t,
                     "iters": int(est.n_iter_[0]),
                     "F": obj(est.coef_[0], est.intercept_[0])})
    for tol in (float(s) for s in args.sk_tols.split(",")):
        sk = LogisticRegression(C=args.C, solver="lbfgs", tol=tol, max_iter=100_000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, _ = timed(lambda sk=sk: sk.fit(x, y))
        runs.append({"solver": f"sklearn lbfgs (tol={tol:g})", "time_s": t,
                     "iters": int(sk.n_iter_[0]), "F": obj(sk.coef_[0], sk.intercept_[0])})
    f_star = min(r["F"] for r in runs)
    for r in runs:
        r["rel_gap"] = (r["F"] - f_star) / f_star
        r["reached_1e-8"] = bool(r["rel_gap"] <= 1e-8)
    ours = [r for r in runs if r["solver"].startswith("Newton") and r["reached_1e-8"]]
    theirs = [r for r in runs if r["solver"].startswith("sklearn") and r["reached_1e-8"]]
    if ours and theirs:
        speed = min(r["time_s"] for r in theirs) / min(r["time_s"] for r in ours)
        verdict = f"speedup to a 1e-8 relative gap: {speed:.2f}x (target >= 3x)"
    else:
        verdict = "one side never reached a 1e-8 relative gap: see rel_gap"
    write_results(
        "logistic_quick" if args.quick else "logistic", runs,
        title=f"Target 4: L2 logistic regression, n = {n:,}, d = {d}, C = {args.C}",
        notes=[verdict, "F* = smallest objective reached by any run; time includes "
               "validation and conversion inside fit()"],
    )


if __name__ == "__main__":
    main()
