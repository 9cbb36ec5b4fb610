"""One sample's part of the view model: what differs per sample, its figures, its findings.

What is the same for every sample (how to read each figure, the notebook's geometry, the fills
themselves) is explained once on the page, by ``occsens.report.view``; a sample's section keeps its
own numbers, maps and sentences, with the secondary figures (the fills, the occluded inputs, the
notebook's square) folded away.
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
from occsens.report.formatting import extent_text, notebook_square, pct, prob, region_text, rep_name

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


def _counts_rows(m: an.MapStats, names: Sequence[str], colours: Sequence[str]) -> list[dict]:
    return [
        {
            "name": names[k],
            "count": v,
            "colour": colours[k],
            "clean": k == m.clean_class,
            "share": pct(v / m.positions),
        }
        for k, v in enumerate(m.class_counts)
        if v
    ]


def _thumb(item: an.GalleryItem, names: Sequence[str], target: str, prefix: str) -> dict:
    return {
        **pixels(item.image, f"{prefix} occluded input with {region_text(item.window)} filled", THUMB_PX),
        "reason": item.reason,
        "filled": region_text(item.window),
        "cls": names[item.top_class],
        "prob": prob(item.top_prob),
        "target": target,
        "target_prob": prob(item.target_prob),
    }


def map_row(label: str, m: an.MapStats, names: Sequence[str]) -> dict:
    return {
        "label": label,
        "kept": m.kept,
        "positions": m.positions,
        "replacement": rep_name(m, names),
        "min": prob(m.min_target_prob),
        "median": prob(m.median_target_prob),
        "max": prob(m.max_target_prob),
        "region": region_text(m.most_important),
        "drop": prob(m.max_drop),
        "dropping": m.positions_dropping,
        "area": m.area_max,
        "area_min": m.area_min,
        "area_mean": f"{m.area_mean:.1f}",
        "area_pct": pct(m.area_max / m.pixels),
        "clean": prob(m.clean_target_prob),
        "rep_name": "none" if m.replacement is None else names[m.replacement],
        "rep_count": m.replacement_count,
        "rep_extent": "" if m.replacement_extent is None else extent_text(m.replacement_extent),
        "rep_best": "" if m.replacement_best is None else region_text(m.replacement_best),
        "rep_best_prob": prob(m.replacement_best_prob),
    }


def _fills_view(s: an.SampleAnalysis, names: Sequence[str], colours: Sequence[str]) -> dict:
    return {
        "src": fg.uri(fs.fills_figure(s.fills, [an.fill_label(f.fill) for f in s.fills], names, colours)),
        "alt": f"class maps under {len(s.fills)} fills and images made only of each fill, {s.name}",
        "rows": [
            dict(
                map_row(an.fill_label(f.fill), f.stats, names),
                counts=", ".join(
                    f"{names[k]} {v}"
                    for k, v in sorted(enumerate(f.stats.class_counts), key=lambda kv: (-kv[1], kv[0]))
                    if v
                ),
                only_prob=prob(f.only_prob),
                only_img=pixels(f.only_image, f"an image made only of the {an.fill_label(f.fill)} fill", 32),
                only_class=names[f.only_class],
            )
            for f in s.fills
        ],
        "verdict": FILL_VERDICT_WORDS[s.fill_verdict],
        "matches": sum(
            1 for f in s.fills if f.stats.replacement is not None and f.stats.replacement == f.only_class
        ),
        "with_rep": sum(1 for f in s.fills if f.stats.replacement is not None),
    }


def _notebook_view(
    s: an.SampleAnalysis, nb: an.NotebookStats, names: Sequence[str], colours: Sequence[str], target: str
) -> dict:
    size = nb.notebook.patch[0]
    return {
        "size": size,
        "src": fg.uri(fs.notebook_maps_figure(nb.notebook, nb.same_size, names, colours, target)),
        "alt": f"maps under the notebook's {notebook_square(size)} square and true {size}x{size} windows: "
        f"{s.name}",
        "rows": [
            map_row(
                f"notebook: {notebook_square(size)} square drawn as a {size}x{size} cell", nb.notebook, names
            ),
            map_row(f"true {size}x{size} windows", nb.same_size, names),
        ],
        "gallery": [_thumb(g, names, target, f"{s.name}, notebook geometry") for g in nb.gallery],
        "last": region_text(nb.last),
        "last_prob": prob(nb.last_prob),
        "last_class": names[nb.last_class],
        "last_other": nb.last_class != s.clean_class,
        "kept": nb.notebook.kept,
        "positions": nb.notebook.positions,
    }


def sample_view(
    i: int, s: an.SampleAnalysis, data: ReportData, colours: Sequence[str]
) -> tuple[dict, list[Finding]]:
    """The template's values for sample ``i``, and every finding they contain."""
    names, m = data.names, s.main
    target = names[m.target]
    true = data.label_names[s.true_label] if s.true_label is not None else None
    title = f"{s.name}" + (f": {true}" if true else "")
    findings = {
        "prediction": [finding_prediction(s, names, data.label_names)],
        "maps": [finding_region(m, names), finding_spread(m, names), finding_takeover(m, names)],
        "reveal": [finding_reveal(s, names)],
        "fills": [finding_fills(s, names), finding_fill_only(s, names)],
        "notebook": [],
    }
    view: dict[str, Any] = {
        "id": f"sample-{i + 1}",
        "number": i + 1,
        "name": s.name,
        "index": s.index,
        "title": title,
        "true": true or "not given",
        "notes": list(data.notes[i]) if i < len(data.notes) else [],
        "pred": names[s.clean_class],
        "correct": None if true is None else names[s.clean_class] == true,
        "clean_prob": prob(s.clean_prob),
        "clean_prob_exact": repr(s.clean_prob),
        "top3": [{"name": names[k], "prob": prob(p), "colour": colours[k]} for k, p in s.top3],
        "target": target,
        "image": pixels(s.image, f"{title}, {s.image.shape[1]}x{s.image.shape[0]} pixels", IMAGE_PX),
        "main": map_row(an.fill_label(m.fill), m, names),
        "heatmap": {
            "src": fg.uri(fs.heatmap_figure(s.image, m, target)),
            "alt": f"heatmap of P({target}) per window and drop map over {s.name}",
        },
        "classmap": {
            "src": fg.uri(fs.class_map_figure(m, names, colours)),
            "alt": f"most probable class per window and class counts for {s.name}",
        },
        "counts": _counts_rows(m, names, colours),
        "windows": m.positions,
        "counts_total": sum(m.class_counts),
        "gallery": [_thumb(g, names, target, s.name) for g in s.gallery],
        "reveal": {
            "src": fg.uri(fs.reveal_figure(m, s.reveal, names, colours, target)),
            "alt": f"background-only and patch-only maps for {s.name}",
            "occ": map_row("image minus the window (occlude)", m, names),
            "rev": map_row("only the window (reveal)", s.reveal, names),
            "agreement": s.agreement,
        },
        "fills": _fills_view(s, names, colours),
        "notebook": None,
    }
    if s.notebook is not None:
        findings["notebook"] = [finding_notebook(s.notebook, names), finding_last(s, s.notebook, names)]
        view["notebook"] = _notebook_view(s, s.notebook, names, colours, target)
    for key, items in findings.items():
        view[f"findings_{key}"] = [f.text for f in items]
    return view, [f for items in findings.values() for f in items]
