"""Seeding width and growth tolerance on diabetes (issue 2 tuning; prints a table).

    PYTHONPATH=src python3 benchmarks/tune_seeding.py [--device cuda]
"""

from __future__ import annotations

import argparse
import time

from sklearn.datasets import load_diabetes

import convexnn
import convexnn.training as training


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--configs", default="64:1e-3,128:1e-3,256:1e-3,128:1e-4")
    args = ap.parse_args()
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    print("width grow_tol objective rel_gap neurons patterns time_s")
    for cfg in args.configs.split(","):
        w, gt = cfg.split(":")
        training._GROW_TOL = float(gt)
        est = convexnn.ConvexReLURegressor(lam=1e-3, fit_intercept=False, random_state=0,
                                           seed_width=int(w), device=args.device)
        t0 = time.perf_counter()
        est.fit(X, y)
        t = time.perf_counter() - t0
        print(w, gt, f"{est.objective_:.6f}", f"{est.certificate_.rel_gap:.1e}",
              est.n_neurons_, est.n_patterns_, f"{t:.1f}", flush=True)



if __name__ == "__main__":
    main()
