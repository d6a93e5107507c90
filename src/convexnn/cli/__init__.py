"""The ``convexnn`` command line: a thin layer over the library.

Subcommands: ``demo``, ``fit``, ``path``, ``compare``, ``predict``, ``datasets``.
Run ``convexnn --help`` or ``convexnn COMMAND --help``.
"""

from convexnn.cli._main import cli, main

__all__ = ["cli", "main"]
