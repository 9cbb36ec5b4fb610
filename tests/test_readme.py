"""The README's code runs as written, so it cannot rot.

* Its ``python`` blocks run in order, in one namespace, in an empty folder, with the shipped model and
  embedded samples they load themselves. Where a block names the reader's own things (a Keras
  ``predict``, a segmentation model, ``photo.jpg``), the fakes below stand in; each must still appear
  in the README, so a fake outlives no line.
* Every ``occsens ...`` command in its ``bash`` blocks parses with the real command-line parser (a
  renamed option or command fails here), and every ``nox -s NAME`` names a session of the noxfile.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from occsens.cli import build_parser
from occsens.engine import layers

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", README, flags=re.M | re.S)
PYTHON = [code for lang, code in BLOCKS if lang == "python"]
SHELL = [code for lang, code in BLOCKS if lang in ("bash", "sh", "shell", "console")]


def readers_things(folder: Path) -> dict[str, Any]:
    """Stand-ins for what the README's API block calls "yours", and the files it reads."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(folder / "photo.jpg")
    (folder / "photos").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (30, 20, 3), dtype=np.uint8)).save(folder / "photos" / name)

    def keras_predict(batch: np.ndarray) -> np.ndarray:
        """A numpy model: NHWC float images -> [B, 3] probabilities (a softmax of channel means)."""
        assert batch.ndim == 4 and batch.shape[-1] == 3, batch.shape  # the layout the README declares
        e = np.exp(batch.mean(axis=(1, 2)))
        return e / e.sum(axis=1, keepdims=True)

    class MyActivation(nn.Module):
        def __init__(self, inplace: bool = False) -> None:  # timm builds its act_layer with inplace=
            super().__init__()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(x)

    torch.manual_seed(0)
    return {
        "keras_predict": keras_predict,
        "seg": nn.Conv2d(3, 4, 3, padding=1).eval(),  # [B, 4, H, W]: per-pixel logits of 4 classes
        "probs_model": nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10), nn.Softmax(dim=1)).eval(),
        "hwc_array": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),  # channels-last, as Keras/PIL
        "MyActivation": MyActivation,
    }


def test_the_readme_has_python_and_shell_blocks() -> None:
    """The extraction itself: a README reformatted so that no block is found must not pass silently."""
    assert PYTHON and SHELL
    assert any("occsens.occlude(" in code for code in PYTHON)


def test_every_stand_in_is_named_in_the_readme(tmp_path: Path) -> None:
    for name in [*readers_things(tmp_path), "photo.jpg", "photos/"]:
        assert any(name in code for code in PYTHON), f"{name!r} is no longer in the README; drop its fake"


@pytest.mark.slow  # run_checks on the shipped model: about a minute on 2 busy cores
def test_the_python_blocks_run_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace = readers_things(tmp_path)
    try:
        for n, code in enumerate(PYTHON, 1):
            exec(compile(code, f"README.md python block {n}", "exec"), namespace)  # noqa: S102
    finally:
        layers._POINTWISE.pop(namespace["MyActivation"], None)  # the block registers the fake globally


def _commands(script: str) -> list[list[str]]:
    """Each simple command of a shell block, as words: continuations joined, comments dropped."""
    joined = script.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", "||", ";", "|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


def _occsens_args(words: list[str]) -> list[str] | None:
    if words[0] == "occsens":
        return words[1:]
    if words[:3] == ["python", "-m", "occsens"] or words[:3] == ["python3", "-m", "occsens"]:
        return words[3:]
    return None


def test_every_occsens_command_in_the_readme_parses() -> None:
    parsed = set()
    for script in SHELL:
        for words in _commands(script):
            args = _occsens_args(words)
            if args is None:
                continue
            try:
                parsed.add(build_parser().parse_args(args).command)
            except SystemExit as exc:
                pytest.fail(f"README command {' '.join(words)!r} does not parse (exit {exc.code})")
    # the commands the README's shell blocks show today; fewer found means this reader broke
    assert {"report", "explain", "check"} <= parsed, parsed


def _nox_sessions() -> set[str]:
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any("session" in ast.unparse(d) for d in node.decorator_list)
    }


def test_every_nox_session_in_the_readme_exists() -> None:
    sessions = _nox_sessions()
    named = [
        words[words.index("-s") + 1 :]
        for script in SHELL
        for words in _commands(script)
        if words[0] == "nox" and "-s" in words
    ]
    assert named
    for names in named:
        for name in names:
            if name == "--":
                break
            assert name in sessions, f"README runs `nox -s {name}`; the noxfile has {sorted(sessions)}"


# ---- the first block: the whole fresh-machine path, run as written ------------------------------------


def _first_block() -> str:
    lang, code = BLOCKS[0]
    assert lang == "bash", "the README's first code block must be the fresh-machine path, in bash"
    return code


def test_the_first_block_is_the_whole_fresh_machine_path() -> None:
    """Venv first, CPU torch before occsens, the report, then the tests; in that order."""
    lines = [line.split("#")[0].strip() for line in _first_block().splitlines()]
    order = [
        next(i for i, line in enumerate(lines) if needle in line)
        for needle in (
            "python3 -m venv .venv",
            "--index-url https://download.pytorch.org/whl/cpu",
            "pip install .",
            "occsens report",
            '".[test]"',
            "python -m pytest",
        )
    ]
    assert order == sorted(order), order
    assert "--constraint" in _first_block()  # installing the test extra must keep the CPU torch


