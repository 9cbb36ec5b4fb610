"""Model cards as the report reads them: the training run's seed and the seed-to-seed spread (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from occsens import OcclusionError
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.report.cards import Card, SeedSpread

WEIGHTS = Path(__file__).resolve().parents[2] / "occsens" / "weights"


def card_json(**extra: object) -> dict:
    return {
        "name": "m",
        "test_accuracy": 0.9,
        "per_class_accuracy": dict.fromkeys(CIFAR10_CLASSES, 0.9),
        "training": {"recipe": {"epochs": 28, "seed": 0}},
        **extra,
    }


def test_the_seed_and_the_seed_spread_are_read() -> None:
    spread = {"epochs": 4, "seeds": [1, 2, 3], "test_accuracy": [0.71, 0.735, 0.72]}
    card = Card.from_json(card_json(seed_spread=spread), CIFAR10_CLASSES)
    assert card.seed == 0 and card.epochs == 28
    assert card.seed_spread == SeedSpread(4, (1, 2, 3), (0.71, 0.735, 0.72))
    assert card.seed_spread.range == pytest.approx(0.025)
    assert (card.seed_spread.low, card.seed_spread.high) == (0.71, 0.735)


def test_a_card_without_a_spread_has_none() -> None:
    assert Card.from_json(card_json(), CIFAR10_CLASSES).seed_spread is None


@pytest.mark.parametrize(
    ("spread", "message"),
    [
        ({"epochs": 4, "seeds": [1, 2, 3]}, "is not readable"),
        ({"epochs": 4, "seeds": [1, 2, 3], "test_accuracy": [0.7, 0.71]}, "3 seeds and 2 accuracies"),
        ({"epochs": 4, "seeds": [1], "test_accuracy": [0.7]}, "at least two seeds"),
        ({"epochs": "four", "seeds": [1, 2], "test_accuracy": [0.7, 0.71]}, "is not readable"),
    ],
)
def test_a_malformed_spread_is_one_clear_error_naming_the_card(spread: dict, message: str) -> None:
    with pytest.raises(OcclusionError, match=f"model card 'm': seed_spread .*{message}"):
        Card.from_json(card_json(seed_spread=spread), CIFAR10_CLASSES)


@pytest.mark.parametrize("name", ["default", "greyscale"])
def test_the_shipped_cards_are_read(name: str) -> None:
    path = WEIGHTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"{path} is not there")
    card = Card.from_json(json.loads(path.read_text()), CIFAR10_CLASSES)
    assert card.name == name and card.seed is not None and 0 < card.test_accuracy < 1
    if card.seed_spread is not None:  # the lead's measurement: 3 seeds per colour mode at a few epochs
        assert len(card.seed_spread.seeds) == len(card.seed_spread.accuracies) >= 2
