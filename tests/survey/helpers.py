"""What the survey tests share: a tiny model, a few images, and reading a store's files."""

from __future__ import annotations

import html.parser
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("pyarrow", reason="the survey store needs pyarrow: pip install 'occsens[survey]'")

NUM_CLASSES = 5


def tiny_model() -> nn.Module:
    """16x16 RGB in, 5 classes out; microseconds a forward, so a 20-image survey takes a second."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, NUM_CLASSES),
    ).eval()


def tiny_images(n: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 16x16 RGB images and labels 0..4."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 16, 16), dtype=np.uint8), rng.integers(0, NUM_CLASSES, n)


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file of a store, by name (hidden temporary files included: there must be none)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


class Page(html.parser.HTMLParser):
    """A page's tags with their attributes, and its unbalanced tags (``errors``)."""

    VOID = {"br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()
        self.errors += [f"unclosed <{t}>" for t in self.stack]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"</{tag}> out of place")

    def find(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]
