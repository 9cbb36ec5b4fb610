"""``occsens check``: the sanity checks of occlusion maps (``occsens.checks``) on CIFAR-10 or your images.

Prints the results as a table (check, PASS/FAIL, measured value, condition) and explains each failure;
``--json`` also writes them. Exit code 1 when a check fails (unless ``--no-fail``), 2 on bad input.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from pathlib import Path
from typing import Any

from occsens.checks import CHECKS, format_table, results_to_json, run_checks
from occsens.cli.args import (
    add_images_args,
    add_model_args,
    add_occlusion_args,
    model_from_args,
    output_from_args,
    samples_arg,
)
from occsens.cli.inputs import cifar_inputs, file_inputs, model_classes, with_labels
from occsens.engine.model import check_output, scores_in_words
from occsens.errors import OcclusionError
from occsens.output import check_out_dir, write_files


def add_parser(sub: Any) -> None:
    """Add ``occsens check`` to the CLI's subparsers."""
    p = sub.add_parser(
        "check",
        help="sanity checks of the occlusion maps (randomisation, faithfulness, leakage, determinism)",
        description="Run the sanity checks of occlusion maps on CIFAR-10 test images (default: embedded "
        "samples) or your own images (--images DIR) and print a table of results; exits 1 when a check "
        "fails (unless --no-fail), 2 on bad input.",
    )
    add_model_args(p)
    p.add_argument(
        "--samples",
        type=samples_arg,
        default=None,
        metavar="IDX,...",
        help="CIFAR-10 test indices (default: the embedded default samples 0,1,2,3,4,6,11,25)",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder holding cifar-10-batches-py/, for samples not embedded"
    )
    add_images_args(p)
    add_occlusion_args(p)
    p.add_argument("--checks", default=None, metavar="NAME,...", help=f"run only these ({', '.join(CHECKS)})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument(
        "--json", default=None, metavar="FILE", help="also write the results to FILE as JSON (written whole)"
    )
    p.add_argument("--no-fail", action="store_true", help="exit 0 even when a check fails (only report)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    json_path = Path(args.json) if args.json else None
    if json_path is not None:
        if json_path.is_dir():
            raise OcclusionError(f"--json {args.json!r} is a folder; give a file name, e.g. checks.json")
        check_out_dir(json_path.parent, "--json")  # before minutes of work, not after
    if args.images is not None:
        if args.samples is not None or args.data_dir is not None:
            raise OcclusionError(
                "give either --images (your images) or --samples/--data-dir (CIFAR-10 images), not both"
            )
        inputs = file_inputs(args, args.images)
    else:
        if args.labels is not None:
            raise OcclusionError("--labels needs --images; CIFAR-10 test images carry their own labels")
        inputs = cifar_inputs(args)
    model = model_from_args(args)
    output = output_from_args(args)
    classes = model_classes(args, model, inputs, output)
    inputs = with_labels(args, inputs, classes.names)
    checks = [c.strip() for c in args.checks.split(",")] if args.checks else None
    ids = [i if i is not None else k for k, i in enumerate(inputs.indices)]
    results = run_checks(
        model,
        inputs.images,
        labels=None if any(y is None for y in inputs.labels) else inputs.labels,
        sample_ids=ids,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        checks=checks,
        seed=args.seed,
        progress=not args.quiet,
        class_names=classes.names,
    )
    if json_path is not None:
        payload = {json_path.name: (results_to_json(results) + "\n").encode("utf-8")}
        write_files(json_path.parent, payload, "the check results", "--json")
    failed = [r for r in results if not r.passed]
    print(format_table(results))
    named = ", ".join(
        n if i is None else str(i) for n, i in zip(inputs.sample_names, inputs.indices, strict=True)
    )
    print(
        f"\n{len(results) - len(failed)} of {len(results)} checks passed on {inputs.source} ({named}) "
        f"in {time.perf_counter() - start:.0f} s; scores: {scores_in_words(check_output(output))}"
    )
    for r in failed:
        print("\n" + textwrap.fill(f"FAIL {r.name}: {r.explanation}", width=100))
    return 1 if failed and not args.no_fail else 0
