"""The HTML report: analysis -> view model of plain values and formatted strings -> jinja2 -> one file.

``make_report`` runs the engine (``analysis.measure``), reads the numbers (``analysis.analyse``),
draws the figures (``figures``), writes the findings (small functions over the analysis
dataclasses, each returning its sentence and the formatted numbers it uses, every one of which
is also shown in a table of the report), and renders ``templates/report.html.j2`` with
autoescape on. ``write_report`` writes ``index.html`` (and ``report.json``) atomically: the
page is rendered in memory, written to a temporary file in the output folder and renamed, so a
failure never leaves a partial report. No timestamps unless asked: the same inputs give the
same bytes.

The commands ``occsens report`` and ``occsens explain`` are defined here (``add_parsers``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from occsens import analysis as an
from occsens.errors import OcclusionError
from occsens.output import check_out_dir, write_files

TEMPLATE = "report.html.j2"
DEFAULT_OUT = "reports"
JSON_NAME = "report.json"
HTML_NAME = "index.html"
GREYSCALE_CARD = "occsens/weights/greyscale.json"

# --------------------------------------------------------------------------- formatting


def prob(x: float) -> str:
    """Probabilities and drops: four decimals, everywhere in the report."""
    return f"{x:.4f}"


def pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def rows_cols(top: int, bottom: int, left: int, right: int) -> str:
    return f"rows {top}-{bottom}, cols {left}-{right}"


def region_text(r: an.Region) -> str:
    return rows_cols(r.top, r.bottom, r.left, r.right)


def extent_text(e: an.Extent) -> str:
    return rows_cols(e.top, e.bottom, e.left, e.right)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ModelInfo:
    """How the report names the model, and its card when it has one."""

    label: str
    card: an.Card | None = None
    parameters: int | None = None
    note: str = ""  # why there is no card


@dataclass(frozen=True, eq=False)
class Twin:
    """The colour model and its greyscale twin, with their cards, for the colour-vs-greyscale section."""

    colour_model: Callable
    colour_card: an.Card
    grey_model: Callable
    grey_card: an.Card


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the builder turns into the view model."""

    names: tuple[str, ...]
    label_names: tuple[str, ...]
    model: ModelInfo
    patch: tuple[int, int]
    stride: tuple[int, int]
    fill: str
    samples: tuple[an.SampleAnalysis, ...]
    takeovers: tuple[an.Takeover, ...]
    twins: an.TwinComparison | None
    twins_missing: str | None
    title: str
    timestamp: str | None = None
    checks: Sequence[Any] | None = None  # occsens.checks.CheckResult


@dataclass(frozen=True)
class Finding:
    """One generated sentence and the formatted numbers it rests on (each also shown elsewhere)."""

    text: str
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    html: str
    numbers: dict = field(repr=False)
    findings: tuple[Finding, ...] = field(repr=False, default=())


# --------------------------------------------------------------------------- findings


def finding_prediction(s: an.SampleAnalysis, names: Sequence[str], label_names: Sequence[str]) -> Finding:
    (k1, p1), *rest = s.top3
    text = f"On the unoccluded image the model predicts {names[k1]} with probability {prob(p1)}"
    nums = [prob(p1)]
    if rest:
        k2, p2 = rest[0]
        text += f"; the runner-up is {names[k2]} at {prob(p2)}"
        nums.append(prob(p2))
    if s.true_label is not None:
        right = names[k1] == label_names[s.true_label]
        verdict = "right" if right else "wrong"
        text += f". The true label is {label_names[s.true_label]}, so the prediction is {verdict}"
    return Finding(text + ".", tuple(nums))


def finding_region(m: an.MapStats, names: Sequence[str]) -> Finding:
    t, where = names[m.target], region_text(m.most_important)
    return Finding(
        f"The region that matters most is {where}: hiding it lowers P({t}) from {prob(m.clean_target_prob)} "
        "to "
        f"{prob(m.min_target_prob)}, a drop of {prob(m.max_drop)}.",
        (where, prob(m.clean_target_prob), prob(m.min_target_prob), prob(m.max_drop)),
    )


