"""``occsens occlude IMAGE``: the notebook's printout, computed correctly."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import occsens
from occsens.cli import types
from occsens.cli.args import (
    add_input_size_arg,
    add_model_args,
    add_occlusion_args,
    check_model_args,
    model_from_args,
    output_from_args,
    text_option,
)
from occsens.cli.inputs import file_inputs, model_classes
from occsens.errors import OcclusionError


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "occlude",
        help="occlude one image file and print the clean prediction and class counts",
        description="Slide a patch over IMAGE and print what the notebook printed, computed "
        "correctly: the clean prediction from the unoccluded image and how often each "
        "class wins under occlusion.",
    )
    text_option(
        p, "image", "an image file", "IMAGE", "an image file (PNG, JPEG, ...); resized to the model input"
    )
    add_model_args(p)
    add_occlusion_args(p)
    p.add_argument(
        "--target",
        type=types.whole_number(0, what="a class number"),
        default=None,
        help="class to map, a number (default: the clean prediction)",
    )
    p.add_argument(
        "--reveal", action="store_true", help="show only the window, fill the rest (patch-only view)"
    )
    p.add_argument(
        "--notebook",
        action="store_true",
        help="the notebook's geometry: a 5*patch square greyed around each patch cell, one cell after "
        "another (so no --stride and no --reveal)",
    )
    add_input_size_arg(p)
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_occlude)


def _cmd_occlude(args: argparse.Namespace) -> int:
    if args.notebook:
        for given, option in ((args.stride is not None, "--stride"), (args.reveal, "--reveal")):
            if given:
                raise OcclusionError(
                    f"{option} has no effect with --notebook: the notebook's geometry steps one patch cell "
                    "at a time and greys the square around it; leave one of them out"
                )
        if isinstance(args.patch, tuple) and args.patch[0] != args.patch[1]:
            raise OcclusionError(
                f"--patch {args.patch[0]}x{args.patch[1]} with --notebook: the notebook's cells are square; "
                "give one size N"
            )
    check_model_args(args)
    inputs = file_inputs(args, [args.image])
    model = model_from_args(args)
    output = output_from_args(args)
    names = model_classes(args, model, inputs, output).names
    if args.target is not None and not 0 <= args.target < len(names):
        raise OcclusionError(f"--target {args.target} is not a class: give a number 0..{len(names) - 1}")
    shared: dict[str, Any] = dict(fill=args.fill, target=args.target, progress=not args.quiet, output=output)
    if args.notebook:
        size = args.patch[0] if isinstance(args.patch, tuple) else args.patch
        res = occsens.notebook_occlude(model, inputs.images, size=size, **shared)
    else:
        res = occsens.occlude(
            model, inputs.images, patch=args.patch, stride=args.stride, reveal=args.reveal, **shared
        )
    summary = summarize(res, 0, names)
    summary["read"] = list(inputs.notes[0])
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary, Path(args.image).name))
    return 0


def summarize(res, n: int, names: Sequence[str]) -> dict:  # noqa: ANN001
    """The numbers the notebook printed, computed correctly, for image ``n`` of a result."""
    import torch

    from occsens.engine import NOTEBOOK_SCALE
    from occsens.engine.model import scores_in_words

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
        # what is filled at each position: the notebook greys a square NOTEBOOK_SCALE times its cell
        "square": [NOTEBOOK_SCALE * k for k in res.plan.patch] if res.plan.geometry == "notebook" else None,
        "stride": list(res.plan.stride),
        "fill": res.fill,
        "scores": scores_in_words(res.output),
        "reveal": res.reveal,
        "lowest_target_prob": float(heat.min()),
        "lowest_at": {"row": r, "col": c, "top": top_, "left": left, "height": h, "width": w},
        "class_counts": {names[k]: v for k, v in enumerate(counts) if v},
    }


def format_summary(s: dict, label: str) -> str:
    view = "only the window shown" if s["reveal"] else "the image minus the window"
    lines = [
        *(f"{label}: {note}" for note in s.get("read", ())),
        f"{label}: clean prediction {s['clean_class']} ({s['clean_class_name']}), "
        f"probability {s['clean_prob']:.4f} (unoccluded input)",
        "top 3: " + ", ".join(f"{t['name']} {t['prob']:.4f}" for t in s["top3"]),
        f"scores: {s['scores']}",
        f"occlusion: {s['geometry']} geometry, "
        + (
            f"a {s['square'][0]}x{s['square'][1]} grey square (clipped at the borders) around each "
            f"{s['patch'][0]}x{s['patch'][1]} cell"
            if s.get("square")
            else f"patch {s['patch'][0]}x{s['patch'][1]}"
        )
        + ", stride "
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
