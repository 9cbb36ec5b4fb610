"""The ``occsens`` command line: thin faces over the package's functions, and the only code that
touches argparse. ``args`` holds what several commands share, ``types`` the value of each option;
each command has its module.

Whatever goes wrong ends as one line on stderr, never a traceback, with the exit code saying what
kind of thing it was (``EXIT_CODES``, also in ``occsens --help``):

* 2, bad input: an argument (``occsens: error: argument --patch: ...``, from the parser) or what it
  names (a file, a model, a class), refused at the door of the command before any work; or the user's
  own code (model, ``--output`` function, ``--model-path`` factory) failing, named as such.
* 1 only where a command's answer is "no": a sanity check failed (``check``, ``report``, ``explain``)
  or a contract property failed (``conform``).
* 3, occsens itself failed (a bug, or the machine: out of memory): the line says to rerun with
  ``--debug`` (or ``OCCSENS_DEBUG=1``), which lets the exception through with its traceback.
* 130, interrupted (Ctrl-C); 141, the program reading the output closed it (``| head``), silently.

Building the parser, ``--help`` and argument errors import no torch (``tests/test_packaging.py``):
the command modules import their heavy dependencies (torch, the report's libraries, the checks, the
conformance suite) inside the functions that run a command, never at their top level.
"""

from __future__ import annotations

import os
import sys


def _the_program() -> bool:
    """Whether this process is the ``occsens`` program (the console script, ``python -m occsens``)."""
    main_module = getattr(sys.modules.get("__main__"), "__spec__", None)
    named = getattr(main_module, "name", "") in ("occsens.__main__", "occsens.cli.__main__")
    return named or os.path.basename(sys.argv[0] if sys.argv else "") == "occsens"


try:  # importing the commands takes ~0.4 s (numpy): a Ctrl-C then ends the program without a traceback
    import argparse
    import difflib
    import re
    import threading
    import traceback
    import warnings
    from collections.abc import Sequence
    from pathlib import Path
    from typing import Any, NoReturn

    from occsens import __version__, user_code
    from occsens._alloc import keep_heap_memory
    from occsens.cli import bench, check, cifar, conform, occlude, report, survey
    from occsens.errors import OcclusionError, first_line
    from occsens.leash import ExitCalled, exit_trapped, printable
except KeyboardInterrupt:
    if not _the_program():
        raise
    print("occsens: interrupted", file=sys.stderr)
    raise SystemExit(130) from None

EXIT_FAILED = 1  # a check or a contract property failed (the command's answer, not an error)
EXIT_USAGE = 2  # bad input, or the user's code failed; nothing written
EXIT_INTERNAL = 3  # occsens failed: a bug, or the machine (out of memory)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
EXIT_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (`occsens check | head -3`)
EXIT_CODES = (
    "exit codes: 0 done; 1 a sanity check (check, report, explain) or a contract property (conform) "
    "failed; 2 bad input or your code (model, --output function) failed, one 'occsens: error:' line, "
    "nothing written; 3 occsens failed (rerun with --debug, or OCCSENS_DEBUG=1, for the traceback, "
    "and report it); 130 interrupted"
)
DEBUG_HELP = "on an error, show Python's traceback instead of one line (for bug reports; or OCCSENS_DEBUG=1)"


def _one_line(text: str) -> str:
    return " ".join(text.split())


class Parser(argparse.ArgumentParser):
    """argparse with every error as one ``occsens: error:`` line (exit 2) naming the argument, the value
    and what is valid, and pointing at the command's ``--help``; the subcommands' parsers are of this
    class too (argparse makes them with ``type(self)``).

    Options are taken only by their full names: argparse's prefix matching would read ``check --out
    DIR`` as ``--output DIR`` and ``--no`` as whichever ``--no-...`` a command has.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        line = _one_line(self._explained(message))
        self.exit(EXIT_USAGE, f"occsens: error: {line}; see '{self.prog} --help'\n")

    def _explained(self, message: str) -> str:
        """argparse's message, with what is valid where it says only what is wrong."""
        required = re.fullmatch(r"the following arguments are required: (.*)", message)
        if required:
            names = [n.strip() for n in required.group(1).split(",")]
            said = [f"{n} ({self._help_of(n)})" if self._help_of(n) else n for n in names]
            return f"missing {', '.join(said)}"
        expected = re.fullmatch(r"argument ([^:]+): (expected .*)", message)
        if expected and self._help_of(expected.group(1)):
            return f"{message}: {self._help_of(expected.group(1))}"
        quoted = re.fullmatch(r"argument ([^:]+): ('.*)", message)  # a value type's message: 'VALUE' ...
        if quoted:
            return f"{quoted.group(1)} {quoted.group(2)}"  # --seed '-1' must be ..., as the commands say it
        return message

    def _help_of(self, name: str) -> str:
        """The help of the argument named ``name`` (an option string, a metavar, or several with '/')."""
        wanted = set(name.split("/"))
        for action in self._actions:
            names = {*action.option_strings, str(action.metavar), action.dest}
            if wanted & names and action.help and action.help is not argparse.SUPPRESS:
                return action.help if "%(" not in action.help else ""
        return ""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = self._command(parsed)
            (command or self).error(_unknown(extras, command or self))
        return parsed

    def _command(self, parsed: argparse.Namespace) -> Parser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(parsed, action.dest, None)
                return action.choices.get(chosen) if isinstance(chosen, str) else None  # type: ignore[return-value]
        return None


