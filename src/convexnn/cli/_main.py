"""The ``convexnn`` click group, its error handling and the ``main`` entry point."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import click

from convexnn import __version__
from convexnn.exceptions import ConvexNNError

__all__ = ["cli", "main"]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class _Group(click.Group):
    """Turns the library's errors about the user's input into one-line messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ConvexNNError as exc:
            raise click.ClickException(_one_line(exc)) from None
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            raise click.ClickException(_one_line(exc)) from None
        except ImportError as exc:
            raise click.ClickException(_one_line(exc)) from None
        except KeyboardInterrupt:
            raise click.ClickException("Interrupted.") from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        order = ["demo", "fit", "path", "compare", "predict", "datasets"]
        names = super().list_commands(ctx)
        return [n for n in order if n in names] + [n for n in names if n not in order]


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="convexnn")
@click.option("-v", "--verbose", count=True, help="Log what the library does (-vv: debug).")
def cli(verbose: int) -> None:
    """Train two-layer ReLU networks as convex programs, with a certificate of optimality.

    \b
    Start with:
      convexnn demo                      # a minute on bundled real data
      convexnn fit diabetes --lam 1e-3   # fit, report objective, gap, neurons, metrics
      convexnn path diabetes --plot path.png
      convexnn compare breast_cancer --plot compare.png
      convexnn datasets                  # the bundled data sets

    DATA is a bundled name (see `convexnn datasets`) or a CSV, Parquet, .npy or .npz file.
    """
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(name)s: %(message)s",
        )
    warnings.filterwarnings("default")


def _register() -> None:
    from convexnn.cli._compare import compare, demo
    from convexnn.cli._fit import datasets, fit, predict
    from convexnn.cli._path import path

    for command in (demo, fit, path, compare, predict, datasets):
        cli.add_command(command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``convexnn`` script."""
    cli.main(args=argv, prog_name="convexnn")