def finding_spread(m: an.MapStats, names: Sequence[str]) -> Finding:
    t, limit = names[m.target], f"{an.IMPORTANT_DROP:g}"
    if m.positions_dropping == 0:
        return Finding(
            f"No single window lowers P({t}) by more than {limit}: the largest drop is {prob(m.max_drop)}, "
            "and at "
            f"the median window P({t}) is still {prob(m.median_target_prob)}, so the evidence is spread out "
            "or "
            "redundant.",
            (limit, prob(m.max_drop), prob(m.median_target_prob)),
        )
    windows = "window" if m.positions_dropping == 1 else "windows"
    return Finding(
        f"Hiding {m.positions_dropping} of the {m.positions} {windows} (one at a time) lowers P({t}) by more "
        "than "
        f"{limit}; at the median window P({t}) is still {prob(m.median_target_prob)}.",
        (str(m.positions_dropping), str(m.positions), limit, prob(m.median_target_prob)),
    )


def finding_takeover(m: an.MapStats, names: Sequence[str]) -> Finding:
    clean = names[m.clean_class]
    if m.replacement is None:
        return Finding(
            f"{clean} stays the most probable class at all {m.positions} windows: no class takes over.",
            (str(m.positions),),
        )
    assert m.replacement_extent is not None and m.replacement_best is not None
    rep, where = names[m.replacement], extent_text(m.replacement_extent)
    best = region_text(m.replacement_best)
    e = m.replacement_extent
    spread = (e.bottom - e.top + 1) * (e.right - e.left + 1) >= m.pixels / 2
    within = f"spread across {where}" if spread else f"within {where}"
    text = (
        f"{clean} stays the most probable class at {m.kept} of {m.positions} windows; {rep} takes over at "
        f"{m.replacement_count}, {within}, most strongly (P({rep}) = {prob(m.replacement_best_prob)}) "
        f"when the window at {best} is hidden"
    )
    nums = [
        str(m.kept),
        str(m.positions),
        str(m.replacement_count),
        where,
        prob(m.replacement_best_prob),
        best,
    ]
    others = [(k, v) for k, v in m.replacement_counts().items() if k != m.replacement]
    if others:
        text += "; other classes: " + ", ".join(f"{names[k]} {v}" for k, v in others)
        nums += [str(v) for _, v in others]
    return Finding(text + ".", tuple(nums))


