"""The command line's contract with bad input, stated as tests (``occsens.cli``'s docstring).

* Every argument error is one line ``occsens: error: ...`` naming the option and the value, saying what
  is valid and pointing at ``occsens COMMAND --help``; exit 2; for every command.
* Exit codes: 2 bad input (before any work) or the user's own code failing, named; 1 only for a failed
  check or contract property; 3 occsens's own failure, with ``--debug``/``OCCSENS_DEBUG=1`` to see it;
  130 interrupted; 141 the output pipe closed. Never a traceback.
* Every argument is checked before any work, output paths included; options a command would ignore in
  the mode it runs in are refused.
* Every file a command writes lands whole or not at all (a full disk leaves the old output as it was).
* ``--model-path`` never lets a file in the current folder shadow an installed package.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from occsens import cli

from .workspace import (
    MODULE,
    OLD_OUTPUTS,
    SCRIPT,
    full_disk,
    leftovers,
    make_workspace,
    run_cli,
    seed_outputs,
    snapshot,
)

LIN8 = f"{MODULE}:lin8"


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace of ``workspace.py``, made the current folder, with old outputs seeded."""
    make_workspace(tmp_path)
    seed_outputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OCCSENS_DEBUG", raising=False)
    monkeypatch.delenv("OCCSENS_DATA_DIR", raising=False)
    return tmp_path


def one_error(err: str, warnings: bool = False) -> str:
    """The only line on stderr, which must be an ``occsens: error:`` line (after ``occsens: warning:``
    lines where ``warnings``)."""
    lines = err.strip().splitlines()
    if warnings:
        lines = [line for line in lines if not line.startswith("occsens: warning: ")]
    assert len(lines) == 1 and lines[0].startswith("occsens: error: "), err
    assert "Traceback" not in err
    return lines[0]


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


# --------------------------------------------------------------------------- the parser


def test_every_option_that_takes_a_value_has_a_type_that_checks_it() -> None:
    """No value reaches a command unchecked: argparse's default (the raw string) would let ``--out ""``
    mean "not given" and ``--seed`` take any int."""
    unchecked = [
        f"{name} {action.option_strings or action.metavar}"
        for name, parser in commands().items()
        for action in parser._actions
        if action.nargs != 0 and action.type is None and not isinstance(action, argparse._HelpAction)
    ]
    assert unchecked == []


# A bad value for one option of each command, and the words the message must hold (the option, the
# value, and what is valid).
BAD_VALUE = {
    "occlude": (["img.png", "--target", "-1"], ["--target '-1'", "0 or more"]),
    "train": (["--epochs", "0"], ["--epochs '0'", "1..1000"]),
    "evaluate": (["--data-dir", ""], ["--data-dir ''", "is empty"]),
    "check": (["--seed", "-1"], ["--seed '-1'", "0..4294967295"]),
    "report": (["--patch", "0"], ["--patch '0'", "positive"]),
    "explain": (["img.png", "--max-pixels", "nan"], ["--max-pixels 'nan'", "whole number"]),
    "bench": (["--reps", "0"], ["--reps '0'", "positive"]),
    "conform": (["occsens", "--examples", "9223372036854775808"], ["--examples", "2**63 - 1"]),
}
# The positional argument a command requires, its name in messages, and a value for it.
REQUIRED = {"occlude": ("IMAGE", "img.png"), "explain": ("IMAGE", "img.png"), "conform": ("IMPL", "occsens")}


@pytest.mark.parametrize("command", sorted(BAD_VALUE))
def test_every_commands_argument_errors_are_one_line_naming_option_value_and_range(
    command: str, ws: Path
) -> None:
    argv, words = BAD_VALUE[command]
    done = run_cli([command, *argv])
    line = one_error(done.err)
    assert done.code == 2 and done.out == ""
    assert all(w in line for w in words), line
    assert line.endswith(f"see 'occsens {command} --help'")
    name, value = REQUIRED.get(command, ("", ""))
    done = run_cli([command, *([value] if value else []), "--debgu"])
    line = one_error(done.err)
    assert done.code == 2 and "unknown option '--debgu'; did you mean --debug?" in line, line
    if name:
        done = run_cli([command])
        line = one_error(done.err)
        assert done.code == 2 and f"missing {name} (" in line  # and its help: what it is


