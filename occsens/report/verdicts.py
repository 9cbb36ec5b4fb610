"""The sanity checks as the report reads them: each check's verdict and power, and the trust summary.

``occsens.checks`` judges every check as "pass", "fail" or "inconclusive" (the check had no power on
these images: its explanation says why and which setting would give it power), measures each check's
power on known-bad maps, and sums the results up in one sentence (``trust_summary``: "the maps can
be trusted for ..., not for ..."). ``read_checks`` turns the results into plain rows for the page
and says whether ``occsens check`` would fail (``any_failed``), so ``occsens report`` exits as it would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from occsens.checks import CheckResult, any_failed, headline, trust_summary
from occsens.checks import conditions as cond
from occsens.report.formatting import pct

# What each check's pass lets a reader do with the maps, in words a student reads once. The checks'
# own licences (``occsens.checks.conditions``) name the method; these say what it means for the
# reader, and keep "one window at a time" (background-only) apart from "tile after tile"
# (deletion, insertion), which the licences' wording ran together.
PLAIN_CLAIMS: dict[str, str] = {
    cond.RANDOMISATION.name: "The map shows what the model learned (it changes when the weights are "
    "scrambled)",
    cond.BACKGROUND_ONLY.name: "Hiding the map's top windows, one at a time, costs more than hiding random "
    "ones",
    cond.PATCH_ONLY.name: "The top windows shown alone keep the prediction better than the bottom ones",
    cond.DELETION.name: "Greying the image tile after tile in the map's order removes the prediction faster "
    "than a random order",
    cond.INSERTION.name: "Restoring the image tile after tile in the map's order brings the prediction back "
    "faster than a random order",
    cond.FILL_CLASS.name: "The class map shows the image, not the grey fill's own class",
    cond.SINK_CLASS.name: "No single class takes over the windows of images of other classes",
    cond.DETERMINISM.name: "The numbers repeat exactly across runs and batch sizes",
}

# A verdict as the trust list answers its claim: yes, no, or not tested (the check had no power here).
ANSWERS = {"pass": "yes", "fail": "no", "inconclusive": "not tested"}


@dataclass(frozen=True)
class TrustItem:
    """One line of the trust list: a claim about the maps, its answer, and the check that answers it."""

    claim: str
    answer: str  # "yes", "no" or "not tested"
    check: str
    power: str  # how often the check flags a known-bad map, e.g. "90.0%"


def trust_items(results: Sequence[CheckResult]) -> tuple[TrustItem, ...]:
    """The trust list: one claim per check, yes first, then no, then not tested."""
    items = [
        TrustItem(
            PLAIN_CLAIMS.get(r.condition.name, r.condition.name[:1].upper() + r.condition.name[1:]),
            ANSWERS[r.verdict],
            r.name,
            power_text(r.power),
        )
        for r in results
    ]
    order = {"yes": 0, "no": 1, "not tested": 2}
    return tuple(sorted(items, key=lambda t: order[t.answer]))


@dataclass(frozen=True)
class CheckRow:
    """One check, as the page shows it."""

    name: str
    verdict: str  # "pass", "fail" or "inconclusive"
    value: str  # the quantities its condition tests, e.g. "z=3.1"
    condition: str
    power: str  # the share of known-bad maps it flags, e.g. "75.0%", or "not measured"
    detail: str


@dataclass(frozen=True)
class CheckReading:
    rows: tuple[CheckRow, ...]
    summary: str  # the trust summary: what the maps can be trusted for, and what not
    failed: bool  # some verdict is "fail": ``occsens check`` exits 1
    trust: tuple[TrustItem, ...] = ()  # the same, as a list of plain claims

    def count(self, verdict: str) -> int:
        return sum(1 for r in self.rows if r.verdict == verdict)


def power_text(power: float | None) -> str:
    """A check's calibrated power: the share of known-bad maps it flags."""
    return "not measured" if power is None else pct(power)


def read_checks(results: Sequence[CheckResult]) -> CheckReading:
    """The rows of the report's check table, the trust summary, and whether a check failed."""
    rows = tuple(
        CheckRow(
            r.name,
            r.verdict,
            headline(r),
            f"{r.condition.text} ({r.condition.reason})",
            power_text(r.power),
            r.explanation,
        )
        for r in results
    )
    return CheckReading(rows, trust_summary(results), any_failed(results), trust_items(results))
