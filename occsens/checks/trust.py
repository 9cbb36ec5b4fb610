"""The trust summary as data: claims a person might make from a map, each answered by the checks.

``trust_claims(results)`` returns one ``Claim`` per claim in ``CLAIMS``: the claim in plain words, the
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
class Claim:
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


# (claim in plain words, the results behind it)
CLAIMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "The map shows what the model learned, not just edges or textures of the image",
        ("model randomisation",),
    ),
    (
        "Covering the regions the map ranks highest, one after another, destroys the prediction faster "
        "than covering regions at random",
        ("faithfulness: deletion",),
    ),
    (
        "Starting from a fully covered image, bringing back the regions the map ranks highest rebuilds "
        "the prediction faster than bringing back regions at random",
        ("faithfulness: insertion",),
    ),
    (
        "Hiding one of the map's top windows costs the prediction more than hiding a random window",
        ("background-only (important windows)",),
    ),
    (
        "The map's top windows carry the evidence on their own, with the rest of the image hidden",
        ("patch-only (important windows)",),
    ),
    (
        "The class the model switches to when a window is hidden comes from the image, not from the patch "
        "that covers it",
        ("occluder leakage: fill class", "occluder leakage: sink class"),
    ),
    ("Running the same map again gives the same numbers", ("determinism",)),
)


def _power_words(power: float | None) -> str:
    return "power not measured" if power is None else f"power {power:.2f}"


def _answer(claim: str, behind: tuple[str, ...], results: Sequence[CheckResult]) -> Claim:
    found = [r for r in results if r.name in behind]
    powers = [r.power for r in found if r.power is not None]
    power = max(powers) if powers else None
    names = tuple(r.name for r in found) or behind
    if not found:
        return Claim(
            claim, NOT_TESTED, names, None, f"The check behind it ({', '.join(behind)}) did not run."
        )
    failed = [r for r in found if r.verdict == FAIL]
    if failed:
        r = failed[0]
        return Claim(claim, NO, names, power, f"{r.name} failed ({_power_words(r.power)}).")
    open_ = [r for r in found if r.verdict in (INCONCLUSIVE, INFO)]
    if open_:
        r = open_[0]
        why = (
            f"{r.name} is reported as information only: it is not calibrated on real images."
            if r.verdict == INFO
            else f"{r.name} could not decide on these images."
        )
        return Claim(claim, NOT_TESTED, names, power, why)
    if all(r.verdict == PASS for r in found) and power is not None and power >= STRONG_POWER:
        return Claim(claim, YES, names, power, f"{', '.join(names)} passed ({_power_words(power)}).")
    return Claim(
        claim,
        NOT_TESTED,
        names,
        power,
        f"{', '.join(names)} passed, but with {_power_words(power)} it flags too few known-bad maps "
        f"(needs {STRONG_POWER:.1f}) to settle this on its own.",
    )


def trust_claims(results: Sequence[CheckResult]) -> tuple[Claim, ...]:
    """Each claim in ``CLAIMS`` answered from ``results`` (see the module's docstring for the rule)."""
    return tuple(_answer(claim, behind, results) for claim, behind in CLAIMS)
