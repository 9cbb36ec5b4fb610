"""``occsens bench``: every engine timed side by side (``occsens.bench``)."""

from __future__ import annotations

import argparse
from typing import Any

from occsens.cli import types
from occsens.cli.args import out_folder

# The files `occsens bench` writes into --out (occsens.bench writes them; named here for the door check).
BENCH_FILES = ("bench.md", "bench.json")


def _run_bench(*args: Any, **kwargs: Any) -> Any:
    from occsens.bench import run_bench  # torch, Captum, MONAI: only when the command runs

    return run_bench(*args, **kwargs)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="time occsens against Captum, MONAI and a per-position loop",
        description="Benchmark occlusion engines side by side in one run; writes bench.md and bench.json. "
        "The full run (both models, all settings, 1 and 32 images) took 24-25 minutes on 2 CPU cores.",
    )
    p.add_argument(
        "--models",
        default="default,resnet20",
        type=types.name_list("model names"),
        help="default, resnet20 (CIFAR-10, 32x32), resnet18, vgg16 (torchvision, random weights, 224x224), "
        "timm-efficientnet_b0, timm-convnext_atto, timm-resnet50d, timm-vit_tiny, timm-swin_tiny (timm, "
        "random weights, 224x224); "
        "default: default,resnet20",
    )
    p.add_argument(
        "--settings",
        default="p4s4,p8s2,p4s1",
        type=types.name_list("settings, e.g. p4s4"),
        help="pPsS = patch P stride S: p4s4, p8s2, p4s1 (default), p16s8, p32s16 (for 224x224 models)",
    )
    p.add_argument(
        "--images",
        default="1,32",
        type=types.int_list("image counts", low=1),
        help="image counts, comma-separated, each 1..100 (default 1,32)",
    )
    p.add_argument(
        "--reps", type=types.positive_int, default=5, help="timed repetitions after a warm-up (default 5)"
    )
    p.add_argument(
        "--out",
        default="reports/bench",
        type=types.text("a folder"),
        help="output folder (default reports/bench)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the per-engine memory probes")
    p.add_argument(
        "--busy",
        action="store_true",
        help="also time every case while one single-threaded busy process competes (started and stopped "
        "by the benchmark)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    out = out_folder(args.out, "--out", BENCH_FILES)
    models, settings, images = ",".join(args.models), ",".join(args.settings), ",".join(map(str, args.images))
    command = f"occsens bench --models {models} --settings {settings} --images {images} --reps {args.reps}"
    command += " --busy" if args.busy else ""
    _run_bench(
        args.models,
        args.settings,
        args.images,
        args.reps,
        out,
        command,
        progress=not args.quiet,
        memory=not args.no_memory,
        busy=args.busy,
    )
    print((out / BENCH_FILES[0]).read_text(encoding="utf-8", errors="replace"))
    return 0
