"""``occsens report`` and ``occsens explain``: the HTML report for CIFAR-10 test images or image files.

Everything the report takes as data is built here from the arguments: the images, their labels and
how they were read (``occsens.cli.inputs``), the model and its class names, its card
(``ModelInfo``, shipped models only), the shipped colour model and greyscale twin (``Twin``, only
when the report's model is one of them), and the sanity checks on the same images.
"""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from occsens import __version__
from occsens.checks import CheckResult, run_checks
from occsens.cifar import data, models
from occsens.cli.args import (
    add_images_args,
    add_input_size_arg,
    add_model_args,
    add_occlusion_args,
    model_from_args,
    output_from_args,
    samples_arg,
)
from occsens.cli.inputs import Inputs, cifar_inputs, file_inputs, is_shipped, model_classes, with_labels
from occsens.errors import OcclusionError
from occsens.output import check_out_dir

if TYPE_CHECKING:
    from occsens.report import ModelInfo, Report, Twin

DEFAULT_OUT = "reports"
JSON_NAME = "report.json"  # occsens.report.JSON_NAME, named here so building the parser need not import it
GREYSCALE_CARD = "occsens/weights/greyscale.json"


def _add_common(p: argparse.ArgumentParser, default_out: str) -> None:
    add_model_args(p)
    add_occlusion_args(p.add_argument_group("occlusion"))
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", default=None, metavar="DIR", help=f"output folder for index.html (default {default_out})"
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
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parsers(sub: Any) -> None:
    """Add ``report`` and ``explain`` to the CLI's subparsers."""
    p = sub.add_parser(
        "report",
        help="write the self-contained HTML report for CIFAR-10 test images or a folder of your images",
        description="Write one self-contained index.html (CSS inline, figures embedded, no network) that "
        "explains what the model looks at in CIFAR-10 test images (default: embedded samples) or in "
        "your own images (--images DIR), with evidence for how to read occlusion maps.",
    )
    p.add_argument(
        "--samples",
        type=samples_arg,
        default=None,
        metavar="IDX,...",
        help="official CIFAR-10 test-set indices (default: an embedded set that includes ships)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding cifar-10-batches-py/, for indices that are not embedded (or $OCCSENS_DATA_DIR)",
    )
    add_images_args(p)
    _add_common(p, DEFAULT_OUT)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explain",
        help="write the HTML report for one image file of yours",
        description="The report of `occsens report` for one image file, read as it looks (EXIF "
        "orientation, 16-bit depth, transparency) and resized to the model's input when needed; the "
        "report says how it was read.",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, TIFF, WebP, BMP, GIF)")
    p.add_argument("--label", default=None, metavar="CLASS", help="the image's true class, by name or number")
    add_input_size_arg(p)
    _add_common(p, f"{DEFAULT_OUT}/explain-IMAGE")
    p.set_defaults(func=_cmd_explain)


def _model_info(args: argparse.Namespace, model: Any) -> ModelInfo:
    from occsens import report  # matplotlib and jinja2: imported only when a report is made

    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    shipped = is_shipped(args)
    if shipped is None:
        label = args.model_path + (f" with weights {args.weights}" if args.weights else "")
        return report.ModelInfo(
            label, None, params, "a model of yours: occsens has no model card for it, so no test accuracy"
        )
    card = report.Card.from_json(models.model_card(shipped), data.CIFAR10_CLASSES)
    return report.ModelInfo(f"shipped model '{shipped}'", card, params)


def _twin(args: argparse.Namespace, model: Any) -> tuple[Twin | None, str | None]:
    """The shipped colour model and greyscale twin, reusing the report's model when it is one of them."""
    from occsens import report  # matplotlib and jinja2: imported only when a report is made

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


def _timestamp(args: argparse.Namespace) -> str | None:
    if not args.timestamp:
        return None
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finish(args: argparse.Namespace, result: Report, out: str) -> int:
    from occsens import report  # matplotlib and jinja2: imported only when a report is made

    path = report.write_report(result, out, args.json)
    extra = f" and {path.parent / report.JSON_NAME}" if args.json else ""
    print(f"wrote {path} ({len(result.html.encode()) // 1024} kB){extra}")
    return 0


def _fit_threads() -> None:
    """Use only the CPU cores that are idle now, unless OMP_NUM_THREADS says otherwise.

    The report's forward passes are small; on a machine whose cores are busy (a training job),
    torch's default of one thread per core spends its time waiting for descheduled threads: the
    default report took 95 s in measurement with 2 threads against 11 s with 1 on this project's
    2-core machine while it trained.
    """
    if os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads() <= 1:
        return
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), idle)))


def _cmd_report(args: argparse.Namespace) -> int:
    out = args.out or DEFAULT_OUT
    check_out_dir(out)
    if args.images is not None:
        if args.samples is not None or args.data_dir is not None:
            raise OcclusionError(
                "give either --images (your images) or --samples/--data-dir (CIFAR-10 images), not both"
            )
        inputs = file_inputs(args, args.images)
        title = f"Occlusion sensitivity report: {inputs.source}"
    else:
        if args.labels is not None:
            raise OcclusionError("--labels needs --images; CIFAR-10 test images carry their own labels")
        inputs = cifar_inputs(args)
        title = "Occlusion sensitivity report: CIFAR-10 test images"
    return _report(args, inputs, title, out)


def _cmd_explain(args: argparse.Namespace) -> int:
    path = Path(args.image)
    out = args.out or f"{DEFAULT_OUT}/explain-{path.stem}"
    check_out_dir(out)
    inputs = file_inputs(args, [path])
    return _report(args, inputs, f"Occlusion sensitivity report: {path.name}", out)


def _report(args: argparse.Namespace, inputs: Inputs, title: str, out: str) -> int:
    model = model_from_args(args)
    output = output_from_args(args)
    _fit_threads()
    classes = model_classes(args, model, inputs, output)
    inputs = with_labels(args, inputs, classes.names)
    result = _report_from_args(args, model, inputs, classes.names, output, title)
    return _finish(args, result, out)


def _run_report_checks(
    model: Any, inputs: Inputs, names: Sequence[str], output: Any, args: argparse.Namespace
) -> list[CheckResult]:
    """``occsens.checks`` on the report's samples with the report's settings."""
    ids = [i if i is not None else k for k, i in enumerate(inputs.indices)]
    known = None if any(y is None for y in inputs.labels) else inputs.labels
    return run_checks(
        model,
        inputs.images,
        labels=known,
        sample_ids=ids,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        class_names=names,
        progress=not args.quiet,
    )


def _report_from_args(
    args: argparse.Namespace, model: Any, inputs: Inputs, names: list[str], output: Any, title: str
) -> Report:
    from occsens import report  # matplotlib and jinja2: imported only when a report is made

    twin, missing = _twin(args, model)
    return report.make_report(
        model,
        inputs.images,
        names=names,
        sample_names=inputs.sample_names,
        indices=inputs.indices,
        labels=inputs.labels,
        label_names=data.CIFAR10_CLASSES if inputs.cifar else None,
        notes=inputs.notes,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        model_info=_model_info(args, model),
        twin=twin,
        twin_missing=missing,
        title=title,
        timestamp=_timestamp(args),
        checks=None if args.no_checks else _run_report_checks(model, inputs, names, output, args),
        version=__version__,
        progress=not args.quiet,
    )
