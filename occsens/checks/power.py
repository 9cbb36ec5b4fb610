"""Each check's power, measured: the fraction of known-bad cases it flags in calibration.

The numbers come from ``occsens.checks.calibration`` (planted-object images, an oracle model whose
evidence is the object, and known-bad maps and models); ``python -m occsens.checks.calibration``
measures them again and prints this table. ``tests/checks/test_calibration.py`` fails when a stored
number drifts from the measured one by more than ``POWER_TOLERANCE``.

A check that does not read the map (occluder leakage, determinism) cannot see a bad map; its power is
measured on known-bad *models* of its own kind instead, and its sentence says so.
"""

from __future__ import annotations

from dataclasses import dataclass

# One case in ten: the calibration runs each known-bad kind on two image sets, and a z-test near its
# line may flip one case on another platform's float rounding (the tests use fixed seeds, so on one
# machine the counts are exact).
POWER_TOLERANCE = 0.1


@dataclass(frozen=True)
class Power:
    """``flagged`` of ``cases`` known-bad cases (described by ``of``) failed the check in calibration."""

    flagged: int
    cases: int
    of: str

    @property
    def fraction(self) -> float:
        return self.flagged / self.cases

    @property
    def sentence(self) -> str:
        return (
            f"Calibrated power {self.fraction:.2f}: in calibration this check flagged {self.flagged} of "
            f"{self.cases} {self.of} (occsens.checks.calibration)."
        )


MAPS = "known-bad maps (random, inverted, constant, shifted by half the image, image-only edges)"
FILL_READERS = "known-bad models that read the fill (a uniform-square detector, a fill-area reader)"
RANDOM_FORWARDS = "known-bad models whose scores are random or depend on the batch"

# Measured with `python -m occsens.checks.calibration` (result name -> Power): 2 image sets x 5 known-bad
# maps for the checks that read the map, 2 x 2 known-bad models for the others. What each misses: the
# image-only map finds the planted object by its edges, so only randomisation sees it; randomisation
# cannot see an inverted or shifted map (both still change with the weights) and has no ranking to test
# in a constant one (inconclusive, not flagged); one random map passes patch-only by chance (z >= 2
# happens to ~2-4% of random maps, see Z_MIN).
#
# Not here: deletion and insertion measure their power on each run, by simulation at the run's own
# images, geometry and model (occsens.checks.inference.simulated_power); patch-only is reported as
# information, never a failure, so it has no power to store (conditions.PATCH_ONLY_INFORMATION).
NOT_STORED = ("faithfulness: deletion", "faithfulness: insertion", "patch-only (important windows)")
MEASURED_POWER: dict[str, Power] = {
    "model randomisation": Power(4, 10, MAPS),
    "background-only (important windows)": Power(9, 10, MAPS),
    "occluder leakage: fill class": Power(4, 4, FILL_READERS),
    "occluder leakage: sink class": Power(4, 4, FILL_READERS),
    "determinism": Power(4, 4, RANDOM_FORWARDS),
}
