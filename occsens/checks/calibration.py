"""Calibrating the checks on ground truth: does each pass a known-good map and fail the known-bad ones?

Known-good: the occlusion map of the planted-object oracle (``occsens.checks.planted``), whose evidence
is the object, at the shipped models' default geometry (32 x 32 images, 4 x 4 patch, grey fill). Every
check must pass or be inconclusive there.

Known-bad: the same images and oracle with a corrupted map (``planted.BAD_MAPS``: random, inverted,
constant, shifted by half the image, image-only edges) for the checks that read the map, and models that
read the fill or answer at random (``planted.FILL_READERS``, ``planted.RANDOM_FORWARDS``) for the two
that do not (occluder leakage, determinism). A check's *power* is the fraction of its known-bad cases
it fails; ``occsens.checks.power`` stores the numbers and ``tests/checks/test_calibration.py`` holds
them to this measurement.

``python -m occsens.checks.calibration`` runs it all and prints the verdicts and the power table;
``main(trained=True)`` adds a small CNN trained on the planted objects as a second known-good model (a
few minutes of CPU, so not in CI). Measured: it passes every check on both image sets of 8 images; its
patch-only z was 4.8, 5.6, 4.1 and 3.8 on four image sets, its deletion z 7.3, 4.0, 6.4 and 6.0. So at
the shipped default geometry a 4 x 4 window alone is not too small for the patch-only and deletion tests
to pass a good map of a trained CNN: a map that scores near 0 there has failed them, not lacked power.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from occsens.checks import planted
from occsens.checks.names import FAIL
from occsens.checks.power import FILL_READERS, MAPS, NOT_STORED, RANDOM_FORWARDS, Power
from occsens.checks.results import CheckResult
from occsens.checks.run import run_checks
from occsens.checks.run_state import Explainer

CALIBRATION_SEEDS = (0, 1)  # two image sets: power counts every known-bad kind twice
CALIBRATION_IMAGES = 4  # images per set: enough for every check's power condition, cheap enough for CI
MAP_CHECKS = ("randomisation", "patch", "faithfulness")  # the checks that read the map
TRAINED_IMAGES = 8  # as many as `occsens check` takes by default (its 8 default samples)


@dataclass(frozen=True)
class Case:
    """One calibration run: what was checked (``kind``: "good", a known-bad map or model), on which image
    set, with which results."""

    kind: str
    family: str  # "good", or the description of its known-bad family (power.MAPS, ...)
    seed: int
    results: tuple[CheckResult, ...]

    def verdict(self, name: str) -> str | None:
        """The verdict of the result called ``name``; None where this case did not run that check."""
        return next((r.verdict for r in self.results if r.name == name), None)


def _run(
    kind: str,
    family: str,
    seed: int,
    model: nn.Module,
    checks: Sequence[str] | None,
    explainer: Explainer | None = None,
    n: int = CALIBRATION_IMAGES,
) -> Case:
    images, _, _ = planted.planted_images(n, seed)
    results = run_checks(
        model,
        images,
        patch=planted.PLANTED_PATCH,
        fill=planted.PLANTED_FILL,
        checks=checks,
        explainer=explainer,
        seed=seed,
    )
    return Case(kind, family, seed, tuple(results))


def good_case(seed: int) -> Case:
    """Every check on the oracle's own occlusion map."""
    return _run("good", "good", seed, planted.TemplateOracle(), None)


def trained_case(seed: int, model: nn.Module) -> Case:
    """Every check on the occlusion map of a CNN trained on planted objects (``planted.trained_cnn``), on
    TRAINED_IMAGES images: a trained model's map is less crisp than the oracle's, and with 4 images its
    patch-only z fell to 1.5 on one of four image sets (3.6, 1.5, 2.6, 2.8), with 8 it was 3.8-5.6."""
    return _run("trained", "good", seed, model, None, n=TRAINED_IMAGES)


def bad_map_case(kind: str, seed: int) -> Case:
    """The checks that read the map, on a known-bad map of ``kind`` (``planted.BAD_MAPS``)."""
    explainer = planted.bad_explainer(kind, seed)
    return _run(kind, MAPS, seed, planted.TemplateOracle(), MAP_CHECKS, explainer)


def bad_model_case(kind: str, family: str, factory: Callable[[], nn.Module], check: str, seed: int) -> Case:
    """One check on a known-bad model."""
    return _run(kind, family, seed, factory().eval(), [check])


@dataclass(frozen=True)
class Calibration:
    good: tuple[Case, ...]
    bad: tuple[Case, ...]


def calibrate(seeds: Sequence[int] = CALIBRATION_SEEDS) -> Calibration:
    """Run every known-good and known-bad case on each image set."""
    good, bad = [], []
    for seed in seeds:
        good.append(good_case(seed))
        bad += [bad_map_case(kind, seed) for kind in planted.BAD_MAPS]
        bad += [
            bad_model_case(kind, FILL_READERS, f, "leakage", seed) for kind, f in planted.FILL_READERS.items()
        ]
        bad += [
            bad_model_case(kind, RANDOM_FORWARDS, f, "determinism", seed)
            for kind, f in planted.RANDOM_FORWARDS.items()
        ]
    return Calibration(tuple(good), tuple(bad))


def measure_power(calibration: Calibration) -> dict[str, Power]:
    """Result name -> the known-bad cases that ran it and how many it failed."""
    names = [
        n
        for n in dict.fromkeys(r.name for case in calibration.bad for r in case.results)
        if n not in NOT_STORED
    ]
    power = {}
    for name in names:
        cases = [c for c in calibration.bad if c.verdict(name) is not None]
        flagged = sum(c.verdict(name) == FAIL for c in cases)
        power[name] = Power(flagged, len(cases), cases[0].family)
    return power


def _table(calibration: Calibration) -> str:
    """Verdicts as a grid: one row per result, one column per case."""
    cases = [*calibration.good, *calibration.bad]
    names = list(dict.fromkeys(r.name for c in cases for r in c.results))
    head = [f"{c.kind}/{c.seed}" for c in cases]
    width = max(len(n) for n in names)
    lines = [" " * width + "  " + "  ".join(head)]
    for name in names:
        cells = [(c.verdict(name) or "-")[:4].ljust(len(h)) for c, h in zip(cases, head, strict=True)]
        lines.append(name.ljust(width) + "  " + "  ".join(cells))
    return "\n".join(lines)


def main(*, trained: bool = False) -> None:
    """Print the calibration's verdicts and the power table to paste into ``occsens.checks.power``;
    with ``trained``, also the verdicts on a CNN trained on planted objects (minutes of CPU):
    ``python -c "from occsens.checks.calibration import main; main(trained=True)"``."""
    calibration = calibrate()
    if trained:
        model = planted.trained_cnn()
        good = calibration.good + tuple(trained_case(seed, model) for seed in CALIBRATION_SEEDS)
        calibration = Calibration(good, calibration.bad)
    print(_table(calibration))
    family = {MAPS: "MAPS", FILL_READERS: "FILL_READERS", RANDOM_FORWARDS: "RANDOM_FORWARDS"}
    print("\nMEASURED_POWER: dict[str, Power] = {")
    for name, p in measure_power(calibration).items():
        print(f'    "{name}": Power({p.flagged}, {p.cases}, {family[p.of]}),  # {p.fraction:.2f}')
    print("}")


if __name__ == "__main__":
    main()
