"""The installed package, not only a checkout, finds its templates: build the wheel, install it into a fresh
virtual environment, and build a report from a folder outside the repository."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

TINY = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.ReLU(), nn.Flatten())
    return net.append(nn.Linear(8 * 8 * 8, 10))
"""


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of the checkout, built from a copy so setuptools' build/ and *.egg-info stay out of it."""
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in ("occsens", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    pip_wheel = ["pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", ".", "-w", wheels]
    sh(sys.executable, "-m", *pip_wheel, cwd=source)
    (wheel,) = wheels.glob("occsens-*.whl")
    return wheel


def install_beside_this_environment(wheel: Path, venv: Path, env: dict[str, str]) -> None:
    """Install `wheel` into a new venv at `venv` that also imports what this test environment has installed.

    `venv --system-site-packages` would not do: when the tests run in a venv (nox's .nox/torch), it exposes
    the base interpreter's site-packages, which on a fresh machine have no torch. So the new venv gets a .pth
    file that lists this interpreter's own site-packages instead. It is written after the install, so pip
    sees an empty environment and installs the wheel even when this one already holds occsens 0.1.0.
    """
    sh(sys.executable, "-m", "venv", venv, cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    sh(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel, cwd=venv.parent, env=env)
    purelib = sh(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=venv, env=env)
    pth = Path(purelib.stdout.strip()) / "test_environment.pth"
    pth.write_text("".join(f"{path}\n" for path in site.getsitepackages()))


@pytest.mark.slow
def test_installed_wheel_builds_a_report_outside_the_checkout(tmp_path: Path) -> None:
    pytest.importorskip("setuptools", reason="building the wheel without isolation needs setuptools here")
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    bindir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    install_beside_this_environment(wheel, venv, env)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = sh(
        bindir / "python",
        "-c",
        "import occsens, importlib.resources as r; print(occsens.__file__); "
        "print(r.files('occsens.templates').joinpath('report.html.j2').is_file())",
        cwd=elsewhere,
        env=env,
    )
    module_file, has_template = where.stdout.split()
    assert Path(module_file).is_relative_to(venv), module_file  # the installed copy, not the checkout
    assert has_template == "True"

    # --no-fail: a failed sanity check exits 1 with the report written; this test is about the templates
    args = ["report", "--samples", "1", "--out", elsewhere / "out", "--quiet", "--no-fail"]
    if not (ROOT / "occsens" / "weights" / "default.pt").is_file():
        (elsewhere / "tiny_user_model.py").write_text(TINY)
        args += ["--model-path", "tiny_user_model:build", "--patch", "8"]
    done = sh(bindir / "occsens", *args, cwd=elsewhere, env=env)
    assert "wrote" in done.stdout
    html = (elsewhere / "out" / "index.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "test #1" in html and "<style>" in html
    assert "data:image/png;base64," in html
