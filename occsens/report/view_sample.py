"""One sample's part of the view model: what differs per sample, its figures, its findings.

What is the same for every sample (how to read each figure, the notebook's geometry, the fills
themselves) is explained once on the page, by ``occsens.report.view``; a sample's section keeps its
own numbers, maps and sentences, with the secondary figures (the fills, the occluded inputs, the
notebook's square) folded away. The template reads the sample's numbers from its ``SampleAnalysis``
(``a``) and formats them itself (``occsens.report.templates``); only figures, names and sentences are
made here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from occsens.report import analysis as an
from occsens.report import figures as fg
from occsens.report import figures_sample as fs
from occsens.report.data import Finding, ReportData
from occsens.report.findings import (
    finding_fill_only,
    finding_fills,
    finding_last,
    finding_notebook,
    finding_prediction,
    finding_region,
    finding_reveal,
    finding_spread,
    finding_takeover,
)
from occsens.report.formatting import notebook_square, region_text

# The page enlarges a 32x32 sample image to this many CSS pixels, and an occluded input to THUMB.
IMAGE_PX = 160
THUMB_PX = 112
# A tiny image (8x8) is stored enlarged to this many pixels a side, nearest neighbour: where a viewer
# ignores CSS pixelated scaling (print, some mail readers) it then stays blocky, not a blur.
MIN_STORED = 32
# How the "All samples" table and a sample's fill section word ``SampleAnalysis.fill_verdict``.
FILL_VERDICT_WORDS = {
    "none": "no class takes over under any fill",
    "one": "cannot tell: one fill lets a class take over",
    "changes": "yes: the replacement changes with the fill",
    "same": "no: the same replacement under every fill",
}


def pixels(image: Any, alt: str, width: int) -> dict:
    """An image at its own pixels (at least ``MIN_STORED`` of them a side), shown ``width`` CSS pixels
    wide without smoothing."""
    h, w = image.shape[:2]
    scale = -(-MIN_STORED // min(h, w))  # ceiling division: 1 for images of MIN_STORED pixels or more
    png = fs.thumbnail_png(image, scale)
    return {"src": fg.data_uri(png), "alt": alt, "width": width, "height": round(width * h / w)}


def _thumbs(items: Sequence[an.GalleryItem], prefix: str) -> list[dict]:
    """The occluded inputs as the gallery shows them (``item``: the numbers of each)."""
    alt = "{} occluded input with {} filled"
    return [dict(pixels(g.image, alt.format(prefix, region_text(g.window)), THUMB_PX), item=g) for g in items]


def _figure(fig: Any, alt: str) -> dict:
    return {"src": fg.uri(fig), "alt": alt}


def sample_view(
    i: int, s: an.SampleAnalysis, data: ReportData, colours: Sequence[str]
) -> tuple[dict, list[Finding]]:
    """The template's values for sample ``i``, and every finding they contain."""
    names, m = data.names, s.main
    target = names[m.target]
    true = data.label_names[s.true_label] if s.true_label is not None else None
    title = f"{s.name}" + (f": {true}" if true else "")
    labels = [an.fill_label(f.fill) for f in s.fills]
    findings = {
        "prediction": [finding_prediction(s, names, data.label_names)],
        "maps": [finding_region(m, names), finding_spread(m, names), finding_takeover(m, names)],
        "reveal": [finding_reveal(s, names)],
        "fills": [finding_fills(s, names), finding_fill_only(s, names)],
        "notebook": [],
    }
    view: dict[str, Any] = {
        "a": s,
        "id": f"sample-{i + 1}",
        "number": i + 1,
        "title": title,
        "true": true or "not given",
        "notes": list(data.notes[i]) if i < len(data.notes) else [],
        "pred": names[s.clean_class],
        "correct": None if true is None else names[s.clean_class] == true,
        "target": target,
        "image": pixels(s.image, f"{title}, {s.image.shape[1]}x{s.image.shape[0]} pixels", IMAGE_PX),
        "heatmap": _figure(
            fs.heatmap_figure(s.image, m, target),
            f"heatmap of P({target}) per window and drop map over {s.name}",
        ),
        "classmap": _figure(
            fs.class_map_figure(m, names, colours),
            f"most probable class per window and class counts for {s.name}",
        ),
        "gallery": _thumbs(s.gallery, s.name),
        "reveal": _figure(
            fs.reveal_figure(m, s.reveal, names, colours, target),
            f"background-only and patch-only maps for {s.name}",
        ),
        "fills": _figure(
            fs.fills_figure(s.fills, labels, names, colours),
            f"class maps under {len(s.fills)} fills and images made only of each fill, {s.name}",
        ),
        "fill_rows": [
            {
                "f": f,
                "label": label,
                "counts": ", ".join(
                    f"{names[k]} {v}"
                    for k, v in sorted(enumerate(f.stats.class_counts), key=lambda kv: (-kv[1], kv[0]))
                    if v
                ),
                "only_img": pixels(f.only_image, f"an image made only of the {label} fill", 32),
            }
            for f, label in zip(s.fills, labels, strict=True)
        ],
        "fill_verdict": FILL_VERDICT_WORDS[s.fill_verdict],
        "notebook": None,
    }
    nb = s.notebook
    if nb is not None:
        findings["notebook"] = [finding_notebook(nb, names), finding_last(s, nb, names)]
        size = nb.notebook.patch[0]
        view["notebook"] = dict(
            _figure(
                fs.notebook_maps_figure(nb.notebook, nb.same_size, names, colours, target),
                f"maps under the notebook's {notebook_square(size)} square and true {size}x{size} windows: "
                f"{s.name}",
            ),
            size=size,
            gallery=_thumbs(nb.gallery, f"{s.name}, notebook geometry"),
        )
    for key, items in findings.items():
        view[f"findings_{key}"] = [f.text for f in items]
    return view, [f for items in findings.values() for f in items]