def _unknown(extras: Sequence[str], parser: argparse.ArgumentParser) -> str:
    """What is wrong with the first argument ``parser`` did not take, and the option meant, if close."""
    first = extras[0]
    more = f" (and {len(extras) - 1} more)" if len(extras) > 1 else ""
    if first.startswith("-") and len(first) > 1:
        option = first.split("=", 1)[0]
        known = [s for a in parser._actions for s in a.option_strings]
        close = difflib.get_close_matches(option, known, n=1, cutoff=0.75)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"unknown option {option!r}{more}{hint}"
    return f"unexpected argument {first!r}{more} (each option takes one value; quote a value with spaces)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="occsens",
        description="Occlusion sensitivity for image classifiers: what does the model look at, "
        "and can you trust it?",
        epilog=EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"occsens {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    occlude.add_parser(sub)  # `occsens occlude`
    cifar.add_parsers(sub)  # `occsens train`, `occsens evaluate`
    check.add_parser(sub)  # `occsens check`
    report.add_parsers(sub)  # `occsens report`, `occsens explain`
    bench.add_parser(sub)  # `occsens bench`
    conform.add_parser(sub)  # `occsens conform`
    survey.add_parser(sub)  # `occsens survey`
    for command in sub.choices.values():  # `occsens COMMAND ... --debug` too; SUPPRESS keeps a leading one
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command in ``argv`` (default: this process's arguments) and return its exit code.

    Argument errors exit through ``SystemExit(2)``, as argparse does; every other outcome is returned.
    With ``argv`` None (the ``occsens`` program itself, or ``python -m occsens``) the current folder is
    moved to the end of ``sys.path`` first (``user_code.working_folder_last``), and the process ends
    with the exit code even where the user's code left threads running that would keep it alive.
    """
    try:
        code = _main(argv)
    except KeyboardInterrupt:  # while the arguments were read, before the command's own handling
        print("occsens: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    if argv is None:
        _end_despite_threads(code)
    return code


def _printing_never_fails() -> None:
    """Print any text, in any locale: under ``LC_ALL=C`` stdout may be ASCII, and a file name (or the
    user's text) that it cannot encode would otherwise fail the command after all its work."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (OSError, ValueError):
                pass


def _end_despite_threads(code: int) -> None:
    """End the process now with ``code`` if a thread that is not a daemon (the user's) would keep it alive."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    if any(t.is_alive() for t in others):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    if argv is None:
        user_code.working_folder_last()
        _printing_never_fails()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        choices = ", ".join(sorted(next(a for a in parser._actions if a.dest == "command").choices or ()))
        parser.error(f"give a command: one of {choices}")
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        """Each distinct warning once per command, as one ``occsens: warning:`` line."""
        text = printable(_one_line(str(message)))
        if text not in shown:
            shown.add(text)
            print(f"occsens: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # A library's deprecations are for its developers (Python hides them outside __main__ too);
        # matplotlib 3.7 with pyparsing 3.3 printed three on every report (nox -s floors).
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=PendingDeprecationWarning)
        warnings.showwarning = show
        keep_heap_memory()  # occsens's own process: the allocator setting is ours to choose (_alloc)
        try:
            with exit_trapped():  # the user's os._exit becomes an error we can report
                return int(args.func(args) or 0)
        except KeyboardInterrupt:
            print("occsens: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            _quiet_stdout()
            return EXIT_PIPE
        except BaseException as exc:  # SystemExit, GeneratorExit...: parsing is done, so the user's code
            # Any other BaseException that is not the user's code's (a test harness's signal) goes on.
            theirs = isinstance(exc, (Exception, SystemExit, ExitCalled)) or user_code.blame(exc) is not None
            debug = getattr(args, "debug", False) or os.environ.get("OCCSENS_DEBUG", "") not in ("", "0")
            if debug or not theirs:
                raise
            code, line = _failure(exc)
            print(f"occsens: error: {printable(_one_line(line))}", file=sys.stderr)
            return code


def _quiet_stdout() -> None:
    """Point stdout at the null device, so Python's flush at exit does not fail on the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor (captured in tests)
        pass


def _importing_torch(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while ``import torch`` ran (a broken install, too little memory)."""
    if isinstance(exc, ImportError) and (exc.name or "").split(".")[0] == "torch":
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return isinstance(exc, (ImportError, OSError, MemoryError)) and any(
        Path(f.filename).name == "__init__.py" and Path(f.filename).parent.name == "torch" for f in frames
    )


def _failure(exc: BaseException) -> tuple[int, str]:
    """The exit code and the line for an exception a command raised (see the module docstring)."""
    if isinstance(exc, OcclusionError):
        return EXIT_USAGE, str(exc)
    theirs = user_code.blame(exc)
    if isinstance(exc, ExitCalled):
        where = theirs.partition(" raised ")[0] if theirs else "code occsens ran for you"
        return EXIT_USAGE, (
            f"{where} called os._exit({exc.status!r}), which would have ended occsens silently; "
            "return a value or raise an exception instead"
        )
    if theirs is not None:
        return EXIT_USAGE, theirs
    what = first_line(exc, 300)
    if _importing_torch(exc):
        return EXIT_INTERNAL, (
            f"PyTorch could not be imported ({what}); occsens needs a working torch: check that it is "
            "installed for this Python (pip install torch) and that the memory limit (ulimit -v) lets "
            "its libraries load"
        )
    if isinstance(exc, MemoryError):
        return EXIT_INTERNAL, f"out of memory ({what}); try fewer or smaller images, or a larger --patch"
    return EXIT_INTERNAL, (
        f"occsens failed ({what}); this is a bug: rerun with --debug (or OCCSENS_DEBUG=1) for the "
        "traceback and report it"
    )
