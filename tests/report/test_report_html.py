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
        "The notebook behind the question",
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


# ----------------------------------------------------------------------- one page a person reads (issue 14)


def test_the_page_opens_with_the_four_questions_each_answered_with_evidence_links(page: Page) -> None:
    sections = [a["id"] for t, a in page.tags if t == "section" and "id" in a]
    assert sections[0] == "questions", sections[:3]
    ids = {a["id"] for _, a in page.tags if "id" in a}
    articles = [a["id"] for a in page.find("article", "question")]
    assert articles == ["q1", "q2", "q3", "q4"]
    answers = page.find("p", "answer")
    assert len(answers) == 4
    for q in articles:  # each answer links to evidence further down that exists
        start = next(i for i, (t, a) in enumerate(page.tags) if a.get("id") == q)
        end = next(
            i
            for i, (t, a) in enumerate(page.tags)
            if i > start and t == "article" or a.get("id") == "notebook"
        )
        links = [a["href"] for t, a in page.tags[start:end] if t == "a" and a.get("href", "").startswith("#")]
        assert links and all(href[1:] in ids for href in links), (q, links)


def test_the_answers_are_the_reports_first_findings_and_its_json(built: Built) -> None:
    answers = [f.text for f in built.result.findings[:4]]
    assert answers[0].startswith("Yes: np.amax(out) is the top probability of the last occluded input")
    assert "the notebook greys a 20x20 square at each position (39.1% of the image)" in answers[1]
    assert "(the asker's printout: airplane 37 of 64)" in answers[1]  # the asker's count, on their ship
    assert answers[2].startswith("The first: the model sees the whole image except the grey patch")
    assert "one training run" in answers[3]
    assert "differ by up to 1.2 points in colour and 1.0 in greyscale" in answers[3]
    assert "so the 5.0-point gap is outside that spread" in answers[3]
    assert [q["answer"] for q in built.result.numbers["questions"]] == answers
    for text in answers:  # one plain sentence and at most three of evidence ("0.9226" has no ". ")
        assert text.count(". ") + 1 <= 4, text
        assert len(text.split(". ")[0].split()) <= 45, text


def test_q2s_key_evidence_is_in_view_under_its_answer(page: Page) -> None:
    """The notebook's square against a true window on the asker's ship: not folded, under Q2's answer
    (its other copies, in the notebook's section and each sample's, stay folded)."""
    shown = page.folded("img", "alt", "the notebook's 20x20")
    assert len(shown) >= 2 and shown[0] is False and all(shown[1:])


def test_the_notebook_is_introduced_once_and_linked_to(built: Built, page: Page) -> None:
    assert [a for a in page.find("section") if a.get("id") == "notebook"]
    words = " ".join(built.html.split())
    assert words.count("is the grid step, not the size of the grey square") == 1
    assert words.count("print(&#39;Predicted class:") == 1
    assert len([a for a in page.find("a") if a.get("href") == "#notebook"]) >= 3


def test_shared_explanations_appear_once_and_secondary_figures_are_folded(built: Built, page: Page) -> None:
    words = " ".join(built.html.split())
    for explanation in (
        "Background-only (occlude):",
        "Patch-only (reveal):",
        "low = important</strong>: hiding",
    ):
        assert words.count(explanation) == 1, explanation
    for alt in (
        "class maps under",
        "occluded input with",
        "maps under the notebook",
    ):
        folded = page.folded("img", "alt", alt.replace("&#39;", "'"))
        assert folded and all(folded), alt
    for alt in ("heatmap of", "most probable class per window", "background-only and patch-only"):
        folded = page.folded("img", "alt", alt)
        assert folded and not any(folded), alt  # the per-sample maps stay in view
    assert not [a for a in page.find("details") if "open" in a]  # everything folded starts closed


def test_each_sample_image_and_occluded_input_is_stored_at_its_own_pixels(page: Page) -> None:
    for img in page.find("img", "pixels"):
        with Image.open(io.BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as decoded:
            assert decoded.size == (32, 32), img["alt"]  # enlarged by the page, not stored enlarged
        assert int(img["width"]) >= 32  # fill-only minis at 1x, the samples and inputs enlarged
    assert {int(img["width"]) for img in page.find("img", "pixels")} > {32}


def test_the_all_samples_table_says_what_the_fill_question_can_answer(built: Built, page: Page) -> None:
    """Issue 14: "replacement follows the fill? no" was printed where nothing was replaced."""
    data = json.loads((built.path.parent / report.JSON_NAME).read_text())
    for s in data["samples"]:
        replaced = [f for f in s["fills"] if f["replacement"] is not None]
        if not replaced:
            assert "no class takes over under any fill" in built.html
    assert "replacement follows the fill?" not in built.html
