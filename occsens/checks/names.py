"""The checks' names and verdicts as plain data: importing this module imports no torch.

The command line's help text names the checks from here without loading them; ``CHECKS`` in
``occsens.checks.run`` maps the same names, in the same order, to the functions that run them
(``tests/checks/test_checks_results.py`` holds the two together).
"""

from __future__ import annotations

CHECK_NAMES: tuple[str, ...] = ("randomisation", "patch", "faithfulness", "leakage", "determinism")

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
# INFO: a measurement reported as information, not a verdict: the check has not been calibrated on real
# images (its pass line is not known to separate good maps from bad ones there), so it never fails a run.
INFO = "info"
VERDICTS: tuple[str, ...] = (PASS, FAIL, INCONCLUSIVE, INFO)
