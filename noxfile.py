"""Nox sessions for occsens: plain `nox` runs tests, lint and typecheck; browser and bench on demand."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import nox

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
