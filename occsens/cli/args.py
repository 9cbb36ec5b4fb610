"""Arguments shared by several commands, and turning them into a model and class names."""

from __future__ import annotations

import argparse

from occsens.cifar import models
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.cli import user_code
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
        help="your own model: imports MODULE (running its code) and calls FACTORY() for the model, "
        "which takes pixel-space [0, 1] images; the current folder is searched after installed packages",
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
        help="class names for --model-path, comma-separated, one per class (for one logit with "
        "--output sigmoid, one name X gives 'not X' and X); default: CIFAR-10's for the shipped "
        "models and 10-class models on CIFAR-10 images, else 'class 0', 'class 1', ...",
    )
    g.add_argument(
        "--classes-file",
        default=None,
        metavar="FILE",
        help="class names, one per line (UTF-8), instead of --classes",
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
    p.add_argument(
        "--output",
        default="softmax",
        metavar="SCORES",
        help="what the model returns, so what the maps measure: softmax (logits, the default), probs "
        "(probabilities, used as they are), sigmoid (one logit per class: multi-label, or one logit for "
        "a binary classifier) or MODULE:FUNCTION, a function of the model's output returning [B, K] "
        "scores (e.g. a segmentation model's mean logit per class over a region)",
    )


def add_input_size_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--input-size, --channels and --max-pixels: how a user's image files become the model's input."""
    p.add_argument(
        "--input-size",
        type=positive_int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="resize images to H x W, the model's input size (default: 32 32 for the shipped models; "
        "for --model-path, the images' own size, which must then be the same for all)",
    )
    p.add_argument(
        "--channels",
        type=int,
        choices=(1, 3),
        default=3,
        help="3 (RGB, the default) or 1 (luminance, for a greyscale model of yours)",
    )
    p.add_argument(
        "--max-pixels",
        type=positive_int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"refuse image files over N pixels (decompression bombs; default {MAX_PIXELS:,})",
    )


def add_images_args(p: argparse.ArgumentParser) -> None:
    """--images DIR and --labels CSV: a folder of the user's own images instead of CIFAR-10 samples."""
    g = p.add_argument_group("your images (instead of CIFAR-10 test images)")
    g.add_argument(
        "--images",
        default=None,
        metavar="DIR",
        help="a folder of image files (PNG, JPEG, TIFF, WebP, BMP, GIF), read in name order",
    )
    g.add_argument(
        "--labels",
        default=None,
        metavar="CSV",
        help="true classes of --images: a CSV of file,label rows (label: class name or number)",
    )
    add_input_size_arg(g)


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
        return user_code.model_from_path(args.model_path, args.weights)
    if args.weights:
        raise OcclusionError("--weights needs --model-path (shipped models carry their own weights)")
    return models.load_model(args.model or "default")


def output_from_args(args: argparse.Namespace):  # noqa: ANN202
    """``--output`` as ``occlude`` takes it: a name, or the user's scoring function."""
    return user_code.output_from_arg(args.output)


# Class-name files hold one name per line; 1 MB is 10,000 names of 100 characters, more than any
# classifier's label set (ImageNet-21k has 21,841 names averaging ~15 characters: 330 kB).
MAX_CLASSES_FILE = 1_000_000


def _given_names(args: argparse.Namespace) -> tuple[list[str], str] | None:
    """The names from --classes or --classes-file, and which option gave them."""
    text, option = getattr(args, "classes", None), "--classes"
    path = getattr(args, "classes_file", None)
    if text and path:
        raise OcclusionError("give either --classes or --classes-file, not both")
    if path:
        option = f"--classes-file {path}"
        try:
            with open(path, "rb") as f:
                raw = f.read(MAX_CLASSES_FILE + 1)
        except OSError as exc:
            raise OcclusionError(f"{option}: cannot read it ({exc.strerror or exc})") from None
        if len(raw) > MAX_CLASSES_FILE:
            raise OcclusionError(f"{option} is over {MAX_CLASSES_FILE:,} bytes; one class name per line")
        try:
            lines = raw.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise OcclusionError(f"{option} is not UTF-8 text; one class name per line") from None
        names = [line.strip() for line in lines if line.strip()]
    elif text:
        names = [n.strip() for n in text.split(",")]
    else:
        return None
    if not names or any(not n for n in names):
        raise OcclusionError(f"{option} has an empty class name; give one non-empty name per class")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OcclusionError(f"{option} names {', '.join(map(repr, twice[:5]))} more than once")
    return names, option


def class_names(
    args: argparse.Namespace, num_classes: int, *, one_logit: bool = False, cifar: bool = False
) -> list[str]:
    """The model's class names: given (--classes, --classes-file), or CIFAR-10's, or numbered.

    ``one_logit``: the model has one logit read through a sigmoid, so two classes, the negative first;
    one given name X stands for the positive side ("not X", "X"). ``cifar``: CIFAR-10's names are the
    default for 10 classes (a shipped model, or the user's model on CIFAR-10 images).
    """
    given = _given_names(args)
    if given is not None:
        names, option = given
        if one_logit and len(names) == 1:
            return [f"not {names[0]}", names[0]]
        if len(names) != num_classes:
            extra = " (or one name, the positive class)" if one_logit else ""
            raise OcclusionError(
                f"{option} gives {len(names)} class names but the model scores {num_classes} classes; "
                f"give {num_classes}{extra}"
            )
        return names
    if one_logit:
        return ["negative", "positive"]
    if num_classes == len(CIFAR10_CLASSES) and (cifar or not getattr(args, "model_path", None)):
        return list(CIFAR10_CLASSES)
    return [f"class {k}" for k in range(num_classes)]


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
