"""``occsens train`` and ``occsens evaluate``: the shipped CIFAR-10 models' training and test accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from occsens import constants
from occsens.cli import types
from occsens.cli.args import (
    add_data_args,
    add_model_args,
    add_seed,
    check_model_args,
    class_names,
    model_from_args,
    text_option,
)
from occsens.errors import OcclusionError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a CIFAR-10 model (resumable, one checkpoint per epoch)",
        description="Train the ResNet-9-layout CIFAR-10 model; writes weights and a model card.",
    )
    p.add_argument(
        "--name",
        default="default",
        type=types.text("a model name"),
        help="model name, used for file names: letters, digits, '-', '_', '.' (default 'default')",
    )
    p.add_argument(
        "--width",
        type=types.whole_number(1, constants.MAX_WIDTH, f"channels: 1..{constants.MAX_WIDTH}"),
        default=24,
        help=f"channels of the first layer, 1..{constants.MAX_WIDTH} (default 24)",
    )
    p.add_argument("--greyscale", action="store_true", help="the greyscale twin: luminance input")
    p.add_argument(
        "--epochs",
        type=types.whole_number(1, constants.MAX_EPOCHS, f"epochs: 1..{constants.MAX_EPOCHS}"),
        default=28,
        help=f"epochs, 1..{constants.MAX_EPOCHS} (default 28)",
    )
    add_seed(p, "random seed")
    add_data_args(p)
    text_option(p, "--out", "a folder", "DIR", "output folder (default runs/NAME)")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in --out (there must be one: NAME.checkpoint.pt)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run of the same --name already in --out (finished or not); without it, or "
        "--resume, such a run is refused, never silently replaced",
    )
    p.add_argument(
        "--note",
        default="",
        type=str,
        help="a remark to record in the model card, one line (e.g. how the run went)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "evaluate",
        help="test-set accuracy, per-class accuracy and confusion matrix",
        description="Evaluate a model on the full 10,000-image CIFAR-10 test set.",
    )
    add_model_args(p)
    add_data_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)


# train's own names for the arguments it checks, and the options that give them
_TRAIN_OPTIONS = {"name": "--name", "note": "--note"}


def _cmd_train(args: argparse.Namespace) -> int:
    from occsens.cifar import data
    from occsens.cifar.models import Architecture
    from occsens.cifar.train import Recipe, _check_arguments, _files, train

    out = Path(args.out or f"runs/{args.name}")
    arch = Architecture(width=args.width, greyscale=args.greyscale)
    recipe = Recipe(epochs=args.epochs, seed=args.seed)
    progress = not args.quiet
    try:  # what train checks first, checked here before the download too
        _check_arguments(out, args.name, arch, recipe, args.resume, progress, args.note, args.overwrite)
    except OcclusionError as exc:
        name, _, rest = str(exc).partition(" ")
        raise OcclusionError(f"{_TRAIN_OPTIONS.get(name, name)} {rest}") from None
    checkpoint = out / _files(args.name)[3]
    if args.resume and not checkpoint.is_file():
        raise OcclusionError(
            f"--resume: there is no checkpoint {str(checkpoint)!r} to continue from; check --out and --name, "
            "or leave out --resume to start a new run"
        )
    if args.download:
        data.download(args.data_dir or ".")
    weights = train(
        out,
        name=args.name,
        arch=arch,
        recipe=recipe,
        data_dir=args.data_dir,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=progress,
        note=args.note,
    )
    print(f"wrote {weights} and its model card {weights.with_suffix('.json')}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from occsens.cifar import data
    from occsens.cifar.evaluation import evaluate

    check_model_args(args)
    model = model_from_args(args)
    if args.download:
        data.download(args.data_dir or ".")
    split = data.load_split(False, args.data_dir)
    names = class_names(args, 10)
    with tqdm(total=len(split), unit="image", desc="evaluating", disable=args.quiet, leave=False) as bar:
        result = evaluate(model, split, progress=bar)
    print(f"test accuracy: {result.accuracy:.4f} ({result.correct}/{result.total})")
    print("per-class accuracy:")
    for name, acc in zip(names, result.per_class_accuracy, strict=False):
        print(f"  {name:>12}: {acc:.3f}")
    width = max(len(n) for n in names)
    print("confusion matrix (rows: true class, columns: predicted):")
    print(" " * (width + 2) + " ".join(f"{n[:5]:>5}" for n in names))
    for name, row in zip(names, result.confusion, strict=False):
        print(f"  {name:>{width}} " + " ".join(f"{v:>5}" for v in row))
    return 0
