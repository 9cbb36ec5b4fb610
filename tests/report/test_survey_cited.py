"""A report cites a survey of the same model and settings (issue 24: Q2 at data-set scale).

The cited numbers are recounted here from the survey's Parquet rows with pandas, not read from the
code under test; a survey of another model or other settings is refused by name before the long runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import occsens
from occsens import OcclusionError, report
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.cifar.models import load_model
from occsens.cifar.samples import load_samples
from occsens.datasurvey import cited
from occsens.report.formatting import pct

from .conftest import TinyNet

pytest.importorskip("pyarrow", reason="surveys write Parquet with pyarrow (occsens[survey])")

SHIP = CIFAR10_CLASSES.index("ship")  # the asker's class, whose row Q2 cites


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return load_model("default")  # the shipped model: on real images classes do take windows over


@pytest.fixture(scope="module")
def surveyed(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    samples = load_samples()
    images, labels = torch.from_numpy(samples.images[:40].copy()), samples.labels[:40].tolist()
    assert labels.count(SHIP) >= 2
    out = tmp_path_factory.mktemp("survey") / "s"
    occsens.survey(
        model,
        images,
        labels=labels,
        out=out,
        patch=4,
        notebook=True,
        class_names=CIFAR10_CLASSES,
        progress=False,
    )
    return images, labels, out


def _explain(model: torch.nn.Module, surveyed: tuple, survey: object, **kw: object) -> report.Report:
    images, labels, _ = surveyed
    ships = [i for i, y in enumerate(labels) if y == SHIP][:2]
    return occsens.explain(
        model,
        images[ships],
        labels=[SHIP, SHIP],
        class_names=CIFAR10_CLASSES,
        checks=False,
        question=report.ASKER,
        survey=survey,
        **kw,
    )


def _recount(folder: Path, k: int, column: str) -> tuple[float, str, float]:
    """Share of class k's windows whose clean class loses, the class winning most of them, its share."""
    rows = pd.read_parquet(folder)
    mine = rows[rows["label"] == k]
    maps = np.stack(mine[column])
    lost = maps[maps != mine["clean_class"].to_numpy()[:, None]]
    counts = np.bincount(lost, minlength=10)
    return len(lost) / maps.size, CIFAR10_CLASSES[int(counts.argmax())], counts.max() / max(len(lost), 1)


def test_the_answer_to_q2_cites_the_surveys_numbers_for_the_askers_class(model, surveyed) -> None:
    _, labels, folder = surveyed
    made = _explain(model, surveyed, cited(folder, model))
    answer = made.numbers["questions"][1]["answer"]
    true_lost, true_taker, true_share = _recount(folder, SHIP, "class_map")
    nb_lost, nb_taker, nb_share = _recount(folder, SHIP, "notebook_class_map")
    assert nb_lost > 0  # the square does take ship windows away: the clause below is exercised
    assert f"in the survey's {labels.count(SHIP)} ship images" in answer
    assert (
        f"{pct(nb_lost)} of positions under the square ({nb_taker} takes {pct(nb_share)} of those)" in answer
    )
    assert f"{pct(true_lost)} under true windows" in answer
    if true_lost:
        assert f"({true_taker} takes {pct(true_share)})" in answer
    ship = made.numbers["survey"]["classes"][SHIP]
    assert ship["windows_lost"] == pytest.approx(true_lost) and ship["images"] == labels.count(SHIP)
    assert ship["notebook_main_taker"] == nb_taker
    assert 'id="data-set"' in made.html and pct(nb_lost) in made.html
    assert len(answer.split(". ")) <= 4  # still one plain sentence and at most three of evidence


def test_without_a_survey_the_answer_says_nothing_of_one(model, surveyed) -> None:
    made = _explain(model, surveyed, None)
    assert "survey" not in made.numbers["questions"][1]["answer"] and "survey" not in made.numbers


def test_a_survey_made_with_other_settings_is_refused_by_name(model, surveyed) -> None:
    folder = surveyed[2]
    with pytest.raises(OcclusionError, match=r"other settings \(patch \(4, 4\) there, \(8, 8\) here"):
        _explain(model, surveyed, cited(folder, model), patch=8)
    with pytest.raises(OcclusionError, match=r"fill"):
        _explain(model, surveyed, cited(folder, model), fill=0.0)


def test_a_survey_of_another_model_or_no_survey_is_refused(model, surveyed) -> None:
    folder = surveyed[2]
    with pytest.raises(OcclusionError, match="made with another model"):
        cited(folder, TinyNet())
    with pytest.raises(OcclusionError, match="holds no survey"):
        cited(folder.parent / "nothing", model)
    with pytest.raises(OcclusionError, match=r"survey must be occsens.datasurvey.cited"):
        _explain(model, surveyed, {"classes": []})


def test_the_command_line_refuses_a_missing_survey_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "report", "--survey", str(tmp_path / "none"), "--no-checks",
         "--out", str(tmp_path / "r"), "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "holds no survey" in done.stderr
    assert not (tmp_path / "r").exists()
