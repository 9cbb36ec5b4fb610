"""The view model: the report's records, its figures and its sentences, for the template.

``build_view`` answers the four questions first (``occsens.report.answers`` over
``occsens.report.evidence``), introduces the notebook once, builds the overview (the model, all
samples, which classes take over, colour or greyscale, the checks) and each sample's section
(``occsens.report.view_sample``), and returns the dict the template renders with every finding it
contains. Figures are embedded as ``data:`` URIs so the page stays one file. The numbers are the
records ``report.json`` is written from (``MapStats``, ``SampleAnalysis``, ``Card``, ...), passed as
they are: the template formats them with the findings' own formats (``occsens.report.templates``)
and places them; it computes nothing but a share for display.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from occsens.report import analysis as an
from occsens.report import colours as cl
from occsens.report import evidence as ev
from occsens.report import figures as fg
from occsens.report import figures_overview as fo
from occsens.report.cards import TwinComparison
from occsens.report.data import Finding, ReportData
from occsens.report.findings import finding_card, finding_takeovers, findings_twins
from occsens.report.formatting import notebook_square
from occsens.report.questions import NOTEBOOK_PRINT, QUESTIONS
from occsens.report.summary import ImageSummary
from occsens.report.thresholds import FLAT_DROP, IMPORTANT_DROP
from occsens.report.verdicts import CheckReading
from occsens.report.view_sample import sample_view


def _questions(
    data: ReportData, e: ev.Evidence, found: Sequence[Finding], square: str | None
) -> tuple[list[dict], list[Finding]]:
    samples = [s.name for s in data.samples]
    k = f"#sample-{e.featured + 1}"
    name = samples[e.featured]
    notebook = e.last is not None
    notebook_links = [
        ("the notebook's print", "#notebook"),
        (f"{name}: the notebook's last input", f"{k}-notebook"),
    ]
    links = [
        notebook_links * notebook + [("np.amax(out) for every sample", "#samples")],
        [("the notebook's square", "#notebook")] * notebook
        + [("which classes take over", "#takeover"), (f"{name}: the fills", f"{k}-fills")]
        + [(f"{name}: the notebook's square", f"{k}-notebook")] * notebook,
        [
            (f"{name}: the image minus the patch or only the patch", f"{k}-reveal"),
            (f"{name}: what the model saw", f"{k}-gallery"),
            ("every sample's class maps", "#samples"),
        ],
        [("colour or greyscale", "#colour-vs-greyscale"), ("the model card", "#model")],
    ]
    rows: list[dict[str, Any]] = [
        {
            "id": q.id,
            "title": q.title,
            "asked": q.asked,
            "answer": f.text,
            "links": [{"label": label, "href": href} for label, href in where],
            "figure": None,
        }
        for q, f, where in zip(QUESTIONS, found, links, strict=True)
    ]
    nb = data.samples[e.featured].notebook
    if nb is not None:  # Q2's key evidence, under the answer: the square against a true window, same image
        size = nb.notebook.patch[0]
        rows[1]["figure"] = {
            "src": square,
            "alt": f"the notebook's {notebook_square(size)} square and a true {size}x{size} window, {name}",
            "caption": f"{name}: what the model sees under the notebook's {notebook_square(size)} square "
            f"(left) and under a true {size}x{size} window at the same position (right)",
        }
    return rows, list(found)


def _notebook_square(data: ReportData, featured: int) -> str | None:
    """The notebook's square against a true window on the featured sample, drawn once: Q2's figure and
    the notebook's introduction show the same one."""
    nb = data.samples[featured].notebook if data.samples else None
    return None if nb is None else fg.uri(fo.notebook_square_figure(nb.example, nb.same_example))


def _notebook_intro(data: ReportData, featured: int, square: str | None) -> dict | None:
    """The notebook, introduced once: its geometry on this report's images, its print, the asker's count."""
    s = data.samples[featured]
    nb = s.notebook
    if nb is None:
        return None
    m, true, size = nb.notebook, nb.same_size, nb.notebook.patch[0]
    corner = int(np.sqrt(m.area_min))
    view: dict[str, Any] = {
        "s": s,
        "m": m,
        "size": size,
        "corner": f"{corner}x{corner}",
        "print": NOTEBOOK_PRINT,
        "sample_id": f"sample-{featured + 1}",
        "figure": {
            "src": square,
            "alt": f"the notebook's {notebook_square(size)} square and a true {size}x{size} window, {s.name}",
        },
        "asker": None,
    }
    q = data.question
    if q is not None and s.true_label == q.true_class:
        shown = {k for k, v in q.counts.items() if v} | {k for k, v in enumerate(m.class_counts) if v}
        shown |= {k for k, v in enumerate(true.class_counts) if v}
        order = sorted(shown, key=lambda k: (-q.counts.get(k, 0), -m.class_counts[k], k))
        # per class: the asker's count, this model's under the notebook's square, and under true windows
        rows = [(k, q.counts.get(k, 0), m.class_counts[k], true.class_counts[k]) for k in order]
        view["asker"] = {"q": q, "rows": rows}
    return view


