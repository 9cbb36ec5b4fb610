"""The data-set report: its numbers recomputed from the store with pandas, and its page tested as the
single-sample report's is (embedded images with alt text, no external reference, anchors resolve,
names escaped)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import occsens
from occsens.datasurvey.analysis import analyse, cited
from occsens.datasurvey.page import write_report

from .helpers import NUM_CLASSES, Page, tiny_images, tiny_model

NAMES = ["<b>zero</b>", "one & two", "three", 'four"', "five"]  # markup in a class name stays text


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    images, labels = tiny_images(40, seed=1)
    out = tmp_path_factory.mktemp("survey") / "s"
    return occsens.survey(
        tiny_model(), images, labels=labels, out=out, patch=4, notebook=True, class_names=NAMES, shard_size=16
    )


def test_the_numbers_equal_a_recount_from_the_rows(store: Path) -> None:
    frame = pd.read_parquet(store)
    cmap = np.stack(frame["class_map"])
    nb = np.stack(frame["notebook_class_map"])
    clean = frame["clean_class"].to_numpy()
    label = frame["label"].to_numpy()
    data = analyse(store)
    for k in range(NUM_CLASSES):
        mine = label == k
        kept = (cmap[mine] == clean[mine, None]).mean(axis=0)
        np.testing.assert_allclose(data.classes[k].survival.reshape(-1), kept)
        np.testing.assert_allclose(
            data.classes[k].mean_drop.reshape(-1), np.stack(frame["drop"][mine]).mean(axis=0), atol=1e-6
        )
        for matrix, maps in ((data.takeover, cmap), (data.notebook_takeover, nb)):
            lost = maps[mine][maps[mine] != clean[mine, None]]
            expected = np.bincount(lost, minlength=NUM_CLASSES) / max(len(lost), 1)
            np.testing.assert_allclose(matrix[k], expected)
    assert data.wrong_total == int((clean != label).sum())
    assert data.correct == int((clean == label).sum())
    numbers = cited(store, tiny_model())
    assert [c.images for c in numbers.classes] == np.bincount(label, minlength=NUM_CLASSES).tolist()


@pytest.fixture(scope="module")
def page(store: Path) -> tuple[str, Page]:
    text = write_report(store).read_text(encoding="utf-8")
    return text, Page(text)


def test_the_page_is_self_contained_and_escapes_names(page: tuple[str, Page]) -> None:
    text, parsed = page
    assert text.startswith("<!DOCTYPE html>") and parsed.errors == []
    images = parsed.find("img")
    assert len(images) > 20
    for img in images:
        assert img.get("src", "").startswith("data:image/png;base64,")
        assert img.get("alt", "").strip()
    assert not re.search(r"(?i)\b(?:https?|ftp):", text)
    assert not parsed.find("script") and not parsed.find("link")
    assert "&lt;b&gt;zero&lt;/b&gt;" in text and "<b>zero</b>" not in text
    ids = {a["id"] for _, a in parsed.tags if "id" in a}
    for a in parsed.find("a"):
        assert a["href"][1:] in ids, a["href"]


def test_an_unfinished_survey_has_no_report_yet(tmp_path: Path) -> None:
    images, labels = tiny_images(12)

    def stop(shard: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        occsens.survey(
            tiny_model(), images, labels=labels, out=tmp_path / "s", patch=4, shard_size=4, on_shard=stop
        )
    with pytest.raises(occsens.OcclusionError, match=r"unfinished \(1 of 3 shards\).*--resume"):
        write_report(tmp_path / "s")
