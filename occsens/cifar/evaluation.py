"""Test-set accuracy, per-class accuracy and confusion matrix of a classifier."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from occsens.cifar.data import NUM_CLASSES, Split
from occsens.engine import eval_mode, validate
from occsens.errors import OcclusionError, integer


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


def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    images: np.ndarray,
    batch_size: int = 500,
    progress=None,  # noqa: ANN001 - anything with update(n), e.g. a tqdm bar
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Predicted class of each uint8 image ``[N, 3, 32, 32]``, in eval mode without gradients.

    ``model`` is a module or any callable returning ``[B, num_classes]`` scores; a model with another
    class count is refused (its classes cannot be CIFAR-10's).
    """
    validate.model(model)
    batch_size = integer(batch_size, "batch_size", low=1)
    num_classes = integer(num_classes, "num_classes", low=1)
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4):
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise OcclusionError(f"images must be a uint8 numpy array [N, C, H, W], got {got}")
    device = validate.model_device(model, None)
    out = np.empty(len(images), dtype=np.int64)
    with eval_mode(model):  # the engine's: flags put back, safe when other threads use the model
        for start in range(0, len(images), batch_size):
            x = torch.tensor(images[start : start + batch_size]).float().div_(255)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            scores = validate.user_call(f"the model, on a batch of shape {tuple(x.shape)},", model, x)
            if not isinstance(scores, torch.Tensor) or scores.ndim != 2 or scores.shape[0] != len(x):
                got = str(tuple(scores.shape)) if isinstance(scores, torch.Tensor) else type(scores).__name__
                raise OcclusionError(f"model must return scores [B, K] for B images, got {got}")
            if scores.shape[1] != num_classes:
                raise OcclusionError(
                    f"model returns {scores.shape[1]} classes but CIFAR-10 has {num_classes}: evaluate "
                    "scores a CIFAR-10 classifier (outputs in CIFAR-10's label order)"
                )
            out[start : start + len(x)] = scores.argmax(dim=1).cpu().numpy()
            if progress is not None:
                progress.update(len(x))
    return out


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    split: Split,
    num_classes: int = NUM_CLASSES,
    progress=None,  # noqa: ANN001 - anything with update(n), e.g. a tqdm bar
) -> Evaluation:
    """Confusion matrix of ``model`` on every image of ``split``."""
    if not isinstance(split, Split):
        raise OcclusionError(f"split must be an occsens.cifar.data.Split, got {type(split).__name__}")
    predicted = predict(model, split.images, progress=progress, num_classes=num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (split.labels, predicted), 1)
    return Evaluation(confusion)
