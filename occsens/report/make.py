"""The pipeline: plan the engine runs, run them, analyse, build the view, render; then write the files.

``make_report`` plans every engine run first (``occsens.report.runs``), so one progress bar
counts the whole report, then runs them, reads the numbers (``analysis.analyse``), builds the
view model with its figures and findings (``view.build_view``) and renders the page
(``render``). ``write_report`` writes ``index.html`` (and ``report.json``) atomically: the page
is rendered in memory, written to a temporary file in the output folder and renamed, so a
failure never leaves a partial report. No timestamps unless asked: the same inputs give the
same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from occsens.checks import CheckResult
from occsens.constants import HTML_NAME, JSON_NAME
from occsens.engine import Runs, as_images
from occsens.engine.model import check_output, is_probability, progress_bar, scores_in_words
from occsens.errors import OcclusionError, printable
from occsens.files import write_files
from occsens.report import analysis as an
from occsens.report import evidence as ev
from occsens.report.answers import answers
from occsens.report.cards import compare_twins
from occsens.report.data import ModelInfo, Report, ReportData, SurveyNumbers, Twin, class_names_for
from occsens.report.questions import Printout
from occsens.report.render import render, report_numbers
from occsens.report.runs import execute, plan_runs
from occsens.report.summary import image_summary
from occsens.report.verdicts import read_checks
from occsens.report.view import build_view


class _Steps:
    """One progress bar for the whole report (the engine's: on a terminal only, after a couple of
    seconds), or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = progress_bar(total, enabled, unit="step", desc="report") if enabled else None

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


def make_report(
    model: Callable,
    images: Any,
    *,
    names: Sequence[str] | None,
    sample_names: Sequence[str],
    indices: Sequence[int | None] | None = None,
    labels: Sequence[int | None] | None = None,
    label_names: Sequence[str] | None = None,
    notes: Sequence[Sequence[str]] | None = None,
    patch: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] | None = None,
    fill: Any = 0.5,
    output: Any = "softmax",
    model_info: ModelInfo | None = None,
    twin: Twin | None = None,
    twin_missing: str | None = None,
    title: str = "Occlusion sensitivity report",
    timestamp: str | None = None,
    checks: Sequence[CheckResult] | None = None,
    version: str | None = None,
    question: Printout | None = None,
    progress: bool = False,
    batch_size: int | None = None,
    runs: Runs | None = None,
    survey: SurveyNumbers | None = None,
) -> Report:
    """Measure, analyse, draw and render; nothing is written.

    ``names`` are the model's class names (None: "class 0", "class 1", ...), ``label_names`` those of
    ``labels`` (default: ``names``);
    ``notes`` say per image how it was read (its original size, a resize), shown next to it;
    ``output`` is what the model returns, as for ``occsens.occlude``; ``checks`` are
    ``occsens.checks`` results to show with the maps; ``version`` is the occsens version the page
    names as its generator; ``question`` is the asker's printout (``occsens.report.questions.ASKER``),
    given when the images are of the dataset its class ids refer to; ``runs`` is the job's store of
    occlusion runs (``occsens.engine.Runs``), shared with the checks so no map is computed twice;
    ``survey`` a survey of the same model and settings (``occsens.datasurvey.cited``) that Q2 cites.
    """
    x = as_images(images)
    n = len(x)
    if len(sample_names) != n:
        raise OcclusionError(f"sample_names has {len(sample_names)} entries for {n} images")
    # File names are data: any bytes a file system allows, shown escaped in the page, figures and JSON
    sample_names = [printable(str(s)) for s in sample_names]
    notes = [()] * n if notes is None else [tuple(str(t) for t in ns) for ns in notes]
    if len(notes) != n:
        raise OcclusionError(f"notes has {len(notes)} entries for {n} images")
    output_name = check_output(output)
    pair = None  # a twin model that is the report's own model is not run again: its map is ``main``
    if twin is not None:
        pair = (
            None if twin.colour_model is model else twin.colour_model,
            None if twin.grey_model is model else twin.grey_model,
        )
    plan = plan_runs(x, patch=patch, stride=stride, fill=fill, twin=pair, runs=runs)
    steps = _Steps(len(plan) + n + 1, progress)  # the runs, each sample's figures, the rendering
    try:
        with _once_each_warning():
            measured = execute(model, plan, batch_size=batch_size, step=steps, output=output, runs=runs)
        names = class_names_for(names, measured.main.num_classes)
        samples = an.analyse(measured, names=names, sample_names=sample_names, indices=indices, labels=labels)
        comparison = None
        if twin is not None and measured.colour is not None and measured.grey is not None:
            truth = [s.true_label for s in samples]
            cards = (twin.colour_card, twin.grey_card)
            comparison = compare_twins(measured.colour, measured.grey, *cards, truth)
        data = ReportData(
            names=tuple(names),
            label_names=tuple(label_names or names),
            model=model_info or ModelInfo("model"),
            patch=measured.main.plan.patch,
            stride=measured.main.plan.stride,
            fill=measured.main.fill,
            scores=scores_in_words(output_name),
            probabilities=is_probability(output_name),
            notes=tuple(tuple(ns) for ns in notes),
            samples=samples,
            takeovers=an.takeovers(samples, len(names)),
            twins=comparison,
            twins_missing=None
            if comparison is not None
            else (twin_missing or "No greyscale twin was given."),
            title=title,
            timestamp=timestamp,
            checks=checks,
            version=version,
            question=question,
            survey=survey,
        )
        return render_report(data, steps)
    finally:
        steps.close()


def render_report(data: ReportData, step: Callable[[str], None] | None = None) -> Report:
    """The page, its numbers and its findings from the report's data (figures drawn here)."""
    e = ev.gather(data)  # the evidence, the answers and the checks' verdicts: built once, read by both
    reading = None if data.checks is None else read_checks(data.checks)  # the page and the JSON
    # the asker's four answers open the demo report (given their printout); other images' summary the rest
    demo = data.question is not None
    answered = answers(data, e) if demo else ()
    summary = None if demo else image_summary(data)
    view, found = build_view(data, e, answered, reading, step, summary)
    html = render(view)
    if step is not None:
        step("render")
    return Report(html, report_numbers(data, answered, reading, summary), tuple(found), data.title, reading)


def write_report(report: Report, out: str | os.PathLike, write_json: bool = False) -> Path:
    """Write ``index.html`` (and ``report.json``) into ``out`` atomically; return the HTML's path."""
    payload = {HTML_NAME: report.html.encode("utf-8")}
    if write_json:
        payload[JSON_NAME] = (json.dumps(report.numbers, indent=2, allow_nan=False) + "\n").encode("utf-8")
    return write_files(out, payload, "the report")[0]
