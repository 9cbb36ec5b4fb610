"""Nox sessions for occsens: plain `nox` runs tests, lint and typecheck; browser, bench, floors on demand."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

nox.needs_version = ">=2024.4.15"  # sessions with default=False
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
CONSTRAINTS = ROOT / ".ci" / "constraints.txt"
# torch is 5.6 GB, so every session that needs it shares this one venv instead of nox's per-session ones.
TORCH_ENV = ROOT / ".nox" / "torch"


def torch_env(session: nox.Session, extras: str) -> Callable[..., object]:
    """Create the shared torch venv once, install `.[extras]` into it, and return a runner for its tools."""
    bindir = TORCH_ENV / "bin"
    if not (bindir / "python").exists():
        session.run(sys.executable, "-m", "venv", str(TORCH_ENV))
    env = {"VIRTUAL_ENV": str(TORCH_ENV), "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(cmd: str, *args: str) -> object:
        return session.run(str(bindir / cmd), *args, env=env)

    run("python", "-m", "pip", "install", "--constraint", str(CONSTRAINTS), f".[{extras}]")
    return run


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the test suite against the installed package."""
    torch_env(session, "test")("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and formatting with ruff (no torch)."""
    session.install("ruff", "--constraint", str(CONSTRAINTS))
    paths = session.posargs or ["."]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(venv_backend="none")
def typecheck(session: nox.Session) -> None:
    """Type-check the package with mypy."""
    torch_env(session, "test,dev")("mypy", *session.posargs)


@nox.session(venv_backend="none", default=False)
def browser(session: nox.Session) -> None:
    """Run the browser tests in headless Chromium, installing it with apt-get when missing and root."""
    if not (ROOT / "tests" / "browser").is_dir():
        session.skip("no tests/browser yet")
    if shutil.which("chromium") is None:
        if os.geteuid() != 0:
            session.error("chromium is missing: install Debian's chromium package (apt-get install chromium)")
        session.run("apt-get", "update", external=True)
        session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", external=True)
    torch_env(session, "test")("pytest", "tests/browser", *session.posargs)


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Benchmark occsens against Captum and MONAI (`occsens bench`)."""
    torch_env(session, "bench")("occsens", "bench", *session.posargs)


def floor_pins(extras: Sequence[str]) -> list[str]:
    """``name==X`` for each ``name>=X`` in pyproject's dependencies and ``extras``: pip's answer to
    ``--resolution lowest-direct`` (direct dependencies at their floors, indirect ones resolved freely).
    A direct dependency without a floor (pytest, captum) is left free: there is no floor to test."""
    project = nox.project.load_toml(ROOT / "pyproject.toml")["project"]
    texts = [*project["dependencies"], *(t for e in extras for t in project["optional-dependencies"][e])]
    pins: dict[str, str] = {}
    for text in texts:
        req = Requirement(text)
        floors = [Version(spec.version) for spec in req.specifier if spec.operator == ">="]
        if floors:
            pins[canonicalize_name(req.name)] = f"{req.name}=={max(floors)}"
    return sorted(pins.values())


# Python 3.10 because the floors are what a user of the oldest supported Python can get (Pillow 9.1 has
# no wheel for 3.11). Where pyenv manages the Pythons: PYENV_VERSION=3.11.7:3.10.13.
# torch is pinned at its floor too, in this session's own venv (.nox/floors, about 5 GB, downloaded
# from PyPI: CUDA wheels, some 3 GB): sharing .nox/torch's 2.14.1 would test every floor but the one
# the engine leans on most (graph.py and receptive.py use torch.fx internals and APIs new in 2.8 and 2.4).
@nox.session(python="3.10", default=False)
def floors(session: nox.Session) -> None:
    """Run the tests with every dependency at its pyproject floor (torch included), on Python 3.10."""
    constraints = Path(session.create_tmp()) / "floors.txt"
    constraints.write_text("".join(f"{pin}\n" for pin in floor_pins(["test"])))
    session.log("floors: " + ", ".join(floor_pins(["test"])))
    session.install("--constraint", str(constraints), "--editable", ".[test]")  # the tests run on the tree
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)
