"""``occsens conform``: the table, the exit codes, the files; run through a parser built here.

The lead registers the command in ``occsens.cli``; these tests build a parser holding only it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import pytest

from occsens.cli import conform
from occsens.errors import OcclusionError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="occsens")
    conform.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["conform", *argv])
    return args.func(args)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A folder holding my_occ.py, made the current folder (where MODULE:FUNCTION is searched last)."""
    (tmp_path / "my_occ.py").write_text(
        textwrap.dedent(
            """
            import torch
            import occsens

            def right(model, images, *, patch, stride, fill):
                return occsens.occlude(model, images, patch=patch, stride=stride, fill=fill).attribution()

            def logits(model, images, *, patch, stride, fill):
                # "<b>" in the error text: the HTML must show it, not obey it
                raise RuntimeError("<b>bold</b> & broken")
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_conforming_function_prints_the_table_and_exits_0(user_module, capsys) -> None:
    out = user_module / "out"
    assert (
        run(["my_occ:right", "--examples", "2", "--json", str(out / "c.json"), "--html", str(out / "c.html")])
        == 0
    )
    text = capsys.readouterr().out
    header = text.splitlines()[0].split()
    assert header == ["property", "kind", "verdict", "counterexample"]
    assert "closed form" in text and "border windows" in text and "flush" in text
    assert "my_occ:right: 8 of 8 contract properties hold; border windows: flush" in text
    payload = json.loads((out / "c.json").read_text())
    assert payload["implementation"] == "my_occ:right" and payload["contract_failures"] == []
    assert len(payload["results"]) == 9 and {r["kind"] for r in payload["results"]} == {
        "contract",
        "convention",
    }
    page = (out / "c.html").read_text()
    assert page.startswith("<!doctype html>") and "<table>" in page and "http" not in page


def test_a_failing_contract_property_exits_1_and_the_html_escapes_its_text(user_module, capsys) -> None:
    html_path = user_module / "c.html"
    assert run(["my_occ:logits", "--examples", "1", "--html", str(html_path)]) == 1
    text = capsys.readouterr().out
    assert "FAIL" in text and "raised RuntimeError: <b>bold</b> & broken" in text
    page = html_path.read_text()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; broken" in page and "<b>bold</b>" not in page


def test_the_same_seed_writes_the_same_bytes(user_module) -> None:
    for name in ("a", "b"):
        run(
            [
                "my_occ:right",
                "--examples",
                "2",
                "--seed",
                "5",
                "--json",
                f"{name}.json",
                "--html",
                f"{name}.html",
            ]
        )
    assert (user_module / "a.json").read_bytes() == (user_module / "b.json").read_bytes()
    assert (user_module / "a.html").read_bytes() == (user_module / "b.html").read_bytes()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["shap"],
            "implementation 'shap' is unknown; use one of captum, monai, notebook, occsens or "
            "MODULE:FUNCTION",
        ),
        (["my_occ:nothing"], "module 'my_occ'"),
        (["occsens", "--json", "."], "--json '.' is a folder; give a file name"),
    ],
)
def test_bad_input_is_one_clear_error(user_module, argv: list[str], message: str) -> None:
    with pytest.raises(OcclusionError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["occsens", "--examples", "0"], "'0' must be positive"),
        (["occsens", "--seed", "-2"], "'-2' must be 0 or more"),
    ],
)
def test_bad_numbers_are_refused_by_the_parser(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        run(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_the_command_module_and_its_parser_import_no_torch() -> None:
    code = (
        "import argparse, sys\n"
        "from occsens.cli import conform\n"
        "p = argparse.ArgumentParser(); conform.add_parser(p.add_subparsers())\n"
        "p.parse_args(['conform', 'occsens'])\n"
        "import occsens.conformance.pytest_plugin\n"
        "print(sorted(m for m in ('torch', 'hypothesis') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_hypothesis_the_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None  # as if it were not installed\n"
        "from occsens.errors import OcclusionError\n"
        "try:\n"
        "    from occsens.conformance import verify\n"
        "except OcclusionError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("hypothesis, which is not installed (pip install hypothesis)")
