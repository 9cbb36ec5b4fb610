"""The data-set report (``occsens survey``) in headless Chromium: it opens from disk, logs no console
error, paints every figure, and fits the window (needs ``chromium`` on PATH, as the other browser tests)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import occsens

from .test_report_browser import CHROMIUM, problems, screenshot

pytest.importorskip("pyarrow", reason="the survey store needs pyarrow: pip install 'occsens[survey]'")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH: run `nox -s browser`")

PROBE = """<script>
window.addEventListener("load", () => {
  document.title = JSON.stringify({
    images: document.images.length,
    undecoded: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
    scroll_width: document.documentElement.scrollWidth, viewport: innerWidth,
  });
});
</script>"""


def _survey_page(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 4)).eval()  # fmt: skip
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 3, 16, 16), dtype=np.uint8)
    folder = occsens.survey(
        model,
        images,
        labels=rng.integers(0, 4, 40),
        out=tmp_path / "s",
        patch=4,
        notebook=True,
        progress=False,
    )
    from occsens.datasurvey.page import write_report

    return write_report(folder)


def test_the_survey_report_opens_paints_and_fits_the_window(tmp_path: Path) -> None:
    page = _survey_page(tmp_path)
    shot, log = screenshot(page, tmp_path, "1280,2400")
    assert problems(log) == [], "\n".join(problems(log))
    assert shot.stat().st_size > 30_000, f"screenshot only {shot.stat().st_size} bytes"
    probed = tmp_path / "probed.html"
    probed.write_text(
        page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8"
    )
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile-dom'}", "--window-size=1280,2400", "--dump-dom",
           probed.resolve().as_uri()]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    title = done.stdout.split("<title>", 1)[1].split("</title>", 1)[0]
    facts = json.loads(title.replace("&quot;", '"'))
    assert facts["images"] > 20 and facts["undecoded"] == 0, facts
    assert facts["scroll_width"] <= facts["viewport"], facts  # nothing wider than the window
