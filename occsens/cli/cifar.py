"""``occsens train`` and ``occsens evaluate``: the shipped CIFAR-10 models' training and test accuracy."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tqdm import tqdm

from occsens.cifar import data
from occsens.cifar.evaluation import evaluate
from occsens.cifar.models import Architecture
from occsens.cifar.train import Recipe, train
from occsens.cli.args import add_data_args, add_model_args, class_names, model_from_args


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a CIFAR-10 model (resumable, one checkpoint per epoch)",
        description="Train the ResNet-9-layout CIFAR-10 model; writes weights and a model card.",
    )
    p.add_argument("--name", default="default", help="model name, used for file names (default 'default')")
    p.add_argument("--width", type=int, default=24, help="channels of the first layer (default 24)")
    p.add_argument("--greyscale", action="store_true", help="the greyscale twin: luminance input")
    p.add_argument("--epochs", type=int, default=28, help="epochs (default 28)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_data_args(p)
    p.add_argument("--out", default=None, help="output folder (default runs/NAME)")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    p.add_argument("--note", default="", help="a remark to record in the model card (e.g. how the run went)")
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


def _cmd_train(args: argparse.Namespace) -> int:
    if args.download:
        data.download(args.data_dir or ".")
    out = Path(args.out or f"runs/{args.name}")
    weights = train(
        out,
        name=args.name,
        arch=Architecture(width=args.width, greyscale=args.greyscale),
        recipe=Recipe(epochs=args.epochs, seed=args.seed),
        data_dir=args.data_dir,
        resume=args.resume,
        progress=not args.quiet,
        note=args.note,
    )
    print(f"wrote {weights} and its model card {weights.with_suffix('.json')}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
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
