"""The report's two outputs from its data: the page (``report.html.j2``, through
``occsens.report.templates``) and the numbers as JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from occsens.report import analysis as an
from occsens.report.cards import Card
from occsens.report.data import Finding, ReportData
from occsens.report.questions import QUESTIONS
from occsens.report.summary import ImageSummary
from occsens.report.templates import render_template
from occsens.report.verdicts import CheckReading

TEMPLATE = "report.html.j2"


def render(view: Mapping[str, Any]) -> str:
    """The page, rendered with autoescape on."""
    return render_template(TEMPLATE, view)


def _map_json(m: an.MapStats, names: Sequence[str]) -> dict:
    return {
        "fill": m.fill,
        "geometry": m.geometry,
        "reveal": m.reveal,
        "patch": list(m.patch),
        "stride": list(m.stride),
        "grid": list(m.grid),
        "positions": m.positions,
        "target": names[m.target],
        "clean_target_prob": m.clean_target_prob,
        "heatmap": m.heatmap.tolist(),
        "drop": m.drop.tolist(),
        "class_map": [[names[k] for k in row] for row in m.class_map.tolist()],
        "class_counts": {names[k]: v for k, v in enumerate(m.class_counts)},
        "most_important": dataclasses.asdict(m.most_important),  # row, col and its pixel rectangle
        "max_drop": m.max_drop,
        "min_target_prob": m.min_target_prob,
        "median_target_prob": m.median_target_prob,
        "windows_dropping": m.windows_dropping,
        "kept": m.kept,
        "replacement": None if m.replacement is None else names[m.replacement],
        "replacement_count": m.replacement_count,
        "area_max": m.area_max,
        "area_min": m.area_min,
        "area_mean": m.area_mean,
    }


def report_numbers(
    data: ReportData,
    answered: Sequence[Finding],
    reading: CheckReading | None,
    summary: ImageSummary | None = None,
) -> dict:
    """The report's numbers as plain JSON values (``answered``: the four answers; ``reading``: the
    checks' verdicts and trust summary, None without checks; ``summary``: what a report on a reader's
    own images opens with, instead of the answers; all built once, for the page too)."""
    names = data.names
    out: dict[str, Any] = {
        "model": data.model.label,
        "patch": list(data.patch),
        "stride": list(data.stride),
        "fill": data.fill,
        "classes": list(names),
        "samples": [],
        "takeover": [
            {
                "class": names[t.cls],
                "positions": t.positions,
                "samples_top": t.samples_top,
                "notebook_positions": t.notebook_positions,
            }
            for t in data.takeovers
        ],
        "model_card": None if data.model.card is None else _card_json(data.model.card, names),
        "greyscale": None,
    }
    if data.twins_missing:
        out["greyscale_missing"] = data.twins_missing
    if data.survey is not None:  # Q2 at data-set scale, as the page's data-set table shows it
        sv = data.survey
        out["survey"] = {
            "folder": sv.folder,
            "source": sv.source,
            "images": sv.images,
            "grouped_by": sv.grouped_by,
            "classes": [
                {
                    "class": names[c.cls],
                    "images": c.images,
                    "windows_lost": c.lost,
                    "main_taker": None if c.taker is None else names[c.taker],
                    "main_taker_share": c.taker_share,
                    "notebook_windows_lost": c.notebook_lost,
                    "notebook_main_taker": None if c.notebook_taker is None else names[c.notebook_taker],
                    "notebook_main_taker_share": c.notebook_taker_share,
                }
                for c in sv.classes
            ],
        }
    if data.checks is not None and reading is not None:
        out["checks"] = [r.to_dict() for r in data.checks]
        out["check_verdicts"] = [row.verdict for row in reading.rows]
        out["trust_summary"] = reading.summary
        out["trust"] = [t.to_dict() for t in reading.trust]
    if summary is None:  # the asker's questions: the demo report only, as on the page
        out["questions"] = [
            {"id": q.id, "asked": q.asked, "answer": a.text} for q, a in zip(QUESTIONS, answered, strict=True)
        ]
    else:
        out["summary"] = {
            "images": [{"name": r["name"], "text": r["text"]} for r in summary.rows],
            "trust": summary.trust,
        }
    for s in data.samples:
        item: dict[str, Any] = {
            "name": s.name,
            "index": s.index,
            "true": None if s.true_label is None else data.label_names[s.true_label],
            "clean_class": names[s.clean_class],
            "clean_prob": s.clean_prob,
            "clean_probs": {names[k]: float(p) for k, p in enumerate(s.clean_probs)},
            "top3": [{"class": names[k], "prob": p} for k, p in s.top3],
            "occlude": _map_json(s.main, names),
            "reveal": _map_json(s.reveal, names),
            "fills": [
                dict(
                    _map_json(f.stats, names), only_fill_class=names[f.only_class], only_fill_prob=f.only_prob
                )
                for f in s.fills
            ],
            "fill_driven": s.fill_driven,
        }
        if s.notebook is not None:
            item["notebook"] = dict(
                _map_json(s.notebook.notebook, names),
                last_prob=s.notebook.last_prob,
                last_class=names[s.notebook.last_class],
            )
        out["samples"].append(item)
    if data.twins is not None:
        c = data.twins
        out["greyscale"] = {
            "colour": _card_json(c.colour, names),
            "greyscale": _card_json(c.grey, names),
            "samples": [
                {
                    "colour": _map_json(t.colour, names),
                    "greyscale": _map_json(t.grey, names),
                    "colour_clean_probs": t.colour_probs.tolist(),
                    "greyscale_clean_probs": t.grey_probs.tolist(),
                }
                for t in c.samples
            ],
        }
    return out


def _card_json(card: Card, names: Sequence[str]) -> dict:
    return {
        "name": card.name,
        "test_accuracy": card.test_accuracy,
        "per_class_accuracy": dict(zip(names, card.per_class_accuracy, strict=True)),
        "parameters": card.parameters,
        "seed": card.seed,
        "seed_spread": None
        if card.seed_spread is None
        else {
            "epochs": card.seed_spread.epochs,
            "seeds": list(card.seed_spread.seeds),
            "test_accuracy": list(card.seed_spread.accuracies),
        },
    }
