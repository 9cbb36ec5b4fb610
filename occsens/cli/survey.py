"""``occsens survey``: occlusion over a whole data set into a Parquet store, then the data-set report.

CIFAR-10's test split (all 10,000 images unless ``--limit`` or ``--only-classes``) or a folder of
image files (``--images DIR --labels CSV``), a shard at a time into ``--out`` (``occsens.datasurvey``),
in this process or over Ray (``--ray``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from occsens.cli import types
from occsens.cli.args import (
    add_data_dir,
    add_images_args,
    add_model_args,
    add_occlusion_args,
    check_model_args,
    model_from_args,
    output_from_args,
    text_option,
)
from occsens.cli.inputs import check_input_args
from occsens.errors import OcclusionError

DEFAULT_OUT = "survey"
EXIT_CODES = (
    "exit codes: 0 the survey (and its report) is written; 2 bad input, or --out holds a survey made "
    "differently (nothing written); 130 interrupted (the finished shards stay: --resume continues)"
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "survey",
        help="occlude a whole data set into a Parquet store, with a data-set report",
        description="Occlude every image of CIFAR-10's test split (or --images DIR) with the model, a "
        "shard at a time, into a store of Parquet files that pandas, polars and DuckDB read "
        "(pandas.read_parquet(DIR)), and write the data-set report DIR/_report.html. An interrupted "
        "survey continues with --resume.",
        epilog=EXIT_CODES,
    )
    add_model_args(p)
    add_occlusion_args(p.add_argument_group("occlusion"))
    g = p.add_argument_group("images (default: all of CIFAR-10's test split)")
    add_data_dir(g)
    g.add_argument(
        "--limit",
        default=None,
        type=types.whole_number(1, what="a number of images"),
        metavar="N",
        help="only the first N images (after --only-classes)",
    )
    text_option(
        g,
        "--only-classes",
        "classes, comma-separated",
        "A,B,...",
        "only images whose true class is one of these (names or numbers), e.g. cat,dog",
    )
    add_images_args(p)
    g = p.add_argument_group("store")
    text_option(
        g, "--out", "a folder", "DIR", f"the store's folder (default {DEFAULT_OUT})", default=DEFAULT_OUT
    )
    g.add_argument(
        "--resume", action="store_true", help="continue the survey in --out: only unfinished shards run"
    )
    g.add_argument("--overwrite", action="store_true", help="replace a survey already in --out")
    g.add_argument(
        "--notebook",
        action="store_true",
        help="also store the maps under the notebook's square geometry (5*patch squares; ~5x the work)",
    )
    g.add_argument(
        "--shard-size",
        default=256,
        type=types.whole_number(1, what="a number of images"),
        metavar="N",
        help="images per Parquet file, the unit a resume or a Ray task redoes (default 256)",
    )
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        type=types.text("a Ray address"),
        metavar="ADDRESS",
        help="run the shards as Ray tasks: alone, on a Ray started on this machine; with ADDRESS "
        "(ray://HEAD:10001, or auto), on that cluster (needs occsens[ray])",
    )
    g.add_argument(
        "--ray-gpus",
        default=0.0,
        type=_gpus,
        metavar="G",
        help="GPUs each Ray task asks for (e.g. 1, or 0.25 to share one GPU among four; default 0)",
    )
    g.add_argument(
        "--check-images",
        default=100,
        type=types.whole_number(0, what="a number of images"),
        metavar="N",
        help="run the sanity checks (occsens check) on N of the images, spread evenly over the survey, for "
        "the data-set report's trust section (default 100, about as long as surveying 1,000 images with "
        "the shipped model; 0: none)",
    )
    g.add_argument("--no-report", action="store_true", help="write the store only, not DIR/_report.html")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_survey)


def _gpus(value: str) -> float:
    """--ray-gpus: a finite number >= 0 (Ray takes fractions of a GPU)."""
    try:
        gpus = float(value)
    except ValueError:
        gpus = float("nan")
    if not math.isfinite(gpus) or gpus < 0:
        raise argparse.ArgumentTypeError(f"{value!r} must be a number of GPUs, 0 or more (e.g. 1 or 0.25)")
    return gpus


def _classes_wanted(text: str | None, names: list[str]) -> set[int] | None:
    if text is None:
        return None
    from occsens.images import label_index

    return {label_index(part.strip(), names, "--only-classes") for part in text.split(",")}


def _check_args(args: argparse.Namespace) -> None:
    """Options that cannot go together, refused before anything is read."""
    check_model_args(args)
    if args.resume and args.overwrite:
        raise OcclusionError("give either --resume (continue the survey in --out) or --overwrite, not both")
    check_input_args(args)
    if args.ray_gpus and not args.ray:
        raise OcclusionError("--ray-gpus needs --ray (in this process the model runs where its weights are)")
    if args.notebook and args.stride is not None:
        raise OcclusionError("--stride has no effect with --notebook (the notebook steps one cell at a time)")
    from occsens.files import check_out_dir

    check_out_dir(args.out, "--out")


def _cifar_source(args: argparse.Namespace, names: list[str]) -> Any:
    import numpy as np

    from occsens.cifar import data
    from occsens.datasurvey.sources import from_array

    split = data.load_split(False, args.data_dir)
    keep = np.arange(len(split))
    wanted = _classes_wanted(args.only_classes, names)
    if wanted is not None:
        keep = keep[np.isin(split.labels, sorted(wanted))]
    if args.limit is not None:
        keep = keep[: args.limit]
    described = "CIFAR-10 test split" + (
        f", classes {', '.join(names[k] for k in sorted(wanted))}" if wanted is not None else ""
    )
    described += f", first {len(keep)}" if args.limit is not None else ""
    if len(keep) == len(split):
        images, labels = split.images, split.labels
    else:
        images, labels = split.images[keep], split.labels[keep]
    return from_array(images, labels, [f"test #{i}" for i in keep.tolist()], described)


def _files_source(args: argparse.Namespace, files: list[Path], names: list[str]) -> Any:
    from occsens.cli.inputs import input_size, max_pixels
    from occsens.datasurvey.sources import from_files
    from occsens.images import read_labels

    labels: list[int | None] = [None] * len(files)
    if args.labels is not None:
        labels = read_labels(args.labels, [f.name for f in files], names)
    wanted = _classes_wanted(args.only_classes, names)
    if wanted is not None:
        if args.labels is None:
            raise OcclusionError(
                "--only-classes needs --labels with --images (the true classes to select by)"
            )
        kept = [(f, y) for f, y in zip(files, labels, strict=True) if y in wanted]
        files, labels = [f for f, _ in kept], [y for _, y in kept]
    if args.limit is not None:
        files, labels = files[: args.limit], labels[: args.limit]
    if not files:
        raise OcclusionError(f"--images {args.images}: no image is left to survey after --only-classes")
    return from_files(
        files, labels, input_size(args), args.channels or 3, max_pixels(args), f"images in {args.images}"
    )


def _cmd_survey(args: argparse.Namespace) -> int:
    _check_args(args)
    model = model_from_args(args)
    output = output_from_args(args)
    from occsens.cli.args import class_names
    from occsens.cli.inputs import is_shipped
    from occsens.datasurvey import survey

    cifar = args.images is None
    if cifar:
        names = class_names(args, 10, cifar=True)
        source = _cifar_source(args, names)
    else:  # the model names its classes once it has seen an image (as occsens report does)
        from occsens.cli.inputs import file_inputs, model_classes
        from occsens.datasurvey.sources import image_files

        files = image_files(args.images)
        names = model_classes(args, model, file_inputs(args, [files[0]]), output).names
        source = _files_source(args, files, names)
    shipped = is_shipped(args)
    model_name = f"shipped model '{shipped}'" if shipped else args.model_path

    folder = survey(
        model,
        source,
        out=args.out,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        output=output,
        class_names=names,
        model_name=model_name,
        notebook=args.notebook,
        shard_size=args.shard_size,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=False if args.quiet else None,
        ray=_ray_target(args),
        check_images=args.check_images,
    )
    print(
        f"surveyed {len(source):,} images into {folder} (read it with pandas.read_parquet({str(folder)!r}))"
    )
    if not args.no_report:
        from occsens.datasurvey.page import write_report

        path = write_report(folder)
        print(f"wrote {path}")
    return 0


def _ray_target(args: argparse.Namespace) -> Any:
    if not args.ray:
        return None
    from occsens.datasurvey.on_ray import RayTarget

    return RayTarget(address=None if args.ray == "local" else args.ray, num_gpus=args.ray_gpus)
