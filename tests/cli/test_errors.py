"""Every user error: a one-line message on stderr, a non-zero exit code, no traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from convexnn import __version__

COMMANDS = ["fit", "path", "compare"]


def test_version_and_help(run):
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.stdout
    result = run("--help")
    assert result.exit_code == 0
    for command in ("demo", "fit", "path", "compare", "predict", "datasets"):
        assert command in result.stdout
    for command in ("demo", "fit", "path", "compare", "predict", "datasets"):
        result = run(command, "--help")
        assert result.exit_code == 0 and f"Usage: convexnn {command}" in result.stdout


def test_fit_help_lists_the_issue_options(run):
    text = run("fit", "--help").stdout
    for option in ("--target", "--task", "--lam", "--patterns", "--activation", "--device",
                   "--test-size", "--seed", "--save", "--plot", "--json", "--quiet",
                   "--no-standardize"):
        assert option in text, option


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_data_set(run, command, user_error):
    user_error(run(command, "diabets"), 1, "Error: Unknown data set 'diabets'",
                      "Did you mean 'diabetes'")


@pytest.mark.parametrize("command", COMMANDS)
def test_missing_file(run, command, tmp_path, user_error):
    user_error(run(command, tmp_path / "nope.csv"), 1, "nope.csv' does not exist")


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_column(run, command, csv_1d, user_error):
    user_error(run(command, csv_1d, "--target", "price"), 1,
                      "Target column 'price' not found", "Available columns: x, y")


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option(run, command, user_error):
    user_error(run(command, "diabetes", "--bogus"), 2, "No such option", "--bogus")


@pytest.mark.parametrize("command", ["fit", "compare"])
@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf"])
def test_bad_lam(run, command, value, user_error):
    user_error(run(command, "diabetes", "--lam", value), 2, "Invalid value for '--lam'")


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_bad_patterns(run, value, user_error):
    user_error(run("fit", "diabetes", "--patterns", value), 2,
                      "Invalid value for '--patterns'")


def test_bad_choices(run, user_error):
    user_error(run("fit", "diabetes", "--task", "ranking"), 2, "Invalid value for '--task'")
    user_error(run("fit", "diabetes", "--activation", "tanh"), 2,
                      "Invalid value for '--activation'")
    for size in ("1.5", "nan", "-0.1"):
        user_error(run("fit", "diabetes", "--test-size", size), 2,
                          "Invalid value for '--test-size'")
    user_error(run("path", "diabetes", "--lam-min-ratio", "0"), 2,
                      "Invalid value for '--lam-min-ratio'")
    user_error(run("compare", "diabetes", "--optimizer", "lbfgs"), 2,
                      "Invalid value for '--optimizer'")


def test_target_with_named_data(run, user_error):
    user_error(run("fit", "iris", "--target", "species"), 1,
                      "'target' parameter applies to files only")


def test_wrong_task_for_target(run, csv_1d, user_error):
    user_error(run("fit", csv_1d, "--task", "binary"), 1, "exactly 2 classes")


def test_path_needs_validation_data(run, user_error):
    user_error(run("path", "diabetes", "--test-size", "0"), 2, "--test-size > 0")


def test_unknown_command(run, user_error):
    user_error(run("train", "diabetes"), 2, "No such command 'train'")


def test_missing_argument(run, user_error):
    user_error(run("fit"), 2, "Missing argument 'DATA'")


def test_predict_missing_model(run, tmp_path, user_error):
    user_error(run("predict", tmp_path / "m.npz", "diabetes"), 1,
                      "Model file", "does not exist")


def test_predict_corrupted_model(run, tmp_path, user_error):
    bad = tmp_path / "m.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    user_error(run("predict", bad, "diabetes"), 1, "is corrupted or truncated")
    np.savez(tmp_path / "data.npz", X=np.zeros((2, 2)))
    user_error(run("predict", tmp_path / "data.npz", "diabetes"), 1,
                      "not a convexnn model file")


def test_datasets_command(run):
    result = run("datasets")
    assert result.exit_code == 0
    assert "breast_cancer" in result.stdout and "binary" in result.stdout


def test_real_entry_point_has_no_traceback(tmp_path):
    """The installed command path (python -m convexnn.cli), not the in-process runner."""
    proc = subprocess.run(
        [sys.executable, "-m", "convexnn.cli", "fit", str(tmp_path / "missing.csv")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: Data file")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "convexnn.cli", "--version"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == f"convexnn, version {__version__}"
