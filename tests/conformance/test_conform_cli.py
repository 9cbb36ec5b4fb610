"""``occsens conform``: the table, the exit codes, the files; run through a parser built here.

The lead registers the command in ``occsens.cli``; these tests build a parser holding only it.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
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

            def unsupported(model, images, *, patch, stride, fill):
                from occsens.conformance import Unsupported
                raise Unsupported("nothing at all")

            def doubles(model, images, *, patch, stride, fill):
                with torch.no_grad():
                    for p in model.parameters():
                        p.mul_(2)
                return right(model, images, patch=patch, stride=stride, fill=fill)

            def hangs(model, images, *, patch, stride, fill):
                import time
                time.sleep(3600)

            def leaves_a_thread(model, images, *, patch, stride, fill):
                import threading, time
                threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon
                return right(model, images, patch=patch, stride=stride, fill=fill)

            def exits(model, images, *, patch, stride, fill):
                import os
                os._exit(0)

            def generator_exit(model, images, *, patch, stride, fill):
                raise GeneratorExit("\x1b[31mred\x1b[0m")
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
    assert "my_occ:right: 10 of 10 contract properties hold; border windows: flush" in text
    payload = json.loads((out / "c.json").read_text())
    assert payload["implementation"] == "my_occ:right" and payload["contract_failures"] == []
    assert payload["verified"] is True
    assert len(payload["results"]) == 11 and {r["kind"] for r in payload["results"]} == {
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


def test_an_implementation_that_supports_nothing_is_not_verified_and_exits_1(user_module, capsys) -> None:
    out = user_module / "c.json"
    assert run(["my_occ:unsupported", "--examples", "2", "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert "my_occ:unsupported: not verified, none of 10 contract properties could be tested" in text
    assert "not verified: the implementation raised Unsupported for every case" in text
    assert json.loads(out.read_text())["verified"] is False


def test_an_implementation_that_changes_the_model_fails(user_module, capsys) -> None:
    assert run(["my_occ:doubles", "--examples", "2"]) == 1
    text = " ".join(capsys.readouterr().out.split())
    assert "the call changed the model's 'inner.inner.weight' by up to" in text


def occsens_cli(*argv: str, cwd, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "occsens", *argv], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def test_a_hanging_implementation_is_stopped_by_timeout_in_one_line(user_module) -> None:
    done = occsens_cli("conform", "my_occ:hangs", "--examples", "1", "--timeout", "1", cwd=user_module)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("occsens: error: the implementation my_occ:hangs did not return within 1 s")


def test_the_timeout_and_its_default_are_in_the_help() -> None:
    done = occsens_cli("conform", "--help", cwd=None)
    assert "--timeout SECONDS" in done.stdout and "default 600 s" in " ".join(done.stdout.split())


def test_a_thread_the_implementation_leaves_running_does_not_keep_the_process_alive(user_module) -> None:
    done = occsens_cli("conform", "my_occ:leaves_a_thread", "--examples", "1", cwd=user_module, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "my_occ:leaves_a_thread: 10 of 10 contract properties hold" in done.stdout


def test_os_exit_in_the_implementation_is_reported_not_a_silent_exit_0(user_module) -> None:
    done = occsens_cli("conform", "my_occ:exits", "--examples", "1", cwd=user_module)
    assert done.returncode == 2, (done.stdout, done.stderr)
    (line,) = done.stderr.splitlines()
    assert "os._exit(0)" in line and "my_occ" in line


def test_a_base_exception_is_a_failed_property_and_its_escape_sequences_are_escaped(user_module) -> None:
    done = occsens_cli("conform", "my_occ:generator_exit", "--examples", "1", cwd=user_module)
    assert done.returncode == 1 and not done.stderr, done.stderr
    assert "raised GeneratorExit" in done.stdout and "\\x1b[31mred" in done.stdout  # shown escaped
    assert "\x1b" not in done.stdout  # never sent raw to the terminal


def test_json_and_html_in_two_folders_are_written_both_or_neither(user_module, monkeypatch) -> None:
    from occsens.files import write as output

    (user_module / "a").mkdir()
    (user_module / "a" / "c.json").write_text("old json")
    real_staged = output._staged

    def disk_full_in_b(folder, content):  # the page's disk fills up once the JSON is staged
        if folder.name == "b":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_staged(folder, content)

    monkeypatch.setattr(output, "_staged", disk_full_in_b)
    with pytest.raises(OcclusionError, match=r"--html 'b': cannot write .* \(No space left on device\)"):
        run(["my_occ:right", "--examples", "1", "--json", "a/c.json", "--html", "b/c.html"])
    assert (user_module / "a" / "c.json").read_text() == "old json"  # the JSON did not land alone
    assert sorted(p.name for p in (user_module / "a").iterdir()) == ["c.json"]  # no temporaries


def test_json_and_html_in_two_folders_both_land_when_both_can(user_module) -> None:
    assert run(["my_occ:right", "--examples", "1", "--json", "a/c.json", "--html", "b/c.html"]) == 0
    assert json.loads((user_module / "a" / "c.json").read_text())["verified"] is True
    assert (user_module / "b" / "c.html").read_text().startswith("<!doctype html>")