def finding_reveal(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    occ, rev = s.main, s.reveal
    t, clean, n = names[occ.target], names[occ.clean_class], str(occ.positions)
    nums = (
        str(occ.kept),
        str(rev.kept),
        n,
        prob(occ.median_target_prob),
        prob(rev.median_target_prob),
        str(s.agreement),
    )
    text = (
        f"With the image minus the window the model keeps {clean} at {occ.kept} of {n} windows (median "
        f"P({t}) {prob(occ.median_target_prob)}); with only the window shown it keeps it at {rev.kept} of "
        f"{n} "
        f"(median {prob(rev.median_target_prob)}), and the two class maps agree at {s.agreement} of {n} "
        "windows"
    )
    if occ.kept > rev.kept:
        text += (
            ", so the occlusion maps describe what the model makes of the image minus the patch, "
            "not of the patch alone"
        )
    elif occ.kept < rev.kept:
        text += ", so on this image a single window carries more of the answer than the rest of the image"
    return Finding(text + ".", nums)


def _rep_name(m: an.MapStats, names: Sequence[str]) -> str:
    return "none" if m.replacement is None else f"{names[m.replacement]} ({m.replacement_count})"


def finding_fills(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    parts = [f"{an.fill_label(f.fill)}: {_rep_name(f.stats, names)}" for f in s.fills]
    nums = tuple(str(f.stats.replacement_count) for f in s.fills if f.stats.replacement is not None)
    listed = "; ".join(parts)
    taken = [f for f in s.fills if f.stats.replacement is not None]
    if s.fill_driven:
        return Finding(
            f"The top replacement class changes with the fill ({listed}): the replacement class is "
            "driven by the occluder, not the image.",
            nums,
        )
    if not taken:
        return Finding(
            f"No class takes over under any of the {len(s.fills)} fills: the clean class stays the most "
            "probable at every window whatever fills it.",
            (str(len(s.fills)),),
        )
    rep = names[taken[0].stats.replacement]  # type: ignore[index]
    under = (
        f"under all {len(s.fills)} fills"
        if len(taken) == len(s.fills)
        else f"under each of the {len(taken)} of {len(s.fills)} fills that let any class take over"
    )
    return Finding(
        f"The top replacement class is {rep} {under} ({listed}): it comes from the image, not from what "
        "fills the window.",
        (str(len(taken)), str(len(s.fills)), *nums),
    )


def finding_fill_only(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    parts = [f"{an.fill_label(f.fill)} as {names[f.only_class]} ({prob(f.only_prob)})" for f in s.fills]
    matches = sum(
        1 for f in s.fills if f.stats.replacement is not None and f.stats.replacement == f.only_class
    )
    with_rep = sum(1 for f in s.fills if f.stats.replacement is not None)
    text = "The model classifies an image made only of " + ", ".join(parts)
    nums = [prob(f.only_prob) for f in s.fills]
    if with_rep:
        text += (
            f". For {matches} of the {with_rep} fills under which a class takes over, the top replacement is "
            "the class the model gives an image made only of that fill"
        )
        nums += [str(matches), str(with_rep)]
    return Finding(text + ".", tuple(nums))


def finding_notebook(nb: an.NotebookStats, names: Sequence[str]) -> Finding:
    m, t = nb.notebook, nb.same_size
    size = m.patch[0]
    text = (
        f"The notebook's geometry greys up to {m.area_max} pixels ({pct(m.area_max / m.pixels)} of the "
        "image; "
        f"{m.area_min} in the corners, {m.area_mean:.1f} on average) at each position while drawing a "
        f"{size}x{size} "
        f"cell; true {size}x{size} windows grey {t.area_max} ({pct(t.area_max / t.pixels)}). Under the "
        "notebook's "
        f"geometry the clean class stays most probable at {m.kept} of {m.positions} positions, against "
        f"{t.kept} "
        f"with true windows"
    )
    nums = [
        str(m.area_max),
        pct(m.area_max / m.pixels),
        str(m.area_min),
        f"{m.area_mean:.1f}",
        str(t.area_max),
        pct(t.area_max / t.pixels),
        str(m.kept),
        str(t.kept),
        str(m.positions),
    ]
    if m.replacement is not None:
        text += f", and {names[m.replacement]} takes over at {m.replacement_count}"
        nums.append(str(m.replacement_count))
    return Finding(text + ".", tuple(nums))


def finding_last(s: an.SampleAnalysis, nb: an.NotebookStats, names: Sequence[str]) -> Finding:
    return Finding(
        "The notebook printed np.amax(out), the top probability of its last occluded input "
        f"({region_text(nb.last)} "
        f"greyed): {prob(nb.last_prob)} for {names[nb.last_class]}, not the unoccluded {prob(s.clean_prob)} "
        "for "
        f"{names[s.clean_class]}; the report's prediction comes from the unoccluded image.",
        (region_text(nb.last), prob(nb.last_prob), prob(s.clean_prob)),
    )


def finding_takeovers(data: ReportData) -> Finding | None:
    tk = [t for t in data.takeovers if t.positions or (t.notebook_positions or 0)]
    if not tk:
        return None
    windows = sum(s.main.positions for s in data.samples)
    lost = sum(s.main.lost for s in data.samples)
    best = max(data.takeovers, key=lambda t: (t.positions, -t.cls))
    text = (
        f"Across the {len(data.samples)} samples the clean class loses {lost} of {windows} window positions "
        f"with true windows"
    )
    nums = [str(len(data.samples)), str(lost), str(windows)]
    if best.positions:
        text += (
            f"; {data.names[best.cls]} takes over most often ({best.positions} positions, top replacement in "
            f"{best.samples_top} sample{'' if best.samples_top == 1 else 's'})"
        )
        nums += [str(best.positions), str(best.samples_top)]
    if all(t.notebook_positions is not None for t in data.takeovers):
        nb = max(data.takeovers, key=lambda t: (t.notebook_positions or 0, -t.cls))
        nb_lost = sum(s.notebook.notebook.lost for s in data.samples if s.notebook)
        text += f". Under the notebook's larger square the clean class loses {nb_lost} positions"
        nums.append(str(nb_lost))
        if nb.notebook_positions:
            text += f", and {data.names[nb.cls]} takes over most often ({nb.notebook_positions})"
            nums.append(str(nb.notebook_positions))
    return Finding(text + ".", tuple(nums))


def finding_card(card: an.Card, names: Sequence[str]) -> Finding:
    acc = card.per_class_accuracy
    lo, hi = int(np.argmin(acc)), int(np.argmax(acc))
    if acc[lo] == acc[hi]:
        return Finding(
            f"The model's test accuracy is {prob(card.test_accuracy)}; its card gives every class the "
            f"same accuracy, {prob(acc[lo])}.",
            (prob(card.test_accuracy), prob(acc[lo])),
        )
    return Finding(
        f"The model's test accuracy is {prob(card.test_accuracy)}; its weakest class is {names[lo]} "
        f"({prob(acc[lo])}) and its strongest {names[hi]} ({prob(acc[hi])}).",
        (prob(card.test_accuracy), prob(acc[lo]), prob(acc[hi])),
    )


def findings_twins(c: an.TwinComparison, names: Sequence[str]) -> list[Finding]:
    gap = c.accuracy_gap
    better = "colour" if gap > 0 else "greyscale" if gap < 0 else None
    out = [
        Finding(
            f"Test accuracy: colour {prob(c.colour.test_accuracy)}, greyscale {prob(c.grey.test_accuracy)}"
            + (
                f": the {better} model is {abs(100 * gap):.1f} points more accurate."
                if better
                else ": a tie."
            ),
            (prob(c.colour.test_accuracy), prob(c.grey.test_accuracy))
            + ((f"{abs(100 * gap):.1f}",) if better else ()),
        )
    ]
    k = c.largest_class_gap()
    cg = c.colour.per_class_accuracy[k] - c.grey.per_class_accuracy[k]
    if cg > 0:
        out.append(
            Finding(
                f"Greyscale loses most on {names[k]}: {prob(c.grey.per_class_accuracy[k])} against "
                f"{prob(c.colour.per_class_accuracy[k])} in colour.",
                (prob(c.grey.per_class_accuracy[k]), prob(c.colour.per_class_accuracy[k])),
            )
        )
    if c.labelled:
        out.append(
            Finding(
                f"On the {c.labelled} samples of this report, colour gets {c.correct('colour')} right and "
                "greyscale "
                f"{c.correct('grey')}.",
                (str(c.labelled), str(c.correct("colour")), str(c.correct("grey"))),
            )
        )
    cm = float(np.mean([s.colour.max_drop for s in c.samples]))
    gm = float(np.mean([s.grey.max_drop for s in c.samples]))
    out.append(
        Finding(
            f"Hiding the most important window lowers the clean class's probability by {prob(cm)} on average "
            "in colour "
            f"and {prob(gm)} in greyscale.",
            (prob(cm), prob(gm)),
        )
    )
    if better:
        out.append(
            Finding(
                "Answer to \u201cgreyscale or colour?\u201d: on CIFAR-10, train on colour images"
                if better == "colour"
                else "Answer to \u201cgreyscale or colour?\u201d: here the greyscale twin is the "
                "more accurate one",
                (),
            )
        )
        text = (
            out[-1].text
            + f" (test accuracy {prob(max(c.colour.test_accuracy, c.grey.test_accuracy))} against "
            f"{prob(min(c.colour.test_accuracy, c.grey.test_accuracy))})."
        )
        out[-1] = Finding(text, (prob(c.colour.test_accuracy), prob(c.grey.test_accuracy)))
    return out


# --------------------------------------------------------------------------- view model


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
    from occsens import figures as fg

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
        "replacement": _rep_name(m, names),
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
    from occsens import figures as fg

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
            "alt": f"the notebook's {NOTEBOOK_SQUARE(size)} square next to true {size}x{size} windows, "
            f"{s.name}",
            "rows": [
                _map_row(
                    f"notebook: {NOTEBOOK_SQUARE(size)} square drawn as a {size}x{size} cell",
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


def NOTEBOOK_SQUARE(size: int) -> str:  # noqa: N802 - reads as a constant in the sentences
    from occsens.core import NOTEBOOK_SCALE

    return f"{NOTEBOOK_SCALE * size}x{NOTEBOOK_SCALE * size}"


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
    from occsens import __version__
    from occsens import figures as fg

    names = data.names
    colours = fg.class_colours(len(names))
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
        "version": __version__,
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
                for t in data.takeovers
            ],
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
        "legend": [{"name": n, "colour": c} for n, c in zip(names, colours, strict=True)],
    }
    return view, all_findings


# --------------------------------------------------------------------------- templates


def _template_sources() -> dict[str, str]:
    """The templates: from the installed package ``occsens.templates``, else a checkout's ``templates/``."""
    wanted = (TEMPLATE, "report.css")
    try:
        from importlib.resources import files

        root = files("occsens.templates")
        return {name: root.joinpath(name).read_text(encoding="utf-8") for name in wanted}
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        folder = Path(__file__).resolve().parent.parent / "templates"
        try:
            return {name: (folder / name).read_text(encoding="utf-8") for name in wanted}
        except OSError:
            raise OcclusionError(
                "the report templates are missing from this installation (occsens.templates); reinstall "
                "occsens"
            ) from None


def render(view: Mapping[str, Any]) -> str:
    """The page, rendered with autoescape on."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.DictLoader(_template_sources()),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE).render(**view)


# --------------------------------------------------------------------------- numbers as JSON


def _region_json(r: an.Region | None) -> dict | None:
    if r is None:
        return None
    return {"row": r.row, "col": r.col, "top": r.top, "left": r.left, "height": r.height, "width": r.width}


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
        "most_important": _region_json(m.most_important),
        "max_drop": m.max_drop,
        "min_target_prob": m.min_target_prob,
        "median_target_prob": m.median_target_prob,
        "windows_dropping": m.positions_dropping,
        "kept": m.kept,
        "replacement": None if m.replacement is None else names[m.replacement],
        "replacement_count": m.replacement_count,
        "area_max": m.area_max,
        "area_min": m.area_min,
        "area_mean": m.area_mean,
    }


def numbers(data: ReportData) -> dict:
    """The report's numbers as plain JSON values."""
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
    if data.checks is not None:
        out["checks"] = [r.to_dict() for r in data.checks]
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


def _card_json(card: an.Card, names: Sequence[str]) -> dict:
    return {
        "name": card.name,
        "test_accuracy": card.test_accuracy,
        "per_class_accuracy": dict(zip(names, card.per_class_accuracy, strict=True)),
        "parameters": card.parameters,
    }


# --------------------------------------------------------------------------- the pipeline


class _Steps:
    """One progress bar for the whole report (tqdm on stderr), or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", desc="report", leave=False)

    def __call__(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def _once_each_warning() -> Iterator[None]:
    """Collect the engine's warnings over the report's many runs and show each distinct one once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for category, message in dict.fromkeys((w.category, str(w.message)) for w in caught):
        warnings.warn(message, category, stacklevel=4)


def _measure_all(
    model: Callable,
    x: Any,
    patch: Any,
    stride: Any,
    fill: Any,
    batch_size: int | None,
    twin: Twin | None,
    steps: Callable[[str], None],
) -> tuple[an.Runs, tuple[Any, Any] | None]:
    """The engine runs: the report's own, then the colour model's and the greyscale twin's main maps."""
    from occsens.core import occlude

    runs = an.measure(model, x, patch=patch, stride=stride, fill=fill, batch_size=batch_size, step=steps)
    if twin is None:
        return runs, None

    def main_run(m: Callable, name: str) -> Any:
        if m is model:
            return runs.main
        res = occlude(m, x, patch=patch, stride=stride, fill=fill, batch_size=batch_size)
        steps(name)
        return res

    return runs, (main_run(twin.colour_model, "colour model"), main_run(twin.grey_model, "greyscale twin"))


def make_report(
    model: Callable,
    images: Any,
    *,
    names: Sequence[str],
    sample_names: Sequence[str],
    indices: Sequence[int | None] | None = None,
    labels: Sequence[int | None] | None = None,
    label_names: Sequence[str] | None = None,
    patch: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] | None = None,
    fill: Any = 0.5,
    model_info: ModelInfo | None = None,
    twin: Twin | None = None,
    twin_missing: str | None = None,
    title: str = "Occlusion sensitivity report",
    timestamp: str | None = None,
    checks: Sequence[Any] | None = None,  # occsens.checks.CheckResult
    progress: bool = False,
    batch_size: int | None = None,
) -> Report:
    """Measure, analyse, draw and render; nothing is written."""
    from occsens.core import as_images

    x = as_images(images)
    n = len(x)
    if len(sample_names) != n:
        raise OcclusionError(f"sample_names has {len(sample_names)} entries for {n} images")
    twin_runs = 0 if twin is None else (1 if twin.colour_model is model or twin.grey_model is model else 2)
    steps = _Steps(an.runs_count(patch, stride, fill, x) + twin_runs + n + 2, progress)
    try:
        with _once_each_warning():
            runs, pair = _measure_all(model, x, patch, stride, fill, batch_size, twin, steps)
        if len(names) != runs.main.num_classes:
            raise OcclusionError(f"{len(names)} class names for a model with {runs.main.num_classes} classes")
        samples = an.analyse(runs, names=names, sample_names=sample_names, indices=indices, labels=labels)
        comparison = None
        if twin is not None and pair is not None:
            comparison = an.compare_twins(
                pair[0], pair[1], twin.colour_card, twin.grey_card, [s.true_label for s in samples]
            )
        data = ReportData(
            names=tuple(names),
            label_names=tuple(label_names or names),
            model=model_info or ModelInfo("model"),
            patch=runs.main.plan.patch,
            stride=runs.main.plan.stride,
            fill=runs.main.fill,
            samples=samples,
            takeovers=an.takeovers(samples, len(names)),
            twins=comparison,
            twins_missing=None if comparison is not None else (twin_missing or "no greyscale twin was given"),
            title=title,
            timestamp=timestamp,
            checks=checks,
        )
        view, found = build_view(data, steps)
        html = render(view)
        steps("render")
    finally:
        steps.close()
    return Report(html, numbers(data), tuple(found))


# --------------------------------------------------------------------------- writing


def write_report(report: Report, out: str | os.PathLike, write_json: bool = False) -> Path:
    """Write ``index.html`` (and ``report.json``) into ``out`` atomically; return the HTML's path."""
    payload = {HTML_NAME: report.html.encode("utf-8")}
    if write_json:
        payload[JSON_NAME] = (json.dumps(report.numbers, indent=2, allow_nan=False) + "\n").encode("utf-8")
    return write_files(out, payload, "the report")[0]


# --------------------------------------------------------------------------- the commands


def samples_arg(text: str) -> list[int]:
    """``--samples 1,2,3``: official CIFAR-10 test-set indices."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of test-set indices, e.g. 1,2,3") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of test-set indices, e.g. 1,2,3")
    return values


def _add_common(p: argparse.ArgumentParser, default_out: str) -> None:
    from occsens.cli import add_model_args, add_occlusion_args

    add_model_args(p)
    add_occlusion_args(p.add_argument_group("occlusion"))
    g = p.add_argument_group("output")
    g.add_argument(
        "--out", default=None, metavar="DIR", help=f"output folder for index.html (default {default_out})"
    )
    g.add_argument("--json", action="store_true", help=f"also write the numbers to DIR/{JSON_NAME}")
    g.add_argument(
        "--timestamp",
        action="store_true",
        help="put the generation time in the page (off by default, so reruns give the same file)",
    )
    g.add_argument(
        "--no-checks",
        action="store_true",
        help="leave out the sanity checks (occsens check) that the report runs on the same samples",
    )
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parsers(sub: Any) -> None:
    """Add ``report`` and ``explain`` to the CLI's subparsers."""
    from occsens.cli import add_input_size_arg

    p = sub.add_parser(
        "report",
        help="write the self-contained HTML report for CIFAR-10 test images (default: embedded samples)",
        description="Write one self-contained index.html (CSS inline, figures embedded, no network) that "
        "explains what the model looks at in CIFAR-10 test images, with evidence for how to read "
        "occlusion maps.",
    )
    p.add_argument(
        "--samples",
        type=samples_arg,
        default=None,
        metavar="IDX,...",
        help="official CIFAR-10 test-set indices (default: an embedded set that includes ships)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        metavar="DIR",
        help="folder holding cifar-10-batches-py/, for indices that are not embedded (or $OCCSENS_DATA_DIR)",
    )
    _add_common(p, DEFAULT_OUT)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "explain",
        help="write the HTML report for one image file of yours",
        description="The report of `occsens report` for one image file; it is resized to the "
        "model's input with a warning when needed.",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file (PNG, JPEG, ...)")
    p.add_argument("--label", default=None, metavar="CLASS", help="the image's true class, by name or number")
    add_input_size_arg(p)
    _add_common(p, f"{DEFAULT_OUT}/explain-IMAGE")
    p.set_defaults(func=_cmd_explain)


def _model_info(args: argparse.Namespace, model: Any) -> ModelInfo:
    from occsens import models

    params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else None
    if args.model_path:
        label = args.model_path + (f" with weights {args.weights}" if args.weights else "")
        return ModelInfo(
            label, None, params, "a user model without a model card, so no test accuracy is shown"
        )
    name = args.model or "default"
    return ModelInfo(
        f"shipped model '{name}'", an.Card.from_json(models.model_card(name), models.CIFAR10_CLASSES), params
    )


def _twin(args: argparse.Namespace, model: Any) -> tuple[Twin | None, str | None]:
    """The shipped colour model and greyscale twin, reusing the report's model when it is one of them."""
    from occsens import models

    names = models.CIFAR10_CLASSES
    try:
        grey_card = an.Card.from_json(models.model_card("greyscale"), names)
    except OcclusionError:
        return None, (
            f"The greyscale twin's model card ({GREYSCALE_CARD}) is not there, so this report has no "
            "colour-vs-greyscale measurement yet. Train the twin (occsens train --name greyscale "
            "--greyscale), ship its weights and card, and rerun the report."
        )
    shipped = None if args.model_path else (args.model or "default")
    try:
        grey = model if shipped == "greyscale" else models.load_model("greyscale")
        colour = model if shipped == "default" else models.load_model("default")
        colour_card = an.Card.from_json(models.model_card("default"), names)
    except OcclusionError as exc:
        return (
            None,
            f"The colour and greyscale models could not both be loaded ({exc}), so there is no comparison.",
        )
    return Twin(colour, colour_card, grey, grey_card), None


def _timestamp(args: argparse.Namespace) -> str | None:
    if not args.timestamp:
        return None
    import datetime

    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _finish(args: argparse.Namespace, report: Report, out: str) -> int:
    path = write_report(report, out, args.json)
    extra = f" and {path.parent / JSON_NAME}" if args.json else ""
    print(f"wrote {path} ({len(report.html.encode()) // 1024} kB){extra}")
    return 0


def _fit_threads() -> None:
    """Use only the CPU cores that are idle now, unless OMP_NUM_THREADS says otherwise.

    The report's forward passes are small; on a machine whose cores are busy (a training job),
    torch's default of one thread per core spends its time waiting for descheduled threads: the
    default report took 95 s in measurement with 2 threads against 11 s with 1 on this project's
    2-core machine while it trained.
    """
    import torch

    if os.environ.get("OMP_NUM_THREADS") or torch.get_num_threads() <= 1:
        return
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return
    idle = int((os.cpu_count() or 1) - busy + 0.5)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), idle)))


