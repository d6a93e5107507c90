"""Shared helpers of the command-line tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from convexnn.cli import cli


@pytest.fixture
def run():
    """Run ``convexnn ARGS...`` in-process; returns click's Result (stdout/stderr apart)."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False,
                             prog_name="convexnn")

    return invoke


@pytest.fixture
def csv_1d(tmp_path):
    """A 1-D regression table: y = |x| + noise, with a text column that is ignored."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, 80)
    frame = pd.DataFrame({"x": x, "y": np.abs(x) + 0.05 * rng.standard_normal(80)})
    path = tmp_path / "one_d.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def user_error():
    """``user_error(result, code, *fragments)``: the checks of every user-error test."""
    return assert_user_error


def assert_user_error(result, code: int, *fragments: str) -> None:
    """One line on stderr, the expected exit code, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output)
    err = result.stderr
    assert "Traceback" not in result.output and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    if code == 1:  # our own errors: exactly one line
        assert len(err.strip().splitlines()) == 1, err
