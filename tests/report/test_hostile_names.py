"""File names are data (issue 26): any bytes a file system allows, in any locale, are shown escaped in
the page, the figures and the JSON; never a crash at the end of the work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import occsens

from .conftest import TinyNet

BAD = "bad\udcff\x1b[31m.png"  # byte 0xff (not UTF-8, as os.fsdecode keeps it) and an escape sequence


def test_explain_shows_an_undecodable_name_escaped_and_saves(tmp_path: Path) -> None:
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    made = occsens.explain(TinyNet(), images, patch=8, checks=False, sample_names=[BAD])
    page = made.save(tmp_path / "page.html").read_text(encoding="utf-8")
    assert made.numbers["samples"][0]["name"] == "bad\\xff\\x1b[31m.png"
    json.dumps(made.numbers, ensure_ascii=False).encode("utf-8")  # no lone surrogate left to fail on
    assert "bad\\xff\\x1b[31m.png" in page and "\x1b" not in page


def test_report_on_files_with_any_bytes_in_their_names_finishes_under_the_c_locale(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    pixels = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    for raw in (b"bad\xff.png", "café.png".encode()):
        Image.fromarray(pixels).save(os.fsdecode(os.path.join(os.fsencode(folder), raw)))
    (tmp_path / "tiny_names_model.py").write_text(
        "from tests.report.conftest import TinyNet\n\ndef build():\n    return TinyNet()\n"
    )
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env["PYTHONPATH"] = str(Path(__file__).parents[2])  # for tests.report.conftest
    env.pop("PYTHONIOENCODING", None)
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "report", "--model-path", "tiny_names_model:build"]
        + ["--images", str(folder), "--out", str(tmp_path / "out"), "--no-checks", "--patch", "8", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    numbers = json.loads((tmp_path / "out" / "report.json").read_bytes())
    assert sorted(s["name"] for s in numbers["samples"]) == ["bad\\xff.png", "café.png"]
    assert "bad\\xff.png" in (tmp_path / "out" / "index.html").read_text(encoding="utf-8")


def test_control_and_bidi_characters_in_a_name_are_shown_escaped() -> None:
    from occsens.errors import printable

    # an escape sequence that would clear the screen, a right-to-left override that would make
    # "exe.png" read as "gnp.exe", and a byte 0xff kept as a surrogate by os.fsdecode
    assert printable("\x1b[2Ja\u202egnp.exe\udcff") == "\\x1b[2Ja\\u202egnp.exe\\xff"
    assert printable("tab\there, new\nline, café 猫") == "tab here, new line, café 猫"
