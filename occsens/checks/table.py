"""The results as plain text: the values each condition tests, a table of all checks, and the one
sentence a reader needs first (what the maps can be trusted for)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from occsens.checks.names import FAIL, INCONCLUSIVE, INFO, PASS
from occsens.checks.results import CheckResult
from occsens.checks.trust import STRONG_POWER


def _format_number(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return str(v)


def headline(result: CheckResult) -> str:
    """The values the condition tests, e.g. ``z=3.1``; the error for a crashed check."""
    if not result.condition.clauses:
        return "error"
    value = result.value if isinstance(result.value, dict) else {}
    return ", ".join(
        f"{c.quantity}={_format_number(value.get(c.quantity))}" for c in result.condition.clauses
    )


def format_power(result: CheckResult) -> str:
    """The calibrated power as a fraction with two decimals, "-" where it was not measured."""
    return "-" if result.power is None else f"{result.power:.2f}"


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: check, PASS/FAIL/INCONCLUSIVE, measured value(s), calibrated power, condition."""
    rows = [("check", "result", "value", "power", "condition")]
    rows += [(r.name, r.verdict.upper(), headline(r), format_power(r), r.condition.text) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(f"{cell:<{width}}" for cell, width in zip(row[:4], widths, strict=True)) + f"  {row[4]}"
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * max(len(r[4]) for r in rows))
    return "\n".join(lines)


def any_failed(results: Sequence[CheckResult]) -> bool:
    """Whether any verdict is "fail" (an inconclusive check has not failed: it could not judge)."""
    return any(r.verdict == FAIL for r in results)


def _what(result: CheckResult) -> str:
    """What a result's pass would license; a crashed check's name where it never got to a condition."""
    return result.condition.licence or f"what the {result.name} check tests"


def _listed(items: Sequence[str]) -> str:
    """``a, b and c``; "" for none; a licence shared by two results is said once."""
    unique = list(dict.fromkeys(items))
    return ", ".join(unique[:-1]) + " and " + unique[-1] if len(unique) > 1 else "".join(unique)


def trust_summary(results: Sequence[CheckResult]) -> str:
    """One sentence from the verdicts: what the maps can be trusted for, what not, what is untested.

    Each passed check licenses what its condition's ``licence`` says (``occsens.checks.conditions``)
    if its power reaches ``STRONG_POWER`` (or was not measured); a weaker pass is named apart; a failed
    one withholds it; an inconclusive one leaves it untested here; one reported as information too."""
    strong = [r for r in results if r.verdict != PASS or r.power is None or r.power >= STRONG_POWER]
    weak = [r for r in results if r not in strong]
    results = strong
    by = {v: _listed([_what(r) for r in results if r.verdict == v]) for v in (PASS, FAIL, INCONCLUSIVE, INFO)}
    weak_text = _listed([_what(r) for r in weak])
    if by[PASS]:
        parts = [f"The maps can be trusted for {by[PASS]}"]
        parts += [f"not for {by[FAIL]}"] if by[FAIL] else []
    elif by[FAIL]:
        parts = [f"The maps cannot be trusted for {by[FAIL]}"]
    elif by[INCONCLUSIVE] and not weak_text and not by[INFO]:
        untested = by[INCONCLUSIVE]
        return f"No check had power here: nothing says whether the maps can be trusted for {untested}."
    elif not by[INCONCLUSIVE] and not weak_text and not by[INFO]:
        return "No checks ran, so nothing here says whether the maps can be trusted."
    else:
        parts = ["No check established what the maps can be trusted for"]
    if by[INCONCLUSIVE]:
        parts.append(f"untested here (the check had no power) for {by[INCONCLUSIVE]}")
    if weak_text:
        parts.append(f"not established (a pass by a check of power below {STRONG_POWER:.1f}) for {weak_text}")
    if by[INFO]:
        parts.append(f"not judged (reported as information) for {by[INFO]}")
    return "; ".join(parts) + "."
