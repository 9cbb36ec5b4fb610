"""Shared pieces of the report tests: small models, fake model cards, one report built once per session."""

from __future__ import annotations

import html.parser
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from torch import nn

from occsens import report
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.cifar.samples import sample_by_index
from occsens.report.cards import Card, SeedSpread

torch.set_num_threads(1)

SAMPLES = (1, 3)  # a ship and an airplane, both embedded


class TinyNet(nn.Module):
    """A small random conv net: fast, and spatially sensitive enough for maps that are not flat."""

    def __init__(self, in_channels: int = 3, seed: int = 0, greyscale: bool = False) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.greyscale = greyscale
        self.conv = nn.Conv2d(1 if greyscale else in_channels, 16, 5, stride=2, padding=2)
        self.head = nn.Linear(16 * 4, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(
                    torch.randn(p.shape, generator=gen) * (3.0 / math.sqrt(p[0].numel() if p.ndim > 1 else 4))
                )
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.greyscale:
            x = x.mean(dim=1, keepdim=True)
        h = torch.relu(self.conv(x))
        h = nn.functional.adaptive_avg_pool2d(h, 2).flatten(1)
        return self.head(h)


def fake_card(name: str, accuracy: float) -> Card:
    per = {c: round(accuracy - 0.02 * ((i * 7) % 5), 4) for i, c in enumerate(CIFAR10_CLASSES)}
    return Card.from_json(
        {
            "name": name,
            "test_accuracy": accuracy,
            "architecture": {"width": 4},
            "parameters": 1234,
            "per_class_accuracy": per,
        },
        CIFAR10_CLASSES,
    )


def shipped_default() -> nn.Module | None:
    """The shipped default model when its weights and card are there, else None."""
    from occsens import OcclusionError
    from occsens.cifar import models

    try:
        return models.load_model("default")
    except OcclusionError:
        return None


@dataclass
class Built:
    model: nn.Module
    images: torch.Tensor
    labels: list[int]
    result: report.Report
    path: Path

    @property
    def html(self) -> str:
        return self.result.html


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A report on two embedded samples (a ship and an airplane, so the asker's printout applies), with a
    colour-vs-greyscale section, written with its JSON.

    The model is the shipped default when it is there (so the clean-probability test checks the
    real model), otherwise a tiny random net.
    """
    model = shipped_default() or TinyNet()
    samples = sample_by_index(list(SAMPLES))
    images = torch.from_numpy(samples.images.copy()).float() / 255
    # seed spreads as the lead's short recipe records them (3 seeds per colour mode at 4 epochs)
    colour = replace(fake_card("colour", 0.9), seed_spread=SeedSpread(4, (1, 2, 3), (0.70, 0.712, 0.705)))
    grey = replace(fake_card("grey", 0.85), seed_spread=SeedSpread(4, (1, 2, 3), (0.68, 0.69, 0.684)))
    twin = report.Twin(model, colour, TinyNet(seed=1, greyscale=True), grey)
    result = report.make_report(
        model,
        images,
        names=CIFAR10_CLASSES,
        sample_names=[f"test #{i}" for i in samples.indices],
        indices=list(samples.indices),
        labels=[int(y) for y in samples.labels],
        model_info=report.ModelInfo("test model", fake_card("colour", 0.9), 1234),
        twin=twin,
        question=report.ASKER,
    )
    path = report.write_report(result, tmp_path_factory.mktemp("report"), write_json=True)
    return Built(model, images, [int(y) for y in samples.labels], result, path)


class Page(html.parser.HTMLParser):
    """The parts of a page the tests look at: tags with attributes, ids, links, text by class."""

    VOID = {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "source",
        "track",
        "wbr",
    }

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.within: list[tuple[str, ...]] = []  # per entry of ``tags``: the tags open around it
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.texts: list[tuple[list[str], str]] = []  # (open tags' classes, text)
        self._classes: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed tags at the end: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        self.within.append(tuple(self.stack))
        if tag not in self.VOID:
            self.stack.append(tag)
            self._classes.append(a.get("class", ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self.within.append(tuple(self.stack))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            if tag in self.stack:
                while self.stack and self.stack[-1] != tag:
                    self.stack.pop()
                    self._classes.pop()
            else:
                return
        self.stack.pop()
        self._classes.pop()

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append((list(self._classes), data))

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and (cls is None or cls in a.get("class", "").split())]

    def folded(self, tag: str, attr: str, contains: str) -> list[bool]:
        """For each ``tag`` whose ``attr`` contains ``contains``: whether it sits inside a <details>."""
        return [
            "details" in around
            for (t, a), around in zip(self.tags, self.within, strict=True)
            if t == tag and contains in a.get(attr, "")
        ]

    def text_outside(self, cls: str) -> str:
        """All text not inside an element of class ``cls``."""
        return " ".join(t for classes, t in self.texts if not any(cls in c.split() for c in classes))
