"""The trust summary as data: claims a person might make from a map, each answered by the checks.

``trust_claims(results)`` returns one ``TrustClaim`` per claim in ``CLAIMS``: the claim in plain words, the
answer ("yes", "no" or "not tested"), the results behind it, the power of the strongest of them, and one
sentence saying why. The report lays them out (issue 25); this module only decides them.

How an answer is weighted by power: a claim is answered "yes" only when every result behind it that ran
passed and at least one of them has power of at least ``STRONG_POWER``; a pass whose power is lower (model
randomisation flags 4 of 10 known-bad maps in calibration) is too weak to settle the claim by itself and
leaves it "not tested", saying so. A failed result behind a claim answers "no" when its power is
known (a failure is evidence whatever the power: the check saw the defect). Inconclusive results,
results reported as information, and checks that did not run leave the claim "not tested".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from occsens.checks.names import FAIL, INCONCLUSIVE, INFO, PASS
from occsens.checks.results import CheckResult

YES, NO, NOT_TESTED = "yes", "no", "not tested"

# A pass licenses a claim when its check flags at least 8 of 10 known-bad cases: the faithfulness
# checks' measured power on the shipped model at the images they use (1.00 at 32 images), determinism's
# and leakage's calibrated power (1.00); randomisation's 0.40 does not reach it. Below 0.8 a pass is as
# consistent with a bad map as with a good one too often (one bad map in five or more passes).
STRONG_POWER = 0.8


@dataclass(frozen=True)
class TrustClaim:
    """One claim and its answer: ``answer`` is "yes", "no" or "not tested"; ``checks`` the result names
    behind it; ``power`` the highest power among them (None where none was measured); ``why`` one
    sentence for the reader."""

    claim: str
    answer: str
    checks: tuple[str, ...]
    power: float | None
    why: str

    def to_dict(self) -> dict:
        return {
            "claim": self.claim,
            "answer": self.answer,
            "checks": list(self.checks),
            "power": self.power,
            "why": self.why,
        }


# (claim in plain words, the results behind it). The words are for a student reading them once (issue
# 25): what a pass lets the reader do with the maps, without the checks' own terms.
CLAIMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "The map shows what the model learned (it changes when the weights are scrambled)",
        ("model randomisation",),
    ),
    (
        "Greying the image tile after tile in the map's order removes the prediction faster than a random "
        "order",
        ("faithfulness: deletion",),
    ),
    (
        "Restoring the image tile after tile in the map's order brings the prediction back faster than a "
        "random order",
        ("faithfulness: insertion",),
    ),
    (
        "Hiding the map's top windows, one at a time, costs more than hiding random ones",
        ("background-only (important windows)",),
    ),
    (
        "The top windows shown alone keep the prediction better than the bottom ones",
        ("patch-only (important windows)",),
    ),
    (
        "The class that takes over a hidden window comes from the image, not from the grey that covers it",
        ("occluder leakage: fill class", "occluder leakage: sink class"),
    ),
    ("The numbers repeat exactly across runs and batch sizes", ("determinism",)),
)


def _power_words(power: float | None) -> str:
    return "power not measured" if power is None else f"power {power:.2f}"


def _answer(claim: str, behind: tuple[str, ...], results: Sequence[CheckResult]) -> TrustClaim:
    found = [r for r in results if r.name in behind]
    powers = [r.power for r in found if r.power is not None]
    power = max(powers) if powers else None
    names = tuple(r.name for r in found) or behind
    if not found:
        return TrustClaim(
            claim, NOT_TESTED, names, None, f"The check behind it ({', '.join(behind)}) did not run."
        )
    failed = [r for r in found if r.verdict == FAIL]
    if failed:
        r = failed[0]
        return TrustClaim(claim, NO, names, power, f"{r.name} failed ({_power_words(r.power)}).")
    open_ = [r for r in found if r.verdict in (INCONCLUSIVE, INFO)]
    if open_:
        r = open_[0]
        why = (
            f"{r.name} is reported as information only: it is not calibrated on real images."
            if r.verdict == INFO
            else f"{r.name} could not decide on these images."
        )
        return TrustClaim(claim, NOT_TESTED, names, power, why)
    if all(r.verdict == PASS for r in found) and power is not None and power >= STRONG_POWER:
        return TrustClaim(claim, YES, names, power, f"{', '.join(names)} passed ({_power_words(power)}).")
    return TrustClaim(
        claim,
        NOT_TESTED,
        names,
        power,
        f"{', '.join(names)} passed, but with {_power_words(power)} it flags too few known-bad maps "
        f"(needs {STRONG_POWER:.1f}) to settle this on its own.",
    )


def trust_claims(results: Sequence[CheckResult]) -> tuple[TrustClaim, ...]:
    """Each claim in ``CLAIMS`` answered from ``results`` (see the module's docstring for the rule): yes
    first, then no, then not tested (the order the report lists them in)."""
    claims = [_answer(claim, behind, results) for claim, behind in CLAIMS]
    known = {name for _, behind in CLAIMS for name in behind}
    for r in results:  # a check of no listed claim (a caller's own): its condition, as a claim
        if r.name not in known:
            claims.append(_answer(r.condition.name[:1].upper() + r.condition.name[1:], (r.name,), results))
    rank = {YES: 0, NO: 1, NOT_TESTED: 2}
    return tuple(sorted(claims, key=lambda c: rank[c.answer]))
