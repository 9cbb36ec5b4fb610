"""Sanity checks of occlusion maps: can the map be trusted? Results as data, each with a named condition.

``run_checks(model, images, ...)`` runs the checks and returns ``CheckResult`` objects: what was
measured, the named pass condition it was held to (threshold and reason) and the samples concerned. The
command line (``occsens check``, in ``occsens.cli.check``) prints them as a table and ``--json`` writes
them; the HTML report renders the same objects. The checks, by their names in ``CHECKS``:

* ``randomisation`` (``randomisation.py``): cascading model randomisation (Adebayo et al. 2018); the
  map must decorrelate from the trained map once the model's layers are re-initialised.
* ``patch`` (``patch.py``): the map's most important windows, hidden (background only) and shown alone
  (patch only), against random windows.
* ``faithfulness`` (``faithfulness.py``): deletion and insertion curves in the map's order against 100
  random orders per image (RISE, Petsiuk et al. 2018): the interval of the mean share of random orders
  the map beats, against a line above chance, with AOPC over the first tiles beside it and power
  measured by simulation on the run; more images (``more_images``) in stages when those shown do not
  decide.
* ``leakage`` (``leakage.py``): whether the class map reads the fill instead of the image (ROAD, Rong
  et al. 2022): the fill's own class, sink classes, agreement between fills.
* ``determinism`` (``determinism.py``): the same probabilities for repeated runs and batch sizes.

Each result has a verdict: "pass", "fail", "inconclusive" where the check had no power here or its
interval straddles the line (its explanation says why and how many images would decide), or "info" for
a measurement not calibrated on real images (patch-only), which never fails a run; and its power,
measured in calibration or, for deletion and insertion, by simulation on the run.
``trust_summary`` says in one sentence what the maps can be trusted for; ``trust_claims`` gives the same
as data (``trust.py``): claims a person might make from the map, each answered yes / no / not tested by
the checks behind it, weighted by their power.

Around them: ``run.py`` runs them (a crash becomes a failed result), ``run_state.py`` holds what they
share, ``conditions.py`` every threshold with its reason (pass and power conditions), ``results.py`` the
result types and JSON, ``table.py`` the plain-text table and the trust summary, ``stats.py`` rank
correlation and z-scores, ``inference.py`` intervals, the Wilcoxon test and power by simulation,
``trust.py`` the claims a reader might make and their answers, ``calibration.py`` and ``planted.py``
the ground truth the checks are calibrated on, ``power.py`` the power measured there, ``names.py``
the checks' names without torch. The layer builds on ``occsens.engine`` alone: it knows neither
CIFAR-10 nor the command line.

The names below load on first use (PEP 562), so ``occsens.checks.names`` can be imported without torch.
The named conditions and their thresholds (BACKGROUND_ONLY, Z_MIN, ...) are not re-exported: import them
from their home, ``occsens.checks.conditions``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what the lazy names are, for type checkers and editors
    from occsens.checks.determinism import check_determinism
    from occsens.checks.faithfulness import check_faithfulness
    from occsens.checks.leakage import check_leakage
    from occsens.checks.names import CHECK_NAMES, VERDICTS
    from occsens.checks.patch import check_patch
    from occsens.checks.power import MEASURED_POWER, Power
    from occsens.checks.randomisation import check_randomisation
    from occsens.checks.results import CheckResult, Clause, Condition, results_to_json
    from occsens.checks.run import CHECKS, run_checks
    from occsens.checks.run_state import Explainer
    from occsens.checks.stats import spearman
    from occsens.checks.table import any_failed, format_table, headline, trust_summary
    from occsens.checks.trust import TrustClaim, trust_claims

# The API: each public name's module (occsens.checks.NAME), imported on first access.
_HOMES = {
    "determinism": ("check_determinism",),
    "faithfulness": ("check_faithfulness",),
    "leakage": ("check_leakage",),
    "names": ("CHECK_NAMES", "VERDICTS"),
    "patch": ("check_patch",),
    "power": ("MEASURED_POWER", "Power"),
    "randomisation": ("check_randomisation",),
    "results": ("CheckResult", "Clause", "Condition", "results_to_json"),
    "run": ("CHECKS", "run_checks"),
    "run_state": ("Explainer",),
    "stats": ("spearman",),
    "table": ("any_failed", "format_table", "headline", "trust_summary"),
    "trust": ("TrustClaim", "trust_claims"),
}
_LAZY = {name: f"occsens.checks.{module}" for module, names in _HOMES.items() for name in names}
__all__ = [
    "CHECKS",
    "CHECK_NAMES",
    "CheckResult",
    "Clause",
    "Condition",
    "Explainer",
    "MEASURED_POWER",
    "Power",
    "TrustClaim",
    "VERDICTS",
    "any_failed",
    "check_determinism",
    "check_faithfulness",
    "check_leakage",
    "check_patch",
    "check_randomisation",
    "format_table",
    "headline",
    "results_to_json",
    "run_checks",
    "spearman",
    "trust_claims",
    "trust_summary",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(__all__) | {k for k in globals() if k.startswith("__")})
