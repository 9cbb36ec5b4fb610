"""The ``occsens`` command line: thin faces over the package's functions.

Every bad input surfaces as one line ``occsens: error: ...`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from occsens.errors import OcclusionError

EXIT_USAGE = 2


# --------------------------------------------------------------------------- shared arguments


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
    from occsens import models

    if args.model and args.model_path:
        raise OcclusionError("give either --model or --model-path, not both")
    if args.model_path:
        return models.model_from_path(args.model_path, args.weights)
    if args.weights:
        raise OcclusionError("--weights needs --model-path (shipped models carry their own weights)")
    return models.load_model(args.model or "default")


def class_names(args: argparse.Namespace, num_classes: int) -> list[str]:
    from occsens.models import CIFAR10_CLASSES

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


# --------------------------------------------------------------------------- occlude


def _cmd_occlude(args: argparse.Namespace) -> int:
    import occsens
    from occsens.images import read_image

    model = model_from_args(args)
    image = read_image(args.image, size=tuple(args.input_size) if args.input_size else (32, 32))
    if args.notebook:
        res = occsens.notebook_occlude(
            model, image, size=args.patch, fill=args.fill, target=args.target, progress=not args.quiet
        )
    else:
        res = occsens.occlude(
            model,
            image,
            patch=args.patch,
            stride=args.stride,
            fill=args.fill,
            target=args.target,
            reveal=args.reveal,
            progress=not args.quiet,
        )
    names = class_names(args, res.num_classes)
    summary = summarize(res, 0, names)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary, Path(args.image).name))
    return 0


def summarize(res, n: int, names: Sequence[str]) -> dict:  # noqa: ANN001
    """The numbers the notebook printed, computed correctly, for image ``n`` of a result."""
    import torch

    clean = res.clean_probs[n]
    top = torch.argsort(clean, descending=True)[:3].tolist()
    heat = res.heatmap[n]
    r, c = divmod(int(heat.argmin()), heat.shape[1])
    top_, left, h, w = res.windows[r, c].tolist()
    counts = res.class_counts[n].tolist()
    target = int(res.target[n])
    return {
        "clean_class": int(res.clean_class[n]),
        "clean_class_name": names[int(res.clean_class[n])],
        "clean_prob": float(clean.max()),
        "top3": [{"class": k, "name": names[k], "prob": float(clean[k])} for k in top],
        "target": target,
        "target_name": names[target],
        "clean_target_prob": float(clean[target]),
        "windows": res.plan.positions,
        "grid": list(res.grid),
        "geometry": res.plan.geometry,
        "patch": list(res.plan.patch),
        "stride": list(res.plan.stride),
        "fill": res.fill,
        "reveal": res.reveal,
        "lowest_target_prob": float(heat.min()),
        "lowest_at": {"row": r, "col": c, "top": top_, "left": left, "height": h, "width": w},
        "class_counts": {names[k]: v for k, v in enumerate(counts) if v},
    }


def format_summary(s: dict, label: str) -> str:
    view = "only the window shown" if s["reveal"] else "the image minus the window"
    lines = [
        f"{label}: clean prediction {s['clean_class']} ({s['clean_class_name']}), "
        f"probability {s['clean_prob']:.4f} (unoccluded input)",
        "top 3: " + ", ".join(f"{t['name']} {t['prob']:.4f}" for t in s["top3"]),
        f"occlusion: {s['geometry']} geometry, patch {s['patch'][0]}x{s['patch'][1]}, stride "
        f"{s['stride'][0]}x{s['stride'][1]}, fill {s['fill']}, "
        f"{s['grid'][0]}x{s['grid'][1]} = {s['windows']} "
        f"positions; the model sees {view}",
        f"target {s['target']} ({s['target_name']}): clean probability {s['clean_target_prob']:.4f}, lowest "
        f"{s['lowest_target_prob']:.4f} with rows {s['lowest_at']['top']}-"
        f"{s['lowest_at']['top'] + s['lowest_at']['height'] - 1}, cols {s['lowest_at']['left']}-"
        f"{s['lowest_at']['left'] + s['lowest_at']['width'] - 1} filled",
        "most probable class under occlusion (class: positions):",
    ]
    for name, count in sorted(s["class_counts"].items(), key=lambda kv: -kv[1]):
        lines.append(f"  {name:>12}: {count}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- train / evaluate


def _cmd_train(args: argparse.Namespace) -> int:
    from occsens.models import Architecture
    from occsens.train import Recipe, train

    if args.download:
        from occsens import data

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
    from tqdm import tqdm

    from occsens import data
    from occsens.evaluation import evaluate

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


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from occsens import __version__, bench, checks, report

    parser = argparse.ArgumentParser(
        prog="occsens",
        description="Occlusion sensitivity for image classifiers: what does the model look at, "
        "and can you trust it?",
    )
    parser.add_argument("--version", action="version", version=f"occsens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "occlude",
        help="occlude one image file and print the clean prediction and class counts",
        description="Slide a patch over IMAGE and print what the notebook printed, computed "
        "correctly: the clean prediction from the unoccluded image and how often each "
        "class wins under occlusion.",
    )
    p.add_argument(
        "image", metavar="IMAGE", help="an image file (PNG, JPEG, ...); resized to the model input"
    )
    add_model_args(p)
    add_occlusion_args(p)
    p.add_argument("--target", type=int, default=None, help="class to map (default: the clean prediction)")
    p.add_argument(
        "--reveal", action="store_true", help="show only the window, fill the rest (patch-only view)"
    )
    p.add_argument(
        "--notebook",
        action="store_true",
        help="the notebook's geometry: a 5*patch square greyed around each patch cell",
    )
    add_input_size_arg(p)
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_occlude)

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
    checks.add_parser(sub)  # `occsens check`
    report.add_parsers(sub)  # `occsens report`, `occsens explain`
    bench.add_parser(sub)  # `occsens bench`
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    warnings.filterwarnings("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"occsens: warning: {msg}\n"  # type: ignore[assignment]
    try:
        return int(args.func(args) or 0)
    except OcclusionError as exc:
        print(f"occsens: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("occsens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
