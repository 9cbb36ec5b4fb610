"""The numbers the four answers rest on, read once from the report's data into small frozen records.

Each record holds only what its answer cites, so ``occsens.report.answers`` can be tested with
hand-made records at and around its thresholds, and ``gather`` is the one place that reads them from
a ``ReportData``. Class ids, not names; the answers name them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from occsens.engine import NOTEBOOK_SCALE
from occsens.report import analysis as an
from occsens.report.cards import Card
from occsens.report.data import ReportData, SurveyClass, SurveyNumbers


@dataclass(frozen=True)
class LastInput:
    """Q1: what ``np.amax(out)`` printed for one sample, against the unoccluded prediction."""

    sample: int  # index of the sample quoted
    clean_class: int
    clean_prob: float
    last_class: int  # top class of the loop's last occluded input
    last_prob: float  # np.amax(out)
    last: an.Cell  # what that last input greys
    samples: int  # samples with the notebook's geometry
    other_class: int  # of them, where the last input's top class is not the clean class


@dataclass(frozen=True)
class AskerMatch:
    """Q2: the asker's count (their takeover class, under the notebook's geometry) on this model."""

    sample: int  # a sample of the asker's class
    clean_class: int  # this model's clean class for it
    kept: int  # positions the clean class keeps under the notebook's square
    positions: int
    asker_class: int  # the class that took over in the asker's printout (class 0)
    asker_count: int  # 37
    asker_positions: int  # 64
    count: int  # positions the asker's class wins here, under the notebook's square
    true_kept: int  # positions the clean class keeps under true windows of the notebook's cell size


@dataclass(frozen=True)
class Causes:
    """Q2: why other classes win windows: the square's size, the fill's own class, the image's runner-up."""

    samples: int
    windows: int  # window positions over all samples (the same grid for both geometries)
    size: int  # the notebook's cell (the report's patch side)
    square: int  # the side of the square the notebook greys: NOTEBOOK_SCALE * size
    square_area: int  # pixels it greys (most, away from the border)
    image_pixels: int
    lost: int  # positions the clean class loses with true windows
    notebook_lost: int  # ... under the notebook's square
    fill: str  # the engine's description of the fill
    fill_class: int  # the class of an image made only of the fill
    fill_prob: float
    fill_class_notebook: int  # positions the fill's class takes over under the notebook's square
    runner_up: int  # of ``lost``, positions won by the image's own runner-up class
    asker: AskerMatch | None
    survey: SurveyNumbers | None = None  # a survey of the same model and settings (Q2 at data-set scale)
    survey_row: SurveyClass | None = None  # its row for the featured sample's class

    @property
    def square_share(self) -> float:
        return self.square_area / self.image_pixels


@dataclass(frozen=True)
class Readings:
    """Q3: the image minus the window against the window alone, over all samples."""

    samples: int
    windows: int
    kept_occlude: int  # positions where the clean class stays most probable, image minus the window
    kept_reveal: int  # ... only the window shown
    agreement: int  # positions where both class maps name the same class
    reveal_top: int | None  # the class the model names most often when shown only the window
    reveal_top_count: int  # ... at how many of the windows (all samples, whatever their clean class)
    fill_class: int  # the class of an image made only of the fill


@dataclass(frozen=True)
class Colour:
    """Q4: the colour model and its greyscale twin, from their cards."""

    colour: Card
    grey: Card


@dataclass(frozen=True)
class Evidence:
    last: LastInput | None  # None: the patch is not square, so there is no notebook geometry
    causes: Causes | None  # None likewise
    readings: Readings
    colour: Colour | None  # None: no twin (``missing`` says why)
    missing: str | None
    featured: int  # the sample the answers quote first


def featured_sample(data: ReportData) -> int:
    """The sample the answers quote: the first of the asker's class when there is one, else the first."""
    if data.question is not None:
        for i, s in enumerate(data.samples):
            if s.true_label == data.question.true_class:
                return i
    return 0


def _survey_row(survey: SurveyNumbers | None, s: an.SampleAnalysis) -> SurveyClass | None:
    """The survey's row for the sample's class: its true class where the survey grouped by true class
    and the sample has a label, else the class the model gives it."""
    if survey is None:
        return None
    k = s.true_label if survey.grouped_by == "true class" and s.true_label is not None else s.clean_class
    return survey.classes[k] if 0 <= k < len(survey.classes) else None


def gather(data: ReportData) -> Evidence:
    """Every number the four answers cite, read from the report's data."""
    samples, i = data.samples, featured_sample(data)
    s = samples[i]
    windows = sum(x.main.positions for x in samples)
    fill_only = s.fills[0]  # the report's own fill comes first
    notebooks = [x.notebook for x in samples if x.notebook is not None]
    last = causes = None
    if len(notebooks) == len(samples) and s.notebook is not None:
        nb = s.notebook
        last = LastInput(
            i,
            s.clean_class,
            s.clean_prob,
            nb.last_class,
            nb.last_prob,
            nb.last,
            len(samples),
            sum(1 for x in samples if x.notebook and x.notebook.last_class != x.clean_class),
        )
        asker = None
        q = data.question
        if q is not None and s.true_label == q.true_class:
            m = nb.notebook
            asker = AskerMatch(
                sample=i,
                clean_class=s.clean_class,
                kept=m.kept,
                positions=m.positions,
                asker_class=q.takeover,
                asker_count=q.counts[q.takeover],
                asker_positions=q.positions,
                count=int(m.class_counts[q.takeover]) if q.takeover < len(m.class_counts) else 0,
                true_kept=nb.same_size.kept,
            )
        causes = Causes(
            samples=len(samples),
            windows=windows,
            size=nb.notebook.patch[0],
            square=NOTEBOOK_SCALE * nb.notebook.patch[0],
            square_area=nb.notebook.area_max,
            image_pixels=nb.notebook.pixels,
            lost=sum(x.main.lost for x in samples),
            notebook_lost=sum(n.notebook.lost for n in notebooks),
            fill=fill_only.fill,
            fill_class=fill_only.only_class,
            fill_prob=fill_only.only_prob,
            fill_class_notebook=data.takeovers[fill_only.only_class].notebook_positions or 0,
            runner_up=sum(x.runner_up_wins for x in samples),
            asker=asker,
            survey=data.survey,
            survey_row=_survey_row(data.survey, s),
        )
    reveal = np.zeros(len(s.clean_probs), dtype=np.int64)
    for x in samples:
        reveal += np.asarray(x.reveal.class_counts)
    reveal_top = int(np.argmax(reveal)) if reveal.any() else None
    readings = Readings(
        samples=len(samples),
        windows=windows,
        kept_occlude=sum(x.main.kept for x in samples),
        kept_reveal=sum(x.reveal.kept for x in samples),
        agreement=sum(x.agreement for x in samples),
        reveal_top=reveal_top,
        reveal_top_count=0 if reveal_top is None else int(reveal[reveal_top]),
        fill_class=fill_only.only_class,
    )
    colour = None if data.twins is None else Colour(data.twins.colour, data.twins.grey)
    return Evidence(last, causes, readings, colour, data.twins_missing, i)
