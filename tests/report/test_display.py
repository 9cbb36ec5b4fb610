"""How results show themselves: one line as a repr, a compact escaped summary in a notebook.

An ``Occlusion`` result, a list of check results (through ``show_checks``) and a ``Report`` each have a
``repr`` of one short line (not tensors, not the page) and a ``_repr_html_`` that Jupyter shows; every
name in them that the user chose (fill, class, check explanation) is escaped.
"""

from __future__ import annotations

import html

import pytest
import torch

import occsens
from occsens import OcclusionError, report
from occsens.checks import CheckResult
from occsens.checks.results import Clause, Condition
from occsens.report import CheckTable, show_checks
from occsens.report.display import FRAME_HEIGHT_PX, MAX_ROWS

from .conftest import Page, TinyNet

HOSTILE = "<script>alert(1)</script>"
# A one-line repr is one a terminal shows without wrapping it into a wall: 300 characters is about three
# lines of a 100-column terminal (the old dataclass repr printed every tensor: about 6 KB).
MAX_REPR = 300


@pytest.fixture(scope="module")
def res() -> occsens.Occlusion:
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return occsens.occlude(TinyNet(), images, patch=8, stride=4)


# --------------------------------------------------------------------------- Occlusion


def test_an_occlusion_result_reprs_as_one_short_line_of_its_settings(res: occsens.Occlusion) -> None:
    text = repr(res)
    assert "\n" not in text and len(text) < MAX_REPR
    assert "tensor" not in text
    for piece in ("2 images 3x32x32", "10 classes", "patch 8x8 stride 4x4", "(7x7 positions)", "fill 0.5"):
        assert piece in text, (piece, text)
    assert f"engine {res.engine.split(' ')[0]}" in text


def test_the_repr_stays_short_whatever_the_fill_and_engine_are_called() -> None:
    def a_fill_whose_name_goes_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on(x, mask):  # noqa: ANN001, ANN202
        return torch.zeros_like(x)

    images = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)).eval()
    res = occsens.occlude(
        model,
        images,
        patch=4,
        fill=a_fill_whose_name_goes_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on,
    )
    assert len(repr(res)) < MAX_REPR


def test_a_notebook_shows_the_settings_each_images_class_and_the_summary_figure(
    res: occsens.Occlusion,
) -> None:
    page = Page(res._repr_html_())
    assert not page.errors
    (img,) = page.find("img")
    assert img["src"].startswith("data:image/png;base64,") and img["alt"]
    text = page.text_outside("none")
    for piece in (
        "patch 8x8, stride 4x4: 7x7 = 49 positions",
        "engine",
        res.engine,
        "clean class",
        "largest drop",
    ):
        assert piece in text, piece
    rows = [t for t, _ in page.tags if t == "tr"]
    assert len(rows) == 5 + 1 + 2  # five settings, the header, one row per image
    for k in range(2):
        assert f"class {int(res.clean_class[k])}" in text


def test_a_long_result_lists_the_first_images_and_says_how_many_more() -> None:
    images = torch.rand(MAX_ROWS + 3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
    shown = occsens.occlude(model, images, patch=4)._repr_html_()
    assert "and 3 more images" in shown
    assert len(Page(shown).find("tr")) == 5 + 1 + MAX_ROWS  # five settings, the header, MAX_ROWS images


def test_a_fill_named_like_markup_is_escaped() -> None:
    def fill(x, mask):  # noqa: ANN001, ANN202
        return torch.zeros_like(x)

    fill.__name__ = fill.__qualname__ = HOSTILE
    images = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3)).eval()
    res = occsens.occlude(model, images, patch=4, fill=fill)
    assert HOSTILE in res.fill  # the engine keeps the name as given
    shown = res._repr_html_()
    assert "<script" not in shown and html.escape(HOSTILE) in shown


# --------------------------------------------------------------------------- check results


def _result(name: str, verdict: str, explanation: str = "why") -> CheckResult:
    condition = Condition("z above chance", (Clause("z", ">=", 2.0),), "two standard deviations")
    return CheckResult(name, verdict, {"z": 1.5}, condition, explanation, (0,))


