"""`occsens report` and `occsens explain` from the command line: the happy paths with a small user model,
and bad input: one clear line, exit code 2, and no report (partial or whole) left behind."""

from __future__ import annotations

import itertools
import json
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from occsens import OcclusionError, cli, report
from occsens.cifar.data import CIFAR10_CLASSES

from .conftest import shipped_default

# Issue 14's budget for the default report (8 samples, all sections): "under 1.5 MB". A page of that
# size opens at once from disk and still holds every figure; the 3.7 MB page it replaced did not read
# as one page (188 images, ~47,000 px tall).
MAX_DEFAULT_BYTES = 1_500_000

TINY = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.ReLU(), nn.Flatten())
    return net.append(nn.Linear(8 * 8 * 8, 10))


def wide():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 5, stride=4, padding=2), nn.ReLU(), nn.Flatten())
    return net.append(nn.Linear(16 * 8 * 8, 10))
"""

_names = itertools.count()


@pytest.fixture
def user_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module:factory spec for a small user model, importable from the current directory."""
    name = f"occsens_tiny_{next(_names)}"
    (tmp_path / f"{name}.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{name}:build"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(args)
    except SystemExit as exc:  # an argument error: the parser exits, as argparse does
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def test_report_with_a_user_model_writes_html_and_json(
    tmp_path: Path, user_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, stdout, err = run(
        [
            "report",
            "--model-path",
            user_model,
            "--samples",
            "1,2",
            "--patch",
            "8",
            "--out",
            str(out),
            "--json",
            "--quiet",
            "--no-fail",  # an untrained model may fail a sanity check: a verdict, not an error
        ],
        capsys,
    )
    assert code == 0, err
    assert leftovers(out) == ["index.html", "report.json"]  # no temporary files left
    assert f"wrote {out / 'index.html'}" in stdout
    html = (out / "index.html").read_text()
    assert "test #1" in html and "test #2" in html and user_model in html
    assert "occsens has no model card for it" in html
    assert "says nothing about a model of yours, so it is left out" in html  # no shipped twin comparison


def test_report_renders_the_same_sanity_checks_occsens_check_reports(
    tmp_path: Path, user_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 5: the report carries every check result (HTML table and JSON), the same as `occsens check`."""
    out = tmp_path / "out"
    common = ["--model-path", user_model, "--samples", "1,2", "--patch", "8", "--quiet"]
    report_code, _, err = run(["report", *common, "--out", str(out), "--json"], capsys)
    assert report_code in (0, 1), err
    check_code, _, err = run(["check", *common, "--json", str(tmp_path / "checks.json")], capsys)
    assert check_code == report_code, err  # issue 14: the report exits as `occsens check` does
    from_check = json.loads((tmp_path / "checks.json").read_text())
    from_report = json.loads((out / "report.json").read_text())["checks"]
    assert [(c["name"], c["verdict"], c["power"], c["value"]) for c in from_report] == [
        (c["name"], c["verdict"], c["power"], c["value"]) for c in from_check
    ]
    html = (out / "index.html").read_text()
    assert 'id="checks"' in html
    for c in from_check:
        assert html_escape(c["name"]) in html


def test_no_checks_leaves_the_section_out(
    tmp_path: Path, user_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = ["report", "--model-path", user_model, "--samples", "1", "--patch", "8", "--quiet", "--no-checks"]
    code, _, err = run([*args, "--out", str(out)], capsys)
    assert code == 0, err
    assert 'id="checks"' not in (out / "index.html").read_text()


def test_explain_one_image_file(tmp_path: Path, user_model: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A user model runs at the image's own size unless --input-size says otherwise; the report says how
    the file was read, with its original size, next to the image."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "my picture.png")
    (tmp_path / "names.txt").write_text("\n".join(CIFAR10_CLASSES) + "\n")
    out = tmp_path / "explained"
    args = [
        "explain",
        "my picture.png",
        "--model-path",
        user_model,
        "--out",
        str(out),
        "--quiet",
        "--no-checks",
    ]
    code, _, err = run(args, capsys)  # the tiny model's Linear layer takes 32x32 only
    assert code == 2 and "model failed on a 3-channel 40x48 image" in err and "--input-size H W" in err
    assert not out.exists()
    more = ["--input-size", "32", "32", "--classes-file", "names.txt", "--label", "ship"]
    code, _, err = run([*args, *more], capsys)
    assert code == 0, err
    html = (out / "index.html").read_text()
    assert "my picture.png" in html and "<td>ship</td>" in html
    assert "resized from 40x48 to 32x32 (height x width)" in html
    # one image of the reader's own: the page opens with what it found on it, not the asker's questions
    assert "What the model sees in this image" in html and "The four questions" not in html


def test_explain_shows_a_failed_check_in_the_page_and_exits_0(
    tmp_path: Path, user_model: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import occsens.report.explain

    monkeypatch.setattr(occsens.report.explain, "run_checks", lambda *a, **k: fake_results("pass", "fail"))
    Image.fromarray(np.full((32, 32, 3), 128, dtype=np.uint8)).save(tmp_path / "grey.png")
    out = tmp_path / "out"
    args = ["explain", str(tmp_path / "grey.png"), "--model-path", user_model, "--patch", "16", "--quiet"]
    code, stdout, err = run([*args, "--out", str(out)], capsys)
    assert code == 0, err
    assert "sanity checks: 1 pass, 1 fail (check 1)" in stdout and "exit 1" not in stdout
    assert '<tr class="verdict-fail">' in (out / "index.html").read_text()


def test_explain_default_out_folder_is_named_after_the_image(
    tmp_path: Path, user_model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "dark.png")
    code, _, err = run(
        ["explain", "dark.png", "--model-path", user_model, "--patch", "16", "--quiet", "--no-checks"], capsys
    )
    assert code == 0, err
    assert (tmp_path / "reports" / "explain-dark" / "index.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--samples", "10000"], "sample 10000 is out of range: CIFAR-10 test indices are 0..9999"),
        (["report", "--samples", "-1"], "--samples '-1' is not a list of test-set indices"),
        (["report", "--samples", "500"], "sample 500 is not embedded"),
        (["report", "--model", "nope"], "model 'nope' is unknown; shipped models are default, greyscale"),
        (["report", "--model-path", "no_such_module_xyz:build"], "cannot import 'no_such_module_xyz'"),
        (
            ["report", "--model-path", "MODEL:build", "--weights", "wide.pt"],
            "does not match the architecture",
        ),
        (["report", "--model-path", "MODEL:build", "--weights", "missing.pt"], "does not exist"),
        (["explain", "notes.png", "--model-path", "MODEL:build"], "is not a readable image file"),
        (["explain", "absent.png", "--model-path", "MODEL:build"], "does not exist"),
        (
            ["explain", "good.png", "--model-path", "MODEL:build", "--label", "zebra"],
            "--label 'zebra' is not a class",
        ),
        (
            ["report", "--model-path", "MODEL:build", "--out", "blocker/sub"],
            "--out 'blocker/sub' is not usable",
        ),
        (["report", "--model-path", "MODEL:build", "--fill", "plaid"], "fill 'plaid' is unknown"),
        (
            ["report", "--model-path", "MODEL:build", "--patch", "40"],
            "patch (40, 40) is larger than the image",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_report(
    args: list[str],
    message: str,
    tmp_path: Path,
    user_model: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    monkeypatch.delenv("OCCSENS_DATA_DIR", raising=False)
    module = user_model.split(":")[0]
    torch.save(importlib.import_module(module).wide().state_dict(), tmp_path / "wide.pt")
    (tmp_path / "notes.png").write_text("not an image\n")
    (tmp_path / "blocker").write_text("a file where a folder should be\n")
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "good.png")
    before = leftovers(tmp_path)
    args = [a.replace("MODEL", module) for a in args] + ["--quiet"]
    code, stdout, err = run(args, capsys)
    assert code == 2
    assert stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("occsens: error: "), err
    assert message in lines[0]
    assert leftovers(tmp_path) == before  # no report folder, no index.html, no temporary file


def test_an_interrupted_write_leaves_the_old_report_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    (tmp_path / "index.html").write_text("the previous report")
    done = report.Report("<!DOCTYPE html><html></html>", {"a": 1})

    def failing(fd: int) -> None:  # the disk fills while the new page is flushed
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OcclusionError, match="cannot write the report .No space left on device"):
        report.write_report(done, tmp_path, write_json=True)
    monkeypatch.undo()
    assert (tmp_path / "index.html").read_text() == "the previous report"
    assert leftovers(tmp_path) == ["index.html"]


def test_write_is_complete_and_replaces_the_old_report(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("the previous report")
    path = report.write_report(report.Report("<p>new</p>", {"x": [1.5]}), tmp_path / ".", write_json=True)
    assert path.read_text() == "<p>new</p>"
    assert (tmp_path / "report.json").read_text() == '{\n  "x": [\n    1.5\n  ]\n}\n'
    assert leftovers(tmp_path) == ["index.html", "report.json"]


@pytest.mark.slow
@pytest.mark.integration
def test_default_report_from_the_shipped_model_shows_the_default_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # How long this takes is the benchmark's business (`occsens bench`), not a unit test's.
    if shipped_default() is None:
        pytest.skip("the shipped default model (occsens/weights/default.pt and .json) is not there yet")
    code, stdout, err = run(["report", "--out", str(tmp_path), "--quiet", "--json"], capsys)
    numbers = json.loads((tmp_path / "report.json").read_text())
    assert code == (1 if "fail" in numbers["check_verdicts"] else 0), err  # as `occsens check` would exit
    page = tmp_path / "index.html"
    html = page.read_text()
    for index in (0, 1, 2, 3, 4, 6, 11, 25):  # embedded.DEFAULT_SAMPLES, ships (1, 2) included
        assert f"test #{index}" in html
    # Issue 14: one page a person reads; the default report was 3.7 MB (188 images) before it.
    assert page.stat().st_size < MAX_DEFAULT_BYTES, f"{page.stat().st_size:,} bytes"
    assert html.index('id="questions"') < html.index('id="notebook"') < html.index('id="overview"')
    answers = [q["answer"] for q in numbers["questions"]]
    assert (
        "(the asker's printout: airplane 37 of 64)" in answers[1]
    )  # the ship samples carry the asker's case


def fake_results(*verdicts: str) -> list:
    from occsens.checks import CheckResult, Clause, Condition

    condition = Condition("z beats chance", (Clause("z", ">=", 2.0),), "2 standard deviations above chance")
    return [
        CheckResult(
            f"check {i}", v, {"z": 3.0 if v == "pass" else 0.1}, condition, f"{v} because.", (1,), power=0.9
        )
        for i, v in enumerate(verdicts)
    ]


@pytest.mark.parametrize(
    ("verdicts", "no_fail", "expected"),
    [
        (("pass", "fail", "inconclusive"), False, 1),
        (("pass", "fail"), True, 0),
        (("pass", "inconclusive"), False, 0),  # no power is not a failed map
        (("pass", "info"), False, 0),  # information (patch-only) never fails a run
        (("pass", "pass"), False, 0),
    ],
)
def test_report_exits_as_occsens_check_would_and_writes_the_report_either_way(
    tmp_path: Path,
    user_model: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verdicts: tuple[str, ...],
    no_fail: bool,
    expected: int,
) -> None:
    import occsens.checks
    import occsens.report.explain

    # the report's one path (occsens.explain) runs the checks
    monkeypatch.setattr(occsens.report.explain, "run_checks", lambda *a, **k: fake_results(*verdicts))
    out = tmp_path / "out"
    args = [
        "report",
        "--model-path",
        user_model,
        "--samples",
        "1",
        "--patch",
        "16",
        "--quiet",
        "--out",
        str(out),
    ]
    code, stdout, err = run(args + ["--no-fail"] * no_fail, capsys)
    assert code == expected, err
    assert leftovers(out) == ["index.html"]  # written whatever the verdicts
    html = (out / "index.html").read_text()
    for v in verdicts:
        assert f'<tr class="verdict-{v}">' in html
    assert ("a sanity check failed: exit 1" in stdout) == (expected == 1)
    # stdout says the counts in one line; the page's trust list says what they mean, claim by claim
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("pass", "fail", "inconclusive") if v in verdicts)
    assert f"sanity checks: {counts}" in stdout and "see the page's trust list" in stdout
    assert "can be trusted for" not in stdout  # the long summary is not repeated after every command
    answers = {"pass": "yes", "fail": "no", "inconclusive": "not tested", "info": "not tested"}
    trust = html[html.index('id="trust"') :]
    for v in verdicts:
        assert f'<span class="trust-answer">{answers[v]}</span> Z beats chance.' in trust
    assert html.index('id="trust"') < html.index('id="notebook"')
    section = html[html.index('<section id="checks">') :]
    assert section.index('class="trust-list"') < section.index("<table")
    assert section.count('<td class="num">90.0%</td>') == len(verdicts)


def test_the_exit_codes_are_in_the_commands_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 the report is written and no sanity check failed; 1 the report is written" in text
    with pytest.raises(SystemExit):
        cli.main(["explain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "exit codes: 0 the report is written (a failed sanity check is shown in it, not in the" in text
    assert "2 bad input, no report written" in text
