"""``occsens check``: the sanity checks of occlusion maps (``occsens.checks``) on CIFAR-10 test images.

Prints the results as a table (check, PASS/FAIL, measured value, condition) and explains each failure;
``--json`` also writes them. Exit code 1 when a check fails (unless ``--no-fail``), 2 on bad input.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from typing import Any

from occsens.checks import CHECKS, format_table, results_to_json, run_checks
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.cifar.samples import DEFAULT_SAMPLES, sample_by_index
from occsens.cli.args import add_model_args, add_occlusion_args, model_from_args, samples_arg


def add_parser(sub: Any) -> None:
    """Add ``occsens check`` to the CLI's subparsers."""
    p = sub.add_parser(
        "check",
        help="sanity checks of the occlusion maps (randomisation, faithfulness, leakage, determinism)",
        description="Run the sanity checks of occlusion maps on CIFAR-10 test images and print a table of "
        "results; exits 1 when a check fails (unless --no-fail), 2 on bad input.",
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
    add_occlusion_args(p)
    p.add_argument("--checks", default=None, metavar="NAME,...", help=f"run only these ({', '.join(CHECKS)})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE as JSON")
    p.add_argument("--no-fail", action="store_true", help="exit 0 even when a check fails (only report)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    model = model_from_args(args)
    samples = sample_by_index(args.samples if args.samples else DEFAULT_SAMPLES, args.data_dir)
    names = [n.strip() for n in args.classes.split(",")] if args.classes else list(CIFAR10_CLASSES)
    checks = [c.strip() for c in args.checks.split(",")] if args.checks else None
    results = run_checks(
        model,
        samples.images,
        labels=samples.labels,
        sample_ids=samples.indices.tolist(),
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        checks=checks,
        seed=args.seed,
        progress=not args.quiet,
        class_names=names,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(results_to_json(results) + "\n")
    failed = [r for r in results if not r.passed]
    print(format_table(results))
    print(
        f"\n{len(results) - len(failed)} of {len(results)} checks passed on samples "
        f"{','.join(str(s) for s in samples.indices.tolist())} in {time.perf_counter() - start:.0f} s"
    )
    for r in failed:
        print("\n" + textwrap.fill(f"FAIL {r.name}: {r.explanation}", width=100))
    return 1 if failed and not args.no_fail else 0
