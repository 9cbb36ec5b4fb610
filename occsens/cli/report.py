"""``occsens report`` and ``occsens explain``: the HTML report for CIFAR-10 test images or image files.

Everything the report takes as data is built here from the arguments: the images, their labels and
how they were read (``occsens.cli.inputs``), the model and its class names, its card
(``ModelInfo``, shipped models only), the shipped colour model and greyscale twin (``Twin``, only
when the report's model is one of them), the asker's printout (CIFAR-10 images only) and the sanity
checks on the same images. Exit codes of ``report``: 0 the report is written and no check failed; 1
the report is written and a sanity check failed (as ``occsens check`` would exit; ``--no-fail`` or
``--no-checks`` give 0); 2 bad input, and no report. ``explain`` shows its checks in the page and
exits 0 with the report written.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from occsens.cli.args import (
    add_cifar_args,
    add_images_args,
    add_input_size_arg,
    add_model_args,
    add_occlusion_args,
    check_model_args,
    model_from_args,
    out_folder,
    output_from_args,
    text_option,
)
from occsens.constants import HTML_NAME, JSON_NAME
from occsens.errors import OcclusionError

if TYPE_CHECKING:
    from occsens.cli.inputs import Inputs
    from occsens.report import ModelInfo, Report, Twin

DEFAULT_OUT = "reports"
GREYSCALE_CARD = "occsens/weights/greyscale.json"
EXIT_CHECK_FAILED = 1  # the report is written; a sanity check failed (what `occsens check` exits with)
EXIT_CODES = (
    "exit codes: 0 the report is written and no sanity check failed; 1 the report is written and a "
    "sanity check failed, as `occsens check` would exit (--no-fail or --no-checks: 0); 2 bad input, "
    "no report written"
)

# explain is for looking at one image: its checks are shown in the page, and on one image several of them
# have little to judge by; `occsens check --images` is the gate that exits 1.
EXPLAIN_EXIT_CODES = (
    "exit codes: 0 the report is written (a failed sanity check is shown in it, not in the exit code: "
    "`occsens check` exits 1 on it); 2 bad input, no report written"
)


def _add_common(p: argparse.ArgumentParser, default_out: str) -> None:
    add_model_args(p)
    add_occlusion_args(p.add_argument_group("occlusion"))
    g = p.add_argument_group("output")
    text_option(
        g,
        "--out",
        "a folder",
        "DIR",
        f"output folder for {HTML_NAME} (default {default_out}); checked before any work",
    )
    g.add_argument("--json", action="store_true", help=f"also write the numbers to DIR/{JSON_NAME}")
    g.add_argument(
        "--timestamp",
        action="store_true",
        help="put the generation time in the page (off by default, so reruns give the same file)",
    )
    g.add_argument(
        "--no-checks",
        action="store_true",
        help="leave out the sanity checks (occsens check) that the report runs on the same samples",
    )
    g.add_argument(
        "--no-fail",
        action="store_true",
        help="exit 0 even when a sanity check fails (the report is written either way); not with --no-checks",
    )
    text_option(
        g,
        "--survey",
        "a survey folder",
        "DIR",
        "a finished `occsens survey` of this model with these settings: the report shows its data-set "
        "numbers beside the images' and the answer to 'why do other classes take over?' cites them",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parsers(sub: Any) -> None:
    """Add ``report`` and ``explain`` to the CLI's subparsers."""
    p = sub.add_parser(
        "report",
        help="write the self-contained HTML report for CIFAR-10 test images or a folder of your images",
        description="Write one self-contained index.html (CSS inline, figures embedded, no network) that "
        "explains what the model looks at in CIFAR-10 test images (default: embedded samples) or in "
        "your own images (--images DIR), with evidence for how to read occlusion maps.",
        epilog=EXIT_CODES,
    )
    add_cifar_args(p, "official CIFAR-10 test-set indices (default: an embedded set that includes ships)")
    add_images_args(p)
    _add_common(p, DEFAULT_OUT)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explain",
        help="write the HTML report for one image file of yours",
        description="The report of `occsens report` for one image file, read as it looks (EXIF "
        "orientation, 16-bit depth, transparency) and resized to the model's input when needed; the "
        "report says how it was read.",
        epilog=EXPLAIN_EXIT_CODES,
    )
    text_option(p, "image", "an image file", "IMAGE", "an image file (PNG, JPEG, TIFF, WebP, BMP, GIF)")
    text_option(p, "--label", "a class name or number", "CLASS", "the image's true class, by name or number")
    add_input_size_arg(p)
    _add_common(p, f"{DEFAULT_OUT}/explain-IMAGE")
    p.set_defaults(func=_cmd_explain)


def _model_info(args: argparse.Namespace, model: Any) -> ModelInfo:
    from occsens import report  # matplotlib and jinja2: imported only when a report is made
    from occsens.cifar import data, models
    from occsens.cli.inputs import is_shipped
    from occsens.report.data import model_info_without_card, parameter_count

    shipped = is_shipped(args)
    if shipped is None:
        label = args.model_path + (f" with weights {args.weights}" if args.weights else "")
        return model_info_without_card(model, label)
    card = report.Card.from_json(models.model_card(shipped), data.CIFAR10_CLASSES)
    return report.ModelInfo(f"shipped model '{shipped}'", card, parameter_count(model))


