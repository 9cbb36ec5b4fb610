"""The survey's store: what it holds equals the engine's answer, it is written shard by shard and
atomically, an interrupted survey resumes to the same bytes, and a store is never mixed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import occsens
from occsens.datasurvey import MANIFEST, read_survey

from .helpers import NUM_CLASSES, files_of, tiny_images, tiny_model

SHARD = 6  # 20 images make shards of 6, 6, 6 and 2: a short last shard is covered too


class Stop(Exception):
    """Raised from ``on_shard`` to cut a survey off, as a Ctrl-C or a killed job would."""


def _survey(out: Path, **kw: object) -> Path:
    images, labels = tiny_images()
    return occsens.survey(tiny_model(), images, labels=labels, out=out, patch=4, shard_size=SHARD, **kw)


def test_each_row_holds_the_engines_answer_for_its_image(tmp_path: Path) -> None:
    images, labels = tiny_images()
    folder = _survey(tmp_path / "s", notebook=True)
    frame = pd.read_parquet(folder)  # the documented way to read a store
    frame = frame.sort_values("index").reset_index(drop=True)
    res = occsens.occlude(tiny_model(), images, patch=4)
    nb = occsens.notebook_occlude(tiny_model(), images, size=4)
    assert frame["index"].tolist() == list(range(20))
    assert frame["label"].tolist() == labels.tolist()
    assert frame["clean_class"].tolist() == res.clean_class.tolist()
    np.testing.assert_allclose(np.stack(frame["probs"]), res.clean_probs.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.stack(frame["drop"]), res.drop.reshape(20, -1).numpy(), atol=1e-6)
    assert np.array_equal(np.stack(frame["class_map"]), res.class_map.reshape(20, -1).numpy())
    np.testing.assert_allclose(np.stack(frame["notebook_drop"]), nb.drop.reshape(20, -1).numpy(), atol=1e-6)
    assert np.array_equal(np.stack(frame["notebook_class_map"]), nb.class_map.reshape(20, -1).numpy())
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["grid"] == [4, 4] and len(manifest["windows"]) == 16
    assert [s["count"] for s in manifest["shards"]] == [6, 6, 6, 2]
    assert manifest["settings"]["patch"] == [4, 4] and manifest["occsens_version"] == occsens.__version__
    assert len(manifest["class_names"]) == NUM_CLASSES


def test_an_interrupted_survey_resumes_to_the_same_files_redoing_no_finished_shard(tmp_path: Path) -> None:
    whole = _survey(tmp_path / "whole")
    done: list[int] = []

    def stop_after_two(shard: occsens.datasurvey.store.Shard) -> None:
        done.append(shard.index)
        if len(done) == 2:
            raise Stop

    with pytest.raises(Stop):
        _survey(tmp_path / "cut", on_shard=stop_after_two)
    cut = tmp_path / "cut"
    manifest = json.loads((cut / MANIFEST).read_text())
    assert [s["index"] for s in manifest["shards"]] == [0, 1]  # the manifest names exactly what is on disk
    assert sorted(p.name for p in cut.glob("shard-*")) == ["shard-00000.parquet", "shard-00001.parquet"]
    redone: list[int] = []
    _survey(cut, resume=True, on_shard=lambda s: redone.append(s.index))
    assert redone == [2, 3]
    assert files_of(cut) == files_of(whole)


def test_a_killed_survey_process_resumes_to_the_same_files(tmp_path: Path) -> None:
    """A process killed outright (no cleanup runs) leaves whole shards only; the resume completes them."""
    whole = _survey(tmp_path / "whole")
    cut = tmp_path / "cut"
    script = f"""
import os, sys
sys.path.insert(0, {str(Path(__file__).parents[2])!r})
import occsens
from tests.survey.helpers import tiny_images, tiny_model
images, labels = tiny_images()
def die(shard):
    if shard.index == 1:
        os._exit(9)
occsens.survey(tiny_model(), images, labels=labels, out={str(cut)!r}, patch=4, shard_size={SHARD},
               on_shard=die)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 9, done.stderr[-2000:]
    assert len(json.loads((cut / MANIFEST).read_text())["shards"]) == 2
    _survey(cut, resume=True)
    assert files_of(cut) == files_of(whole)


def test_resuming_with_other_settings_or_another_model_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    folder = _survey(tmp_path / "s")
    before = files_of(folder)
    images, labels = tiny_images()
    with pytest.raises(occsens.OcclusionError, match=r"patch \[4, 4\] there, \[8, 8\] now"):
        occsens.survey(tiny_model(), images, labels=labels, out=folder, patch=8, shard_size=6, resume=True)
    other = tiny_model()
    with torch.no_grad():
        other[0].weight.add_(0.01)
    with pytest.raises(occsens.OcclusionError, match=r"model.sha256"):
        occsens.survey(other, images, labels=labels, out=folder, patch=4, shard_size=SHARD, resume=True)
    changed = images.copy()
    changed[7] ^= 1  # one image of shard 1 differs by one grey level
    with pytest.raises(occsens.OcclusionError, match=r"images of shard 1 .* differ"):
        occsens.survey(tiny_model(), changed, labels=labels, out=folder, patch=4, shard_size=6, resume=True)
    assert files_of(folder) == before


def test_a_folder_holding_a_survey_needs_resume_or_overwrite(tmp_path: Path) -> None:
    folder = _survey(tmp_path / "s")
    with pytest.raises(occsens.OcclusionError, match=r"already holds a survey \(4 shards done\).*--resume"):
        _survey(folder)
    images, labels = tiny_images(8)
    occsens.survey(tiny_model(), images, labels=labels, out=folder, patch=4, shard_size=SHARD, overwrite=True)
    assert len(read_survey(folder)) == 8  # the old shards 2 and 3 are gone, not mixed in


def test_resuming_a_finished_survey_does_nothing_and_keeps_its_files(tmp_path: Path) -> None:
    folder = _survey(tmp_path / "s")
    before = files_of(folder)
    redone: list[int] = []
    _survey(folder, resume=True, on_shard=lambda s: redone.append(s.index))
    assert redone == [] and files_of(folder) == before


def test_a_damaged_shard_is_redone_on_resume(tmp_path: Path) -> None:
    folder = _survey(tmp_path / "s")
    before = files_of(folder)
    (folder / "shard-00002.parquet").write_bytes(b"not parquet")
    redone: list[int] = []
    _survey(folder, resume=True, on_shard=lambda s: redone.append(s.index))
    assert redone == [2] and files_of(folder) == before


@pytest.mark.integration
def test_the_command_surveys_cifar10_and_refuses_a_resume_with_other_settings(
    cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from occsens import cli

    out = tmp_path / "s"
    argv = ["survey", "--data-dir", str(cifar_dir), "--limit", "6", "--only-classes", "cat,ship"]
    argv += ["--shard-size", "4", "--out", str(out), "--quiet", "--no-report"]
    assert cli.main(argv) == 0
    frame = read_survey(out)
    assert set(frame["label"]) <= {3, 8} and len(frame) == 6  # CIFAR-10's cat is 3, ship 8
    assert frame["name"].str.startswith("test #").all()
    capsys.readouterr()
    assert cli.main([*argv, "--resume", "--patch", "8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "settings.patch [4, 4] there, [8, 8] now" in err[0]
