"""The report in a real browser: headless Chromium opens it from disk, logs no console error, and paints it.

Needs Debian's ``chromium`` on PATH (the nox session ``browser`` installs it); skipped without it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from occsens import report
from occsens.cifar.data import CIFAR10_CLASSES
from occsens.cifar.samples import sample_by_index

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not on PATH: run `nox -s browser`, which "
    "installs Debian's chromium (apt-get install chromium)",
)

# Console output of any kind (the report has no scripts, so there should be none), uncaught errors,
# and failed loads.
PROBLEM = re.compile(r"CONSOLE|Uncaught|Failed to load resource|net::ERR_")


def screenshot(page: Path, tmp_path: Path, size: str = "1280,4000") -> tuple[Path, str]:
    """Open ``page`` in headless Chromium; return the screenshot and the browser's log."""
    shot = tmp_path / f"{page.stem}.png"
    profile = tmp_path / f"profile-{page.stem}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        f"--window-size={size}",
        page.resolve().as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-2000:]
    assert shot.is_file(), log[-2000:]
    return shot, log


def problems(log: str) -> list[str]:
    return [line for line in log.splitlines() if PROBLEM.search(line)]


def small_model() -> nn.Module:
    from occsens import OcclusionError
    from occsens.cifar import models

    try:
        return models.load_model("default")
    except OcclusionError:
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Conv2d(3, 8, 5, stride=4, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 8 * 8, 10)
        ).eval()


def test_console_errors_are_detected(tmp_path: Path) -> None:
    """The detector itself: a page with a console error and an uncaught exception is caught."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><body><p>x</p><script>console.error("boom"); missingFunction();</script>'
        "</body></html>"
    )
    _, log = screenshot(page, tmp_path, "400,300")
    found = problems(log)
    assert any("boom" in line for line in found) and any("Uncaught" in line for line in found), log[-2000:]


def test_report_opens_in_chromium_without_errors_and_paints(tmp_path: Path) -> None:
    samples = sample_by_index([1, 3])
    images = torch.from_numpy(samples.images.copy()).float() / 255
    built = report.make_report(
        small_model(),
        images,
        names=CIFAR10_CLASSES,
        sample_names=[f"test #{i}" for i in samples.indices],
        indices=list(samples.indices),
        labels=[int(y) for y in samples.labels],
        twin_missing="The greyscale twin's model card is not there.",
    )
    page = report.write_report(built, tmp_path / "out")
    shot, log = screenshot(page, tmp_path)
    assert problems(log) == [], "\n".join(problems(log))
    assert shot.stat().st_size > 50_000, f"screenshot only {shot.stat().st_size} bytes"
    with Image.open(shot) as img:
        rgb = img.convert("RGB")
        assert rgb.size == (1280, 4000)
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 1000, "the screenshot is (almost) one colour"
        # Something is drawn all the way down: the page is long, not a header over a blank.
        bottom = rgb.crop((0, 3000, 1280, 4000))
        assert bottom.getextrema() != ((255, 255), (255, 255), (255, 255))
