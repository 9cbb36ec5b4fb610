"""One shard of a survey: occlude its images with the engine and turn the result into a store file.

The same function runs in-process and on a Ray worker (``occsens.datasurvey.on_ray``), so both write
the same bytes for the same shard.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from occsens.datasurvey.store import THUMBNAIL, shard_bytes
from occsens.engine import notebook_occlude, occlude
from occsens.engine.plan import Pair


@dataclass(frozen=True)
class Settings:
    """What every shard is occluded with (checked once by ``occsens.datasurvey.survey``)."""

    patch: Pair
    stride: Pair
    fill: Any
    output: Any
    notebook: bool
    batch_size: int | None
    device: Any
    num_windows: int
    num_classes: int
    notebook_windows: int


def thumbnail(image: torch.Tensor) -> bytes:
    """A float32 ``[C, H, W]`` image as PNG bytes, shrunk to at most ``THUMBNAIL`` pixels a side."""
    from PIL import Image

    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels[:, :, :3])
    h, w = pixels.shape[:2]
    if max(h, w) > THUMBNAIL:
        scale = THUMBNAIL / max(h, w)
        picture = picture.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=False)
    return out.getvalue()


def run_shard(
    model: Any,
    images: torch.Tensor,
    first: int,
    names: list[str],
    labels: list[int | None],
    settings: Settings,
) -> bytes:
    """The Parquet bytes of one shard: images ``first .. first + len(images) - 1`` occluded."""
    res = occlude(
        model,
        images,
        patch=settings.patch,
        stride=settings.stride,
        fill=settings.fill,
        output=settings.output,
        batch_size=settings.batch_size,
        device=settings.device,
        progress=False,
    )
    n = len(images)
    columns: dict[str, Any] = {
        "index": list(range(first, first + n)),
        "name": names,
        "label": labels,
        "clean_class": res.clean_class.tolist(),
        "clean_prob": res.clean_target_prob.numpy(),
        "probs": res.clean_probs.numpy(),
        "drop": res.drop.reshape(n, -1).numpy(),
        "class_map": res.class_map.reshape(n, -1).to(torch.int32).numpy(),
        "thumbnail": [thumbnail(image) for image in images],
    }
    if settings.notebook:
        nb = notebook_occlude(
            model,
            images,
            size=settings.patch[0],
            fill=settings.fill,
            output=settings.output,
            batch_size=settings.batch_size,
            device=settings.device,
            progress=False,
        )
        columns["notebook_drop"] = nb.drop.reshape(n, -1).numpy()
        columns["notebook_class_map"] = nb.class_map.reshape(n, -1).to(torch.int32).numpy()
    for key in ("drop", "probs", "notebook_drop"):
        if key in columns:
            columns[key] = np.ascontiguousarray(columns[key], dtype=np.float32)
    return shard_bytes(columns, settings.num_windows, settings.num_classes, settings.notebook_windows)
