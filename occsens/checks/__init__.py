"""Sanity checks of occlusion maps: can the map be trusted? Results as data, each with a named condition.

``run_checks(model, images, ...)`` runs the checks and returns ``CheckResult`` objects: what was
measured, the named pass condition it was held to (threshold and reason) and the samples concerned. The
command line (``occsens check``, in ``occsens.cli.check``) prints them as a table and ``--json`` writes
them; the HTML report renders the same objects. The checks, by their names in ``CHECKS``:

* ``randomisation`` (``randomisation.py``): cascading model randomisation (Adebayo et al. 2018); the
  map must decorrelate from the trained map once the model's layers are re-initialised.
* ``patch`` (``patch.py``): the map's most important windows, hidden (background only) and shown alone
  (patch only), against random windows.
* ``faithfulness`` (``faithfulness.py``): deletion and insertion curves in the map's order against
  random orders (RISE, Petsiuk et al. 2018).
* ``leakage`` (``leakage.py``): whether the class map reads the fill instead of the image (ROAD, Rong
  et al. 2022): the fill's own class, sink classes, agreement between fills.
* ``determinism`` (``determinism.py``): the same probabilities for repeated runs and batch sizes.

Around them: ``run.py`` runs them (a crash becomes a failed result), ``run_state.py`` holds what they
share, ``conditions.py`` every threshold with its reason, ``results.py`` the result types and JSON,
``table.py`` the plain-text table, ``stats.py`` rank correlation and z-scores. The layer builds on
``occsens.engine`` alone: it knows neither CIFAR-10 nor the command line.
"""

from occsens.checks.conditions import (
    BACKGROUND_ONLY,
    CHECK_RAN,
    CURVE_STEPS,
    DELETION,
    DETERMINISM,
    DETERMINISM_BATCH,
    DETERMINISM_SAMPLES,
    DETERMINISM_TOL,
    FILL_CLASS,
    FILL_EXPLAINED_MAX,
    INSERTION,
    LEAKAGE_FILLS,
    NULL_DRAWS,
    PATCH_ONLY,
    RANDOM_ORDERS,
    RANDOMISATION,
    RANDOMISATION_MAX_RHO,
    RANDOMISATION_SAMPLES,
    RANDOMISATION_STEPS,
    SINK_CLASS,
    SINK_FRACTION_MAX,
    TOP_FRACTION,
    Z_MIN,
)
from occsens.checks.determinism import check_determinism
from occsens.checks.faithfulness import check_faithfulness
from occsens.checks.leakage import check_leakage
from occsens.checks.patch import check_patch
from occsens.checks.randomisation import check_randomisation
from occsens.checks.results import CheckResult, Clause, Condition, results_to_json
from occsens.checks.run import CHECKS, run_checks
from occsens.checks.run_state import Explainer
from occsens.checks.stats import spearman
from occsens.checks.table import format_table, headline

__all__ = [
    "BACKGROUND_ONLY",
    "CHECKS",
    "CHECK_RAN",
    "CURVE_STEPS",
    "DELETION",
    "DETERMINISM",
    "DETERMINISM_BATCH",
    "DETERMINISM_SAMPLES",
    "DETERMINISM_TOL",
    "FILL_CLASS",
    "FILL_EXPLAINED_MAX",
    "INSERTION",
    "LEAKAGE_FILLS",
    "NULL_DRAWS",
    "PATCH_ONLY",
    "RANDOMISATION",
    "RANDOMISATION_MAX_RHO",
    "RANDOMISATION_SAMPLES",
    "RANDOMISATION_STEPS",
    "RANDOM_ORDERS",
    "SINK_CLASS",
    "SINK_FRACTION_MAX",
    "TOP_FRACTION",
    "Z_MIN",
    "CheckResult",
    "Clause",
    "Condition",
    "Explainer",
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
]
