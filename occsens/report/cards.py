"""The model cards the report reads, and the colour model against its greyscale twin.

A ``Card`` holds the numbers of a shipped model's card (``occsens/weights/NAME.json``): test accuracy,
per-class accuracy, the training recipe's length and seed, and, when the card has one, the
seed-to-seed spread of a shorter recipe (``SeedSpread``): the measure of how much two training runs
of the same recipe differ, without which a gap between two models trained once each cannot be
judged. ``compare_twins`` reads both models' maps of the report's samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from occsens.engine import Occlusion
from occsens.errors import OcclusionError
from occsens.report.analysis import MapStats, map_stats


@dataclass(frozen=True)
class SeedSpread:
    """Test accuracy of several training runs that differ only in their seed (a card's ``seed_spread``)."""

    epochs: int
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]  # one per seed, same order

    @property
    def low(self) -> float:
        return min(self.accuracies)

    @property
    def high(self) -> float:
        return max(self.accuracies)

    @property
    def range(self) -> float:
        """The largest difference between two runs: the spread, without assuming a distribution."""
        return self.high - self.low

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @classmethod
    def from_json(cls, entry: dict, card: str) -> SeedSpread:
        """``{"epochs": 4, "seeds": [1, 2, 3], "test_accuracy": [a, b, c]}``; bad entries are named."""
        try:
            seeds = tuple(int(s) for s in entry["seeds"])
            accuracies = tuple(float(a) for a in entry["test_accuracy"])
            epochs = int(entry["epochs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise OcclusionError(
                f"model card {card!r}: seed_spread {entry!r} is not readable ({exc}); it needs "
                '{"epochs": N, "seeds": [...], "test_accuracy": [...]} with one accuracy per seed'
            ) from None
        if len(seeds) != len(accuracies) or len(seeds) < 2:
            raise OcclusionError(
                f"model card {card!r}: seed_spread has {len(seeds)} seeds and {len(accuracies)} accuracies; "
                "it needs one accuracy per seed and at least two seeds"
            )
        return cls(epochs, seeds, accuracies)


@dataclass(frozen=True)
class Card:
    """The numbers of a model card (``occsens/weights/NAME.json``)."""

    name: str
    test_accuracy: float
    per_class_accuracy: tuple[float, ...]  # in class order
    parameters: int | None
    flops: int | None
    architecture: str
    epochs: int | None
    note: str = ""  # e.g. the card's "provisional" remark
    seed: int | None = None  # the training run's seed: a card describes one run
    seed_spread: SeedSpread | None = None

    @classmethod
    def from_json(cls, card: dict, names: Sequence[str]) -> Card:
        per = card.get("per_class_accuracy", {})
        if isinstance(per, dict):
            values = tuple(float(per[n]) for n in names)
        else:
            values = tuple(float(v) for v in per)
        arch = card.get("architecture", {})
        arch_text = ", ".join(f"{k} {v}" for k, v in arch.items()) if isinstance(arch, dict) else str(arch)
        training: dict = card["training"] if isinstance(card.get("training"), dict) else {}
        recipe: dict = training["recipe"] if isinstance(training.get("recipe"), dict) else {}
        epochs = training.get("epochs", recipe.get("epochs"))
        seed = recipe.get("seed", training.get("seed"))
        name = str(card.get("name", "?"))
        spread = card.get("seed_spread")
        return cls(
            name,
            float(card["test_accuracy"]),
            values,
            None if card.get("parameters") is None else int(card["parameters"]),
            None if card.get("flops_per_forward") is None else int(card["flops_per_forward"]),
            arch_text,
            None if epochs is None else int(epochs),
            str(card.get("provisional", "") or ""),
            None if seed is None else int(seed),
            None if spread is None else SeedSpread.from_json(spread, name),
        )


@dataclass(frozen=True, eq=False)
class TwinSample:
    """One image under the colour model and its greyscale twin (the report's main setting)."""

    colour: MapStats
    grey: MapStats
    colour_probs: np.ndarray  # float [K], clean
    grey_probs: np.ndarray

    def top(self, which: str) -> tuple[int, float]:
        """The clean class and its probability under the ``which`` = "colour" or "grey" model."""
        probs = getattr(self, f"{which}_probs")
        return int(np.argmax(probs)), float(np.max(probs))


@dataclass(frozen=True, eq=False)
class TwinComparison:
    """Colour vs greyscale: both model cards and, for the report's samples, both maps."""

    colour: Card
    grey: Card
    samples: tuple[TwinSample, ...]
    true_labels: tuple[int | None, ...]

    @property
    def accuracy_gap(self) -> float:
        """Colour minus greyscale test accuracy."""
        return self.colour.test_accuracy - self.grey.test_accuracy

    @property
    def gap_points(self) -> float:
        """The gap in percentage points as the report prints it (one decimal): its words judge this."""
        return round(100 * self.accuracy_gap, 1)

    def mean_drop(self, which: str) -> float:
        """The mean over the samples of the largest drop under the ``which`` = "colour" or "grey" model."""
        return float(np.mean([getattr(s, which).max_drop for s in self.samples]))

    def correct(self, which: str) -> int:
        """Samples (with a known label) the ``which`` = "colour" or "grey" model gets right."""
        return sum(
            1
            for s, y in zip(self.samples, self.true_labels, strict=True)
            if y is not None and s.top(which)[0] == y
        )

    @property
    def labelled(self) -> int:
        return sum(1 for y in self.true_labels if y is not None)


def compare_twins(
    colour_res: Occlusion, grey_res: Occlusion, colour: Card, grey: Card, labels: Sequence[int | None]
) -> TwinComparison:
    n = len(colour_res.images)
    return TwinComparison(
        colour,
        grey,
        tuple(
            TwinSample(
                map_stats(colour_res, i),
                map_stats(grey_res, i),
                colour_res.clean_probs[i].numpy().astype(np.float64),
                grey_res.clean_probs[i].numpy().astype(np.float64),
            )
            for i in range(n)
        ),
        tuple(labels),
    )
