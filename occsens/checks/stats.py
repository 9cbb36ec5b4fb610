"""Statistics the checks share: rank correlation, z-scores against a null, orders with random ties."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from occsens.errors import OcclusionError


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation of two equally sized arrays, ties given their average rank.

    Average ranks matter here: occlusion maps are constant over each window, and ordinal ranks would
    break those ties by pixel index, the same way in both maps, and invent a correlation. A constant
    map has no ranking to share: the result is 0.0.
    """
    x = _average_ranks(np.asarray(a, dtype=np.float64).ravel())
    y = _average_ranks(np.asarray(b, dtype=np.float64).ravel())
    if x.shape != y.shape:
        raise OcclusionError(f"cannot correlate maps of {x.size} and {y.size} values")
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_x[1:] != sorted_x[:-1])))
    ends = np.append(starts[1:], len(x))
    group = np.cumsum(np.concatenate(([True], sorted_x[1:] != sorted_x[:-1]))) - 1
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def z_scores(stat: float, null: np.ndarray) -> tuple[float, float, float]:
    """(z, null mean, null std): how many null standard deviations ``stat`` lies above the null mean."""
    mean, std = float(np.mean(null)), float(np.std(null, ddof=1))
    if std > 0:
        return (stat - mean) / std, mean, std
    return (0.0 if stat == mean else math.copysign(math.inf, stat - mean)), mean, std


def order_desc(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of each row of ``scores`` from highest to lowest, ties broken at random (not by index)."""
    out = np.empty(scores.shape, dtype=np.int64)
    for i, row in enumerate(scores):
        perm = rng.permutation(row.shape[0])
        out[i] = perm[np.argsort(-row[perm], kind="stable")]
    return out