def test_argument_errors_import_no_torch() -> None:
    """The parser answers before torch loads (seconds): every kind of argument error, every command."""
    argvs = [[c, "--debgu"] for c in BAD_VALUE] + [[c, *BAD_VALUE[c][0]] for c in BAD_VALUE]
    argvs += [["train", "--width", "0"], ["check", "--fill", "nan"], ["occlude"], [], ["explian"]]
    code = textwrap.dedent(
        f"""
        import contextlib, io, sys
        from occsens.cli import main
        for argv in {argvs!r}:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    main(argv)
                except SystemExit as exc:
                    said = err.getvalue()
                    assert exc.code == 2 and said.startswith("occsens: error:"), (argv, said)
                else:
                    raise AssertionError(f"{{argv}} was not an argument error")
        print("torch" in sys.modules)
        """
    )
    # 300 s: no torch, so about a second, but minutes are possible on the busy 2-core machine
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_close_unknown_option_is_named_and_a_prefix_is_not_taken_for_an_option(ws: Path) -> None:
    done = run_cli(["check", "--sede", "3"])
    assert "unknown option '--sede' (and 1 more); did you mean --seed?" in one_error(done.err)
    # argparse would take --out for --output: `check` has no --out, so it is an unknown option
    done = run_cli(["check", "--out", "results"])
    assert done.code == 2 and "unknown option '--out'" in one_error(done.err)


def test_a_missing_value_says_what_the_option_takes(ws: Path) -> None:
    done = run_cli(["occlude", "img.png", "--patch"])
    line = one_error(done.err)
    assert "--patch: expected one argument: window size in pixels, N or HxW" in line


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        ([], "give a command: one of bench, check, conform"),
        (["explian"], "invalid choice: 'explian'"),
        (["occlude", "a.png", "b.png"], "unexpected argument 'b.png'"),
        (["check", "--channels", "2"], "--channels '2' is not 1 (luminance) or 3 (RGB)"),
        (["check", "--fill", "nan"], "--fill 'nan' is not a fill"),
        (["check", "--fill", "0.5,0.5"], "--fill '0.5,0.5' is not a fill"),
        (["check", "--checks", "determinism,,leakage"], "has an empty name"),
        (["check", "--samples", ","], "is not a list of test-set indices"),
        (["report", "--out", ""], "--out '' is empty; give a folder"),
        (["occlude", "img.png", "--patch", "4x0"], "--patch '4x0' is not an int or HxW pair"),
        (["occlude", "img.png", "--stride", "1" + "0" * 5000], "must be at most 2**63 - 1"),
        (["occlude", "img.png", "--model-path", "mynet"], "must look like MODULE:NAME"),
        (["occlude", "img.png", "--output", "tanh"], "--output 'tanh' is unknown"),
        (["train", "--width", "257"], "--width '257' must be at most 256"),
        (["train", "--seed", str(2**32)], "must be at most 4294967295"),
        (["bench", "--images", "0,1"], "must be positive"),
    ],
)
def test_bad_values_are_refused_by_the_parser(ws: Path, argv: list[str], words: str) -> None:
    done = run_cli(argv)
    assert done.code == 2 and words in one_error(done.err)


# --------------------------------------------------------------------------- checked before any work


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The functions that start a command's work, replaced by ones that record that they were reached."""
    from occsens import checks, conformance
    from occsens.cifar import data, train

    reached: list[str] = []

    def record(name: str):  # noqa: ANN202
        def reach(*args: object, **kwargs: object) -> None:
            reached.append(name)
            raise AssertionError(f"{name} was reached")

        return reach

    monkeypatch.setattr(checks, "run_checks", record("run_checks"))
    monkeypatch.setattr(conformance, "verify", record("verify"))
    monkeypatch.setattr(data, "download", record("download"))
    monkeypatch.setattr(data, "load_split", record("load_split"))
    monkeypatch.setattr(train, "train", record("train"))
    monkeypatch.setattr("occsens.cli.bench._run_bench", record("run_bench"))
    return reached


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        # the examples: a seed, an input size, training settings
        (["check", "--seed", str(2**40)], "--seed '1099511627776' must be at most 4294967295"),
        (["occlude", "img.png", "--input-size", "0", "0"], "--input-size '0' must be positive"),
        (["occlude", "img.png", "--input-size", "100000", "100000", "--model-path", LIN8], "--max-pixels"),
        (["train", "--width", "0", "--download"], "--width '0' must be positive"),
        (["train", "--epochs", "0", "--download"], "--epochs '0' must be positive (epochs: 1..1000)"),
        (["train", "--name", "../up", "--download"], "--name must be 1-100 letters"),
        (["train", "--out", "afile", "--download"], "--out 'afile' is not usable"),
        (["train", "--resume", "--out", "adir", "--download"], "there is no checkpoint"),
        # output paths: a folder, a special file, under a file, a file where a folder goes
        (["check", "--json", "adir"], "--json 'adir' is a folder; give a file name"),
        (["check", "--json", "fifo"], "is a named pipe (FIFO), not a file occsens can replace"),
        (["check", "--json", "/dev/null"], "is a device, not a file occsens can replace"),
        (["check", "--json", "afile/checks.json"], "'afile' is a file, not a folder"),
        (["report", "--out", "afile", "--model-path", LIN8], "--out 'afile' is not usable"),
        (["report", "--out", "adir", "--model-path", LIN8], "'adir/index.html' is a folder"),
        (["conform", "occsens", "--json", "x.out", "--html", "x.out"], "name the same file"),
        (["conform", "occsens", "--html", "fifo"], "named pipe"),
        (["bench", "--out", "afile"], "--out 'afile' is not usable"),
    ],
)
def test_arguments_are_checked_before_any_work(
    ws: Path, no_work: list[str], argv: list[str], words: str
) -> None:
    if "fifo" in argv and not (ws / "fifo").exists():
        pytest.skip("no named pipes on this platform")
    before = snapshot(ws)
    done = run_cli(argv)
    assert done.code == 2 and words in one_error(done.err)
    assert no_work == []  # no download, no training, no checks, no benchmark was started
    assert snapshot(ws) == before and leftovers(ws) == []  # nothing written


