"""The ``occsens`` command line: thin faces over the package's functions, and the only code that
touches argparse. ``args`` holds what several commands share; each command has its module.

Every bad input surfaces as one line ``occsens: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence

from occsens import __version__
from occsens.cli import bench, check, cifar, occlude, report
from occsens.errors import OcclusionError

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="occsens",
        description="Occlusion sensitivity for image classifiers: what does the model look at, "
        "and can you trust it?",
    )
    parser.add_argument("--version", action="version", version=f"occsens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    occlude.add_parser(sub)  # `occsens occlude`
    cifar.add_parsers(sub)  # `occsens train`, `occsens evaluate`
    check.add_parser(sub)  # `occsens check`
    report.add_parsers(sub)  # `occsens report`, `occsens explain`
    bench.add_parser(sub)  # `occsens bench`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        """Each distinct warning once per command, as one ``occsens: warning:`` line."""
        text = str(message)
        if text not in shown:
            shown.add(text)
            print(f"occsens: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        try:
            return int(args.func(args) or 0)
        except OcclusionError as exc:
            print(f"occsens: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("occsens: interrupted", file=sys.stderr)
            return 130
