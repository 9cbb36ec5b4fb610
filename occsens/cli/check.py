"""``occsens check``: the sanity checks of occlusion maps (``occsens.checks``) on CIFAR-10 or your images.

Prints the results as a table (check, PASS/FAIL/INCONCLUSIVE, measured value, calibrated power,
condition), then what the maps can be trusted for, claim by claim, then why each check failed or had no
power; ``--json`` also writes them. Exit codes: see the command's description.
"""

from __future__ import annotations

import argparse
import textwrap
import time
from typing import Any

from occsens.checks.names import CHECK_NAMES
from occsens.cli import types
from occsens.cli.args import (
    add_cifar_args,
    add_images_args,
    add_model_args,
    add_occlusion_args,
    add_seed,
    check_model_args,
    model_from_args,
    out_file,
    output_from_args,
    text_option,
)
from occsens.files import write_files


def add_parser(sub: Any) -> None:
    """Add ``occsens check`` to the CLI's subparsers."""
    p = sub.add_parser(
        "check",
        help="sanity checks of the occlusion maps (randomisation, faithfulness, leakage, determinism)",
        description="Run the sanity checks of occlusion maps on CIFAR-10 test images (default: embedded "
        "samples) or your own images (--images DIR) and print a table of verdicts (pass; fail; "
        "inconclusive where these images do not decide, with the interval and about how many images "
        "would; info for a measurement not calibrated on real images) and what the maps can be trusted "
        "for; deletion and insertion add embedded samples to the ones named when those do not decide, "
        "and say how many they used. Exits 1 when a calibrated check fails (unless --no-fail; "
        "inconclusive and info alone exit 0), 2 on bad input.",
    )
    add_model_args(p)
    add_cifar_args(p, "CIFAR-10 test indices (default: the embedded default samples 0,1,2,3,4,6,11,25)")
    add_images_args(p)
    add_occlusion_args(p)
    p.add_argument(
        "--checks",
        default=None,
        type=types.name_list("check names", "check", CHECK_NAMES),
        metavar="NAME,...",
        help=f"run only these ({', '.join(CHECK_NAMES)})",
    )
    add_seed(p, "seed of every random choice")
    text_option(
        p,
        "--json",
        "a file name",
        "FILE",
        "also write the results to FILE as JSON (written whole, after the checks; the path is checked first)",
    )
    p.add_argument(
        "--no-fail", action="store_true", help="exit 0 even when a check fails (only report the verdicts)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from occsens.checks import any_failed, format_table, results_to_json, run_checks, trust_claims
    from occsens.cli.inputs import inputs_from_args, model_classes, more_images, with_labels
    from occsens.engine.model import check_output, scores_in_words

    start = time.perf_counter()
    json_path = out_file(args.json, "--json", "checks.json")  # before minutes of work, not after
    check_model_args(args)
    inputs = inputs_from_args(args)  # --images against --samples first, then the images read
    model = model_from_args(args)
    output = output_from_args(args)
    classes = model_classes(args, model, inputs, output)
    inputs = with_labels(args, inputs, classes.names)
    more, more_ids = more_images(inputs)
    results = run_checks(
        model,
        inputs.images,
        labels=None if any(y is None for y in inputs.labels) else inputs.labels,
        sample_ids=[i if i is not None else k for k, i in enumerate(inputs.indices)],
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        checks=args.checks,
        seed=args.seed,
        progress=not args.quiet,
        class_names=classes.names,
        more_images=more,
        more_ids=more_ids,
    )
    print(format_table(results))
    named = ", ".join(
        n if i is None else str(i) for n, i in zip(inputs.sample_names, inputs.indices, strict=True)
    )
    counts = {v: sum(r.verdict == v for r in results) for v in ("pass", "fail", "inconclusive", "info")}
    print(
        f"\n{counts['pass']} passed, {counts['fail']} failed, {counts['inconclusive']} inconclusive (no "
        f"power here), {counts['info']} reported as information, of {len(results)} checks on "
        f"{inputs.source} ({named}) in {time.perf_counter() - start:.0f} s (faithfulness may add embedded "
        f"samples, and says how many); scores: {scores_in_words(check_output(output))}; power: "
        "measured by simulation on this run (faithfulness), else the share of known-bad maps or models "
        "each check failed in calibration (occsens.checks.power)"
    )
    print("\nCan the maps be trusted? Claim by claim (a yes needs a pass by a check of power 0.8 or more):")
    for claim in trust_claims(results):
        said = f"{claim.answer:>10}  {claim.claim}. {claim.why}"
        print(textwrap.fill(said, width=100, subsequent_indent=" " * 12))
    for r in results:
        if r.verdict != "pass":
            print("\n" + textwrap.fill(f"{r.verdict.upper()} {r.name}: {r.explanation}", width=100))
    if json_path is not None:  # after the table: a disk that is full loses the file, not the results
        payload = {json_path.name: (results_to_json(results) + "\n").encode("utf-8")}
        write_files(json_path.parent, payload, "the check results", "--json")
    return 1 if any_failed(results) and not args.no_fail else 0
