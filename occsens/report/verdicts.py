"""The sanity checks as the report reads them: each check's verdict and power, and the trust summary.

``occsens.checks`` judges every check as "pass", "fail", "inconclusive" (the check could not decide on
these images: its explanation says why and how many images would) or "info" (a measurement not
calibrated on real images, never a failure), measures each check's power (on known-bad maps, or by
simulation on the run), and sums the results up in one sentence (``trust_summary``: "the maps can
be trusted for ..., not for ..."). ``read_checks`` turns the results into plain rows for the page
and says whether ``occsens check`` would fail (``any_failed``), so ``occsens report`` exits as it would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from occsens.checks import CheckResult, TrustClaim, any_failed, headline, trust_claims, trust_summary
from occsens.report.formatting import pct


@dataclass(frozen=True)
class CheckRow:
    """One check, as the page shows it."""

    name: str
    verdict: str  # "pass", "fail", "inconclusive" or "info"
    value: str  # the quantities its condition tests, e.g. "z=3.1"
    condition: str
    power: str  # the share of known-bad maps it flags, e.g. "75.0%", or "not measured"
    detail: str


@dataclass(frozen=True)
class CheckReading:
    rows: tuple[CheckRow, ...]
    summary: str  # the trust summary: what the maps can be trusted for, and what not
    failed: bool  # some verdict is "fail": ``occsens check`` exits 1
    # the same, as plain claims answered yes / no / not tested, weighted by power (``occsens.checks.trust``)
    trust: tuple[TrustClaim, ...] = ()

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
    return CheckReading(rows, trust_summary(results), any_failed(results), trust_claims(results))
