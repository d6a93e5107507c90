"""The primal-dual solver on one restricted ReLU program and one gated program (diabetes),
against CVXPY + Clarabel on the same program; Newton steps for several ν-reduction factors.

    PYTHONPATH=src python3 benchmarks/primal_dual_vs_clarabel.py [--sigmas 0.15,0.05,0.02]

ReLU program: the patterns of a 300-epoch, 64-neuron Adam run (seed 0) on diabetes
(standardized X and y, no intercept, λ = 1e-3), warm-started from that run. Gated program:
500 sampled Gaussian gates. Writes ``benchmarks/results/primal_dual_vs_clarabel.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from sklearn.datasets import load_diabetes

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.suite.machine import describe  # noqa: E402
from convexnn.losses import get_loss  # noqa: E402
from convexnn.solvers import cvxpy_reference  # noqa: E402
from convexnn.solvers._primal_dual import primal_dual  # noqa: E402
from convexnn.solvers._working_set import block_scores  # noqa: E402
from convexnn.training import _problem, _seed_from_nonconvex, build_patterns  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sigmas", default="0.15")
    ap.add_argument("--no-cvxpy", action="store_true")
    args = ap.parse_args()
    X, y = load_diabetes(return_X_y=True)
    X = torch.tensor((X - X.mean(0)) / X.std(0))
    Y = torch.tensor((y - y.mean()) / y.std())[:, None]
    loss = get_loss("squared")
    g = torch.Generator().manual_seed(0)
    ps = build_patterns(X, 1, fit_intercept=False, generator=g, max_patterns=1000)
    ps, W, b, _, _ = _seed_from_nonconvex(X, X, Y, loss, 1e-3, ps, relu=True,
                                       fit_intercept=False, epochs=300, width=64, generator=g)
    relu = _problem(X, ps, Y, loss, 1e-3, relu=True, fit_bias=False)
    gps = build_patterns(X, 500, fit_intercept=False, generator=g, max_patterns=1000)
    gated = _problem(X, gps, Y, loss, 1e-3, relu=False, fit_bias=False)
    rows = ["| program | blocks | solver | sigma | Newton steps | objective | certified rel. gap "
            "| time (s) |", "|---|---|---|---|---|---|---|---|"]
    for name, prob, w0 in (("relu", relu, W), ("gated", gated, None)):
        for sig in (float(s) for s in args.sigmas.split(",")):
            t0 = time.perf_counter()
            res = primal_dual(prob, w0, b if w0 is not None else None, tol=1e-7,
                              max_iter=300, sigma=sig)
            t = time.perf_counter() - t0
            Z = prob.op.matvec(res.W) + res.b
            _, lb = block_scores(prob, Z, res.extra.get("mu"), 200)
            obj = prob.objective(res.W, res.b)
            rows.append(f"| {name} | {prob.op.p} | primal_dual | {sig} | {res.n_iter} | "
                        f"{obj:.11f} | {(obj - lb) / obj:.1e} | {t:.2f} |")
            print(rows[-1], flush=True)
        if not args.no_cvxpy:
            t0 = time.perf_counter()
            ref = cvxpy_reference(prob)
            t = time.perf_counter() - t0
            rows.append(f"| {name} | {prob.op.p} | CVXPY + Clarabel ({ref.extra['status']}) | — "
                        f"| — | {ref.extra['value']:.11f} | — | {t:.2f} |")
            print(rows[-1], flush=True)
    md = "\n".join([f"Command: `PYTHONPATH=src python3 benchmarks/primal_dual_vs_clarabel.py "
                    f"--sigmas {args.sigmas}`  ", f"Machine: {describe('cpu')}", ""] + rows)
    out = ROOT / "benchmarks" / "results" / "primal_dual_vs_clarabel.md"
    out.write_text(md + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
