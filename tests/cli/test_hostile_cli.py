"""Hostile input, round three (issue 26), at the command line: whatever fails on length or depth is
bad input (exit 2, one line), a broken torch says so, and the program ends cleanly however it is
stopped."""

from __future__ import annotations

import json
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

from .workspace import MODULE, error_lines, make_workspace, run_cli

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
        # as from a terminal: a job started in the background by a script (CI under nohup, `cmd &`)
        # inherits SIGINT ignored, and Ctrl-C would then never reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
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


# ----------------------------------------------------------------------------- the same cases as the API's


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fuzz workspace (``workspace.py``: a tiny 8x8 model module, images, hostile files), made current."""
    make_workspace(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OCCSENS_DEBUG", raising=False)
    return tmp_path


LIN8 = f"{MODULE}:lin8"


def test_a_32_bit_tiff_of_one_value_is_read_as_that_value_not_blamed_for_nan(ws: Path) -> None:
    """Issue 26: it read as all NaN, and the command blamed "NaN values" in the image."""
    Image.fromarray(np.full((8, 8), 100_000, dtype=np.int32)).save(ws / "flat.tif")
    done = run_cli(["occlude", "flat.tif", "--model-path", LIN8, "--patch", "4", "--json", "--quiet"])
    assert done.code == 0 and "NaN" not in done.err, done.err
    assert any("one integer value, 100000, throughout" in note for note in json.loads(done.out)["read"])


def test_a_multi_frame_file_is_read_as_its_first_frame_and_says_so(ws: Path) -> None:
    done = run_cli(["occlude", "names/anim.gif", "--model-path", LIN8, "--patch", "4", "--json", "--quiet"])
    assert done.code == 0, done.err
    assert any("first of 2 frames" in note for note in json.loads(done.out)["read"])


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_link_in_the_images_folder_that_leads_nowhere_is_refused_not_dropped(ws: Path, kind: str) -> None:
    """Issue 26: a loop of links in --images was skipped silently (4 entries, 1 used, exit 0)."""
    folder = ws / "linked"
    folder.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(folder / "a.png")
    if kind == "dangling":
        (folder / "b.png").symlink_to(folder / "missing.png")
    else:
        (folder / "b.png").symlink_to(folder / "c.png")
        (folder / "c.png").symlink_to(folder / "b.png")
    done = run_cli(["check", "--images", "linked", "--model-path", LIN8, "--checks", "patch", "--quiet"])
    assert done.code == 2 and len(error_lines(done.err)) == 1, done.err
    assert "is a link that leads nowhere" in done.err


@pytest.mark.parametrize(
    ("factory", "words"),
    [("exits", "os._exit(0)"), ("generator_exit", "GeneratorExit")],
    ids=["os._exit", "GeneratorExit"],
)
def test_a_user_model_that_exits_or_raises_a_base_exception_is_one_line(
    ws: Path, factory: str, words: str
) -> None:
    """Issue 26: os._exit(0) ended the command with exit 0 and no output; a GeneratorExit printed a
    traceback and exit 1. Both are the user's code failing: exit 2, one line naming it."""
    done = run_cli(["occlude", "img.png", "--model-path", f"{MODULE}:{factory}", "--quiet"])
    assert done.code == 2 and "Traceback" not in done.err, done.err
    (line,) = error_lines(done.err)
    assert words in line and f"{MODULE}:{factory}" in line


def test_occlude_with_a_user_model_that_hangs_is_stopped_by_timeout(ws: Path) -> None:
    """As ``check`` in the test above, in this process: the stuck forward is left in a daemon thread."""
    (ws / "stuck_occlude.py").write_text(
        "import threading\nimport torch\n\nFOREVER = threading.Event()\n\n"
        "class Net(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        FOREVER.wait()\n\n"
        "def build():\n    return Net()\n"
    )
    start = time.perf_counter()
    argv = ["occlude", "img.png", "--model-path", "stuck_occlude:build", "--timeout", "0.5", "--quiet"]
    done = run_cli(argv)
    assert done.code == 2, done.err
    (line,) = error_lines(done.err)
    assert line.startswith("occsens: error: --model-path stuck_occlude:build: ") and "within 0.5 s" in line
    assert time.perf_counter() - start < 60  # stopped at the limit, not at the end of the forward pass


def test_a_thread_the_user_model_leaves_running_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    (tmp_path / "threads.py").write_text(
        "import threading, time\nimport torch\n\n"
        "def build():\n"
        "    threading.Thread(target=time.sleep, args=(3600,)).start()  # not a daemon\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))\n"
    )
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "occlude", "img.png", "--model-path", "threads:build"]
        + ["--patch", "4", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,  # a process the thread kept alive would run for an hour
    )
    assert done.returncode == 0, done.stderr


def test_a_class_name_given_twice_is_refused_as_explain_refuses_it(ws: Path) -> None:
    """The command line refused it before issue 26 and ``explain()`` did not; now both do (the API's test
    is tests/report/test_explain.py::test_a_bad_argument_is_refused_by_name_before_the_long_runs)."""
    done = run_cli(["occlude", "img.png", "--model-path", LIN8, "--classes", "a,b,a", "--quiet"])
    assert done.code == 2 and "--classes names 'a' more than once" in error_lines(done.err)[0], done.err