def test_a_corrupt_checkpoint_is_refused_before_the_data_is_read(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from occsens.cifar import data

    def load_split(*args: object, **kwargs: object) -> None:
        raise AssertionError("the training data was read")

    monkeypatch.setattr(data, "load_split", load_split)
    done = run_cli(["train", "--resume", "--out", "ckpt", "--quiet"])
    line = one_error(done.err, warnings=True)  # torch may warn about the file's pickle protocol first
    assert done.code == 2 and "checkpoint" in line and "ckpt/default.checkpoint.pt" in line


# Options that would be ignored in the mode a command runs in, and what each refusal says.
IGNORED = [
    (["occlude", "img.png", "--notebook", "--stride", "2"], "--stride has no effect with --notebook"),
    (["occlude", "img.png", "--notebook", "--reveal"], "--reveal has no effect with --notebook"),
    (["occlude", "img.png", "--notebook", "--patch", "2x4"], "the notebook's cells are square"),
    (["CMD", "--labels", "labels.csv"], "--labels needs --images"),
    (["CMD", "--input-size", "8", "8"], "--input-size needs --images"),
    (["CMD", "--channels", "1"], "--channels needs --images"),
    (["CMD", "--max-pixels", "100"], "--max-pixels needs --images"),
    (["CMD", "--images", "imgs", "--samples", "1"], "give either --images"),
    (["CMD", "--images", "imgs", "--data-dir", "adir"], "give either --images"),
    (["CMD", "--weights", "w.pt"], "--weights needs --model-path"),
    (["CMD", "--model", "default", "--model-path", LIN8], "either --model or --model-path"),
    (["CMD", "--classes", "a,b,c", "--classes-file", "classes.txt"], "either --classes or --classes-file"),
    (["report", "--no-checks", "--no-fail"], "--no-fail has no effect with --no-checks"),
    (["explain", "img.png", "--no-checks", "--no-fail"], "--no-fail has no effect with --no-checks"),
    (["train", "--resume", "--out", "adir"], "--resume: there is no checkpoint"),
]


@pytest.mark.parametrize(("argv", "words"), IGNORED)
def test_options_a_command_would_ignore_are_refused(
    ws: Path, no_work: list[str], argv: list[str], words: str
) -> None:
    """``check`` and ``report`` read their images through one function (``inputs_from_args``): each
    refusal holds for both."""
    for command in ("check", "report") if argv[0] == "CMD" else (argv[0],):
        done = run_cli([command, *argv[1:], "--quiet"])
        assert done.code == 2 and words in one_error(done.err), command
    assert no_work == []


# --------------------------------------------------------------------------- exit codes


def test_the_users_code_failing_is_named_exit_2_not_a_traceback(ws: Path) -> None:
    """Failures inside the model's forward pass or an --output function are wrapped by the engine; one
    anywhere else in the user's module (here its ``parameters()``) is traced back to it."""
    cases = [
        (["--model-path", f"{MODULE}:boom"], "the model", "Boom always fails"),
        (["--model-path", LIN8, "--output", f"{MODULE}:bad_scores"], "bad_scores", "always fails"),
        (["--model-path", f"{MODULE}:factory_fails"], "factory_fails() failed", "this factory fails"),
        (["--model-path", f"{MODULE}:late"], f"your code (--model-path {MODULE}:late)", "no parameters"),
        (["--model-path", f"{SCRIPT}:build"], f"importing '{SCRIPT}' called sys.exit(", "__name__"),
    ]
    for argv, who, what in cases:
        done = run_cli(["occlude", "img.png", *argv, "--quiet"])
        line = one_error(done.err)
        assert done.code == 2 and who in line and what in line, line


def test_an_unexpected_exception_is_one_line_exit_3_and_debug_shows_it(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug in occsens")

    monkeypatch.setattr("occsens.cli.occlude.file_inputs", broken)
    argv = ["occlude", "img.png", "--quiet"]
    done = run_cli(argv)
    line = one_error(done.err)
    assert done.code == cli.EXIT_INTERNAL == 3
    assert "occsens failed (ZeroDivisionError: a bug in occsens)" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):  # --debug lets it through, traceback and all
        cli.main([*argv, "--debug"])
    with pytest.raises(ZeroDivisionError):  # before the command too
        cli.main(["--debug", *argv])
    monkeypatch.setenv("OCCSENS_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(argv)


@pytest.mark.parametrize(
    ("raised", "code", "err"),
    [
        (KeyboardInterrupt(), 130, "occsens: interrupted\n"),
        (BrokenPipeError(), 141, ""),
        (MemoryError(), 3, "occsens: error: out of memory (MemoryError); try fewer or smaller images"),
    ],
)
def test_interrupts_closed_pipes_and_memory_have_their_own_exit(
    ws: Path, monkeypatch: pytest.MonkeyPatch, raised: BaseException, code: int, err: str
) -> None:
    def stop(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr("occsens.cli.occlude.file_inputs", stop)
    done = run_cli(["occlude", "img.png", "--quiet"])
    assert done.code == code and done.err.startswith(err) and "Traceback" not in done.err


def test_the_exit_codes_and_debug_are_in_the_help(ws: Path) -> None:
    text = " ".join(run_cli(["--help"]).out.split())
    assert "exit codes: 0 done; 1 a sanity check" in text and "3 occsens failed" in text
    for command in commands():
        assert "--debug" in run_cli([command, "--help"]).out, command


# --------------------------------------------------------------------------- whole files


def test_a_full_disk_leaves_the_old_check_results_as_they_were(ws: Path) -> None:
    before = snapshot(ws)
    with full_disk() as opened:
        done = run_cli(["check", "--images", "imgs", "--model-path", LIN8, "--checks", "determinism",
                        "--json", "old.json", "--quiet"])  # fmt: skip
    assert opened[0] >= 1  # the write was reached, and failed
    line = one_error(done.err)
    assert done.code == 2 and "cannot write the check results (No space left on device)" in line
    assert "determinism" in done.out  # the table is printed before the file is written: the results stay
    assert json.loads((ws / "old.json").read_bytes()) == {"old": True}
    assert snapshot(ws) == before and leftovers(ws) == []


def test_a_full_disk_on_the_reports_second_file_leaves_both_old_files(ws: Path) -> None:
    before = snapshot(ws)
    with full_disk(after=1) as opened:  # index.html is staged whole; report.json fills the disk
        done = run_cli(["explain", "img.png", "--model-path", LIN8, "--no-checks", "--json", "--out", "out",
                        "--quiet"])  # fmt: skip
    assert opened[0] == 2
    assert done.code == 2 and "No space left on device" in one_error(done.err)
    for name in ("out/index.html", "out/report.json"):
        assert (ws / name).read_bytes() == OLD_OUTPUTS[name]
    assert snapshot(ws) == before and leftovers(ws) == []


def test_conform_writes_its_json_and_html_together_or_neither(ws: Path) -> None:
    before = snapshot(ws)
    with full_disk(after=1) as opened:
        done = run_cli(["conform", "occsens", "--examples", "1", "--json", "old.json", "--html", "old.html"])
    assert opened[0] == 2 and done.code == 2 and "No space left on device" in one_error(done.err)
    assert snapshot(ws) == before and leftovers(ws) == []


# --------------------------------------------------------------------------- where user code comes from


def test_model_path_help_says_it_imports_and_runs_the_named_file() -> None:
    for command in ("occlude", "check", "report", "explain", "evaluate"):
        text = " ".join(commands()[command].format_help().split())
        assert "imports MODULE, running its top-level code" in text, command
        assert "searched last, so a file there never shadows a library" in text, command


def test_python_dash_m_does_not_let_a_file_in_the_folder_shadow_a_library(tmp_path: Path) -> None:
    """``python -m`` puts the current folder first on sys.path; a ``matplotlib.py`` there must not run
    when the user's module (or occsens) imports matplotlib."""
    make_workspace(tmp_path)
    (tmp_path / "matplotlib.py").write_text("raise SystemExit('the folder shadowed matplotlib')\n")
    (tmp_path / "usesmpl.py").write_text(
        textwrap.dedent(
            f"""
            import matplotlib
            from {MODULE} import lin8
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "occlude", "img.png", "--model-path", "usesmpl:lin8", "--quiet"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,  # a fresh interpreter importing torch: seconds alone, minutes on a busy 2-core machine
        check=False,
    )
    assert "shadowed" not in done.stderr + done.stdout
    assert done.returncode == 0, done.stderr
    assert "clean prediction" in done.stdout
