"""Hostile input, round three (issue 26), at the command line: whatever fails on length or depth is
bad input (exit 2, one line), a broken torch says so, and the program ends cleanly however it is
stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occsens import cli

LONG = "x" * 300  # one path component over the 255 bytes file systems allow


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["check", "--images", LONG], "image folder"),
        (["report", "--out", f"out/{LONG}", "--samples", "1"], "--out"),
        (["check", "--json", f"{LONG}/c.json", "--samples", "1"], "--json"),
        (["conform", "occsens", "--json", f"{LONG}/c.json"], "--json"),
    ],
    ids=["--images", "--out", "check --json", "conform --json"],
)
def test_a_path_component_over_255_bytes_is_bad_input(tmp_path, monkeypatch, capsys, argv, named) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = run(argv, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"occsens: error: {named} ") and "a name of 300 bytes" in err[0]
    assert "at most 255" in err[0] and len(err[0]) < 300


def test_a_label_of_4300_digits_is_not_a_class(tmp_path, capsys) -> None:
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "labels.csv").write_text("a.png," + "9" * 5000 + "\n")
    code, err = run(["check", "--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv")], capsys)
    assert code == 2 and len(err) == 1, err
    assert "is not a class" in err[0] and len(err[0]) < 400


def test_an_out_folder_through_a_loop_of_links_is_refused_before_the_work(tmp_path, capsys) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    start = time.perf_counter()
    code, err = run(["report", "--out", str(tmp_path / "a" / "report"), "--samples", "1"], capsys)
    assert code == 2 and len(err) == 1 and "is a link that leads nowhere" in err[0], err
    assert time.perf_counter() - start < 30  # refused at the door: a report takes minutes


def test_a_torch_that_cannot_be_imported_says_so_in_one_line(tmp_path) -> None:
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise OSError('libtorch_cpu.so: failed to map segment from shared object')  # as under ulimit -v\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "check", "--samples", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("occsens: error: PyTorch could not be imported (OSError: libtorch_cpu.so")
    assert "this is a bug" not in line


@pytest.mark.parametrize("after", [0.15, 0.3, 0.45])
def test_ctrl_c_while_the_program_starts_prints_no_traceback(tmp_path, after: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "occsens", "check", "--samples", "1"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    # 130 once occsens handles it; killed by the signal itself while the interpreter is still starting
    assert proc.returncode in (130, -signal.SIGINT), (proc.returncode, err)
    assert set(err.splitlines()) <= {"occsens: interrupted"}


def test_the_program_reports_a_non_utf8_error_text_escaped(tmp_path: Path) -> None:
    (tmp_path / "shouty.py").write_text(
        "def build():\n    raise RuntimeError('\\x1b]0;pwned\\x07\\x1b[2J')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "check", "--model-path", "shouty:build", "--samples", "1"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;pwned\\x07" in line


@pytest.mark.parametrize("where", ["factory", "forward"])
def test_a_user_model_that_hangs_is_stopped_by_timeout_naming_it(tmp_path: Path, where: str) -> None:
    (tmp_path / "stuck.py").write_text(
        "import time\nimport torch\n\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        time.sleep(3600)\n\n"
        "def factory():\n    time.sleep(3600)\n\n"
        "def forward():\n    return Net()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "check", "--model-path", f"stuck:{where}", "--samples", "1"]
        + ["--timeout", "2"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"occsens: error: --model-path stuck:{where}: ") and "within 2 s" in line


def test_the_timeout_for_user_models_and_its_default_are_in_the_help() -> None:
    text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["check"].format_help().split())
    assert "--timeout SECONDS" in text and "default 600 s, 10 minutes" in text
