"""ReLU programs on fixed sampled patterns, planted teacher: time, Newton steps, certificate.

The same problems as the scaling experiment's ``convexnn_relu_fixed`` rows (suite
preprocessing, 50 shared Gaussian gates, λ = 1e-3, no output bias), fitted by
``ConvexReLURegressor`` and reported with the certified relative gap — the quantity that
support polishing improves. ``--repo`` runs another checkout of convexnn (e.g. a
``git worktree`` of an older commit) for before/after comparisons in one run::

    PYTHONPATH=src python3 benchmarks/relu_fixed_teacher.py --n 1000,10000,30000
    python3 benchmarks/relu_fixed_teacher.py --repo /tmp/old --n 30000   # older commit
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from functools import partial
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", default="1000,10000,30000", help="comma-separated sample sizes")
    ap.add_argument("--gates", type=int, default=50)
    ap.add_argument("--repo", default=None, help="checkout whose src/ and benchmarks/ to use")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    repo = Path(args.repo).resolve() if args.repo else Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(repo), str(repo / "src")]
    import convexnn
    from benchmarks.suite.datasets import planted_teacher
    from benchmarks.suite.memory import peak_memory
    from benchmarks.suite.problem import prepare

    rows = ["| n | gates | time (s) | peak extra memory (MiB) | Newton steps | objective | "
            "certified rel. gap | warning |",
            "|---|---|---|---|---|---|---|---|"]
    print(f"# convexnn from {repo}")
    print("\n".join(rows))
    for n in (int(v) for v in args.n.split(",")):
        X, y = planted_teacher(int(math.ceil(n / 0.8)), seed=0)
        pr = prepare("teacher", X, y, "regression", kind="relu", loss="squared", lam=1e-3,
                     n_gates=args.gates, seed=0)
        est = convexnn.ConvexReLURegressor(
            lam=1e-3, patterns=pr.gates.T.copy(), fit_intercept=False, tol=1e-6,
            random_state=0, grow=False, dtype="float64")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            _, mem = peak_memory(partial(est.fit, pr.X, pr.y))
            el = time.perf_counter() - t0
        warned = any("ConvergenceWarning" in type(w.message).__name__ for w in caught)
        row = (f"| {pr.n} | {pr.n_patterns} | {el:.2f} | {mem / 2**20:.0f} | {est.n_iter_} | "
               f"{est.objective_:.10g} | {est.certificate_.rel_gap:.1e} | "
               f"{'ConvergenceWarning' if warned else ''} |")
        rows.append(row)
        print(row, flush=True)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(f"\n<!-- convexnn from {repo} -->\n" + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
