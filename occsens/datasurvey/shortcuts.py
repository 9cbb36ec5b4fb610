"""Strategy clusters: the ways a model decides one class, found by clustering its maps (SpRAy).

Spectral relevance analysis (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors and assessing
what machines really learn") clusters a class's attribution maps, downsampled and normalised, with
spectral clustering, choosing the number of clusters by the eigengap of the graph Laplacian; a small
cluster whose maps agree on an odd place (a watermark in a corner, a border) is a candidate shortcut.
Here the maps are the survey's drop maps: each is cut to its positive part (where filling lowered the
clean class) and scaled to sum 1, so clusters group images by *where* the evidence lies, not by how
much; downsampled to at most ``GRID`` x ``GRID`` by averaging. scikit-learn does the clustering.

A cluster is flagged ``focused`` when its mean map puts at least ``FOCUS_SHARE`` of its mass in one
``BLOCK`` of the grid (a quarter of each side), and ``at_border`` when that block touches the image's
edge: a strategy that reads a small patch at the border, what a planted watermark gives
(``tests/survey/test_shortcuts.py``). These flags point a reader at clusters; the examples decide.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from occsens.errors import OcclusionError

GRID = 8  # maps are averaged down to at most 8x8: SpRAy's own downsampling keeps maps this coarse
MAX_MAPS_PER_CLASS = 2000  # maps clustered per class (the first ones): a 2000x2000 eigenproblem, ~2 s
MIN_MAPS = 12  # fewer maps than this make one cluster: a neighbour graph needs some neighbours
NEIGHBOURS = 10  # the k-nearest-neighbour graph SpRAy builds its affinity from (k = 10 in its experiments)
# Half of the mean map's mass in a block of 1/16 of the image: 8x what an even spread gives (1/16). On
# CIFAR-10 (the shipped model, patch 4, 8,704 test images surveyed) no class's cluster exceeded 0.16;
# the planted watermark's clusters reach 1.0 (tests/survey/test_shortcuts.py).
FOCUS_SHARE = 0.5
ZERO_EIGENVALUE = 1e-8  # float64 eigenvalues of a disconnected graph's Laplacian come out below 1e-12
EXAMPLES = 6  # images shown per cluster: those whose maps lie nearest the cluster's mean


@dataclass(frozen=True)
class Strategy:
    """One cluster of a class's maps."""

    size: int  # images in the cluster
    share: float  # of the class's clustered images
    mean_map: np.ndarray  # float [g, g'], normalised maps averaged (sums to 1 where any evidence)
    focus: float  # the largest share of mean_map in one block
    focus_at: tuple[int, int, int, int]  # that block: (top, left, height, width) in mean_map's cells
    at_border: bool
    examples: tuple[int, ...]  # image indices nearest the mean

    @property
    def focused(self) -> bool:
        return self.focus >= FOCUS_SHARE

    @property
    def suspect(self) -> bool:
        """Focused on a block at the border: the signature of a watermark or a frame."""
        return self.focused and self.at_border

    def where(self) -> str:
        """The focus block in words ("top-left corner", "centre", ...)."""
        top, left, h, w = self.focus_at
        rows, cols = self.mean_map.shape
        vertical = "top" if top == 0 else "bottom" if top + h == rows else ""
        horizontal = "left" if left == 0 else "right" if left + w == cols else ""
        if vertical and horizontal:
            return f"{vertical}-{horizontal} corner"
        return f"{vertical or horizontal} edge" if (vertical or horizontal) else "inside"


def downsampled(maps: np.ndarray) -> np.ndarray:
    """``[n, R, C]`` maps, averaged down to at most GRID x GRID (block means; edge blocks smaller)."""
    n, r, c = maps.shape
    rows = np.array_split(np.arange(r), min(r, GRID))
    cols = np.array_split(np.arange(c), min(c, GRID))
    out = np.empty((n, len(rows), len(cols)))
    for i, rr in enumerate(rows):
        for j, cc in enumerate(cols):
            out[:, i, j] = maps[:, rr][:, :, cc].mean(axis=(1, 2))
    return out


