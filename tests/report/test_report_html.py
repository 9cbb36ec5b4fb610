"""The HTML report, tested like coverage.py tests its HTML: structure, embedded images, no external
references, anchors that resolve, and the key numbers checked against the model itself."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
import torch
from PIL import Image

from occsens import report
from occsens.cifar.data import CIFAR10_CLASSES

from .conftest import Built, Page, TinyNet


@pytest.fixture(scope="module")
def page(built: Built) -> Page:
    return Page(built.html)


def test_html_parses_with_balanced_tags(built: Built, page: Page) -> None:
    assert built.html.startswith("<!DOCTYPE html>")
    assert page.errors == []
    assert [t for t, _ in page.tags][:2] == ["html", "head"]
    assert len(page.find("section", "sample")) == 2


def test_every_image_is_embedded_decodes_and_has_alt_text(page: Page) -> None:
    images = page.find("img")
    assert len(images) > 20
    for img in images:
        src = img.get("src", "")
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert img.get("alt", "").strip(), f"an <img> has no alt text: {src[:60]}"
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1], validate=True))) as decoded:
            decoded.load()
            assert decoded.width >= 32 and decoded.height >= 32


def test_no_external_reference_anywhere(built: Built, page: Page) -> None:
    text = built.html
    assert not re.search(r"(?i)\b(?:https?|ftp):", text)
    assert "//" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text).replace("://", "")
    assert not page.find("script") and not page.find("link") and not page.find("iframe")
    for tag, attrs in page.tags:
        for key in ("src", "href", "action", "srcset", "poster"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("#", "data:")), f"<{tag} {key}={value[:60]!r}>"
    assert not re.search(r"url\((?!\s*['\"]?data:)", text), "CSS url() to a resource"
    assert "@import" not in text


def test_css_is_inlined(built: Built, page: Page) -> None:
    assert len(page.find("style")) == 1
    assert ".finding" in built.html and "font-variant-numeric" in built.html


def test_every_anchor_resolves(page: Page) -> None:
    ids = [a["id"] for _, a in page.tags if "id" in a]
    assert len(ids) == len(set(ids)), "duplicate ids"
    links = [a["href"] for a in page.find("a") if a.get("href", "").startswith("#")]
    assert len(links) > 10
    for href in links:
        assert href[1:] in ids, f"link {href} has no target"
    for required in (
        "overview",
        "model",
        "samples",
        "takeover",
        "colour-vs-greyscale",
        "sample-1",
        "sample-2",
        "method",
    ):
        assert required in ids


def test_clean_probability_equals_the_models_softmax(built: Built, page: Page) -> None:
    with torch.inference_mode():
        expected = torch.softmax(built.model(built.images).float(), dim=1)
    cells = page.find("td", "clean-prob")
    assert len(cells) == 2 * len(built.images)  # the overview table and each sample's section
    shown = re.findall(
        r'class="num clean-prob" data-sample="(\d+)" data-value="([^"]+)">([^<]+)<', built.html
    )
    assert len(shown) == len(cells)
    for number, exact, text in shown:
        p = float(expected[int(number) - 1].max())
        assert float(exact) == pytest.approx(p, abs=1e-6)
        assert text == f"{p:.4f}"


def test_top3_and_prediction_come_from_the_unoccluded_input(built: Built) -> None:
    with torch.inference_mode():
        probs = torch.softmax(built.model(built.images).float(), dim=1)
    for n, sample in enumerate(built.result.numbers["samples"]):
        order = torch.argsort(probs[n], descending=True)[:3].tolist()
        assert [t["class"] for t in sample["top3"]] == [CIFAR10_CLASSES[k] for k in order]
        assert sample["clean_class"] == CIFAR10_CLASSES[order[0]]
        for t in sample["top3"]:
            assert f"{t['prob']:.4f}" in built.html


def test_class_counts_sum_to_the_number_of_windows(built: Built, page: Page) -> None:
    tables = re.findall(r'<table class="grid counts" data-windows="(\d+)">(.*?)</table>', built.html, re.S)
    assert len(tables) == 2
    for windows, body in tables:
        counts = [int(v) for v in re.findall(r'<td class="num count">(\d+)</td>', body)]
        assert sum(counts) == int(windows) == 64  # 4x4 windows on 32x32: an 8x8 grid
    for sample in built.result.numbers["samples"]:
        for key in ("occlude", "reveal"):
            assert sum(sample[key]["class_counts"].values()) == sample[key]["positions"]
        for fill in sample["fills"]:
            assert sum(fill["class_counts"].values()) == fill["positions"]


def test_every_number_a_finding_uses_is_shown_outside_the_findings(built: Built, page: Page) -> None:
    outside = page.text_outside("finding")
    assert built.result.findings
    for finding in built.result.findings:
        assert finding.text in built.html.replace("&#39;", "'").replace("&amp;", "&").replace(
            "&quot;", '"'
        ), finding.text
        for number in finding.numbers:
            assert number in outside, f"{number!r} from {finding.text!r} is not shown outside the findings"


def test_findings_speak_to_the_question(built: Built) -> None:
    text = " ".join(f.text for f in built.result.findings)
    assert "region that matters most is rows" in text
    assert "only the window shown" in text
    assert "image made only of" in text
    assert "notebook" in text and "np.amax(out)" in text
    assert "Test accuracy: colour 0.9000, greyscale 0.8500" in text


def test_sections_required_by_the_issue_are_present(built: Built) -> None:
    html = built.html
    for phrase in (
        "low = important",
        "Background-only (occlude",
        "Patch-only (reveal",
        "What the model actually saw",
        "an image made only of the fill",
        "The notebook&#39;s geometry",
        "Which classes take over",
        "Colour or greyscale?",
        "Per-class test accuracy",
        "Top 3 classes",
    ):
        assert phrase in html, phrase
    for label in ("grey 0.5", "image mean", "blur", "noise", "black 0"):
        assert f"<td>{label}</td>" in html
    assert "400" in html and "39.1%" in html  # the notebook's 20x20 square on a 32x32 image


def test_json_numbers_match_the_page(built: Built) -> None:
    data = json.loads((built.path.parent / report.JSON_NAME).read_text())
    assert data == json.loads(json.dumps(built.result.numbers))
    assert [s["name"] for s in data["samples"]] == ["test #1", "test #3"]
    assert [s["index"] for s in data["samples"]] == [1, 3]
    for s in data["samples"]:
        assert f"{s['clean_prob']:.4f}" in built.html
        assert len(s["occlude"]["heatmap"]) == 8 and len(s["occlude"]["heatmap"][0]) == 8
    assert data["greyscale"]["colour"]["test_accuracy"] == 0.9


def test_same_inputs_give_the_same_bytes_and_no_timestamp_unless_asked(built: Built) -> None:
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", built.html)
    tiny = TinyNet()
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    kwargs = dict(names=CIFAR10_CLASSES, sample_names=["random"], patch=16, fill="noise")
    first = report.make_report(tiny, images, **kwargs).html
    second = report.make_report(tiny, images, **kwargs).html
    assert first == second
    stamped = report.make_report(tiny, images, timestamp="2030-01-02 03:04:05 UTC", **kwargs).html
    assert "2030-01-02 03:04:05 UTC" in stamped and "2030-01-02" not in first
