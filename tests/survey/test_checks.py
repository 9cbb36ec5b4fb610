"""A survey runs the sanity checks on some of its images and the data-set report shows their verdicts
(issue 24: "the sanity-check verdicts computed over the survey's images with their intervals")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import occsens
from occsens.datasurvey.checks import positions
from occsens.datasurvey.page import write_report
from occsens.datasurvey.store import CHECKS

from .helpers import Page, tiny_images, tiny_model


def test_the_checked_images_are_spread_evenly_over_the_survey() -> None:
    assert positions(100, 10) == [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]
    assert positions(5, 10) == [0, 1, 2, 3, 4]  # fewer images than asked: all of them
    assert positions(3, 1) == [0]


def test_the_stored_verdicts_are_those_of_run_checks_on_the_same_images(tmp_path: Path) -> None:
    images, labels = tiny_images(24)
    folder = occsens.survey(tiny_model(), images, labels=labels, out=tmp_path / "s", patch=4, check_images=8)
    stored = json.loads((folder / CHECKS).read_text())
    chosen = positions(24, 8)
    assert stored["images"] == 8 and stored["positions"] == chosen
    expected = occsens.run_checks(
        tiny_model(),
        torch.from_numpy(images[chosen]).float() / 255,
        labels=labels[chosen].tolist(),
        sample_ids=chosen,
        patch=4,
        class_names=[f"class {k}" for k in range(5)],
    )
    assert [(r["name"], r["verdict"]) for r in stored["results"]] == [(r.name, r.verdict) for r in expected]
    assert len(stored["rows"]) == len(expected) and stored["summary"]
    page = write_report(folder).read_text(encoding="utf-8")
    assert Page(page).errors == [] and 'id="checks"' in page and "8 of the survey's images" in page
    for row in stored["rows"]:
        assert f'class="verdict {row["verdict"]}"' in page


def test_a_survey_without_checks_says_how_to_add_them(tmp_path: Path) -> None:
    images, labels = tiny_images(12)
    folder = occsens.survey(tiny_model(), images, labels=labels, out=tmp_path / "s", patch=4, check_images=0)
    assert not (folder / CHECKS).exists()
    assert "ran no sanity checks" in write_report(folder).read_text(encoding="utf-8")
    finished: list[int] = []
    occsens.survey(
        tiny_model(),
        images,
        labels=labels,
        out=folder,
        patch=4,
        resume=True,
        check_images=6,
        on_shard=lambda s: finished.append(s.index),
    )
    assert finished == [] and json.loads((folder / CHECKS).read_text())["images"] == 6  # no shard redone


def test_a_damaged_checks_file_is_named_not_shown(tmp_path: Path) -> None:
    images, labels = tiny_images(8)
    folder = occsens.survey(tiny_model(), images, labels=labels, out=tmp_path / "s", patch=4, check_images=0)
    (folder / CHECKS).write_text('{"rows": [')
    with pytest.raises(
        occsens.OcclusionError, match=r"survey checks file .*_checks\.json' is not valid JSON"
    ):
        write_report(folder)
    (folder / CHECKS).write_text("[1, 2]")
    with pytest.raises(occsens.OcclusionError, match="is not an occsens survey checks file"):
        write_report(folder)
