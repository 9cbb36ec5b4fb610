"""The numbers behind the report: frozen dataclasses computed only from ``Occlusion`` results.

``occsens.report.runs`` runs the engine once per setting the report needs and keeps the
``Occlusion`` results; ``analyse`` then reads every number from them. There is
no second loop over window positions here: heatmaps, drops, class maps and counts are the
engine's own views, and everything else is a reduction of those arrays.

Words used throughout:

* **clean class**: the most probable class of the unoccluded image; it is also the target whose
  probability the heatmap shows.
* **most important region**: the window whose occlusion lowers the target's probability most
  (the largest drop).
* **replacement class**: the class that is most probable at the positions where it is not the
  clean class, counted over the grid; the *top* replacement is the one winning most positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from occsens.engine import Occlusion
from occsens.report.runs import ReportRuns
from occsens.report.thresholds import IMPORTANT_DROP

Pair = tuple[int, int]

GALLERY_SIZE = 8
NOTEBOOK_GALLERY_SIZE = 4
_FILL_LABELS = {
    "0.5": "grey 0.5",
    "mean": "image mean",
    "blur": "blur",
    "noise": "noise",
    "0": "black 0",
    "1": "white 1",
}


def fill_label(description: str) -> str:
    """A short human name for a fill description from the engine (``"0.5"`` -> ``"grey 0.5"``)."""
    return _FILL_LABELS.get(description, f"fill {description}")


# --------------------------------------------------------------------------- per map


@dataclass(frozen=True)
class Cell:
    """A grid position and the pixel rectangle it stands for (inclusive pixel ranges in ``rows``/``cols``)."""

    row: int
    col: int
    top: int
    left: int
    height: int
    width: int

    @property
    def bottom(self) -> int:
        return self.top + self.height - 1

    @property
    def right(self) -> int:
        return self.left + self.width - 1


def _region(rect: np.ndarray, row: int, col: int) -> Cell:
    top, left, height, width = (int(v) for v in rect)
    return Cell(row, col, top, left, height, width)


@dataclass(frozen=True)
class CellSpan:
    """The pixel rows and columns spanned by a set of grid cells, and how many cells."""

    top: int
    bottom: int  # inclusive
    left: int
    right: int  # inclusive
    cells: int


@dataclass(frozen=True, eq=False)
class MapStats:
    """One image's occlusion map under one setting: the engine's views and their reductions."""

    fill: str  # the engine's fill description, e.g. "0.5" or "blur"
    geometry: str  # "sliding" or "notebook"
    reveal: bool
    patch: Pair
    stride: Pair
    image_size: Pair
    target: int
    clean_class: int
    clean_target_prob: float
    heatmap: np.ndarray  # float [R, C]: the target's probability with the window occluded
    drop: np.ndarray  # float [R, C]: clean minus occluded target probability
    class_map: np.ndarray  # int [R, C]: most probable class at each position
    top_prob: np.ndarray  # float [R, C]: that class's probability
    class_counts: tuple[int, ...]  # [K]: positions each class wins; sums to ``positions``
    windows: np.ndarray  # int [R, C, 4]: (top, left, height, width) actually filled
    cells: np.ndarray  # int [R, C, 4]: the rectangle each position is drawn as
    most_important: Cell  # the window with the largest drop (the cell it is drawn as)
    max_drop: float
    min_target_prob: float
    max_target_prob: float
    median_target_prob: float
    windows_dropping: int  # positions where the drop exceeds IMPORTANT_DROP
    kept: int  # positions where the clean class is still the most probable
    replacement: int | None  # the class winning most positions among those the clean class lost
    replacement_count: int
    replacement_extent: CellSpan | None  # where the top replacement wins
    replacement_best: Cell | None  # where the top replacement is most probable
    replacement_best_prob: float
    area_min: int  # pixels filled per position
    area_max: int
    area_mean: float

    @property
    def grid(self) -> Pair:
        return (int(self.heatmap.shape[0]), int(self.heatmap.shape[1]))

    @property
    def positions(self) -> int:
        return int(self.heatmap.size)

    @property
    def pixels(self) -> int:
        return self.image_size[0] * self.image_size[1]

    @property
    def lost(self) -> int:
        return self.positions - self.kept

    def replacement_counts(self) -> dict[int, int]:
        """Positions won by each class other than the clean class, most first (ties by class id)."""
        counts = {k: v for k, v in enumerate(self.class_counts) if v and k != self.clean_class}
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def map_stats(res: Occlusion, n: int) -> MapStats:
    """The numbers of image ``n`` of ``res``."""
    heat = res.heatmap[n].numpy().astype(np.float64)
    drop = res.drop[n].numpy().astype(np.float64)
    cmap = res.class_map[n].numpy()
    top_prob = res.probs[n].max(dim=2).values.numpy().astype(np.float64)
    counts = tuple(int(v) for v in res.class_counts[n].tolist())
    windows = res.plan.windows.numpy()
    cells = res.plan.cells.numpy()
    clean = int(res.clean_class[n])
    flat = int(np.argmax(drop))  # first of equal maxima, row-major
    r, c = divmod(flat, drop.shape[1])
    rep_counts = {k: v for k, v in enumerate(counts) if v and k != clean}
    replacement = min(rep_counts, key=lambda k: (-rep_counts[k], k)) if rep_counts else None
    extent = best = None
    best_prob = 0.0
    if replacement is not None:
        where = cmap == replacement
        rows, cols = np.nonzero(where)
        rect = cells[rows, cols]
        extent = CellSpan(
            int(rect[:, 0].min()),
            int((rect[:, 0] + rect[:, 2]).max() - 1),
            int(rect[:, 1].min()),
            int((rect[:, 1] + rect[:, 3]).max() - 1),
            int(where.sum()),
        )
        masked = np.where(where, top_prob, -1.0)
        br, bc = divmod(int(np.argmax(masked)), masked.shape[1])
        best, best_prob = _region(cells[br, bc], br, bc), float(top_prob[br, bc])
    areas = windows[..., 2] * windows[..., 3]
    return MapStats(
        fill=res.fill,
        geometry=res.plan.geometry,
        reveal=res.reveal,
        patch=res.plan.patch,
        stride=res.plan.stride,
        image_size=res.plan.image_size,
        target=int(res.target[n]),
        clean_class=clean,
        clean_target_prob=float(res.clean_target_prob[n]),
        heatmap=heat,
        drop=drop,
        class_map=cmap,
        top_prob=top_prob,
        class_counts=counts,
        windows=windows,
        cells=cells,
        most_important=_region(cells[r, c], r, c),
        max_drop=float(drop[r, c]),
        min_target_prob=float(heat.min()),
        max_target_prob=float(heat.max()),
        median_target_prob=float(np.median(heat)),
        windows_dropping=int((drop > IMPORTANT_DROP).sum()),
        kept=counts[clean],
        replacement=replacement,
        replacement_count=rep_counts.get(replacement, 0) if replacement is not None else 0,
        replacement_extent=extent,
        replacement_best=best,
        replacement_best_prob=best_prob,
        area_min=int(areas.min()),
        area_max=int(areas.max()),
        area_mean=float(areas.mean()),
    )


# --------------------------------------------------------------------------- per sample


@dataclass(frozen=True, eq=False)
class GalleryItem:
    """One occluded input exactly as the model saw it, and what the model made of it."""

    reason: str  # why it was picked, e.g. "largest drop"
    region: Cell  # the cell the position is drawn as
    window: Cell  # the rectangle actually filled
    image: np.ndarray  # float [H, W, C] in [0, 1]
    top_class: int
    top_prob: float
    target_prob: float


@dataclass(frozen=True, eq=False)
class FillStats:
    """One fill: the map under it, and what the model says about an image made only of the fill."""

    stats: MapStats
    only_image: np.ndarray  # float [H, W, C]: the whole image replaced by the fill
    only_class: int
    only_prob: float

    @property
    def fill(self) -> str:
        return self.stats.fill


@dataclass(frozen=True, eq=False)
class NotebookStats:
    """The notebook's geometry for one image, next to true size x size windows."""

    notebook: MapStats
    same_size: MapStats
    gallery: tuple[GalleryItem, ...]
    example: GalleryItem  # the notebook's input at the centre position
    same_example: GalleryItem  # the true size x size input at the same position
    last: Cell  # what the notebook's last position greys (its clipped square)
    last_class: int  # the most probable class of the last occluded input
    last_prob: float  # np.amax(out) as the notebook printed it


