"""Test-set accuracy, per-class accuracy and confusion matrix of a classifier."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from occsens.cifar.data import Split


@dataclass(frozen=True)
class Evaluation:
    """Counts over one split: ``confusion[true, predicted]``."""

    confusion: np.ndarray

    @property
    def total(self) -> int:
        return int(self.confusion.sum())

    @property
    def correct(self) -> int:
        return int(np.trace(self.confusion))

    @property
    def accuracy(self) -> float:
        return self.correct / self.total

    @property
    def per_class_accuracy(self) -> np.ndarray:
        return np.diag(self.confusion) / self.confusion.sum(axis=1)


def predict(model: nn.Module, images: np.ndarray, batch_size: int = 500, progress=None) -> np.ndarray:
    """Predicted class of each uint8 image ``[N, 3, 32, 32]``, in eval mode without gradients."""
    was_training = model.training
    model.eval()
    out = np.empty(len(images), dtype=np.int64)
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.tensor(images[start : start + batch_size]).float().div_(255)
                x = x.contiguous(memory_format=torch.channels_last)
                out[start : start + len(x)] = model(x).argmax(dim=1).numpy()
                if progress is not None:
                    progress.update(len(x))
    finally:
        model.train(was_training)
    return out


def evaluate(model: nn.Module, split: Split, num_classes: int = 10, progress=None) -> Evaluation:
    """Confusion matrix of ``model`` on every image of ``split``."""
    predicted = predict(model, split.images, progress=progress)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (split.labels, predicted), 1)
    return Evaluation(confusion)