def test_check_results_repr_as_their_verdict_counts_and_print_as_the_command_lines_table() -> None:
    table = show_checks([_result("a", "pass"), _result("b", "fail"), _result("c", "pass")])
    assert repr(table) == "<3 sanity check results: 2 pass, 1 fail, 0 inconclusive>"
    lines = str(table).splitlines()
    assert (
        lines[0].split()[:2] == ["check", "result"] and len(lines) == 2 + 3 + 1
    )  # header, rule, rows, summary
    assert [r.name for r in table] == ["a", "b", "c"] and len(table) == 3


def test_check_results_show_as_a_table_with_the_trust_summary_and_each_explanation() -> None:
    page = Page(
        show_checks([_result("a", "pass", "first"), _result("b", "inconclusive", "second")])._repr_html_()
    )
    assert not page.errors
    rows = page.find("tr")
    assert [r.get("title") for r in rows[1:]] == ["first", "second"]
    text = page.text_outside("none")
    assert "Sanity checks" in text and "1 pass, 0 fail, 1 inconclusive" in text


def test_check_names_and_explanations_are_escaped() -> None:
    shown = show_checks([_result(HOSTILE, "fail", HOSTILE)])._repr_html_()
    assert "<script" not in shown and html.escape(HOSTILE) in shown


@pytest.mark.parametrize("results", ["pass", None, [1, 2], [_result("a", "pass"), "b"]])
def test_show_checks_takes_only_run_checks_results(results: object) -> None:
    with pytest.raises(OcclusionError, match="results must"):
        show_checks(results)  # type: ignore[arg-type]


def test_run_checks_results_show_themselves_through_show_checks() -> None:
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    results = occsens.run_checks(TinyNet(), images, patch=8, checks=["determinism"])
    assert isinstance(results, list)  # run_checks' return type is unchanged
    table = show_checks(results)
    assert isinstance(table, CheckTable) and show_checks(table) is table
    assert "determinism" in table._repr_html_()


# --------------------------------------------------------------------------- Report


@pytest.fixture(scope="module")
def explained() -> report.Report:
    """``occsens.explain`` on one image with a class named like markup, and the sanity checks."""
    names = [f"class {k}" for k in range(10)]
    model = TinyNet()
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        names[int(model(image[None]).argmax())] = HOSTILE  # the clean class: named in every section
    return occsens.explain(model, image, patch=8, class_names=names, sample_names=["mine"])


def test_a_report_reprs_as_one_line_not_its_page(explained: report.Report) -> None:
    text = repr(explained)
    assert "\n" not in text and len(text) < MAX_REPR and "<!DOCTYPE" not in text
    verdicts = explained.numbers["check_verdicts"]
    assert text.startswith("<Report 'Occlusion sensitivity report': 1 sample, checks ")
    assert f"{verdicts.count('pass')} pass" in text


def test_a_report_shows_itself_inline_in_a_frame_holding_exactly_its_page(explained: report.Report) -> None:
    shown = explained._repr_html_()
    page = Page(shown)
    assert not page.errors
    (frame,) = page.find("iframe")
    assert frame["srcdoc"] == explained.html  # escaped in the attribute, the page itself once parsed
    assert f"height:{FRAME_HEIGHT_PX}px" in frame["style"]
    assert "allow-scripts" not in frame["sandbox"]
    assert explained.numbers["trust_summary"] in page.text_outside("none")


def test_a_class_named_like_markup_never_reaches_the_notebook_as_markup(explained: report.Report) -> None:
    assert "<script" not in explained.html  # the page autoescapes it
    assert "<script" not in explained._repr_html_()  # and the frame escapes the page again
    assert HOSTILE in explained.numbers["classes"]


def test_save_writes_the_page_whole_to_a_file_or_into_a_folder(explained: report.Report, tmp_path) -> None:  # noqa: ANN001
    path = explained.save(tmp_path / "mine.html")
    assert path == tmp_path / "mine.html" and path.read_text(encoding="utf-8") == explained.html
    assert explained.save(tmp_path) == tmp_path / report.HTML_NAME
    assert explained.save(f"{tmp_path}/new/") == tmp_path / "new" / report.HTML_NAME
    assert (tmp_path / "new" / report.HTML_NAME).read_bytes() == explained.html.encode("utf-8")


def test_save_refuses_a_path_it_cannot_write_naming_it(explained: report.Report, tmp_path) -> None:  # noqa: ANN001
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OcclusionError, match=r"path .*a-file.* is a file, not a folder"):
        explained.save(tmp_path / "a-file" / "report.html")
    with pytest.raises(OcclusionError, match="path must be a path"):
        explained.save("")
