"""What a survey says about the model over the whole data set, read from its store a shard at a time.

Computed once here, into a frozen ``DataSet`` of numbers; the page (``page.py``) and anyone else (the
default report's Q2, through ``cited``) present them. Images are grouped by their true
class where the store has labels, else by the model's clean prediction (``DataSet.grouped_by``).

* **Survival** of class k at window w: the share of images of class k whose clean prediction is still
  the most probable class with w filled.
* **Takeover** ``[k, j]``: of all windows of images of class k where the clean prediction lost, the
  share that class j won (rows sum to 1 where any window was lost). ``takeover_rate[k]``: the share
  of class k's windows lost at all. The same under the notebook's square, where the store has it.
* **Mean drop map** per class: the mean over its images of the clean class's probability drop.
* **Where the evidence lies**: per image, the share of its positive drop mass in the windows whose
  centre lies in the middle half of the image (both axes); the rest lies towards the border. Per
  class, its quartiles beside ``centre_area``, the share a map spread evenly would give.
* **Misclassified**: per class the count, and the ``MAX_WRONG`` most confidently wrong images.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from occsens.datasurvey import store
from occsens.datasurvey.shortcuts import MAX_MAPS_PER_CLASS, Strategy, strategy_clusters
from occsens.errors import OcclusionError
from occsens.report.data import SurveyClass, SurveyNumbers

MAX_WRONG = 24  # the misclassified images shown: two rows of a page; the counts cover all of them


@dataclass(frozen=True)
class Wrong:
    index: int
    name: str
    label: int
    clean_class: int
    clean_prob: float


@dataclass(frozen=True)
class ClassSummary:
    k: int
    name: str
    images: int
    correct: int
    survival: np.ndarray  # float [R, C]
    mean_drop: np.ndarray  # float [R, C]
    takeover_rate: float
    notebook_takeover_rate: float | None
    centre_share: tuple[float, float, float]  # quartiles over the class's images (nan without evidence)
    strategies: tuple[Strategy, ...]


@dataclass(frozen=True)
class DataSet:
    manifest: dict[str, Any]
    grouped_by: str  # "true class" or "predicted class"
    images: int
    labelled: int
    correct: int
    classes: tuple[ClassSummary, ...]
    takeover: np.ndarray  # float [K, K], rows: the class of the image, columns: the class that won
    notebook_takeover: np.ndarray | None
    centre_area: float
    wrong: tuple[Wrong, ...]
    wrong_total: int


def shard_paths(folder: Path, manifest: dict[str, Any]) -> list[Path]:
    expected = -(-manifest["settings"]["images"] // manifest["settings"]["shard_size"])
    if len(manifest["shards"]) != expected:
        raise OcclusionError(
            f"the survey in {str(folder)!r} is unfinished ({len(manifest['shards'])} of {expected} shards); "
            "finish it with occsens survey --resume first"
        )
    return [folder / s["file"] for s in manifest["shards"]]


def centre_windows(windows: np.ndarray, height: int, width: int) -> np.ndarray:
    """bool [P]: windows whose centre lies in the middle half of the image, along both axes."""
    cy = windows[:, 0] + windows[:, 2] / 2
    cx = windows[:, 1] + windows[:, 3] / 2
    return (np.abs(cy - height / 2) <= height / 4) & (np.abs(cx - width / 2) <= width / 4)


def _fixed(table: Any, name: str, dtype: Any) -> np.ndarray:
    """A fixed-size-list column as a 2-D numpy array (no per-row Python objects)."""
    column = table.column(name).combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).astype(dtype).reshape(len(column), -1)


def analyse(folder: str | Path, max_clusters: int = 6) -> DataSet:
    """The data-set numbers of the finished survey in ``folder`` (``max_clusters=0``: no strategy
    clusters)."""
    import pyarrow.parquet as pq

    path = Path(folder)
    manifest = store.read_manifest(path)
    if manifest is None:
        raise OcclusionError(f"{str(path)!r} holds no survey (no {store.MANIFEST})")
    names = manifest["class_names"]
    k = len(names)
    r, c = manifest["grid"]
    windows = np.asarray(manifest["windows"])
    _, h, w = manifest["settings"]["image_size"]
    centre = centre_windows(windows, h, w)
    notebook = bool(manifest["settings"]["notebook"])
    survival = np.zeros((k, r * c))
    drop_sum = np.zeros((k, r * c))
    takeover = np.zeros((k, k))
    nb_takeover = np.zeros((k, k)) if notebook else None
    windows_lost = np.zeros(k)
    nb_lost = np.zeros(k)
    count = np.zeros(k, dtype=np.int64)
    correct = np.zeros(k, dtype=np.int64)
    shares: list[list[float]] = [[] for _ in range(k)]
    maps: list[list[np.ndarray]] = [[] for _ in range(k)]
    members: list[list[int]] = [[] for _ in range(k)]
    wrong_heap: list[tuple[float, int, Wrong]] = []
    wrong_total = labelled = 0
    columns = ["index", "name", "label", "clean_class", "clean_prob", "drop", "class_map"]
    columns += ["notebook_class_map"] if notebook else []
    has_labels = None
    for shard in shard_paths(path, manifest):
        table = pq.read_table(shard, columns=columns)
        index = table.column("index").to_numpy()
        label = np.asarray(table.column("label").to_pylist(), dtype=object)
        clean = table.column("clean_class").to_numpy()
        prob = table.column("clean_prob").to_numpy()
        drop = _fixed(table, "drop", np.float64)
        cmap = _fixed(table, "class_map", np.int64)
        nb_map = _fixed(table, "notebook_class_map", np.int64) if notebook else None
        if has_labels is None:  # grouped by true class only when every image has one
            has_labels = all(v is not None for v in label)
        group = label.astype(np.int64) if has_labels else clean
        labelled += int(sum(v is not None for v in label))
        kept = cmap == clean[:, None]
        positive = np.clip(drop, 0, None)
        total = positive.sum(axis=1)
        share = np.where(total > 0, (positive * centre).sum(axis=1) / np.where(total > 0, total, 1), np.nan)
        for i in range(len(index)):
            g = int(group[i])
            count[g] += 1
            survival[g] += kept[i]
            drop_sum[g] += drop[i]
            lost = cmap[i][~kept[i]]
            windows_lost[g] += len(lost)
            np.add.at(takeover[g], lost, 1)
            if nb_takeover is not None and nb_map is not None:
                nb_lost_classes = nb_map[i][nb_map[i] != clean[i]]
                nb_lost[g] += len(nb_lost_classes)
                np.add.at(nb_takeover[g], nb_lost_classes, 1)
            if not np.isnan(share[i]):
                shares[g].append(float(share[i]))
            if len(maps[g]) < MAX_MAPS_PER_CLASS:
                maps[g].append(drop[i].reshape(r, c))
                members[g].append(int(index[i]))
            if has_labels:
                if clean[i] == group[i]:
                    correct[g] += 1
                else:
                    wrong_total += 1
                    name = str(table.column("name")[i])
                    item = Wrong(int(index[i]), name, g, int(clean[i]), float(prob[i]))
                    heapq.heappush(wrong_heap, (float(prob[i]), -int(index[i]), item))
                    if len(wrong_heap) > MAX_WRONG:
                        heapq.heappop(wrong_heap)
    nb_windows = len(manifest["notebook_windows"] or []) if notebook else 0
    summaries = []
    for g in range(k):
        n = max(int(count[g]), 1)
        q = tuple(np.quantile(shares[g], [0.25, 0.5, 0.75])) if shares[g] else (np.nan,) * 3
        summaries.append(
            ClassSummary(
                g,
                names[g],
                int(count[g]),
                int(correct[g]),
                (survival[g] / n).reshape(r, c),
                (drop_sum[g] / n).reshape(r, c),
                float(windows_lost[g] / (n * r * c)),
                float(nb_lost[g] / (n * nb_windows)) if notebook and nb_windows else None,
                (float(q[0]), float(q[1]), float(q[2])),
                tuple(strategy_clusters(np.stack(maps[g]), members[g], max_clusters))
                if maps[g] and max_clusters
                else (),
            )
        )

    def rows(m: np.ndarray) -> np.ndarray:
        sums = m.sum(axis=1, keepdims=True)
        return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)

    wrong = tuple(item for _, _, item in sorted(wrong_heap, key=lambda t: (-t[0], -t[1])))
    return DataSet(
        manifest,
        "true class" if has_labels else "predicted class",
        int(count.sum()),
        labelled,
        int(correct.sum()),
        tuple(summaries),
        rows(takeover),
        rows(nb_takeover) if nb_takeover is not None else None,
        float(centre.mean()),
        wrong,
        wrong_total,
    )


def cited(folder: str | Path, model: Any) -> SurveyNumbers:
    """The numbers a report's answer to "why do other classes take over?" cites from the finished survey
    in ``folder``: per class, the share of windows lost and the class that wins most of them, under the
    true windows and (where the survey stored it) the notebook's square.

    Refused (``OcclusionError``) unless the survey was made with ``model`` (the same weights, by digest)
    and is finished (``analyse``): a survey of another model says nothing about this one. The report compares
    the settings (patch, stride, fill, output) with its own before any work."""
    from occsens.datasurvey.run import model_digest  # run imports the engine: only when citing

    store._require_pyarrow()
    path = Path(folder)
    manifest = store.read_manifest(path)
    if manifest is None:
        raise OcclusionError(
            f"survey {str(path)!r} holds no survey (no {store.MANIFEST}); make one with occsens survey"
        )
    settings = manifest["settings"]
    if manifest["model"]["sha256"] != model_digest(model):
        raise OcclusionError(
            f"survey {str(path)!r} was made with another model ({manifest['model']['name']}, other "
            "weights); survey this model (occsens survey --out DIR) and cite that"
        )
    data = analyse(path, max_clusters=0)  # no strategy clusters: only the takeover numbers

    def top(row: np.ndarray) -> tuple[int | None, float]:
        return (int(row.argmax()), float(row.max())) if row.any() else (None, 0.0)

    classes = []
    for c in data.classes:
        taker, share = top(data.takeover[c.k])
        nb_taker, nb_share = (
            (None, None) if data.notebook_takeover is None else top(data.notebook_takeover[c.k])
        )
        classes.append(
            SurveyClass(
                c.k, c.images, c.takeover_rate, taker, share, c.notebook_takeover_rate, nb_taker, nb_share
            )
        )
    return SurveyNumbers(
        folder=str(path),
        source=str(settings.get("source") or "a data set"),
        images=data.images,
        grouped_by=data.grouped_by,
        patch=(int(settings["patch"][0]), int(settings["patch"][1])),
        stride=(int(settings["stride"][0]), int(settings["stride"][1])),
        fill=str(settings["fill"]),
        output=str(settings["output"]),
        classes=tuple(classes),
    )
