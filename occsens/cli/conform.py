"""``occsens conform``: occsens' properties of occlusion run against another implementation.

``occsens conform captum|monai|notebook|occsens|MODULE:FUNCTION`` prints a table (property, kind,
verdict, counterexample); ``--json``/``--html`` also write it. Exit code 1 when a contract property
fails or none could be tested (not verified), 0 otherwise, 2 on bad input (a call of the
implementation past ``--timeout`` included).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from occsens.cli import types
from occsens.cli.args import RUNS_USER_CODE, add_seed, add_timeout, out_file, text_option
from occsens.conformance.results import DEFAULT_EXAMPLES, contract_failures, not_verified_words, verified
from occsens.errors import OcclusionError
from occsens.files import write_together

BUILT_IN = ("captum", "monai", "notebook", "occsens")


def add_parser(sub: Any) -> None:
    """Add ``occsens conform`` to the CLI's subparsers."""
    p = sub.add_parser(
        "conform",
        help="check an occlusion implementation (Captum, MONAI, the notebook, yours) against its properties",
        description="Run occsens' properties of occlusion against an implementation: closed forms on oracle "
        "models, fill, target, batch, grid, determinism and scale, and which border convention it follows. "
        "Prints a table; exits 1 when a contract property fails or none could be tested (the implementation "
        "raised Unsupported for every case: not verified), 2 on bad input.",
    )
    text_option(
        p,
        "impl",
        f"{', '.join(BUILT_IN)} or MODULE:FUNCTION",
        "IMPL",
        f"{', '.join(BUILT_IN)}, or MODULE:FUNCTION: your function "
        "(model, images, *, patch, stride, fill) -> attribution [N, H, W]; this "
        f"{RUNS_USER_CODE} FUNCTION on each drawn case",
    )
    p.add_argument(
        "--examples",
        type=types.positive_int,
        default=DEFAULT_EXAMPLES,
        help=f"cases drawn per property (default {DEFAULT_EXAMPLES}; a failure is then shrunk)",
    )
    add_seed(p, "seed of the drawn cases", ": same seed, same cases")
    add_timeout(p, "one call of the implementation may take", "; each case takes milliseconds")
    text_option(p, "--json", "a file name", "FILE", "also write the results as JSON (written whole)")
    text_option(
        p,
        "--html",
        "a file name",
        "FILE",
        "also write them as one HTML page (written whole, with --json: both or neither)",
    )
    p.set_defaults(func=_cmd_conform)


def _cmd_conform(args: argparse.Namespace) -> int:
    json_path = out_file(args.json, "--json", "conform.json")  # before any work, not after
    html_path = out_file(args.html, "--html", "conform.html")
    if json_path is not None and html_path is not None and json_path.resolve() == html_path.resolve():
        raise OcclusionError(f"--json and --html name the same file {args.json!r}; give two file names")
    from occsens.conformance import load_impl, verify
    from occsens.conformance.present import format_table, summary, to_html, to_json

    impl = load_impl(args.impl)
    start = time.perf_counter()
    results = verify(impl, examples=args.examples, seed=args.seed, timeout=args.timeout)
    seconds = time.perf_counter() - start
    print(format_table(results))
    print(
        f"\n{summary(args.impl, results)}. {args.examples} cases per property, seed {args.seed}, "
        f"{seconds:.1f} s."
    )
    if not verified(results):
        print(f"{args.impl}: {not_verified_words(results)}.")
    files: list[tuple[Path, dict[str, bytes], str]] = []  # both or neither, in one folder or two
    for path, present, option in ((json_path, to_json, "--json"), (html_path, to_html, "--html")):
        if path is not None:
            text = present(args.impl, results, examples=args.examples, seed=args.seed)
            files.append((path.parent, {path.name: text.encode("utf-8")}, option))
    if files:
        write_together(files, "the conformance results")
    return 1 if contract_failures(results) or not verified(results) else 0
