"""The report in a real browser: headless Chromium opens it from disk, logs no console error, paints it,
and lays it out as one page a person reads: the four answers first, within the first screen, nothing
wider than the window, every figure decoded, the secondary figures folded until a link opens them.

Needs Debian's ``chromium`` on PATH (the nox session ``browser`` installs it); skipped without it.
"""

from __future__ import annotations

import json
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


# A probe appended to a copy of the page (the report itself has no scripts): once everything has loaded,
# it writes what the layout tests need into the document's title, which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", () => {
  const box = id => { const r = document.getElementById(id).getBoundingClientRect();
                      return [r.top + scrollY, r.bottom + scrollY]; };
  const target = location.hash ? document.getElementById(location.hash.slice(1)) : null;
  const inside = [...document.querySelectorAll("main *")].filter(e => {
    const r = e.getBoundingClientRect(); return r.width > 0 && r.right > innerWidth + 1
      && !e.closest("table.grid, pre, details:not([open])"); }).map(e => e.tagName + "." + e.className);
  document.title = JSON.stringify({
    questions: ["q1", "q2", "q3", "q4"].filter(id => document.getElementById(id)).map(box),
    notebook: box("notebook"), overview: box("overview"),
    scroll_width: document.documentElement.scrollWidth, viewport: innerWidth,
    wider: inside.slice(0, 5),
    tables_scroll: [...document.querySelectorAll("#samples table.grid")]
      .map(t => t.scrollWidth > t.clientWidth + 1),
    q2_figure: document.querySelector("#q2 figure.key-evidence img") ?
      !document.querySelector("#q2 figure.key-evidence").closest("details") : null,
    trust: [...document.querySelectorAll("#trust .trust-list li")].map(li => li.className),
    height: document.documentElement.scrollHeight,
    open: document.querySelectorAll("details[open]").length,
    undecoded: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
    images: document.images.length,
    target_shown: target ? !target.closest("details:not([open])") : null,
  });
});
</script>"""
WIDTH, HEIGHT = 1400, 2000  # the window the done-when check uses
NARROW = 800  # the narrowest window the layout is made for (issue 25: 800 to 1600 px)


def layout(page: Path, tmp_path: Path, fragment: str = "", width: int = WIDTH) -> dict:
    """The probe's measurements of ``page`` in headless Chromium at ``width`` x HEIGHT."""
    probed = tmp_path / f"probed-{page.stem}-{width}.html"
    probed.write_text(page.read_text().replace("</body>", PROBE + "\n</body>"))
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / f'profile-layout-{width}'}",
        f"--window-size={width},{HEIGHT}",
        "--virtual-time-budget=10000",  # let every data: image decode before the load event
        "--dump-dom",
        probed.resolve().as_uri() + fragment,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    found = re.search(r"<title>(\{.*?\})</title>", done.stdout)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def asker_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report on the two samples the question is about (a ship, an airplane) and the asker's printout."""
    samples = sample_by_index([1, 3])
    images = torch.from_numpy(samples.images.copy()).float() / 255
    built = report.make_report(
        small_model(),
        images,
        names=CIFAR10_CLASSES,
        sample_names=[f"test #{i}" for i in samples.indices],
        indices=list(samples.indices),
        labels=[int(y) for y in samples.labels],
        question=report.ASKER,
        checks=CHECKS,
    )
    return report.write_report(built, tmp_path_factory.mktemp("asker"))


def _checks() -> list:
    """One passed (with power enough to license its claim), one failed, one inconclusive check: the
    trust list shows each answer, yes first (claims whose check did not run are "not tested" too)."""
    from occsens.checks import CheckResult
    from occsens.checks import conditions as cond

    value = {"z": 0.0}
    return [
        CheckResult("model randomisation", "pass", value, cond.RANDOMISATION, "", (1,), power=0.9),
        CheckResult("faithfulness: deletion", "fail", value, cond.DELETION, "", (1,), power=0.8),
        CheckResult(
            "occluder leakage: fill class", "inconclusive", value, cond.FILL_CLASS, "", (1,), power=1.0
        ),
    ]


CHECKS = _checks()
NOT_PASSED = sum(r.verdict != "pass" for r in CHECKS)  # their details open in the check table


@pytest.fixture(scope="module")
def own_images_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report on images of the reader's own (no asker's printout): it opens with their summary."""
    samples = sample_by_index([1, 3])
    images = torch.from_numpy(samples.images.copy()).float() / 255
    built = report.make_report(
        small_model(),
        images,
        names=CIFAR10_CLASSES,
        sample_names=["ship.png", "plane.png"],
        checks=CHECKS,
    )
    return report.write_report(built, tmp_path_factory.mktemp("own"))


def test_the_page_opens_with_the_four_answers_and_fits_the_window(asker_page: Path, tmp_path: Path) -> None:
    box = layout(asker_page, tmp_path)
    tops = [top for top, _ in box["questions"]]
    assert len(tops) == 4 and tops == sorted(tops)
    assert box["questions"][1][1] <= HEIGHT, "the first two answers do not fit the first screen"
    assert box["questions"][-1][1] <= box["notebook"][0] <= box["overview"][0]
    assert box["scroll_width"] <= box["viewport"], "something is wider than the window"
    assert box["images"] > 10 and box["undecoded"] == 0
    assert box["q2_figure"] is True  # Q2's key evidence is under its answer, not folded
    assert box["trust"][:3] == ["trust-yes", "trust-no", "trust-not-tested"]
    assert set(box["trust"][2:]) == {"trust-not-tested"}
    # the fills, the inputs, the notebook's square: folded until asked for; only the details of the checks
    # that did not pass are open
    assert box["open"] == NOT_PASSED


@pytest.mark.parametrize("width", [NARROW, WIDTH])
def test_nothing_is_wider_than_the_window_from_800_to_1400_px(
    asker_page: Path, own_images_page: Path, tmp_path: Path, width: int
) -> None:
    """At 800 px the "All samples" table once overflowed (943 px in 785): wide tables now scroll inside
    themselves, and nothing else is wider than the window."""
    for page in (asker_page, own_images_page):
        box = layout(page, tmp_path, width=width)
        assert box["viewport"] == width
        assert box["scroll_width"] <= box["viewport"], (page.parent.name, width, box["wider"])
        assert box["wider"] == [], box["wider"]
        assert box["undecoded"] == 0
    if width == WIDTH:  # at 1400 px the all-samples table fits without scrolling
        assert box["tables_scroll"] == [False]


def test_a_report_on_own_images_opens_with_their_summary_not_the_askers_questions(
    own_images_page: Path, tmp_path: Path
) -> None:
    html = own_images_page.read_text()
    assert "The four questions" not in html and 'id="q1"' not in html
    assert "What the model sees in these images" in html
    assert html.index("The model predicts") < html.index('id="overview"')
    box = layout(own_images_page, tmp_path)
    assert box["questions"] == [] and box["trust"][:3] == ["trust-yes", "trust-no", "trust-not-tested"]


def test_a_link_into_a_folded_section_opens_it(asker_page: Path, tmp_path: Path) -> None:
    """The answers link to evidence inside <details> (e.g. a sample's fills): following the link shows it."""
    box = layout(asker_page, tmp_path, "#sample-1-fills")
    assert box["target_shown"] is True and box["open"] == 1 + NOT_PASSED
