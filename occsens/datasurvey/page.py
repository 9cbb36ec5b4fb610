"""The data-set report: ``analysis.DataSet`` and its tiles, laid out and formatted by ``survey.html.j2``.

One self-contained HTML file in the house style (``templates/report.css`` inlined), autoescaped, every
figure a base64 PNG with alt text, no script, no external reference, no timestamp.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from occsens.datasurvey import store
from occsens.datasurvey.analysis import DataSet, analyse
from occsens.datasurvey.checks import read_survey_checks
from occsens.datasurvey.shortcuts import FOCUS_SHARE
from occsens.files import write_files
from occsens.report.figures import DROP_CMAP, PROB_CMAP, data_uri
from occsens.report.formatting import pct
from occsens.report.templates import render_template

TEMPLATE = "survey.html.j2"
TILE = 72  # px a side for map tiles and thumbnails: a row of a class's figures fits a phone's width


def _png(rgb: np.ndarray) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="PNG")
    return data_uri(out.getvalue())


def tile(values: np.ndarray, cmap: str, low: float, high: float) -> str:
    """A map as a TILE x TILE PNG data URI, each cell a flat block of its colour."""
    from matplotlib import colormaps
    from PIL import Image

    span = high - low if high > low else 1.0
    rgba = colormaps[cmap]((np.asarray(values, dtype=np.float64) - low) / span)
    picture = Image.fromarray((rgba[:, :, :3] * 255).round().astype(np.uint8))
    return _png(np.asarray(picture.resize((TILE, TILE), Image.Resampling.NEAREST)))


def thumbnail_uri(png: bytes) -> str:
    from PIL import Image

    picture = Image.open(io.BytesIO(png)).convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST)
    return _png(np.asarray(picture))


def _rows(folder: Path, indices: set[int]) -> dict[int, dict[str, Any]]:
    """The thumbnail and drop map of the images ``indices``, read from the store with a filter."""
    if not indices:
        return {}
    import pyarrow.parquet as pq

    table = pq.read_table(
        str(folder), columns=["index", "thumbnail", "drop"], filters=[("index", "in", sorted(indices))]
    )
    return {int(row["index"]): row for row in table.to_pylist()}


def _cell(share: float) -> str:
    """Background of a takeover-matrix cell: white to the report's accent blue (a number, never text)."""
    alpha = max(0.0, min(1.0, share))
    return f"background: rgba(47, 109, 179, {alpha:.3f}); color: {'#fff' if alpha > 0.55 else 'inherit'}"


def _matrix(m: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": names[i], "cells": [{"text": pct(v) if v else "", "style": _cell(v)} for v in row]}
        for i, row in enumerate(m)
    ]


def view(data: DataSet, folder: Path) -> dict[str, Any]:
    """The tiles and examples for the template, beside the records it reads and formats itself."""
    m = data.manifest
    names = list(m["class_names"])
    r, c = m["grid"]
    drop_high = max(float(np.abs(cs.mean_drop).max()) for cs in data.classes) or 1.0
    wanted = {i for cs in data.classes for st in cs.strategies for i in st.examples}
    wanted |= {w.index for w in data.wrong}
    rows = _rows(folder, wanted)
    example_high = max((float(np.abs(np.asarray(rows[i]["drop"])).max()) for i in rows), default=1.0) or 1.0

    def example(i: int) -> dict[str, Any]:
        row = rows[i]
        return {
            "index": i,
            "image": thumbnail_uri(row["thumbnail"]),
            "drop": tile(np.asarray(row["drop"]).reshape(r, c), DROP_CMAP, -example_high, example_high),
        }

    classes = []
    for cs in data.classes:
        q1, med, q3 = cs.centre_share
        strategies = [
            {
                "st": st,
                "map": tile(st.mean_map, PROB_CMAP, 0.0, float(st.mean_map.max()) or 1.0),
                "examples": [example(i) for i in st.examples if i in rows],
            }
            for st in cs.strategies
        ]
        classes.append(
            {
                "c": cs,
                "survival": tile(cs.survival, PROB_CMAP, 0.0, 1.0),
                "drop": tile(cs.mean_drop, DROP_CMAP, -drop_high, drop_high),
                "centre": "" if np.isnan(med) else f"{pct(med)} ({pct(q1)}–{pct(q3)})",
                "strategies": strategies,
            }
        )
    return {
        "data": data,
        "m": m,
        "accuracy": pct(data.correct / data.images) if data.grouped_by == "true class" else "",
        "names": names,
        "classes": classes,
        "takeover": _matrix(data.takeover, names),
        "notebook_takeover": None if (nbm := data.notebook_takeover) is None else _matrix(nbm, names),
        "focus_share": FOCUS_SHARE,
        "wrong": [
            dict(example(w.index) if w.index in rows else {"image": "", "drop": ""}, w=w) for w in data.wrong
        ],
        "suspects": sum(st.suspect for cs in data.classes for st in cs.strategies),
        "checks": read_survey_checks(folder),
    }


def write_report(folder: str | Path, max_clusters: int = 6) -> Path:
    """Analyse the finished survey in ``folder`` and write its report, ``folder/_report.html``."""
    path = Path(folder)
    html = render_template(TEMPLATE, view(analyse(path, max_clusters), path))
    write_files(path, {store.REPORT: html.encode("utf-8")}, "the survey report")
    return path / store.REPORT
