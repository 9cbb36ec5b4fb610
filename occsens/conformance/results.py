"""What ``verify`` returns, and the numbers every property shares. Imports no torch, no hypothesis.

The command line and the pytest plugin read these before any heavy import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Cases drawn per property. At 20, ``verify`` on occsens takes 1.7-2.1 s on one idle CPU core, and
# every deliberately wrong implementation in tests/conformance is caught within its first 3 cases.
DEFAULT_EXAMPLES = 20

# Largest |attribution - closed form| still counted as agreement. An implementation computes in
# float32: on the oracles its logits are exact (dyadic arithmetic, ``oracles``), each softmax
# probability is off by a few float32 ulps (~1e-7), and a float32 mean over the at most 81 windows
# covering a pixel (patch 9 x 9, stride 1) adds at most 81 * 6e-8 = 5e-6. 1e-5 admits both; the
# wrong readings in ``expected.variants`` differ by 1e-3 and more on the cases drawn.
ATOL = 1e-5

# Largest difference between two identical calls (the determinism property): the same float32
# computation rerun can differ by summation order only, a few ulps of a probability (< 1e-6).
RERUN_ATOL = 1e-6


class Unsupported(Exception):  # noqa: N818 - a signal, not an error
    """Raise from an implementation for a case it cannot express (say why); the case is skipped.

    The notebook adapter raises it for any window that is not a ``size x size`` square stepping by its
    size; MONAI's for nothing; yours may, e.g. for non-square patches.
    """


@dataclass(frozen=True)
class PropertyResult:
    """One property's verdict on one implementation.

    ``status`` is "pass", "fail" or "untested" (every case drawn was one the implementation raised
    ``Unsupported`` for). For a "convention" property, ``convention`` names the choice the
    implementation follows and ``passed`` says it follows one known convention consistently.
    ``counterexample`` is the shrunk failing case in words (sizes, patch, stride, fill, the numbers
    that disagree and, where one fits, the known mistake they match); ``case`` holds its numbers.
    """

    name: str
    kind: str
    status: str
    explanation: str
    counterexample: str | None = None
    convention: str | None = None
    cases: int = 0  # cases checked
    skipped: int = 0  # cases the implementation raised Unsupported for
    case: dict[str, Any] | None = field(default=None)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def verdict(self) -> str:
        """The table's word: PASS, FAIL, UNTESTED; a convention property's is the convention's name."""
        if self.kind == "convention" and self.convention is not None:
            return self.convention
        return self.status.upper()

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "passed": self.passed,
            "verdict": self.verdict,
            "convention": self.convention,
            "counterexample": self.counterexample,
            "case": self.case,
            "explanation": self.explanation,
            "cases": self.cases,
            "skipped": self.skipped,
        }


def contract_failures(results: list[PropertyResult]) -> list[PropertyResult]:
    """The contract properties that failed: what makes ``occsens conform`` exit 1 (with ``verified``)."""
    return [r for r in results if r.kind == "contract" and r.status == "fail"]


def verified(results: list[PropertyResult]) -> bool:
    """Whether any contract property was tested at all: an implementation that raised ``Unsupported``
    for every case has not been verified, and must not read as a pass (in CI, exit 0 would hide it)."""
    return any(r.kind == "contract" and r.status != "untested" for r in results)


def not_verified_words(results: list[PropertyResult]) -> str:
    skipped = sum(r.skipped for r in results)
    return (
        f"not verified: the implementation raised Unsupported for every case ({skipped} cases over "
        f"{len(results)} properties), so no property was tested; support at least square patches "
        "and strides (the case in each Unsupported message says what was asked)"
    )