def _cmd_report(args: argparse.Namespace) -> int:
    from occsens import embedded
    from occsens.cli import model_from_args
    from occsens.models import CIFAR10_CLASSES

    out = args.out or DEFAULT_OUT
    check_out_dir(out)
    indices = args.samples if args.samples is not None else list(embedded.DEFAULT_SAMPLES)
    samples = embedded.sample_by_index(indices, args.data_dir)
    model = model_from_args(args)
    _fit_threads()
    report = _report_from_args(
        args,
        model,
        samples.images,
        sample_names=[f"test #{i}" for i in samples.indices],
        indices=[int(i) for i in samples.indices],
        labels=[int(y) for y in samples.labels],
        label_names=CIFAR10_CLASSES,
        title="Occlusion sensitivity report: CIFAR-10 test images",
    )
    return _finish(args, report, out)


def _cmd_explain(args: argparse.Namespace) -> int:
    from occsens.cli import class_names, model_from_args
    from occsens.images import read_image

    path = Path(args.image)
    out = args.out or f"{DEFAULT_OUT}/explain-{path.stem}"
    check_out_dir(out)
    image = read_image(path, size=tuple(args.input_size) if args.input_size else (32, 32))
    model = model_from_args(args)
    _fit_threads()
    label = None
    if args.label is not None:
        names = class_names(args, _num_classes(model, image))
        if args.label in names:
            label = names.index(args.label)
        elif args.label.isdigit() and int(args.label) < len(names):
            label = int(args.label)
        else:
            raise OcclusionError(
                f"--label {args.label!r} is not a class: use a name ({', '.join(names)}) or a "
                f"number 0..{len(names) - 1}"
            )
    report = _report_from_args(
        args,
        model,
        image,
        sample_names=[path.name],
        indices=[None],
        labels=[label],
        label_names=None,
        title=f"Occlusion sensitivity report: {path.name}",
    )
    return _finish(args, report, out)


