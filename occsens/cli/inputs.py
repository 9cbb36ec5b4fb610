"""What a command explains: the images (CIFAR-10 test samples, image files, a folder), their labels,
and what the model makes of them (how many classes it scores, and their names).

Every command that occludes gathers its input here, so the shipped models' input size, the user's
``--input-size``, ``--labels`` and ``--classes`` mean the same thing in ``occlude``, ``explain``,
``report`` and ``check``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from occsens.cli.args import class_names
from occsens.errors import OcclusionError, first_line

if TYPE_CHECKING:
    import torch

SHIPPED_SIZE = (32, 32)  # the shipped models' input: CIFAR-10 images


@dataclass(frozen=True, eq=False)
class Inputs:
    """The images a command explains, how it names them, and what is known about them."""

    images: torch.Tensor  # float32 [N, C, H, W] in [0, 1]
    sample_names: list[str]
    indices: list[int | None]  # CIFAR-10 test-set indices, None for files
    labels: list[int | None]  # true classes where known
    notes: list[tuple[str, ...]]  # per image, how it was read (original size, resizing, ...)
    cifar: bool  # CIFAR-10 test images (so CIFAR-10's class names and labels apply)
    source: str  # in words, for titles and summaries


def input_size(args: argparse.Namespace) -> tuple[int, int] | None:
    """The size images are resized to: 32x32 for the shipped models, --input-size or none for yours."""
    given = tuple(args.input_size) if getattr(args, "input_size", None) is not None else None
    limit = max_pixels(args)
    if given is not None and given[0] * given[1] > limit:
        raise OcclusionError(
            f"--input-size {given[0]} {given[1]} is {given[0] * given[1]:,} pixels, over the limit of "
            f"{limit:,} (--max-pixels N raises it)"
        )
    if getattr(args, "model_path", None) is not None:
        return given  # type: ignore[return-value]
    if given is not None and given != SHIPPED_SIZE:
        raise OcclusionError(
            f"--input-size {given[0]} {given[1]}: the shipped models take 32x32 CIFAR-10 images "
            "and would answer about a different image at another size; leave it out "
            "(images are resized to 32x32) or explain your own model with --model-path"
        )
    return SHIPPED_SIZE


def max_pixels(args: argparse.Namespace) -> int:
    """--max-pixels, or the image reader's default limit."""
    from occsens.images import MAX_PIXELS

    given = getattr(args, "max_pixels", None)
    return MAX_PIXELS if given is None else int(given)


# The options that say how image files are read: CIFAR-10 test images are not read from files.
FILE_OPTIONS = (("labels", "--labels"), ("input_size", "--input-size"), ("channels", "--channels"),
                ("max_pixels", "--max-pixels"))  # fmt: skip


def check_input_args(args: argparse.Namespace) -> None:
    """Refuse, before anything is read, the options of ``check``, ``report`` and ``survey`` that cannot
    go together: --images (your files) with --samples or --data-dir (CIFAR-10), and without --images the
    options that only say how files are read (they would be ignored)."""
    if args.images is not None:
        cifar = {"samples": "--samples", "data_dir": "--data-dir"}  # survey has no --samples
        if any(getattr(args, dest, None) is not None for dest in cifar):
            named = "/".join(option for dest, option in cifar.items() if hasattr(args, dest))
            raise OcclusionError(f"give either --images (your images) or {named} (CIFAR-10 images), not both")
        return
    for dest, option in FILE_OPTIONS:
        if getattr(args, dest, None) is not None:
            why = "carry their own labels" if dest == "labels" else "are read as they are, at 32x32"
            raise OcclusionError(f"{option} needs --images; CIFAR-10 test images {why}")


def inputs_from_args(args: argparse.Namespace) -> Inputs:
    """What ``check`` and ``report`` explain: the image files of --images, or the CIFAR-10 test images of
    --samples (default: the embedded set)."""
    check_input_args(args)
    if args.images is not None:
        return file_inputs(args, args.images)
    return cifar_inputs(args)


def cifar_inputs(args: argparse.Namespace) -> Inputs:
    """The CIFAR-10 test images of --samples (default: the embedded set), with their labels."""
    from occsens.cifar import samples as embedded
    from occsens.engine import as_images

    indices = args.samples if args.samples is not None else list(embedded.DEFAULT_SAMPLES)
    samples = embedded.sample_by_index(indices, args.data_dir)
    return Inputs(
        images=as_images(samples.images),
        sample_names=[f"test #{i}" for i in samples.indices],
        indices=[int(i) for i in samples.indices],
        labels=[int(y) for y in samples.labels],
        notes=[() for _ in samples.indices],
        cifar=True,
        source="CIFAR-10 test images",
    )