@dataclass(frozen=True, eq=False)
class SampleAnalysis:
    """Everything the report says about one image."""

    name: str  # e.g. "test #1" or a file name
    index: int | None  # the image's index in its data set (a test-set index), when there is one
    true_label: int | None
    image: np.ndarray  # float [H, W, C] in [0, 1]
    clean_probs: np.ndarray  # float [K]: softmax of the unoccluded image
    main: MapStats
    reveal: MapStats
    fills: tuple[FillStats, ...]
    gallery: tuple[GalleryItem, ...]
    notebook: NotebookStats | None

    @property
    def clean_class(self) -> int:
        return int(np.argmax(self.clean_probs))

    @property
    def clean_prob(self) -> float:
        return float(self.clean_probs[self.clean_class])

    @property
    def top3(self) -> tuple[tuple[int, float], ...]:
        order = sorted(range(len(self.clean_probs)), key=lambda k: (-self.clean_probs[k], k))[:3]
        return tuple((k, float(self.clean_probs[k])) for k in order)

    @property
    def agreement(self) -> int:
        """Positions where the occlude and reveal class maps name the same class."""
        return int((self.main.class_map == self.reveal.class_map).sum())

    @property
    def runner_up(self) -> int | None:
        """The second most probable class of the unoccluded image (None for a one-class model)."""
        return self.top3[1][0] if len(self.top3) > 1 else None

    @property
    def runner_up_wins(self) -> int:
        """Positions the clean class loses to the image's own runner-up (occlusion, the main setting)."""
        k = self.runner_up
        return 0 if k is None else int(self.main.class_counts[k])

    @property
    def fill_matches(self) -> tuple[int, int]:
        """(fills whose top replacement is the class of an image made only of that fill, fills under which
        some class takes over)."""
        taken = [f for f in self.fills if f.stats.replacement is not None]
        return sum(1 for f in taken if f.stats.replacement == f.only_class), len(taken)

    @property
    def fill_verdict(self) -> str:
        """Does the fill decide the replacement class? Among the fills under which some class takes over:
        "none" (no fill lets a class take over: nothing to compare), "one" (only one does: nothing to
        compare it with), "changes" (the top replacement differs between them: the occluder decides)
        or "same" (the same class under all of them: it comes from the image)."""
        taken = [f.stats.replacement for f in self.fills if f.stats.replacement is not None]
        if not taken:
            return "none"
        if len(taken) == 1:
            return "one"
        return "changes" if len(set(taken)) > 1 else "same"

    @property
    def fill_driven(self) -> bool:
        """True when the top replacement class differs between fills (among the fills under which some class
        takes over): then the occluder, not the image, decides which class replaces the clean one."""
        return self.fill_verdict == "changes"


