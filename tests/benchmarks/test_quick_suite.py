"""``benchmarks/run.py --quick`` end to end: the CSV has the right columns and sane values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.run import main
from benchmarks.suite.runner import COLUMNS, TOL

# Runs in CI (issue 4: "the suite's own tests run the --quick mode in CI"): about 1 min
# on 2 cores since session 17 made the quick problems smaller (session 15: 140 s with one
# thread beside two other jobs). It was opt-in while convexnn's ReLU interior point alone
# took > 15 min on these problems.


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(["--quick", "--out", str(out)]) == 0
    return out, pd.read_csv(out / "suite_quick_cpu.csv")


@pytest.mark.slow
def test_quick_suite_writes_long_format(quick):
    out, df = quick
    assert list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert set(df["experiment"]) == {"gated", "relu", "profile", "scaling", "accuracy"}
    assert (out / "suite_quick_cpu.md").read_text().count("| solver |") + 1 >= 1
    assert (out / "profile_quick_cpu.png").stat().st_size > 0
    assert (out / "scaling_quick_cpu.png").stat().st_size > 0


@pytest.mark.slow
def test_quick_suite_values_make_sense(quick):
    _, df = quick
    ok = df[df["status"] == "ok"]
    assert len(ok) > 0
    # Every skipped or failed run says why.
    assert df.loc[df["status"] != "ok", "reason"].fillna("").str.len().gt(0).all()
    assert (ok["time"] > 0).all()
    assert np.isfinite(ok["objective"]).all() and (ok["objective"] > 0).all()
    # The best objective is the minimum over solvers, so suboptimality is ≥ 0 and 0 somewhere.
    assert (ok["rel_subopt"] >= -1e-12).all()
    keys = ["experiment", "dataset", "n", "lam", "loss", "kind", "n_patterns"]
    assert (ok.groupby(keys)["rel_subopt"].min().abs() < 1e-12).all()
    # Solved runs have a finite time to tolerance no larger than their wall time.
    solved = ok[ok["rel_subopt"] <= TOL]
    assert (solved["time_to_tol"] <= solved["time"] + 1e-9).all()
    unsolved = ok[ok["rel_subopt"] > TOL]
    assert all(math.isinf(t) for t in unsolved["time_to_tol"])
    # Test metrics are R² (≤ 1) or accuracies in [0, 1].
    acc = ok[ok["metric"] == "accuracy"]["test_metric"]
    assert ((acc >= 0) & (acc <= 1)).all()
    assert (ok[ok["metric"] == "r2"]["test_metric"] <= 1).all()
    # A gated network and its ReLU program are scored on their own objectives: the convex
    # peers on the gated problem agree with each other to CVXPY's tolerance.
    g = ok[(ok["experiment"] == "gated") & ok["solver"].isin(["cvxpy_clarabel",
                                                               "convexnn_gated"])]
    if len(g) == 2:
        assert g["objective"].max() / g["objective"].min() - 1 < 1e-4
    # convexnn reports a certificate whose gap is non-negative (to rounding).
    cn = ok[ok["solver"].str.startswith("convexnn")]
    if len(cn):
        assert (cn["gap"].fillna(0) >= -1e-8).all()
        assert cn["scope"].isin(["global", "sampled"]).all()
