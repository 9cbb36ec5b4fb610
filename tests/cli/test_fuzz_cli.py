"""Property: whatever a hostile user types, every command ends as documented (``occsens.cli``).

Hypothesis builds command lines for every command from pools of good and hostile values for each of
its options (wrong types, huge and negative numbers, NaN and infinity, empty text, NUL characters,
unknown options, missing and extra values; paths to missing files, folders, files where folders go,
named pipes, endless devices, corrupt weights and checkpoints; options that conflict), sometimes on a
disk that fills up halfway through the first file written. Each run must end with:

* an exit code the command documents: 0; 1 only for ``check``, ``report``, ``explain`` and ``conform``
  (a failed check or contract property); 2 for bad input; never 3 (occsens's own failure);
* on stderr only ``occsens:`` lines and no traceback; exactly one ``occsens: error:`` line on exit 2,
  none otherwise;
* no output file half-written: on exit 2 (or a full disk) every file in the folder is as it was and no
  new one exists; on success every file written is whole (its JSON parses, its HTML is complete); never
  a temporary file left behind.

Most runs happen in this process (``occsens.cli.main``: importing torch once, not per case); a few go
through ``python -m occsens`` to hold the real process boundary (exit status, stderr). Work that would
take minutes is cut off where it would start: ``train`` and ``evaluate`` stop when they would read the
CIFAR-10 data, ``bench`` when it would time engines (the arguments they were given are checked first,
so the property covers their doors). The models are tiny (8x8 images, see ``workspace.py``), so a
command that gets through its door finishes in milliseconds, except the report's figures (about a
second): ``report`` and ``explain`` draw fewer cases.

Case counts: ``HYPOTHESIS_PROFILE=ci`` runs 40 per fast command (6 commands), 8 per report command
and 4 through a subprocess: 260 in all (about a minute on 2 busy cores); ``thorough`` 1,000, 200 and
100: 6,500. ``pytest --hypothesis-show-statistics``
prints each test's outcomes (``event``s: exit code, and whether the work was reached).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from occsens import cli

from .workspace import (
    MODULE,
    SCRIPT,
    Outcome,
    full_disk,
    inside,
    leftovers,
    make_workspace,
    restore,
    run_cli,
    seed_outputs,
    snapshot,
)

# ----------------------------------------------------------------------------- value pools

INT_HOSTILE = ["0", "-1", "9223372036854775808", "1" + "0" * 5000, "nan", "inf", "-inf", "1.5", "1e3",
               "", " ", "x", "0x10", "+3", "٣"]  # fmt: skip
PATH_HOSTILE = ["missing", "adir", "afile/sub", "fifo", "/dev/zero", "", "a\0b",
                "x" * 300, "loop/sub", "dangling"]  # fmt: skip
M = MODULE

# For each kind of value: (good values, hostile values). Good ones are valid alone; a case mixes both.
# fmt: off
POOLS: dict[str, tuple[list[str], list[str]]] = {
    "int": (["1", "2", "3"], INT_HOSTILE),
    "pair": (["2", "4", "4x4", "2x4", "4,2"], [*INT_HOSTILE, "4x", "x4", "2x3x4", "0x4", "9x9", "100"]),
    "fill": (["0.5", "0", "1", "mean", "noise", "blur", "0.2,0.4,0.6"],
             ["nan", "inf", "-0.1", "1.5", "sky", "0.5,0.5", "", ",", "0.5,nan,0.5", "1e400"]),
    "seed": (["0", "7"], [*INT_HOSTILE, "4294967296"]),
    "image": (["img.png", "imgs/a.png"], [*PATH_HOSTILE, "imgs", "notimage.png", "big.png"]),
    "images": (["imgs", "img.png", "names"], [*PATH_HOSTILE, "notimage.png", "links"]),
    "csv": (["labels.csv"], [*PATH_HOSTILE, "badlabels.csv", "img.png", "longlabels.csv"]),
    "classes": (["cat,dog,bird", "a, b ,c"], ["a,b", "a,a,b", ",", "", " ", "a,,b"]),
    "classes_file": (["classes.txt"], [*PATH_HOSTILE, "img.png", "labels.csv"]),
    "model_spec": ([f"{M}:lin8"], [f"{M}:boom", f"{M}:late", f"{M}:factory_fails", f"{M}:not_callable",
                                   f"{M}:nothing", "no_such_module_xyz:build", M, ":x", "", f"{M}:",
                                   f"{SCRIPT}:build", f"{M}:exits", f"{M}:generator_exit", f"{M}:shouts"]),
    "model_name": (["default"], ["nope", "", "../default"]),
    "weights": (["w.pt"], [*PATH_HOSTILE, "corrupt.pt", "img.png"]),
    "output": (["softmax", "probs", f"{M}:scores"], ["tanh", "sigmoid", f"{M}:bad_scores", f"{M}:nothing",
                                                     "", "soft max"]),
    "channels": (["3"], ["1", "2", "0", "x", ""]),
    "samples": (["0", "1,2"], ["-1", "10000", "500", ",", "x", "", "9223372036854775808", "1,,2"]),
    "data_dir": (["adir"], PATH_HOSTILE),
    "checks": (["determinism", "determinism,leakage", "patch"], ["bogus", "", ",", "determinism,,x"]),
    "out_file": (["old.json", "new.json", "sub/new.json"], [*PATH_HOSTILE, "/dev/null", "afile/x.json"]),
    "out_dir": (["out", "newout"], [*PATH_HOSTILE, "/dev/null", "adir/index.html", "ckpt"]),
    "label": (["cat", "0", "2"], ["zebra", "3", "-1", "²", ""]),
    "name": (["default", "m1"], ["../x", "", ".hidden", "a/b", "x" * 200]),
    "note": (["", "a note"], ["two\nlines", "x" * 2000]),
    "width": (["4", "8"], ["0", "257", "-1", "x", ""]),
    "epochs": (["1", "2"], ["0", "1001", "x", ""]),
    "ray": (["auto"], ["", "ray://", "a\0b"]),
    "gpus": (["0", "0.25", "1"], ["-1", "nan", "inf", "x", ""]),
    "bench_models": (["default", "resnet20"], ["nope", "", ",", "default,,"]),
    "bench_settings": (["p4s4"], ["p9s9", "", ",", "p4s4,,"]),
    "bench_images": (["1", "1,2"], ["0", "101", "x", "", ","]),
    "impl": (["occsens", "notebook"], ["shap", "", f"{M}:nothing", "no_such_module_xyz:f", f"{M}:boom",
                                       f"{M}:unsupported", f"{M}:exits"]),
    "seconds": (["600", "1e3", "30"], ["0", "-1", "nan", "inf", "x", "", "1" + "0" * 400]),
    "max_pixels": (["1000000"], ["0", "100", "x", "-1", "nan"]),
    "target": (["0", "2"], ["3", "-1", "x", "9223372036854775808"]),
    "size": (["8"], ["0", "-1", "x", "100000", "16"]),
}
# fmt: on

# The kind of value each option takes, by argparse dest; "flag" for options that take none. A new
# option without an entry fails test_every_option_is_fuzzed.
KINDS: dict[str, str] = {
    "patch": "pair", "stride": "pair", "fill": "fill", "seed": "seed", "image": "image", "images": "images",
    "labels": "csv", "classes": "classes", "classes_file": "classes_file", "model_path": "model_spec",
    "model": "model_name", "weights": "weights", "output": "output", "channels": "channels",
    "samples": "samples", "data_dir": "data_dir", "checks": "checks", "label": "label", "name": "name",
    "note": "note", "width": "width", "epochs": "epochs", "impl": "impl", "max_pixels": "max_pixels",
    "target": "target", "input_size": "size", "reps": "int", "examples": "int",
    "reveal": "flag", "notebook": "flag", "no_checks": "flag", "no_fail": "flag", "timestamp": "flag",
    "greyscale": "flag", "resume": "flag", "download": "flag", "busy": "flag", "no_memory": "flag",
    "timeout": "seconds", "overwrite": "flag",
}  # fmt: skip
# Options whose kind depends on the command (the same name means different things).
KINDS_BY_COMMAND: dict[tuple[str, str], str] = {
    ("check", "json"): "out_file", ("conform", "json"): "out_file", ("conform", "html"): "out_file",
    ("report", "json"): "flag", ("explain", "json"): "flag", ("occlude", "json"): "flag",
    ("report", "out"): "out_dir", ("explain", "out"): "out_dir", ("train", "out"): "out_dir",
    ("bench", "out"): "out_dir", ("bench", "models"): "bench_models", ("bench", "settings"): "bench_settings",
    ("bench", "images"): "bench_images",
    ("survey", "out"): "out_dir", ("survey", "limit"): "int", ("survey", "shard_size"): "int",
    ("survey", "only_classes"): "classes", ("survey", "ray"): "ray", ("survey", "ray_gpus"): "gpus",
    ("survey", "overwrite"): "flag", ("survey", "no_report"): "flag", ("survey", "check_images"): "int",
    ("report", "survey"): "data_dir", ("explain", "survey"): "data_dir",
}  # fmt: skip
NOT_FUZZED = {"help", "version", "debug", "quiet", "command"}  # --debug lets tracebacks through by design

# The exit codes each command may end with (1: a sanity check or a contract property failed).
EXITS = {"check": {0, 1, 2}, "report": {0, 1, 2}, "explain": {0, 1, 2}, "conform": {0, 1, 2}}
STRAYS = ["--nope", "-x", "stray", "--patch", "--", "--help", "--seed=3", "--quiet=1"]


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


PARSERS = _parsers()


def _kind(command: str, dest: str) -> str:
    return KINDS_BY_COMMAND.get((command, dest)) or KINDS[dest]


def _options(command: str) -> list[argparse.Action]:
    return [a for a in PARSERS[command]._actions if a.dest not in NOT_FUZZED]


def test_every_option_is_fuzzed() -> None:
    """Every option of every command has a pool of values, so an option added later is fuzzed too."""
    missing = [
        f"{command} {action.dest}"
        for command in PARSERS
        for action in _options(command)
        if (command, action.dest) not in KINDS_BY_COMMAND and action.dest not in KINDS
    ]
    assert missing == []


def _value(kind: str) -> st.SearchStrategy[str]:
    good, hostile = POOLS[kind]
    return st.one_of(st.sampled_from(good), st.sampled_from(hostile))  # half good, half hostile


@st.composite
def command_lines(draw: st.DrawFn, command: str, *, nul: bool = True) -> list[str]:
    """A command line for ``command``: its positional argument (usually), up to five of its options with
    drawn values, now and then a stray argument; always --quiet where the command has one."""
    argv = [command]
    actions = _options(command)
    positional = [a for a in actions if not a.option_strings]
    optional = [a for a in actions if a.option_strings]
    for action in positional:
        if draw(st.integers(0, 9)):  # nine in ten cases give it
            argv.append(draw(_value(_kind(command, action.dest))))
    chosen = draw(st.permutations(optional))[: draw(st.integers(0, 5))]  # never rejected, unlike unique lists
    for action in chosen:
        kind = _kind(command, action.dest)
        argv.append(action.option_strings[0])
        if kind != "flag":
            count = action.nargs if isinstance(action.nargs, int) else 1
            given = draw(st.sampled_from([count, count, count, count - 1]))  # now and then a value short
            argv += [draw(_value(kind)) for _ in range(given)]
    if command in ("check", "report", "occlude", "explain") and not {"--model", "--model-path"} & set(argv):
        argv += ["--model-path", f"{MODULE}:lin8"]  # the tiny model, unless the case names one
    if command in ("check", "report") and not {"--images", "--samples", "--data-dir"} & set(argv):
        argv += ["--images", "imgs"]  # images the tiny model takes, unless the case names others
    if draw(st.integers(0, 5)) == 0:
        argv.insert(draw(st.integers(1, len(argv))), draw(st.sampled_from(STRAYS)))
    if any(a.dest == "quiet" for a in PARSERS[command]._actions):
        argv.append("--quiet")
    if not nul:
        assume(not any("\0" in a for a in argv))  # a process's arguments cannot hold NUL
    return argv


# ----------------------------------------------------------------------------- the property


class Reached(BaseException):
    """The command got past its door to work this test cuts off (not an Exception: main lets it through)."""


class Hung(BaseException):
    """The command ran past ``HANG_S``: blocked on a named pipe, say (not an Exception, as ``Reached``)."""


# A run that takes this long is stuck, not slow: the slowest case, a report, takes about a second alone
# and under 15 s on the 2-core machine under full load.
HANG_S = 120


@contextlib.contextmanager
def hang_guard() -> Iterator[None]:
    """Raise ``Hung`` in a run that takes over ``HANG_S`` (where the platform has SIGALRM)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def hung(signum: int, frame: object) -> None:
        raise Hung(f"the command ran for over {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


class Workspace:
    """The fuzz folder and its pristine contents (shown by its path alone in a failing case)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pristine = snapshot(root)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """One torch thread for the in-process runs, as in tests/engine and tests/conformance: the models are
    tiny, so a second thread only spins on CI's 2 shared cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = make_workspace(tmp_path_factory.mktemp("fuzz"))
    seed_outputs(root)
    return Workspace(root)


@pytest.fixture
def cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop train, evaluate and bench where their minutes of work would start, and conform where its
    own hypothesis run would start (hypothesis refuses to run inside a hypothesis test; the subprocess
    sample runs it whole)."""
    from occsens import conformance
    from occsens.cifar import data

    def reach(*args: object, **kwargs: object) -> None:
        raise Reached

    monkeypatch.setattr(conformance, "verify", reach)
    monkeypatch.setattr(data, "load_split", reach)
    monkeypatch.setattr(data, "download", reach)
    monkeypatch.setattr("occsens.cli.bench._run_bench", reach)
    monkeypatch.delenv("OCCSENS_DEBUG", raising=False)
    monkeypatch.delenv("OCCSENS_DATA_DIR", raising=False)


def _whole(path: Path) -> bool:
    """Whether a file a command wrote is complete: JSON that parses, HTML that ends its document. Judged
    by what it holds, not its name: ``conform --html old.json`` writes a whole page under a .json name."""
    data = path.read_bytes()
    if data.lstrip()[:15].lower() == b"<!doctype html>":
        return data.rstrip().endswith(b"</html>")
    if path.suffix == ".json":
        try:
            json.loads(data)
        except ValueError:
            return False
        return True
    return False  # no command writes anything else in this workspace


def check_outcome(
    command: str, argv: Sequence[str], done: Outcome, root: Path, before: dict, disk_full: bool
) -> None:
    """The property of the module docstring, for one run."""
    shown = f"occsens {' '.join(map(repr, argv[1:]))}"
    lines = done.err.splitlines()
    assert "Traceback" not in done.err, f"{shown}\n{done.err}"
    assert all(line.startswith("occsens: ") for line in lines), f"{shown}\n{done.err}"
    errors = [line for line in lines if line.startswith("occsens: error:")]
    assert done.code in EXITS.get(command, {0, 2}), f"{shown}: exit {done.code}\n{done.err}"
    assert len(errors) == (1 if done.code == 2 else 0), f"{shown}: exit {done.code}\n{done.err}"
    assert leftovers(root) == [], shown
    after = snapshot(root)
    changed = sorted(rel for rel in set(before) | set(after) if before.get(rel) != after.get(rel))
    files = [rel for rel in changed if after.get(rel) is not None]
    if done.code == 2 or disk_full:  # nothing written (a full disk may leave the folder it made)
        assert files == [] and (disk_full or changed == []), f"{shown}: exit {done.code}, wrote {changed}"
    else:
        assert all(_whole(root / rel) for rel in files), f"{shown}: wrote {files} not whole"


def run_case(data: st.DataObject, command: str, ws: Workspace) -> None:
    root, pristine = ws.root, ws.pristine
    argv = data.draw(command_lines(command), label="argv")
    disk_full = data.draw(st.integers(0, 4), label="disk") == 0  # one case in five: the disk fills
    restore(root, pristine)
    with inside(root), hang_guard():
        with full_disk() if disk_full else contextlib.nullcontext():
            try:
                done = run_cli(argv)
            except Reached:
                event(f"{command}: reached the work")
                assert leftovers(root) == []
                return
    event(f"{command}: exit {done.code}")
    check_outcome(command, argv, done, root, pristine, disk_full)


def _examples(share: float, least: int) -> int:
    """``share`` of the profile's case count (ci 40: tests/conftest.py), at least ``least``."""
    return max(least, int(settings().max_examples * share))


FAST = ["occlude", "check", "train", "evaluate", "bench", "conform"]
HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@pytest.mark.parametrize("command", FAST)
@settings(max_examples=_examples(1.0, 5), suppress_health_check=HEALTH)
@given(data=st.data())
def test_every_command_line_ends_as_documented(
    command: str, data: st.DataObject, ws: Workspace, cut_off: None
) -> None:
    run_case(data, command, ws)


@pytest.mark.parametrize("command", ["report", "explain"])
@settings(max_examples=_examples(0.2, 3), suppress_health_check=HEALTH)  # 1-4 s per report written
@given(data=st.data())
def test_every_report_command_line_ends_as_documented(
    command: str,
    data: st.DataObject,
    ws: Workspace,
    cut_off: None,
) -> None:
    run_case(data, command, ws)


@settings(max_examples=_examples(0.1, 2), suppress_health_check=HEALTH)  # a fresh interpreter: seconds each
@given(data=st.data())
def test_command_lines_through_a_real_process(data: st.DataObject, ws: Workspace) -> None:
    """The same property across the process boundary: the exit status and stderr of ``python -m
    occsens``. Only commands that write nothing or stop at their door: this process's stubs do not
    reach a subprocess, so train, evaluate and bench are left out."""
    root, pristine = ws.root, ws.pristine
    command = data.draw(st.sampled_from(["occlude", "check", "conform"]), label="command")
    argv = data.draw(command_lines(command, nul=False), label="argv")
    restore(root, pristine)
    env = {k: v for k, v in os.environ.items() if k not in ("OCCSENS_DEBUG", "OCCSENS_DATA_DIR")}
    proc = subprocess.run(
        [sys.executable, "-m", "occsens", *argv],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=300,  # importing torch: seconds alone, minutes on a busy 2-core machine
        check=False,
    )
    event(f"subprocess {command}: exit {proc.returncode}")
    check_outcome(command, argv, Outcome(proc.returncode, proc.stdout, proc.stderr), root, pristine, False)
