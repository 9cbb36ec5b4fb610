"""``occsens bench``: every engine timed side by side (``occsens.bench``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from occsens.errors import OcclusionError


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
        help="default, resnet20 (CIFAR-10, 32x32), resnet18, vgg16 (torchvision, random weights, 224x224); "
        "default: default,resnet20",
    )
    p.add_argument(
        "--settings",
        default="p4s4,p8s2,p4s1",
        help="pPsS = patch P stride S: p4s4, p8s2, p4s1 (default), p16s8, p32s16 (for 224x224 models)",
    )
    p.add_argument("--images", default="1,32", help="image counts, comma-separated (default 1,32)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after a warm-up (default 5)")
    p.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
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
    try:
        counts = [int(c) for c in args.images.split(",")]
    except ValueError:
        raise OcclusionError(f"--images {args.images!r} must be comma-separated ints, e.g. 1,32") from None
    command = (
        "occsens bench "
        + " ".join(
            f"--{k} {v}"
            for k, v in (
                ("models", args.models),
                ("settings", args.settings),
                ("images", args.images),
                ("reps", args.reps),
            )
        )
        + (" --busy" if args.busy else "")
    )
    rows = _run_bench(
        args.models.split(","),
        args.settings.split(","),
        counts,
        args.reps,
        Path(args.out),
        command,
        progress=not args.quiet,
        memory=not args.no_memory,
        busy=args.busy,
    )
    print((Path(args.out) / "bench.md").read_text())
    return 0 if rows else 1