def hwc(image: torch.Tensor) -> np.ndarray:
    """An image ``[C, H, W]`` as the figures draw it: float64 ``[H, W, C]``."""
    return image.permute(1, 2, 0).numpy().astype(np.float64)


def _item(res: Occlusion, stats: MapStats, n: int, row: int, col: int, reason: str) -> GalleryItem:
    return GalleryItem(
        reason,
        _region(stats.cells[row, col], row, col),
        _region(stats.windows[row, col], row, col),
        hwc(res.occluded(n, row, col)),
        int(stats.class_map[row, col]),
        float(stats.top_prob[row, col]),
        float(stats.heatmap[row, col]),
    )


def gallery(
    res: Occlusion, stats: MapStats, n: int, size: int, names: Sequence[str]
) -> tuple[GalleryItem, ...]:
    """A representative selection of occluded inputs: the largest and smallest drop, where each other
    class wins (its most confident position), then the centre and the corners."""
    picks: list[tuple[int, int, str]] = []

    def add(row: int, col: int, reason: str, merge: bool = True) -> None:
        for i, (r, c, why) in enumerate(picks):
            if (r, c) == (row, col):
                if merge:
                    picks[i] = (r, c, f"{why}, {reason}")
                return
        if len(picks) < size:
            picks.append((row, col, reason))

    rows, cols = stats.grid
    mi = stats.most_important
    add(mi.row, mi.col, "largest drop")
    for k in stats.replacement_counts():
        masked = np.where(stats.class_map == k, stats.top_prob, -1.0)
        r, c = divmod(int(np.argmax(masked)), cols)
        add(r, c, f"{names[k]} wins")
    least = int(np.argmin(stats.drop))
    add(*divmod(least, cols), "smallest drop")
    for r, c, where in (
        (rows // 2, cols // 2, "centre"),
        (0, 0, "top-left corner"),
        (0, cols - 1, "top-right corner"),
        (rows - 1, 0, "bottom-left corner"),
        (rows - 1, cols - 1, "bottom-right corner"),
    ):
        add(r, c, where, merge=False)
    for flat in range(rows * cols):
        add(*divmod(flat, cols), "grid", merge=False)
    return tuple(_item(res, stats, n, r, c, why) for r, c, why in picks)


def analyse(
    runs: ReportRuns,
    *,
    names: Sequence[str],
    sample_names: Sequence[str],
    indices: Sequence[int | None] | None = None,
    labels: Sequence[int | None] | None = None,
    gallery_size: int = GALLERY_SIZE,
) -> tuple[SampleAnalysis, ...]:
    """One ``SampleAnalysis`` per image of ``runs``."""
    count = len(runs.main.images)
    indices = list(indices) if indices is not None else [None] * count
    labels = list(labels) if labels is not None else [None] * count
    out = []
    for n in range(count):
        main = map_stats(runs.main, n)
        fills = tuple(
            FillStats(
                map_stats(res, n),
                hwc(only.occluded(n, 0, 0)),
                int(only.probs[n, 0, 0].argmax()),
                float(only.probs[n, 0, 0].max()),
            )
            for res, only in zip(runs.fills, runs.fill_only, strict=True)
        )
        nb = None
        if runs.notebook is not None and runs.same_size is not None:
            nstats, sstats = map_stats(runs.notebook, n), map_stats(runs.same_size, n)
            r, c = nstats.grid
            last = runs.notebook.probs[n, r - 1, c - 1]
            nb = NotebookStats(
                nstats,
                sstats,
                gallery(runs.notebook, nstats, n, NOTEBOOK_GALLERY_SIZE, names),
                _item(runs.notebook, nstats, n, r // 2, c // 2, "centre"),
                _item(runs.same_size, sstats, n, r // 2, c // 2, "centre"),
                _region(nstats.windows[r - 1, c - 1], r - 1, c - 1),
                int(last.argmax()),
                float(last.max()),
            )
        index, label = indices[n], labels[n]
        out.append(
            SampleAnalysis(
                name=sample_names[n],
                index=None if index is None else int(index),
                true_label=None if label is None else int(label),
                image=hwc(runs.main.images[n]),
                clean_probs=runs.main.clean_probs[n].numpy().astype(np.float64),
                main=main,
                reveal=map_stats(runs.reveal, n),
                fills=fills,
                gallery=gallery(runs.main, main, n, gallery_size, names),
                notebook=nb,
            )
        )
    return tuple(out)


# --------------------------------------------------------------------------- across samples


@dataclass(frozen=True)
class Takeover:
    """How often one class takes over under occlusion, across all samples."""

    cls: int
    positions: int  # positions (all samples) where it wins and is not the sample's clean class
    samples_top: int  # samples where it is the top replacement
    notebook_positions: int | None  # the same under the notebook's geometry


def takeovers(samples: Sequence[SampleAnalysis], num_classes: int) -> tuple[Takeover, ...]:
    """One ``Takeover`` per class, in class order."""
    out = []
    notebook = all(s.notebook is not None for s in samples)
    for k in range(num_classes):
        pos = sum(s.main.class_counts[k] for s in samples if s.main.clean_class != k)
        top = sum(1 for s in samples if s.main.replacement == k)
        nb = None
        if notebook:
            maps = [s.notebook.notebook for s in samples if s.notebook is not None]
            nb = sum(m.class_counts[k] for m in maps if m.clean_class != k)
        out.append(Takeover(k, pos, top, nb))
    return tuple(out)
