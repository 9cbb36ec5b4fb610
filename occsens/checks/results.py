"""Results as data: a check's verdict, the named condition it was held to, and their JSON form.

A check measures a value; whether that value passes is decided by a separate ``Condition`` of one or
more ``Clause`` objects (``value[quantity] op threshold``). The conditions themselves, with their
thresholds and reasons, are in ``occsens.checks.conditions``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

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

    @property
    def text(self) -> str:
        return f"{self.quantity} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Condition:
    """A named pass condition: all clauses must hold; ``reason`` says why the threshold is where it is."""

    name: str
    clauses: tuple[Clause, ...]
    reason: str

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
        }


@dataclass(frozen=True)
class CheckResult:
    """One sanity check's verdict: what was measured, the condition it was held to, and for which samples.

    ``value`` is a JSON-able number or dict (it holds every quantity the condition names); ``details``
    holds what a report plots (curves, per-sample numbers); ``samples`` the sample ids concerned.
    """

    name: str
    passed: bool
    value: Any
    condition: Condition
    explanation: str
    samples: tuple[int, ...]
    details: dict | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "value": _jsonable(self.value),
            "condition": self.condition.to_dict(),
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


def _result(
    name: str,
    value: dict,
    condition: Condition,
    explanation: str,
    samples: Sequence[int],
    details: dict | None = None,
) -> CheckResult:
    return CheckResult(
        name,
        condition.holds(value),
        value,
        condition,
        " ".join(explanation.split()),
        tuple(int(s) for s in samples),
        details,
    )