def test_the_main_command_needs_no_no_fail() -> None:
    """The shipped model passes every calibrated check at default settings (issue 23), so the main
    command exits 0 as written; ``--no-fail`` there would hide a failure from a new user."""
    (report,) = [line for line in _first_block().splitlines() if line.startswith("occsens report")]
    assert "--no-fail" not in report.split("#")[0], report


def _dependencies_dir(tmp_path: Path) -> Path:
    """One folder that shows every package this test environment has, except occsens itself and pip:
    symlinks into each site-packages on sys.path (a .pth may add the shared torch's)."""
    import sys

    deps = tmp_path / "dependencies"
    deps.mkdir()
    skip = (
        "occsens",
        "__editable__",
        "__editable___occsens",
        "pip",
        "_distutils_hack",
        "distutils-precedence",
    )
    # Later folders first: a venv's own site-packages holds only what `venv` seeded it with (an old
    # setuptools), a .pth-added one after it (the shared torch's) the environment's real packages.
    for folder in reversed(dict.fromkeys(p for p in sys.path if p.endswith("site-packages"))):
        for entry in Path(folder).iterdir():
            if entry.name.startswith(skip) or entry.name.endswith(".pth") or (deps / entry.name).exists():
                continue
            (deps / entry.name).symlink_to(entry)
    return deps


@pytest.mark.slow  # a venv, two pip installs and the full default report: minutes on 2 busy cores
def test_the_first_block_runs_as_written_in_a_fresh_venv(tmp_path: Path) -> None:
    """The README's first block, verbatim, in a copy of the checkout, with no network.

    How it avoids downloading torch (5 GB) and the extras: pip gets ``PIP_NO_INDEX=1`` (every
    ``--index-url`` and ``--extra-index-url`` in the block is then ignored) and no build isolation, and a
    ``sitecustomize`` puts a folder of links to this environment's packages (not occsens, not pip) at the
    front of every new interpreter's path. So ``pip install torch ...`` finds torch already satisfied,
    ``pip install .`` builds and installs occsens from the copy into the new venv (its console script
    and templates included), and ``pytest`` collects (``PYTEST_ADDOPTS=--collect-only``) instead of
    running the suite inside itself. Everything else runs as a reader runs it: the venv, the report."""
    import os
    import shutil
    import subprocess

    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info", ".hypothesis")
    for name in ("occsens", "templates", "tests", "examples"):
        shutil.copytree(ROOT / name, checkout / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "noxfile.py"):
        shutil.copy2(ROOT / name, checkout / name)
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    deps = _dependencies_dir(tmp_path)
    (site_dir / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(deps)!r})\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")
    }
    env.update(
        PYTHONPATH=str(site_dir),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's spelling for "do not isolate the build"
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTEST_ADDOPTS="--collect-only -q",
    )
    script = "set -euo pipefail\n" + _first_block()
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    venv = checkout / ".venv"
    occsens_file = subprocess.run(
        [venv / "bin" / "python", "-c", "import occsens; print(occsens.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(occsens_file).is_relative_to(venv), occsens_file  # installed by the block, not borrowed
    html = (checkout / "reports" / "index.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    # pytest -q --collect-only -q prints one "path: count" line per test file
    per_file = [int(n) for n in re.findall(r"^tests/\S+\.py: (\d+)$", out, flags=re.M)]
    assert per_file, out[-2000:]
    # the README says "more than 1,000 tests"
    assert "more than 1,000 tests" in README and sum(per_file) > 1000, sum(per_file)


# ---- the README's numbers about the shipped models, read from their cards ------------------------------


def _card(name: str) -> dict:
    import json

    return json.loads((ROOT / "occsens" / "weights" / f"{name}.json").read_text(encoding="utf-8"))


def test_the_colour_vs_greyscale_sentence_matches_the_cards() -> None:
    colour, grey = _card("default"), _card("greyscale")
    gap = 100 * (colour["test_accuracy"] - grey["test_accuracy"])
    assert f"lose {gap:.1f} points on luminance input" in README
    for model, card in (("default", colour), ("greyscale", grey)):
        assert re.search(rf"\| `{model}` \|.*\| {100 * card['test_accuracy']:.2f}% \|", README), model
    losses = {
        k: colour["per_class_accuracy"][k] - grey["per_class_accuracy"][k]
        for k in colour["per_class_accuracy"]
    }
    total = sum(v for v in losses.values() if v > 0)
    named = re.search(
        r"the largest\s+shares are (\w+) \((\S+) -> (\S+)\), (\w+) \((\S+) -> (\S+)\)"
        r" and (\w+) \((\S+) -> (\S+)\),"
        r"\s+(\d+)%, (\d+)% and (\d+)% of\s+the summed per-class losses",
        README,
    )
    assert named, "the README's colour-vs-greyscale sentence changed shape; update this test with it"
    classes = [named.group(i) for i in (1, 4, 7)]
    assert classes == sorted(losses, key=lambda k: -losses[k])[:3]  # the three largest, largest first
    for i, k in enumerate(classes):
        assert float(named.group(2 + 3 * i)) == colour["per_class_accuracy"][k]
        assert float(named.group(3 + 3 * i)) == pytest.approx(grey["per_class_accuracy"][k])
        assert int(named.group(10 + i)) == round(100 * losses[k] / total)
    # "No class holds most of that loss": the largest share is not above half
    assert "No class holds most of that loss" in README and max(losses.values()) <= total / 2


def test_the_first_blocks_report_is_on_as_many_images_as_it_says() -> None:
    from occsens.cifar.samples import DEFAULT_SAMPLES

    said = re.search(r"the shipped model on (\d+) CIFAR-10 test images", _first_block())
    assert said and int(said.group(1)) == len(DEFAULT_SAMPLES)