def _twin_figures(c: TwinComparison, data: ReportData, colours: Sequence[str]) -> dict:
    names, samples = data.names, data.samples
    maps = fo.twins_figure(c, [s.image for s in samples], [s.name for s in samples], names, colours)
    return {
        "accuracy": {
            "src": fg.uri(fo.accuracy_figure([("colour", c.colour), ("greyscale", c.grey)], names)),
            "alt": "per-class test accuracy, colour model and greyscale twin",
        },
        "maps": {"src": fg.uri(maps), "alt": "colour and greyscale maps side by side for every sample"},
    }


def _takeover_rows(takeovers: Sequence[an.Takeover]) -> list[an.Takeover]:
    """The takeover table's rows: every class up to ``MAX_SHOWN_CLASSES``; past that, only the classes
    that take over somewhere (a 1000-class model would list 990 rows of zeros)."""
    if len(takeovers) <= cl.MAX_SHOWN_CLASSES:
        return list(takeovers)
    return [t for t in takeovers if t.positions or t.samples_top or t.notebook_positions]


def _takeover_view(data: ReportData, colours: Sequence[str], found: list[Finding]) -> dict:
    rows = _takeover_rows(data.takeovers)
    notebook = all(t.notebook_positions is not None for t in data.takeovers)
    return {
        "src": fg.uri(fo.takeover_figure(data.takeovers, data.names, colours)),
        "alt": "positions taken over by each class across all samples",
        "rows": rows,
        "quiet": len(data.takeovers) - len(rows),
        "notebook": notebook,
        "findings": [f.text for f in found],
        "lost": sum(s.main.lost for s in data.samples),
        "windows": sum(s.main.positions for s in data.samples),
        "notebook_lost": sum(s.notebook.notebook.lost for s in data.samples if s.notebook)
        if notebook
        else "",
        "runner_up": sum(s.runner_up_wins for s in data.samples),
        "survey": data.survey,
        "survey_notebook": data.survey is not None
        and all(c.notebook_lost is not None for c in data.survey.classes),
    }


def build_view(
    data: ReportData,
    e: ev.Evidence,
    answered: Sequence[Finding],
    reading: CheckReading | None,
    step: Callable[[str], None] | None = None,
    summary: ImageSummary | None = None,
) -> tuple[dict, list[Finding]]:
    """The view model: plain values and formatted strings only, plus every finding it contains, from the
    report's data, its evidence, the four answers (or, for a reader's own images, their ``summary``)
    and the checks' reading (each built once)."""
    names = data.names
    colours = cl.class_colours(len(names), cl.shown_classes(cl.class_frequency(data.samples, data.twins)))
    sample_findings: list[Finding] = []
    samples = []
    for i, s in enumerate(data.samples):
        view, found = sample_view(i, s, data, colours)
        if step is not None:
            step(f"figures {s.name}")
        samples.append(view)
        sample_findings += found
    # the asker's four questions open only the demo report (the one given their printout); a report on
    # other images opens with what it found on them (``summary``, built once with the answers)
    summary_view = None
    square = _notebook_square(data, e.featured)
    if summary is None:
        questions, answers = _questions(data, e, answered, square)
    else:
        questions, answers = [], list(summary.findings)
        summary_view = {"rows": summary.rows, "trust": summary.trust}
    card, card_figure, card_findings = data.model.card, None, []
    if card is not None:
        card_findings = [finding_card(card, names)]
        card_figure = {
            "src": fg.uri(fo.accuracy_figure([("this model", card)], names)),
            "alt": "per-class test accuracy of the model",
        }
    take = finding_takeovers(data)
    takeover_findings = [take] if take else []
    twin_findings = findings_twins(data.twins, names) if data.twins is not None else []
    positions = data.samples[0].main.positions if data.samples else 0
    grid = data.samples[0].main.grid if data.samples else (0, 0)
    view = {
        "title": data.title,
        "version": data.version,
        "timestamp": data.timestamp,
        "questions": questions,
        "summary": summary_view,
        "notebook": _notebook_intro(data, e.featured, square),
        "model": {
            "label": data.model.label,
            "note": data.model.note,
            "parameters": "" if data.model.parameters is None else f"{data.model.parameters:,}",
        },
        "settings": {
            "patch": f"{data.patch[0]}x{data.patch[1]}",
            "stride": f"{data.stride[0]}x{data.stride[1]}",
            "fill": an.fill_label(data.fill),
            "positions": positions,
            "grid": f"{grid[0]}x{grid[1]}",
            "fills": [an.fill_label(f.fill) for f in data.samples[0].fills] if data.samples else [],
            "threshold": f"{IMPORTANT_DROP:g}",
            "flat": f"{FLAT_DROP:g}",
            "scores": data.scores,
            "score": "probability" if data.probabilities else "score",
        },
        "card": card,
        "card_figure": card_figure,
        "card_findings": [f.text for f in card_findings],
        "samples": samples,
        "evidence": e,
        "takeover": _takeover_view(data, colours, takeover_findings),
        "twins": data.twins,
        "twin_figures": None if data.twins is None else _twin_figures(data.twins, data, colours),
        "twins_missing": data.twins_missing,
        "twin_findings": [f.text for f in twin_findings],
        "checks": reading,
        "legend": [{"name": n, "colour": c} for n, c in cl.legend_entries(names, colours)],
        "names": names,
        "colours": colours,
    }
    return view, answers + card_findings + takeover_findings + twin_findings + sample_findings