def normalised(maps: np.ndarray) -> np.ndarray:
    """Each map's positive part scaled to sum 1 (a map with no positive drop stays all zero)."""
    positive = np.clip(maps, 0, None).reshape(len(maps), -1)
    total = positive.sum(axis=1, keepdims=True)
    return np.divide(positive, total, out=np.zeros_like(positive), where=total > 0).reshape(maps.shape)


def _focus(mean_map: np.ndarray) -> tuple[float, tuple[int, int, int, int]]:
    rows, cols = mean_map.shape
    bh, bw = max(1, round(rows / 4)), max(1, round(cols / 4))
    best, at = -1.0, (0, 0, bh, bw)
    total = mean_map.sum()
    for top in range(rows - bh + 1):
        for left in range(cols - bw + 1):
            mass = float(mean_map[top : top + bh, left : left + bw].sum())
            if mass > best:
                best, at = mass, (top, left, bh, bw)
    return (best / total if total > 0 else 0.0), at


def _affinity(x: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import kneighbors_graph

    graph = kneighbors_graph(x, n_neighbors=min(NEIGHBOURS, len(x) - 1), include_self=False)
    return (0.5 * (graph + graph.T)).toarray()


def eigengap_clusters(affinity: np.ndarray, max_clusters: int) -> int:
    """The number of clusters by the largest gap between the smallest eigenvalues of the normalised
    graph Laplacian (von Luxburg 2007, sec. 8.3; SpRAy's choice)."""
    from scipy.sparse.csgraph import laplacian

    values = np.linalg.eigvalsh(laplacian(affinity, normed=True))[: max_clusters + 1]
    # A graph in c separate pieces has c zero eigenvalues: each piece is a cluster of its own, and the
    # largest gap inside a piece must not split it further (von Luxburg 2007, prop. 4).
    components = int((values < ZERO_EIGENVALUE).sum())
    if 1 < components <= max_clusters:
        return components
    return int(np.argmax(np.diff(values)) + 1)


def strategy_clusters(maps: np.ndarray, indices: list[int], max_clusters: int = 6) -> list[Strategy]:
    """The clusters of one class's drop maps ``[n, R, C]`` (image ``indices``), largest first."""
    if maps.ndim != 3 or len(maps) != len(indices):
        raise OcclusionError(f"maps must be [n, R, C], one per index; got {maps.shape}, {len(indices)}")
    x = normalised(downsampled(np.asarray(maps, dtype=np.float64)))
    flat = x.reshape(len(x), -1)
    labels = np.zeros(len(x), dtype=np.int64)
    if len(x) >= MIN_MAPS and max_clusters > 1:
        from sklearn.cluster import SpectralClustering

        affinity = _affinity(flat)
        k = eigengap_clusters(affinity, max_clusters)
        if k > 1:
            with warnings.catch_warnings():  # a graph in pieces is expected here: the pieces are clusters
                warnings.filterwarnings("ignore", message="Graph is not fully connected")
                labels = SpectralClustering(
                    n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=0
                ).fit_predict(affinity)
    out = []
    for cluster in np.unique(labels):
        member = np.flatnonzero(labels == cluster)
        mean_map = x[member].mean(axis=0)
        focus, at = _focus(mean_map)
        rows, cols = mean_map.shape
        top, left, h, w = at
        border = top == 0 or left == 0 or top + h == rows or left + w == cols
        distance = ((flat[member] - mean_map.reshape(-1)) ** 2).sum(axis=1)
        nearest = member[np.argsort(distance, kind="stable")[:EXAMPLES]]
        out.append(
            Strategy(
                len(member),
                len(member) / len(x),
                mean_map,
                focus,
                at,
                bool(border),
                tuple(int(indices[i]) for i in nearest),
            )
        )
    return sorted(out, key=lambda s: -s.size)
