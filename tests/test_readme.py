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