def _twin(args: argparse.Namespace, model: Any) -> tuple[Twin | None, str | None]:
    """The shipped colour model and greyscale twin, reusing the report's model when it is one of them."""
    from occsens import report  # matplotlib and jinja2: imported only when a report is made
    from occsens.cifar import data, models
    from occsens.cli.inputs import is_shipped

    shipped = is_shipped(args)
    if shipped is None:
        return None, (
            "The colour-vs-greyscale comparison measures occsens's two shipped CIFAR-10 models against "
            "each other; it says nothing about a model of yours, so it is left out."
        )
    names = data.CIFAR10_CLASSES
    try:
        grey_card = report.Card.from_json(models.model_card("greyscale"), names)
    except OcclusionError:
        return None, (
            f"The greyscale twin's model card ({GREYSCALE_CARD}) is not there, so this report has no "
            "colour-vs-greyscale measurement yet. Train the twin (occsens train --name greyscale "
            "--greyscale), ship its weights and card, and rerun the report."
        )
    try:
        grey = model if shipped == "greyscale" else models.load_model("greyscale")
        colour = model if shipped == "default" else models.load_model("default")
        colour_card = report.Card.from_json(models.model_card("default"), names)
    except OcclusionError as exc:
        return (
            None,
            f"The colour and greyscale models could not both be loaded ({exc}), so there is no comparison.",
        )
    return report.Twin(colour, colour_card, grey, grey_card), None


def _finish(args: argparse.Namespace, result: Report, out: str) -> int:
    """Write the report, say where, and exit as ``occsens check`` would on the same checks."""
    from occsens import report  # matplotlib and jinja2: imported only when a report is made

    path = report.write_report(result, out, args.json)
    extra = f" and {path.parent / JSON_NAME}" if args.json else ""
    print(f"wrote {path} ({len(result.html.encode()) // 1024} kB){extra}")
    reading = result.checks
    if reading is None:
        return 0
    failed = ", ".join(r.name for r in reading.rows if r.verdict == "fail")
    counts = ", ".join(f"{n} {v}" for v in ("pass", "fail", "inconclusive") if (n := reading.count(v)))
    # one line: the trust list itself is in the page, not repeated here after every command
    print(f"sanity checks: {counts}{f' ({failed})' if failed else ''}; see the page's trust list")
    if reading.failed and not args.no_fail and args.func is not _cmd_explain:
        print(f"a sanity check failed: exit {EXIT_CHECK_FAILED} (--no-fail to exit 0)")
        return EXIT_CHECK_FAILED
    return 0


def _fit_threads() -> None:
    """Use only the CPU cores that are idle now, unless OMP_NUM_THREADS says otherwise.

    The report's forward passes are small; on a machine whose cores are busy (a training job),
    torch's default of one thread per core spends its time waiting for descheduled threads: the
    default report took 95 s in measurement with 2 threads against 11 s with 1 on this project's
    2-core machine while it trained.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads() <= 1:
        return
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), idle)))


def _check_args(args: argparse.Namespace, out: str) -> None:
    """What ``report`` and ``explain`` check before any work: the output folder and the files the
    report will replace there, and options that cannot go together."""
    out_folder(out, "--out", (HTML_NAME, JSON_NAME) if args.json else (HTML_NAME,))
    if args.no_fail and args.no_checks:
        raise OcclusionError("--no-fail has no effect with --no-checks (no check runs, so none can fail)")
    check_model_args(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from occsens.cli.inputs import inputs_from_args

    out = args.out or DEFAULT_OUT
    _check_args(args, out)
    inputs = inputs_from_args(args)
    return _report(args, inputs, f"Occlusion sensitivity report: {inputs.source}", out)


def _cmd_explain(args: argparse.Namespace) -> int:
    from occsens.cli.inputs import file_inputs

    path = Path(args.image)
    out = args.out or f"{DEFAULT_OUT}/explain-{path.stem}"
    _check_args(args, out)
    inputs = file_inputs(args, [path])
    return _report(args, inputs, f"Occlusion sensitivity report: {path.name}", out)


def _report(args: argparse.Namespace, inputs: Inputs, title: str, out: str) -> int:
    """The library's ``occsens.explain`` on what the arguments name; then write, print and exit."""
    from occsens import report  # matplotlib and jinja2: imported only when a report is made
    from occsens.cifar import data
    from occsens.cli.inputs import model_classes, more_images, with_labels
    from occsens.report.explain import explain

    model = model_from_args(args)
    output = output_from_args(args)
    _fit_threads()
    names = model_classes(args, model, inputs, output).names
    inputs = with_labels(args, inputs, names)
    twin, missing = _twin(args, model)
    survey = None
    if args.survey is not None:  # read and checked against the model before any work
        from occsens.datasurvey import cited

        survey = cited(args.survey, model)
    # the embedded samples not shown: the checks add them when the 8 shown do not decide a verdict
    more, more_ids = (None, None) if args.no_checks else more_images(inputs)
    now = datetime.datetime.now(datetime.timezone.utc)
    result = explain(
        model,
        inputs.images,
        class_names=names,
        labels=inputs.labels,
        sample_names=inputs.sample_names,
        indices=inputs.indices,
        label_names=data.CIFAR10_CLASSES if inputs.cifar else None,
        notes=inputs.notes,
        checks=not args.no_checks,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        model_info=_model_info(args, model),
        twin=twin,
        twin_missing=missing,
        title=title,
        timestamp=now.strftime("%Y-%m-%d %H:%M:%S UTC") if args.timestamp else None,
        # the asker's printout is in CIFAR-10's class ids: only for CIFAR-10 images and class names
        question=report.ASKER if inputs.cifar and list(names) == list(data.CIFAR10_CLASSES) else None,
        progress=not args.quiet,
        survey=survey,
        check_images=more,
        check_ids=more_ids,
    )
    return _finish(args, result, out)
