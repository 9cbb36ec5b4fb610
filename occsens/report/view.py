"""The view model: the report's analysis turned into plain values and formatted strings for the template.

``build_view`` walks the samples, draws their figures (``occsens.report.figures``, embedded as
``data:`` URIs so the page stays one file), collects the findings of each section
(``occsens.report.findings``) and returns the dict the template renders, with every finding it
contains. Nothing in the view is computed by the template: it only places what is here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from occsens.checks import CheckResult, headline
from occsens.report import analysis as an
from occsens.report import colours as cl
from occsens.report import figures as fg
from occsens.report.data import Finding, ReportData
from occsens.report.findings import (
    finding_card,
    finding_fill_only,
    finding_fills,
    finding_last,
    finding_notebook,
    finding_prediction,
    finding_region,
    finding_reveal,
    finding_spread,
    finding_takeover,
    finding_takeovers,
    findings_twins,
)
from occsens.report.formatting import extent_text, notebook_square, pct, prob, region_text, rep_name


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


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
        "src": data_uri(fg.thumbnail_png(item.image)),
        "alt": f"{prefix} occluded input with {region_text(item.window)} filled",
        "reason": item.reason,
        "filled": region_text(item.window),
        "cls": names[item.top_class],
        "prob": prob(item.top_prob),
        "target": target,
        "target_prob": prob(item.target_prob),
    }


def _map_row(label: str, m: an.MapStats, names: Sequence[str]) -> dict:
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


def _sample_view(
    i: int, s: an.SampleAnalysis, data: ReportData, colours: Sequence[str]
) -> tuple[dict, list[Finding]]:
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
        "image": {
            "src": data_uri(fg.image_png(s.image, title)),
            "alt": f"{title}, enlarged {s.image.shape[1]}x{s.image.shape[0]} pixels",
        },
        "main": _map_row(an.fill_label(m.fill), m, names),
        "heatmap": {
            "src": data_uri(fg.heatmap_png(s.image, m, target)),
            "alt": f"heatmap of P({target}) per window and drop map over {s.name}",
        },
        "classmap": {
            "src": data_uri(fg.class_map_png(m, names, colours)),
            "alt": f"most probable class per window and class counts for {s.name}",
        },
        "counts": _counts_rows(m, names, colours),
        "windows": m.positions,
        "counts_total": sum(m.class_counts),
        "gallery": [_thumb(g, names, target, s.name) for g in s.gallery],
        "reveal": {
            "src": data_uri(fg.reveal_png(m, s.reveal, names, colours, target)),
            "alt": f"background-only and patch-only maps for {s.name}",
            "occ": _map_row("image minus the window (occlude)", m, names),
            "rev": _map_row("only the window (reveal)", s.reveal, names),
            "agreement": s.agreement,
        },
        "fills": {
            "src": data_uri(fg.fills_png(s.fills, [an.fill_label(f.fill) for f in s.fills], names, colours)),
            "alt": f"class maps under {len(s.fills)} fills and images made only of each fill, {s.name}",
            "rows": [
                dict(
                    _map_row(an.fill_label(f.fill), f.stats, names),
                    only=names[f.only_class],
                    counts=", ".join(
                        f"{names[k]} {v}"
                        for k, v in sorted(enumerate(f.stats.class_counts), key=lambda kv: (-kv[1], kv[0]))
                        if v
                    ),
                    only_prob=prob(f.only_prob),
                    only_src=data_uri(fg.thumbnail_png(f.only_image, 2)),
                )
                for f in s.fills
            ],
            "driven": s.fill_driven,
            "matches": sum(
                1 for f in s.fills if f.stats.replacement is not None and f.stats.replacement == f.only_class
            ),
            "with_rep": sum(1 for f in s.fills if f.stats.replacement is not None),
        },
        "notebook": None,
    }
    nb = s.notebook
    if nb is not None:
        findings["notebook"] = [finding_notebook(nb, names), finding_last(s, nb, names)]
        size = nb.notebook.patch[0]
        rows, cols = nb.same_size.grid
        view["notebook"] = {
            "size": size,
            "src": data_uri(
                fg.geometry_png(
                    nb.notebook, nb.same_size, nb.example, nb.same_example, names, colours, target
                )
            ),
            "alt": f"the notebook's {notebook_square(size)} square next to true {size}x{size} windows, "
            f"{s.name}",
            "rows": [
                _map_row(
                    f"notebook: {notebook_square(size)} square drawn as a {size}x{size} cell",
                    nb.notebook,
                    names,
                ),
                _map_row(f"true {size}x{size} windows", nb.same_size, names),
            ],
            "gallery": [_thumb(g, names, target, f"{s.name}, notebook geometry") for g in nb.gallery],
            "last": region_text(nb.last),
            "last_prob": prob(nb.last_prob),
            "last_class": names[nb.last_class],
            "grid": f"{rows}x{cols}",
        }
    for key, items in findings.items():
        view[f"findings_{key}"] = [f.text for f in items]
    return view, [f for items in findings.values() for f in items]


def _card_view(card: an.Card, names: Sequence[str]) -> dict:
    return {
        "name": card.name,
        "accuracy": prob(card.test_accuracy),
        "parameters": _int(card.parameters),
        "flops": _int(card.flops),
        "architecture": card.architecture,
        "epochs": "" if card.epochs is None else str(card.epochs),
        "note": card.note,
        "per_class": [
            {"name": n, "acc": prob(a)} for n, a in zip(names, card.per_class_accuracy, strict=True)
        ],
    }


def _int(v: int | None) -> str:
    return "" if v is None else f"{v:,}"


def build_view(data: ReportData, step: Callable[[str], None] | None = None) -> tuple[dict, list[Finding]]:
    """The view model: plain values and formatted strings only, plus every finding it contains."""
    names = data.names
    colours = cl.class_colours(len(names), cl.shown_classes(cl.class_frequency(data.samples, data.twins)))
    all_findings: list[Finding] = []
    samples = []
    for i, s in enumerate(data.samples):
        view, found = _sample_view(i, s, data, colours)
        if step is not None:
            step(f"figures {s.name}")
        samples.append(view)
        all_findings += found
    overview_findings = []
    card = None
    if data.model.card is not None:
        f = finding_card(data.model.card, names)
        overview_findings.append(f)
        card = _card_view(data.model.card, names)
        card["figure"] = {
            "src": data_uri(fg.accuracy_png([("this model", data.model.card)], names)),
            "alt": "per-class test accuracy of the model",
        }
    take = finding_takeovers(data)
    takeover_findings = [take] if take else []
    notebook = all(t.notebook_positions is not None for t in data.takeovers)
    twins = None
    twin_findings: list[Finding] = []
    if data.twins is not None:
        c = data.twins
        twin_findings = findings_twins(c, names)
        twins = {
            "colour": _card_view(c.colour, names),
            "grey": _card_view(c.grey, names),
            "accuracy": {
                "src": data_uri(fg.accuracy_png([("colour", c.colour), ("greyscale", c.grey)], names)),
                "alt": "per-class test accuracy, colour model and greyscale twin",
            },
            "maps": {
                "src": data_uri(
                    fg.twins_png(
                        c, [s.image for s in data.samples], [s.name for s in data.samples], names, colours
                    )
                ),
                "alt": "colour and greyscale maps side by side for every sample",
            },
            "rows": [
                {
                    "id": f"sample-{i + 1}",
                    "name": s.name,
                    "true": data.label_names[s.true_label] if s.true_label is not None else "not given",
                    "colour_pred": names[int(np.argmax(t.colour_probs))],
                    "colour_prob": prob(float(np.max(t.colour_probs))),
                    "grey_pred": names[int(np.argmax(t.grey_probs))],
                    "grey_prob": prob(float(np.max(t.grey_probs))),
                    "colour_drop": prob(t.colour.max_drop),
                    "grey_drop": prob(t.grey.max_drop),
                    "colour_region": region_text(t.colour.most_important),
                    "grey_region": region_text(t.grey.most_important),
                    "colour_kept": t.colour.kept,
                    "grey_kept": t.grey.kept,
                    "positions": t.colour.positions,
                }
                for i, (s, t) in enumerate(zip(data.samples, c.samples, strict=True))
            ],
            "labelled": c.labelled,
            "colour_correct": c.correct("colour"),
            "grey_correct": c.correct("grey"),
            "colour_mean_drop": prob(float(np.mean([t.colour.max_drop for t in c.samples]))),
            "grey_mean_drop": prob(float(np.mean([t.grey.max_drop for t in c.samples]))),
            "gap": f"{abs(100 * c.accuracy_gap):.1f}",
        }
    all_findings = overview_findings + takeover_findings + twin_findings + all_findings
    positions = data.samples[0].main.positions if data.samples else 0
    grid = data.samples[0].main.grid if data.samples else (0, 0)
    view = {
        "title": data.title,
        "version": data.version,
        "timestamp": data.timestamp,
        "model": {
            "label": data.model.label,
            "note": data.model.note,
            "parameters": _int(data.model.parameters),
        },
        "settings": {
            "patch": f"{data.patch[0]}x{data.patch[1]}",
            "stride": f"{data.stride[0]}x{data.stride[1]}",
            "fill": an.fill_label(data.fill),
            "positions": positions,
            "grid": f"{grid[0]}x{grid[1]}",
            "fills": [an.fill_label(f.fill) for f in data.samples[0].fills] if data.samples else [],
            "threshold": f"{an.IMPORTANT_DROP:g}",
            "scores": data.scores,
            "score": "probability" if data.probabilities else "score",
        },
        "card": card,
        "card_findings": [f.text for f in overview_findings],
        "samples": samples,
        "takeover": {
            "src": data_uri(fg.takeover_png(data.takeovers, names, colours)),
            "alt": "positions taken over by each class across all samples",
            "rows": [
                {
                    "name": names[t.cls],
                    "colour": colours[t.cls],
                    "positions": t.positions,
                    "samples_top": t.samples_top,
                    "notebook": "" if t.notebook_positions is None else t.notebook_positions,
                }
                for t in _takeover_rows(data.takeovers)
            ],
            "quiet": len(data.takeovers) - len(_takeover_rows(data.takeovers)),
            "notebook": notebook,
            "findings": [f.text for f in takeover_findings],
            "lost": sum(s.main.lost for s in data.samples),
            "windows": sum(s.main.positions for s in data.samples),
            "notebook_lost": sum(s.notebook.notebook.lost for s in data.samples if s.notebook)
            if notebook
            else "",
        },
        "twins": twins,
        "twins_missing": data.twins_missing,
        "twin_findings": [f.text for f in twin_findings],
        "checks": check_rows(data.checks) if data.checks is not None else None,
        "legend": [{"name": n, "colour": c} for n, c in cl.legend_entries(names, colours)],
    }
    return view, all_findings


def _takeover_rows(takeovers: Sequence[an.Takeover]) -> list[an.Takeover]:
    """The takeover table's rows: every class up to ``MAX_SHOWN_CLASSES``; past that, only the classes
    that take over somewhere (a 1000-class model would list 990 rows of zeros)."""
    if len(takeovers) <= cl.MAX_SHOWN_CLASSES:
        return list(takeovers)
    return [t for t in takeovers if t.positions or t.samples_top or t.notebook_positions]


def check_rows(results: Sequence[CheckResult]) -> list[dict[str, Any]]:
    """One plain row per ``CheckResult`` for the template."""
    return [
        {
            "name": r.name,
            "value": headline(r),
            "condition": f"{r.condition.text} ({r.condition.reason})",
            "passed": r.passed,
            "detail": r.explanation,
        }
        for r in results
    ]
