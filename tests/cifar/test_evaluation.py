"""``occsens evaluate`` / ``occsens.cifar.evaluation``: CIFAR-10 accuracy of a 10-class model, and one clear
error for anything else (another class count, outputs that are not scores)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import occsens
from occsens.cifar.data import Split
from occsens.cifar.evaluation import evaluate


def _split(n: int = 20) -> Split:
    rng = np.random.default_rng(0)
    return Split(images=rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), labels=np.arange(n) % 10)


def _always(k: int, classes: int = 10):  # noqa: ANN202
    def model(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(x), classes)
        out[:, k] = 1.0
        return out

    return model


def test_a_plain_function_is_evaluated_and_counted_per_class() -> None:
    """A model that always says class 3 is right on exactly the class-3 images: 2 of 20."""
    result = evaluate(_always(3), _split())
    assert (result.correct, result.total) == (2, 20)
    assert result.confusion[:, 3].sum() == 20 and result.per_class_accuracy[3] == 1.0


@pytest.mark.parametrize("classes", [2, 1000])
def test_a_model_with_another_class_count_is_refused_with_one_line(classes: int) -> None:
    with pytest.raises(occsens.OcclusionError, match=f"model returns {classes} classes but CIFAR-10 has 10"):
        evaluate(_always(0, classes), _split())


def test_outputs_that_are_not_scores_are_refused() -> None:
    with pytest.raises(occsens.OcclusionError, match=r"model must return scores \[B, K\].*got list"):
        evaluate(lambda x: [0] * len(x), _split())


def test_a_training_mode_model_is_put_back_in_training_mode() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 32 * 32, 10)).train()
    evaluate(model, _split())
    assert all(m.training for m in model.modules())