def _num_classes(model: Any, images: Any) -> int:
    """The model's number of classes, from one forward pass on one image."""
    from occsens.core import as_images, eval_mode

    with eval_mode(model):
        out = model(as_images(images)[:1])
    if not hasattr(out, "shape") or len(out.shape) != 2:
        raise OcclusionError(
            f"model must return logits [B, K], got {getattr(out, 'shape', type(out).__name__)}"
        )
    return int(out.shape[-1])


def _run_report_checks(
    model: Any,
    images: Any,
    labels: list[int | None],
    indices: list[int | None],
    names: Sequence[str],
    args: argparse.Namespace,
) -> list[Any]:
    """``occsens.checks`` on the report's samples with the report's settings."""
    from occsens.checks import run_checks

    ids = [i if i is not None else k for k, i in enumerate(indices)]
    known = None if any(y is None for y in labels) else labels
    return run_checks(
        model,
        images,
        labels=known,
        sample_ids=ids,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        class_names=names,
        progress=not args.quiet,
    )


def check_rows(results: Sequence[Any]) -> list[dict[str, Any]]:
    """One plain row per ``CheckResult`` for the template."""
    from occsens.checks import headline

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


def _report_from_args(
    args: argparse.Namespace,
    model: Any,
    images: Any,
    *,
    sample_names: list[str],
    indices: list[int | None],
    labels: list[int | None],
    label_names: Sequence[str] | None,
    title: str,
) -> Report:
    from occsens.cli import class_names

    names = class_names(args, _num_classes(model, images))
    twin, missing = _twin(args, model)
    return make_report(
        model,
        images,
        names=names,
        sample_names=sample_names,
        indices=indices,
        labels=labels,
        label_names=label_names,
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        model_info=_model_info(args, model),
        twin=twin,
        twin_missing=missing,
        title=title,
        timestamp=_timestamp(args),
        checks=None if args.no_checks else _run_report_checks(model, images, labels, indices, names, args),
        progress=not args.quiet,
    )
