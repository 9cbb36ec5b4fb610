"""Arguments shared by several commands, and turning them into a model and class names."""

from __future__ import annotations

import argparse

from occsens.cifar import models
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.errors import OcclusionError
from occsens.images import MAX_PIXELS


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (default: the shipped CIFAR-10 model)")
    g.add_argument(
        "--model", default=None, metavar="NAME", help="a shipped model: 'default' (colour) or 'greyscale'"
    )
    g.add_argument(
        "--model-path",
        default=None,
        metavar="MODULE:FACTORY",
        help="your own model: FACTORY() in MODULE returns it (pixel-space [0, 1] input, logits out)",
    )
    g.add_argument(
        "--weights",
        default=None,
        metavar="FILE",
        help="state dict for --model-path, read with torch.load(weights_only=True)",
    )
    g.add_argument(
        "--classes",
        default=None,
        metavar="A,B,...",
        help="class names for --model-path, comma-separated (default: CIFAR-10's)",
    )


def add_occlusion_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--patch, --stride and --fill, the same for every command that occludes."""
    p.add_argument("--patch", type=pair_arg, default=4, help="window size in pixels, N or HxW (default 4)")
    p.add_argument("--stride", type=pair_arg, default=None, help="step between windows (default: the patch)")
    p.add_argument(
        "--fill",
        type=fill_arg,
        default=0.5,
        help="pixel value, R,G,B, or one of mean, blur, noise (default 0.5, grey, as in the notebook)",
    )


def add_input_size_arg(p: argparse.ArgumentParser) -> None:
    """--input-size, for commands that read a user's image file and resize it to the model's input."""
    p.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="model input size (default 32 32)",
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"refuse image files over N pixels (decompression bombs; default {MAX_PIXELS:,})",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--data-dir and --download, for commands that read the CIFAR-10 test or training set."""
    p.add_argument(
        "--data-dir", default=None, help="folder holding cifar-10-batches-py/ (or $OCCSENS_DATA_DIR)"
    )
    p.add_argument(
        "--download",
        action="store_true",
        help="first fetch CIFAR-10 into --data-dir with torchvision's downloader (needs the internet)",
    )


def model_from_args(args: argparse.Namespace):  # noqa: ANN202
    if args.model and args.model_path:
        raise OcclusionError("give either --model or --model-path, not both")
    if args.model_path:
        return models.model_from_path(args.model_path, args.weights)
    if args.weights:
        raise OcclusionError("--weights needs --model-path (shipped models carry their own weights)")
    return models.load_model(args.model or "default")


def class_names(args: argparse.Namespace, num_classes: int) -> list[str]:
    if getattr(args, "classes", None):
        names = [n.strip() for n in args.classes.split(",")]
        if len(names) != num_classes:
            raise OcclusionError(
                f"--classes lists {len(names)} names but the model has {num_classes} classes"
            )
        return names
    if num_classes == len(CIFAR10_CLASSES):
        return list(CIFAR10_CLASSES)
    return [str(k) for k in range(num_classes)]


def samples_arg(text: str) -> list[int]:
    """``--samples 1,2,3``: official CIFAR-10 test-set indices (at least one)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of test-set indices, e.g. 1,2,3") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of test-set indices, e.g. 1,2,3")
    return values


def pair_arg(text: str) -> int | tuple[int, int]:
    try:
        parts = [int(v) for v in text.lower().replace("x", ",").split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int or HxW pair, e.g. 4 or 4x8") from None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return (parts[0], parts[1])
    raise argparse.ArgumentTypeError(f"{text!r} is not an int or HxW pair, e.g. 4 or 4x8")


def fill_arg(text: str):  # noqa: ANN202
    """A number, r,g,b, or a fill name."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return text  # a name: validated by the core with the list of valid names
    return values[0] if len(values) == 1 else values