def more_images(inputs: Inputs) -> tuple[torch.Tensor | None, list[int] | None]:
    """Images the checks may add when the ones shown do not decide a verdict: for CIFAR-10 inputs, the
    embedded test samples not already shown (with their test indices); none for image files."""
    from occsens.cifar import samples as embedded
    from occsens.engine import as_images

    if not inputs.cifar:
        return None, None
    pool = embedded.load_samples()
    keep = [k for k, i in enumerate(pool.indices) if int(i) not in set(inputs.indices)]
    if not keep or as_images(pool.images[:1]).shape[1:] != inputs.images.shape[1:]:
        return None, None
    return as_images(pool.images[keep]), [int(pool.indices[k]) for k in keep]


def file_inputs(args: argparse.Namespace, paths: str | Path | Sequence[str | Path]) -> Inputs:
    """Image files (one file, a list, or a folder), read as they look and sized by ``input_size``."""
    from occsens.images import read_images

    channels = getattr(args, "channels", None) or 3
    files = read_images(paths, size=input_size(args), channels=channels, max_pixels=max_pixels(args))
    folder = isinstance(paths, (str, Path)) and Path(paths).is_dir()
    source = f"images in {paths}" if folder else "image files"
    if len(files.names) == 1:
        source = files.names[0]
    return Inputs(
        images=files.images,
        sample_names=list(files.names),
        indices=[None] * len(files.names),
        labels=[None] * len(files.names),
        notes=[tuple(n) for n in files.notes],
        cifar=False,
        source=source,
    )


@dataclass(frozen=True)
class Classes:
    """What the model scores: how many classes, their names, and whether they come from one logit."""

    names: list[str]
    one_logit: bool


def model_classes(args: argparse.Namespace, model: Any, inputs: Inputs, output: Any) -> Classes:
    """Run the model once on the first image to count its classes, then name them.

    A model that fails on the image (a wrong size, a wrong channel count) is reported in one line
    with the image's size and what to pass instead.
    """
    import torch

    from occsens.engine import as_images, eval_mode
    from occsens.engine.model import checked_scores
    from occsens.leash import TimedOut, call

    x = as_images(inputs.images[:1])

    def first_forward() -> Any:
        with torch.inference_mode():  # thread-local: entered in the thread that runs the model
            return model(x)

    spec = getattr(args, "model_path", None)
    what = f"--model-path {spec}: the model's first forward" if spec else "the model's first forward"
    try:
        with eval_mode(model):
            raw = call(first_forward, timeout=getattr(args, "timeout", None), what=what)
    except TimedOut:
        raise
    except Exception as exc:  # the user's model may fail in any way on an input it was not built for
        raise OcclusionError(
            f"the model failed on a {x.shape[1]}-channel {x.shape[2]}x{x.shape[3]} image "
            f"({first_line(exc)}); if it takes another size, pass --input-size H W "
            "(and --channels 1 for a greyscale model)"
        ) from None
    scores = checked_scores(raw, 1, output)
    one_logit = output == "sigmoid" and getattr(raw, "ndim", 0) == 2 and raw.shape[1] == 1
    names = class_names(args, int(scores.shape[1]), one_logit=one_logit, cifar=inputs.cifar)
    return Classes(names, one_logit)


def with_labels(args: argparse.Namespace, inputs: Inputs, names: Sequence[str]) -> Inputs:
    """``inputs`` with true classes from --labels (a CSV of file,label) or --label (one image)."""
    csv_path = getattr(args, "labels", None)
    one = getattr(args, "label", None)
    if csv_path is None and one is None:
        return inputs
    if inputs.cifar:
        raise OcclusionError("--labels is for --images; CIFAR-10 test images carry their own labels")
    if csv_path is not None:
        from occsens.images import read_labels

        labels = read_labels(csv_path, inputs.sample_names, list(names))
    else:
        from occsens.images import label_index

        labels = [label_index(str(one), names, "--label")]
    return Inputs(
        inputs.images, inputs.sample_names, inputs.indices, labels, inputs.notes, inputs.cifar, inputs.source
    )


def is_shipped(args: argparse.Namespace) -> str | None:
    """The shipped model's name when the command runs one, else None (the user's own model)."""
    from occsens.cifar.models import SHIPPED_MODELS

    if getattr(args, "model_path", None):
        return None
    name = args.model or "default"
    return name if name in SHIPPED_MODELS else None
