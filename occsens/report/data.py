"""What the report is made from and what it gives back, as frozen data.

The caller (the command line, a notebook) knows the model, its classes and its card; the report
takes them as ``ModelInfo`` and ``Twin`` and knows nothing of where they came from.
``ReportData`` is everything the view model and the JSON numbers are built from; a ``Report``
is the rendered page, its numbers and its findings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occsens.checks import CheckResult
from occsens.constants import HTML_NAME
from occsens.errors import OcclusionError, printable, shown
from occsens.errors import path as as_path
from occsens.files import write_files
from occsens.report.analysis import SampleAnalysis, Takeover
from occsens.report.cards import Card, TwinComparison
from occsens.report.display import report_frame, verdict_counts
from occsens.report.questions import Printout
from occsens.report.verdicts import CheckReading


def class_names_for(given: Any, num_classes: int) -> tuple[str, ...]:
    """``given`` as one name per class, or "class 0", "class 1", ... when it is None; else
    ``OcclusionError`` saying what is wrong (a name that is not a string, the wrong count)."""
    if given is None:
        return tuple(f"class {k}" for k in range(num_classes))
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise OcclusionError(
            f"class_names must be a sequence of {num_classes} strings (one per class), got {shown(given)}"
        )
    bad = next((name for name in given if not isinstance(name, str)), None)
    if bad is not None:
        raise OcclusionError(f"class_names must hold strings, got {shown(bad)} ({type(bad).__name__})")
    if len(given) != num_classes:
        raise OcclusionError(
            f"class_names has {len(given)} names for a model with {num_classes} classes; give one per class"
        )
    twice = sorted({name for name in given if list(given).count(name) > 1})
    if twice:  # a report names classes by these: two alike would read as one class
        raise OcclusionError(f"class_names names {', '.join(map(repr, twice[:5]))} more than once")
    return tuple(printable(name) for name in given)  # text of the user's: shown, never obeyed


@dataclass(frozen=True)
class ModelInfo:
    """How the report names the model, and its card when it has one."""

    label: str
    card: Card | None = None
    parameters: int | None = None
    note: str = ""  # why there is no card


NO_CARD = "a model of yours: occsens has no model card for it, so no test accuracy"


def parameter_count(model: Any) -> int | None:
    """The model's parameter count when it has ``parameters()`` (a torch module), else None."""
    parameters = getattr(model, "parameters", None)
    return sum(p.numel() for p in parameters()) if callable(parameters) else None


def model_info_without_card(model: Any, label: str) -> ModelInfo:
    """How the report names a model occsens has no card for: its label and its parameter count."""
    return ModelInfo(label, None, parameter_count(model), NO_CARD)


@dataclass(frozen=True)
class SurveyClass:
    """One class's windows over a whole survey: the share the clean class loses and who wins them."""

    cls: int
    images: int
    lost: float  # share of this class's windows (images x positions) whose clean class loses
    taker: int | None  # the class that wins most of those windows (None: none lost)
    taker_share: float  # its share of the lost windows
    notebook_lost: float | None  # the same under the notebook's square (None: not surveyed)
    notebook_taker: int | None
    notebook_taker_share: float | None


@dataclass(frozen=True)
class SurveyNumbers:
    """Q2 at data-set scale: what ``occsens survey`` found over a data set, for the report to cite.

    Built by ``occsens.datasurvey.cited`` (which checks the survey was made with the report's model);
    the settings are compared with the report's own before any work (``occsens.explain``)."""

    folder: str
    source: str  # what was surveyed, in words ("CIFAR-10 test set", a folder)
    images: int
    grouped_by: str  # "true class" or "predicted class"
    patch: tuple[int, int]
    stride: tuple[int, int]
    fill: str  # the engine's description of the fill
    output: str
    classes: tuple[SurveyClass, ...]


@dataclass(frozen=True, eq=False)
class Twin:
    """The colour model and its greyscale twin, with their cards, for the colour-vs-greyscale section."""

    colour_model: Callable
    colour_card: Card
    grey_model: Callable
    grey_card: Card


@dataclass(frozen=True, eq=False)
class ReportData:
    """Everything the builder turns into the view model."""

    names: tuple[str, ...]
    label_names: tuple[str, ...]
    model: ModelInfo
    patch: tuple[int, int]
    stride: tuple[int, int]
    fill: str
    scores: str  # what the maps measure, in words (``occsens.engine.model.scores_in_words``)
    probabilities: bool  # the scores are probabilities in [0, 1] (not a scoring callable's own units)
    notes: tuple[tuple[str, ...], ...]  # per sample, how its image was read (original size, resizing)
    samples: tuple[SampleAnalysis, ...]
    takeovers: tuple[Takeover, ...]
    twins: TwinComparison | None
    twins_missing: str | None
    title: str
    timestamp: str | None = None
    checks: Sequence[CheckResult] | None = None
    version: str | None = None  # occsens's version, for the page's footer and generator tag
    question: Printout | None = None  # the asker's printout, for images its class ids refer to
    survey: SurveyNumbers | None = None  # a survey of the same model and settings, cited by Q2


@dataclass(frozen=True)
class Finding:
    """One generated sentence and the formatted numbers it rests on (each also shown elsewhere)."""

    text: str
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class Report:
    """The rendered page, its numbers (``report.json``) and its findings. In a notebook it shows itself
    inline (``_repr_html_``); ``save`` writes the page."""

    html: str
    numbers: dict = field(repr=False)
    findings: tuple[Finding, ...] = field(repr=False, default=())
    title: str = ""
    checks: CheckReading | None = field(repr=False, default=None)  # the checks' verdicts; None: none ran

    def __repr__(self) -> str:
        samples = len(self.numbers.get("samples", ()))
        verdicts = self.numbers.get("check_verdicts")
        checks = "no checks" if verdicts is None else verdict_counts(verdicts)
        size = len(self.html.encode("utf-8")) // 1024
        title = self.title if len(self.title) <= 60 else self.title[:57] + "..."
        return (
            f"<Report {title!r}: {samples} sample{'' if samples == 1 else 's'}, checks {checks}, {size} kB>"
        )

    def _repr_html_(self) -> str:
        return report_frame(self.html, self.title, self.numbers.get("trust_summary"))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the page whole to the file ``path`` (or ``index.html`` in it, when ``path`` is a folder
        or ends with a separator) and return where: atomically, so a failure leaves the old file or none,
        never half a page (``occsens.files.write_files``)."""
        target = as_path(path, "path")
        folder, name = (
            (target, HTML_NAME)
            if target.is_dir() or (isinstance(path, str) and path.endswith(("/", os.sep)))
            else (target.parent, target.name)
        )
        return write_files(folder, {name: self.html.encode("utf-8")}, "the report", "path")[0]
