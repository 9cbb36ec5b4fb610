"""What the report's sentences may claim: the checks that can veto a claim, and the computed qualifiers.

A generated sentence must never claim what a failed sanity check on the same page contradicts. Each
claim the answers and the image summary can make is a ``Claim`` naming the check conditions
(``occsens.checks.conditions``) whose failure contradicts it: "the replacement classes come from the
image" cannot stand while the fill-class leakage check fails, since that check measured that the
fill's own class explains more of the changed windows than the image does. ``vetoes`` returns the
failed results that veto a claim; a sentence that has any says so instead of making the claim
(``hedge`` words it). A check that is inconclusive or passed vetoes nothing: it did not contradict
the claim.

The qualifiers "most", "mainly" and "the largest" are computed here too, never written by hand:
``most(part, whole)`` is a strict majority (``MOST_SHARE``), ``largest(values)`` the one value above
every other (no tie).

The records are plain data, so the trust claims the checks layer builds (yes / no / not tested per
claim) can be read through the same function: ``vetoes`` takes anything with ``verdict`` and
``condition.name`` (a ``CheckResult``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from occsens.checks.conditions import BACKGROUND_ONLY, DETERMINISM, FILL_CLASS, RANDOMISATION, SINK_CLASS
from occsens.checks.names import FAIL

# "Most of X" means more than half of X: a strict majority. At exactly half, two halves are equal and
# neither is "most"; this is the one threshold every "most"/"mostly" in the report's words uses.
MOST_SHARE = 0.5


@dataclass(frozen=True)
class Claim:
    """One thing a generated sentence can assert, and the check conditions whose failure contradicts it."""

    name: str
    says: str  # the claim in words, for a hedge: "the replacement classes come from the image"
    vetoed_by: tuple[str, ...]  # condition names


# "With true windows what wins comes from the image: its own runner-up takes 15 of the 19 lost positions."
# The fill-class check failing means the fill's own class explains most changed windows; a sink class
# means one class wins windows across unrelated images: either way, what wins is not the image's.
REPLACEMENTS_FROM_IMAGE = Claim(
    "replacements from the image",
    "the replacement classes come from the image",
    (FILL_CLASS.name, SINK_CLASS.name),
)

# "The most important region is rows 8-15, cols 12-19": where the evidence lies. The map must depend
# on the model (randomisation), hiding its top windows must cost more than random ones (background-only),
# and its numbers must repeat (determinism); a failure of any says the region is not to be read so.
EVIDENCE_REGION = Claim(
    "evidence region",
    "the map shows where the model's evidence lies",
    (RANDOMISATION.name, BACKGROUND_ONLY.name, DETERMINISM.name),
)

# "Square's size: the notebook's square makes the clean class lose N positions against M": counts of
# positions, only as good as the numbers are repeatable.
POSITION_COUNTS = Claim("position counts", "the counts of positions repeat", (DETERMINISM.name,))

CLAIMS: tuple[Claim, ...] = (REPLACEMENTS_FROM_IMAGE, EVIDENCE_REGION, POSITION_COUNTS)


def vetoes(claim: Claim, results: Sequence[Any] | None) -> tuple[Any, ...]:
    """The failed check results that contradict ``claim`` (none when no checks ran)."""
    if not results:
        return ()
    return tuple(r for r in results if r.verdict == FAIL and r.condition.name in claim.vetoed_by)


def hedge(claim: Claim, against: Sequence[Any]) -> str:
    """The sentence that replaces a vetoed claim: what cannot be said, and which failed check says so."""
    names = " and ".join(f"“{r.name}”" for r in against)
    checks = "check fails" if len(against) == 1 else "checks fail"
    return f"This report cannot say that {claim.says}: the {names} {checks} (see the sanity checks)."


def most(part: float, whole: float) -> bool:
    """``part`` is most of ``whole``: strictly more than ``MOST_SHARE`` of it (never of nothing)."""
    return whole > 0 and part > MOST_SHARE * whole


def largest(values: Sequence[float]) -> int | None:
    """The index of the one value larger than every other, or None when the top is shared (or empty)."""
    if not values:
        return None
    top = max(values)
    at = [i for i, v in enumerate(values) if v == top]
    return at[0] if len(at) == 1 else None


def share_words(part: float, whole: float) -> str:
    """``part`` of ``whole`` as a reader says it: "most of" only for a strict majority, else the share."""
    if most(part, whole):
        return "most"
    return f"{round(100 * part / whole)}%" if whole > 0 else "none"
