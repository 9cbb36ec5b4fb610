"""What the report is made from and what it gives back, as frozen data.

The caller (the command line, a notebook) knows the model, its classes and its card; the report
takes them as ``ModelInfo`` and ``Twin`` and knows nothing of where they came from.
``ReportData`` is everything the view model and the JSON numbers are built from; a ``Report``
is the rendered page, its numbers and its findings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from occsens.checks import CheckResult
from occsens.report.analysis import Card, SampleAnalysis, Takeover, TwinComparison


@dataclass(frozen=True)
class ModelInfo:
    """How the report names the model, and its card when it has one."""

    label: str
    card: Card | None = None
    parameters: int | None = None
    note: str = ""  # why there is no card


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
