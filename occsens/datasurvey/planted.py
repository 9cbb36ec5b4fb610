"""A CIFAR-like data set with a planted shortcut, and a small model that learns it: ground truth for the
strategy clusters (``shortcuts.py``).

Four classes of 32x32 RGB images, each a coloured shape near the centre of a textured background:
class 0 and class 1 draw *the same* shapes (discs), so nothing in the object tells them apart, but
``WATERMARKED`` of class 0's images carry a small watermark in the top-left corner, as the PASCAL VOC
horse images carried a copyright tag (Lapuschkin et al. 2019). Classes 2 (squares) and 3 (crosses) are
clean. A model trained on it can only separate class 0 from class 1 by the watermark: its class-0 maps
on watermarked images put the evidence in the corner, a strategy the survey must find, and must not
find for classes 1-3. ``train_model`` is the recipe: a few epochs of a small CNN, well under a minute
on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SIZE = 32
CLASSES = ("disc + watermark", "disc", "square", "cross")
WATERMARK_CLASS = 0
WATERMARKED = 0.9  # of class 0's images; the rest show the strategy the model has without it
MARK = (1, 1, 5, 5)  # the watermark's box (top, left, height, width): a 5x5 checker in the corner
# Each class's object colour (RGB, jittered by +-0.2 per channel): classes 0 and 1 share theirs, so only
# the watermark tells them apart; 2 and 3 differ in colour and shape, so a small model learns them fast.
HUES = np.array([[0.2, 0.7, 0.3], [0.2, 0.7, 0.3], [0.8, 0.25, 0.2], [0.25, 0.3, 0.85]])


TRAIN_PER_CLASS, TRAIN_SEED = 300, 1  # the shipped model's training set: 1,200 images
TEST_SEED = 2  # the images the shortcut test surveys (a different draw)
WEIGHTS = "planted-watermark.pt"  # in occsens/weights: train_model's result on the training set above
# The weights file is a state dict of ~4k float32 parameters (about 20 kB); 1 MB is far past it.
MAX_WEIGHTS_BYTES = 1 << 20


@dataclass(frozen=True)
class Planted:
    images: np.ndarray  # uint8 [N, 3, 32, 32]
    labels: np.ndarray  # int64 [N]
    watermarked: np.ndarray  # bool [N]


def _shape_mask(kind: int, cy: float, cx: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    dy, dx = yy - cy, xx - cx
    if kind in (0, 1):  # disc
        return dy**2 + dx**2 <= radius**2
    if kind == 2:  # square
        return (np.abs(dy) <= radius * 0.85) & (np.abs(dx) <= radius * 0.85)
    arm = radius * 0.35  # cross
    return ((np.abs(dy) <= arm) & (np.abs(dx) <= radius)) | ((np.abs(dx) <= arm) & (np.abs(dy) <= radius))


def make_dataset(per_class: int, seed: int) -> Planted:
    """``per_class`` images of each class, in class order, from ``seed``."""
    rng = np.random.default_rng(seed)
    images, labels, marked = [], [], []
    checker = (np.indices((MARK[2], MARK[3])).sum(axis=0) % 2).astype(np.float64)
    for label in range(len(CLASSES)):
        for _ in range(per_class):
            background = rng.uniform(0.15, 0.85, 3)[:, None, None] + rng.normal(0, 0.08, (3, SIZE, SIZE))
            cy, cx = SIZE / 2 + rng.uniform(-4, 4, 2)
            mask = _shape_mask(label, cy, cx, rng.uniform(7, 11))
            colour = np.clip(HUES[label] + rng.uniform(-0.2, 0.2, 3), 0, 1)
            image = np.where(
                mask[None], colour[:, None, None] + rng.normal(0, 0.05, (3, SIZE, SIZE)), background
            )
            watermark = label == WATERMARK_CLASS and rng.uniform() < WATERMARKED
            if watermark:
                top, left, h, w = MARK
                image[:, top : top + h, left : left + w] = checker[None]
            images.append(np.clip(image, 0, 1))
            labels.append(label)
            marked.append(watermark)
    pixels = (np.stack(images) * 255).round().astype(np.uint8)
    return Planted(pixels, np.asarray(labels, dtype=np.int64), np.asarray(marked))


def build_model() -> nn.Sequential:
    """A small CNN (about 4k parameters) for the planted data set; global max pooling, so it can detect
    the watermark wherever its filters find it."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(16, len(CLASSES)),
    )


def train_model(data: Planted, epochs: int = 4, seed: int = 0) -> nn.Sequential:
    """The recipe: Adam at 3e-3, batches of 64, ``epochs`` passes, from ``seed``; returned in eval mode."""
    torch.manual_seed(seed)
    model = build_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = torch.from_numpy(data.images).float() / 255
    y = torch.from_numpy(data.labels)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=order).split(64):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    return model.eval()


def load_model() -> nn.Sequential:
    """The shipped model: ``train_model(make_dataset(TRAIN_PER_CLASS, TRAIN_SEED))``, in eval mode.

    Shipped because training takes minutes on a busy two-core machine; ``tests/survey/test_shortcuts.py``
    retrains it with the recipe to show the weights are what the recipe makes."""
    from importlib import resources

    from occsens.files import bounded_stream

    model = build_model()
    path = resources.files("occsens") / "weights" / WEIGHTS
    stream = bounded_stream(str(path), MAX_WEIGHTS_BYTES, "weights file", "a state dict")
    model.load_state_dict(torch.load(stream, map_location="cpu", weights_only=True))
    return model.eval()
