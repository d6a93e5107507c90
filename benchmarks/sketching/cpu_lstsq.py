"""Target 2 (CPU): sketch-preconditioned least squares vs numpy.linalg.lstsq.

Problems ``A = G diag(s) Vᵀ`` (G Gaussian, s log-spaced from 1 to 1/κ, V orthogonal),
``b = A x₀ + 0.1 ξ``. Accuracy is the relative excess of the objective over numpy's,
``(f(x) − f(x_np)) / f(x_np)`` (target 1e-10), plus the relative prediction difference
``‖A(x − x_np)‖ / ‖A x_np‖``. Times: median over ``--reps`` runs, numpy and ours
interleaved so both see the same machine load.

    PYTHONPATH=src python3 benchmarks/sketching/cpu_lstsq.py           # full (10^6x100, 10^5x1000)
    PYTHONPATH=src python3 benchmarks/sketching/cpu_lstsq.py --quick   # CI (< 30 s)
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import median, timed, write_results

from convexnn.sketching import lstsq


def make_problem(n: int, d: int, kappa: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    v = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a *= np.logspace(0, -np.log10(kappa), d)
    a = a @ v.T
    b = a @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)
    return np.ascontiguousarray(a), b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes for CI")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--methods", default="preconditioned,ihs")
    ap.add_argument("--sketch", default="auto")
    args = ap.parse_args()
    if args.quick:
        cases = [(100_000, 50, 1e4), (20_000, 200, 1e8)]
        reps = args.reps or 1
    else:
        cases = [(1_000_000, 100, 1e4), (1_000_000, 100, 1e8),
                 (100_000, 1000, 1e4), (100_000, 1000, 1e8)]
        reps = args.reps or 3
    rows = []
    for n, d, kappa in cases:
        a, b = make_problem(n, d, kappa)
        x_np = np.linalg.lstsq(a, b, rcond=None)[0]  # warm-up + reference
        f_np = float(np.sum((a @ x_np - b) ** 2))
        pred = np.linalg.norm(a @ x_np)
        t_np: list[float] = []
        t_ours: dict[str, list[float]] = {m: [] for m in args.methods.split(",")}
        last: dict[str, tuple] = {}
        for r in range(reps):
            t, _ = timed(lambda a=a, b=b: np.linalg.lstsq(a, b, rcond=None))
            t_np.append(t)
            for method in t_ours:
                t, (x, info) = timed(lambda a=a, b=b, method=method, r=r: lstsq(
                    a, b, method=method, sketch=args.sketch, random_state=r, return_info=True))
                t_ours[method].append(t)
                last[method] = (x, info)
        for method, ts in t_ours.items():
            x, info = last[method]
            f = float(np.sum((a @ x - b) ** 2))
            rows.append({
                "n": n, "d": d, "cond": f"{kappa:.0e}", "method": method,
                "sketch": info.sketch, "m": info.sketch_size, "iters": info.n_iter,
                "passes": info.n_passes, "t_numpy_s": median(t_np), "t_ours_s": median(ts),
                "speedup": median(t_np) / median(ts),
                "rel_obj_excess": (f - f_np) / f_np,
                "rel_pred_diff": float(np.linalg.norm(a @ (x - x_np)) / pred),
            })
    write_results(
        "cpu_lstsq_quick" if args.quick else "cpu_lstsq", rows,
        title="Target 2: sketch-preconditioned least squares vs numpy.linalg.lstsq (CPU)",
        notes=[f"median of {reps} run(s); target: speedup >= 2 at rel_obj_excess <= 1e-10",
               "numpy.linalg.lstsq is LAPACK gelsd (SVD based), the same BLAS threads"],
    )


if __name__ == "__main__":
    main()
