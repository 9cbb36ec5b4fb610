"""Arguments shared by several commands, and turning them into a model, class names and output paths.

The value types live in ``occsens.cli.types``.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from occsens import user_code
from occsens.cli import types
from occsens.constants import MAX_SEED
from occsens.errors import OcclusionError, shown
from occsens.files import path_kind
from occsens.images import MAX_PIXELS
from occsens.leash import DEFAULT_TIMEOUT, call

RUNS_USER_CODE = (
    "imports MODULE, running its top-level code as Python does, from the installed packages or else "
    "MODULE.py in the current folder (searched last, so a file there never shadows a library), then calls"
)


def text_option(
    p: argparse.ArgumentParser | argparse._ArgumentGroup,
    option: str,
    what: str,
    metavar: str,
    help: str,
    default: str | None = None,
) -> None:
    """An option whose value is text (a path, a name, a list to parse later): ``what`` it should be
    names it in the message when the value is empty."""
    p.add_argument(option, default=default, type=types.text(what), metavar=metavar, help=help)


def add_timeout(p: argparse.ArgumentParser | argparse._ArgumentGroup, what: str, note: str = "") -> None:
    """--timeout: the longest ``what`` (the user's code) may take."""
    p.add_argument(
        "--timeout",
        type=types.seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"the longest {what} (default {DEFAULT_TIMEOUT:g} s, 10 minutes{note}): past it, the command "
        "stops with an error naming it",
    )


def add_seed(p: argparse.ArgumentParser, what: str, note: str = "") -> None:
    """--seed: a seed in 0..MAX_SEED, 0 by default."""
    p.add_argument("--seed", type=types.seed, default=0, help=f"{what}, 0..{MAX_SEED} (default 0){note}")


def add_data_dir(p: argparse.ArgumentParser | argparse._ArgumentGroup, which: str = "") -> None:
    """--data-dir: where CIFAR-10 is (``which`` of its files the command reads, if not all)."""
    help = f"folder holding cifar-10-batches-py/{which} (or $OCCSENS_DATA_DIR)"
    text_option(p, "--data-dir", "a folder", "DIR", help)


def add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model (default: the shipped CIFAR-10 model)")
    text_option(
        g, "--model", "a shipped model's name", "NAME", "a shipped model: 'default' (colour) or 'greyscale'"
    )
    g.add_argument(
        "--model-path",
        default=None,
        type=types.code_spec("mynet:build"),
        metavar="MODULE:FACTORY",
        help=f"your own model, which takes pixel-space [0, 1] images: {RUNS_USER_CODE} FACTORY() for it",
    )
    text_option(
        g,
        "--weights",
        "a weights file",
        "FILE",
        "state dict for --model-path, read with torch.load(weights_only=True)",
    )
    add_timeout(g, "--model-path may take to build the model, and then to answer its first image")
    text_option(
        g,
        "--classes",
        "class names, comma-separated",
        "A,B,...",
        "class names for --model-path, comma-separated, one per class (for one logit with "
        "--output sigmoid, one name X gives 'not X' and X); default: CIFAR-10's for the shipped "
        "models and 10-class models on CIFAR-10 images, else 'class 0', 'class 1', ...",
    )
    text_option(
        g,
        "--classes-file",
        "a file of class names",
        "FILE",
        "class names, one per line (UTF-8), instead of --classes",
    )


def add_occlusion_args(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--patch, --stride and --fill, the same for every command that occludes."""
    p.add_argument("--patch", type=types.pair, default=4, help="window size in pixels, N or HxW (default 4)")
    p.add_argument(
        "--stride", type=types.pair, default=None, help="step between windows, N or HxW (default: the patch)"
    )
    p.add_argument(
        "--fill",
        type=types.fill,
        default=0.5,
        help="pixel value, R,G,B, or one of mean, blur, noise (default 0.5, grey, as in the notebook)",
    )
    p.add_argument(
        "--output",
        default="softmax",
        type=types.output,
        metavar="SCORES",
        help="what the model returns, so what the maps measure: softmax (logits, the default), probs "
        "(probabilities, used as they are), sigmoid (one logit per class: multi-label, or one logit for "
        "a binary classifier) or MODULE:FUNCTION, a function of the model's output returning [B, K] "
        f"scores (e.g. a segmentation model's mean logit per class over a region): {RUNS_USER_CODE} "
        "FUNCTION on each batch's output",
    )


def add_input_size_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--input-size, --channels and --max-pixels: how a user's image files become the model's input."""
    p.add_argument(
        "--input-size",
        type=types.positive_int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="resize images to H x W, the model's input size (default: 32 32 for the shipped models; "
        "for --model-path, the images' own size, which must then be the same for all)",
    )
    p.add_argument(
        "--channels",
        type=types.channels,
        default=None,
        metavar="{1,3}",
        help="3 (RGB, the default) or 1 (luminance, for a greyscale model of yours)",
    )
    p.add_argument(
        "--max-pixels",
        type=types.positive_int,
        default=None,
        metavar="N",
        help=f"refuse image files over N pixels (decompression bombs; default {MAX_PIXELS:,})",
    )


def add_images_args(p: argparse.ArgumentParser) -> None:
    """--images DIR and --labels CSV: a folder of the user's own images instead of CIFAR-10 samples."""
    g = p.add_argument_group("your images (instead of CIFAR-10 test images)")
    text_option(
        g,
        "--images",
        "a folder of images",
        "DIR",
        "a folder of image files (PNG, JPEG, TIFF, WebP, BMP, GIF), read in name order",
    )
    text_option(
        g,
        "--labels",
        "a CSV file of file,label rows",
        "CSV",
        "true classes of --images: a CSV of file,label rows (label: class name or number)",
    )
    add_input_size_arg(g)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--data-dir and --download, for commands that read the CIFAR-10 test or training set."""
    add_data_dir(p)
    p.add_argument(
        "--download",
        action="store_true",
        help="first fetch CIFAR-10 into --data-dir with torchvision's downloader (needs the internet)",
    )


def model_from_args(args: argparse.Namespace):  # noqa: ANN202
    check_model_args(args)
    if args.model_path is not None:  # the user's code runs: importing it, FACTORY(), under --timeout
        what = f"--model-path {args.model_path}: importing it and building the model"
        return call(
            user_code.model_from_path,
            args.model_path,
            args.weights,
            timeout=getattr(args, "timeout", DEFAULT_TIMEOUT),
            what=what,
        )
    from occsens.cifar import models

    return models.load_model(args.model or "default")


def check_model_args(args: argparse.Namespace) -> None:
    """The model options that cannot go together, refused before anything is loaded."""
    if args.model is not None and args.model_path is not None:
        raise OcclusionError("give either --model or --model-path, not both")
    if args.weights is not None and args.model_path is None:
        raise OcclusionError("--weights needs --model-path (shipped models carry their own weights)")
    if getattr(args, "classes", None) is not None and getattr(args, "classes_file", None) is not None:
        raise OcclusionError("give either --classes or --classes-file, not both")


def output_from_args(args: argparse.Namespace):  # noqa: ANN202
    """``--output`` as ``occlude`` takes it: a name, or the user's scoring function."""
    return user_code.output_from_arg(args.output)


# Class-name files hold one name per line; 1 MB is 10,000 names of 100 characters, more than any
# classifier's label set (ImageNet-21k has 21,841 names averaging ~15 characters: 330 kB).
MAX_CLASSES_FILE = 1_000_000


def _given_names(args: argparse.Namespace) -> tuple[list[str], str] | None:
    """The names from --classes or --classes-file (never both: check_model_args), and the option."""
    text, option = getattr(args, "classes", None), "--classes"
    path = getattr(args, "classes_file", None)
    if path is not None:
        from occsens.files import read_bounded  # a named pipe or an endless device is refused, not read

        option = f"--classes-file {path}"
        raw = read_bounded(path, MAX_CLASSES_FILE, "--classes-file", "a file of class names, one per line")
        try:
            lines = raw.decode("utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise OcclusionError(f"{option} is not UTF-8 text; one class name per line") from None
        names = [line.strip() for line in lines if line.strip()]
    elif text is not None:
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
    from occsens.cifar.data import CIFAR10_CLASSES

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


def add_cifar_args(p: argparse.ArgumentParser, samples_help: str) -> None:
    """--samples and --data-dir: which CIFAR-10 test images a command explains (``check``, ``report``)."""
    p.add_argument(
        "--samples",
        type=types.int_list("test-set indices"),
        default=None,
        metavar="IDX,...",
        help=samples_help,
    )
    add_data_dir(p, ", for indices that are not embedded")


def _writable_target(path: Path, option: str, value: str) -> None:
    """Refuse a target that is a folder or a special file: a write renames a new file over it, which
    would replace a named pipe or a device (``/dev/null``, as root) with a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # not there (or a dangling link): the new file takes its name
    if stat.S_ISDIR(mode):
        raise OcclusionError(
            f"{option} {shown(value)}: {str(path)!r} is a folder; give the name of a file to write"
        )
    if not stat.S_ISREG(mode):
        raise OcclusionError(
            f"{option} {shown(value)}: {str(path)!r} is {path_kind(mode)}, not a file occsens can replace"
        )


def out_file(value: str | None, option: str, example: str) -> Path | None:
    """A file a command will write (``--json FILE``), checked before any work: its folder is writable
    or can be made, and it is neither a folder nor a special file. Nothing is created. ``example``: a
    file name to suggest."""
    if value is None:
        return None
    from occsens.files import check_out_file

    if os.path.isdir(value):
        raise OcclusionError(f"{option} {shown(value)} is a folder; give a file name, e.g. {example}")
    path = check_out_file(value, option)
    _writable_target(path, option, value)
    return path


def out_folder(value: str, option: str, names: Iterable[str]) -> Path:
    """A folder a command will write ``names`` into (``--out DIR``), checked as ``out_file`` checks a
    file, before any work. Nothing is created."""
    from occsens.files import check_out_dir

    folder = check_out_dir(value, option)
    for name in names:
        _writable_target(folder / name, option, value)
    return folder
