"""Results as data: a check's verdict, the named conditions it was held to, and their JSON form.

A check measures a value; two separate ``Condition`` objects of ``Clause`` objects (``value[quantity]
op threshold``) turn it into one of three verdicts. The *power condition* asks whether the check could
tell a good map from a bad one here at all (e.g. whether even the best possible ranking of the windows
could reach the pass line); where it does not hold the verdict is "inconclusive", whatever the map. Where
it holds, the *pass condition* decides "pass" or "fail". The conditions, with their thresholds and
reasons, are in ``occsens.checks.conditions``; each check's power measured on known-bad maps, in
``occsens.checks.power``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from occsens.checks.names import FAIL, INCONCLUSIVE, INFO, PASS, VERDICTS
from occsens.checks.power import MEASURED_POWER

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


@dataclass(frozen=True)
class Clause:
    """``value[quantity] op threshold``, e.g. ``z >= 2``."""

    quantity: str
    op: str
    threshold: float

    def holds(self, value: Any) -> bool:
        measured = value.get(self.quantity) if isinstance(value, dict) else None
        if not isinstance(measured, (int, float)) or isinstance(measured, bool) or math.isnan(measured):
            return False
        return _OPS[self.op](float(measured), self.threshold)

    def measured(self, value: Any) -> str:
        """``z = 1.41``: the quantity as measured."""
        measured = value.get(self.quantity) if isinstance(value, dict) else None
        return (
            f"{self.quantity} = {measured:.3g}"
            if isinstance(measured, float)
            else f"{self.quantity} = {measured}"
        )

    def unmet(self, value: Any) -> str:
        """``z = 1.41, needs >= 2``: the measured value beside what the clause asks."""
        return f"{self.measured(value)}, needs {self.op} {self.threshold:g}"

    @property
    def text(self) -> str:
        return f"{self.quantity} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Condition:
    """A named condition: all clauses must hold; ``reason`` says why the threshold is where it is.

    For a pass condition, ``licence`` says what a pass allows a reader to do with the maps (the trust
    summary is built from it); a power condition has none."""

    name: str
    clauses: tuple[Clause, ...]
    reason: str
    licence: str = ""

    def holds(self, value: Any) -> bool:
        return all(c.holds(value) for c in self.clauses)

    @property
    def text(self) -> str:
        return " and ".join(c.text for c in self.clauses) if self.clauses else self.name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "text": self.text,
            "clauses": [{"quantity": c.quantity, "op": c.op, "threshold": c.threshold} for c in self.clauses],
            "reason": self.reason,
            "licence": self.licence,
        }


@dataclass(frozen=True)
class CheckResult:
    """One sanity check's verdict: what was measured, the conditions it was held to, for which samples.

    ``verdict`` is "pass", "fail" or "inconclusive" (the check had no power here: the explanation says
    why and which setting would give it power); ``passed`` is True for "pass" only. ``value`` is a
    JSON-able number or dict holding every quantity the conditions name; ``details`` holds what a report
    plots (curves, per-sample numbers); ``samples`` the sample ids concerned. ``power`` is the fraction
    of known-bad cases this check flags in calibration (``occsens.checks.power``), None where unmeasured.
    """

    name: str
    verdict: str
    value: Any
    condition: Condition
    explanation: str
    samples: tuple[int, ...]
    details: dict | None = None
    power: float | None = None
    power_condition: Condition | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is not one of {', '.join(VERDICTS)}")

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "verdict": self.verdict,
            "passed": self.passed,
            "power": self.power,
            "value": _jsonable(self.value),
            "condition": self.condition.to_dict(),
            "power_condition": None if self.power_condition is None else self.power_condition.to_dict(),
            "explanation": self.explanation,
            "samples": [int(s) for s in self.samples],
            "details": _jsonable(self.details),
        }


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy/torch scalars to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def results_to_json(results: Sequence[CheckResult]) -> str:
    """The results as a JSON list of objects (name, passed, value, condition, explanation, samples, ...)."""
    return json.dumps([r.to_dict() for r in results], indent=2, allow_nan=False)


def check_result(
    name: str,
    value: dict,
    condition: Condition,
    explanation: str,
    samples: Sequence[int],
    details: dict | None = None,
    *,
    power_condition: Condition | None = None,
    remedy: str = "",
    measured_power: tuple[float, str] | None = None,
    information: str = "",
) -> CheckResult:
    """The verdict from the two conditions; the explanation gains, where inconclusive, why and the
    ``remedy`` (the setting that would give the check power), and the check's power: ``measured_power``
    (fraction, sentence) where the check measured it on this run, else its calibrated power. With
    ``information`` (why the check is not a verdict) the result is "info" whatever the conditions say:
    the measurement, what the condition would have said, and why it does not count."""
    if power_condition is not None and not power_condition.holds(value):
        verdict = INCONCLUSIVE
        unmet = "; ".join(c.unmet(value) for c in power_condition.clauses if not c.holds(value))
        why = f"No power here: the check needs {power_condition.name} (measured: {unmet})."
        explanation = f"{why} {remedy} {explanation}"
    else:
        verdict = PASS if condition.holds(value) else FAIL
        if verdict == FAIL and power_condition is not None and measured_power is None and not information:
            shown = ", ".join(c.measured(value) for c in power_condition.clauses)
            explanation += (
                f" The check had power here ({shown}): the map failed it, the test did not lack power."
            )
    if information:
        would = verdict if verdict != INCONCLUSIVE else "inconclusive (no power)"
        explanation = (
            f"Information, not a verdict (it never fails a run): {information} Measured against its "
            f"uncalibrated line it would read {would}. {explanation}"
        )
        verdict = INFO
    if not (isinstance(value, dict) and "images" in value):  # the checks with intervals say it themselves
        explanation += f" Judged on {len(samples)} image(s)."
    fraction: float | None = None
    if measured_power is not None:
        fraction = measured_power[0]
        explanation += f" {measured_power[1]}"
    elif (power := MEASURED_POWER.get(name)) is not None:
        fraction = power.fraction
        explanation += f" {power.sentence}"
    return CheckResult(
        name,
        verdict,
        value,
        condition,
        " ".join(explanation.split()),
        tuple(int(s) for s in samples),
        details,
        fraction,
        power_condition,
    )
