"""The example notebook runs headless and shows what it promises: ``examples/explain_a_classifier.ipynb``
executed by ``jupyter nbconvert --to notebook --execute`` in a fresh kernel of this Python.

Each code cell of the notebook is tagged with what it shows; the executed notebook must hold, per tag,
the inline summary of an ``Occlusion`` result (HTML with its settings and its figure), figures as PNGs,
the check table and the report in a frame. Needs nbconvert, nbclient and ipykernel (the ``test`` extra);
skipped without them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "explain_a_classifier.ipynb"
# nbconvert's limit per cell: the slowest cells (the sanity checks, the report) take about 10 s on a
# loaded 2-core machine; 300 s stops a hung kernel long before CI's own timeout.
CELL_TIMEOUT_S = 300

for module in ("nbconvert", "nbclient", "ipykernel"):
    pytest.importorskip(module, reason=f"{module} is not installed: pip install occsens[test] brings it")


def _kernel(folder: Path) -> dict[str, str]:
    """A kernelspec named ``python3`` that starts this interpreter, first on ``JUPYTER_PATH``: the
    notebook runs against the occsens under test, whatever kernels the machine has registered."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "occsens", "language": "python"})
    )
    # One torch thread unless told otherwise: on this project's busy 2-core machine the notebook took
    # 58 s with torch's default of 2 threads and 27 s with 1 (the report's forward passes are small; see
    # occsens.cli.report._fit_threads for the same measurement on the command line).
    threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    return {**os.environ, **threads, "JUPYTER_PATH": str(folder), "JUPYTER_PLATFORM_DIRS": "1"}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """The executed notebook's outputs by cell tag (run in a temporary folder: it saves a report)."""
    work = tmp_path_factory.mktemp("notebook")
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    env = _kernel(tmp_path_factory.mktemp("jupyter"))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            f"--ExecutePreprocessor.timeout={CELL_TIMEOUT_S}",
            "--ExecutePreprocessor.kernel_name=python3",
            "--output",
            "executed.ipynb",
            NOTEBOOK.name,
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    cells = json.loads((work / "executed.ipynb").read_text(encoding="utf-8"))["cells"]
    outputs = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            (tag,) = cell["metadata"]["tags"]
            outputs[tag] = cell["outputs"]
    assert (work / "ship_and_airplane.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    return outputs


def _shown(outputs: list[dict]) -> dict[str, str]:
    """The rich output of a cell's value (its execute_result), by MIME type."""
    (result,) = [o for o in outputs if o["output_type"] == "execute_result"]
    return {kind: "".join(v) if isinstance(v, list) else v for kind, v in result["data"].items()}


def test_no_cell_raised(executed: dict[str, list[dict]]) -> None:
    errors = [o for outputs in executed.values() for o in outputs if o["output_type"] == "error"]
    assert not errors


def test_an_occlusion_result_shows_its_summary_inline(executed: dict[str, list[dict]]) -> None:
    shown = _shown(executed["result"])
    summary = shown["text/html"]
    for piece in ("<strong>Occlusion</strong>", "patch 4x4, stride 4x4: 8x8 = 64 positions", "clean class"):
        assert piece in summary, piece
    assert summary.count('<img src="data:image/png;base64,') == 1
    assert (
        shown["text/plain"].startswith("<Occlusion: 2 images 3x32x32, 10 classes")
        and len(shown["text/plain"]) < 300
    )


@pytest.mark.parametrize("tag", ["summary", "attribution", "overlay"])
def test_plots_and_the_overlay_show_as_images(executed: dict[str, list[dict]], tag: str) -> None:
    shown = _shown(executed[tag])
    assert "image/png" in shown and len(shown["image/png"]) > 1000  # base64 of a real picture, not a stub


def test_the_overlay_is_an_rgb_array_of_the_images_size(executed: dict[str, list[dict]]) -> None:
    printed = "".join("".join(o["text"]) for o in executed["overlay"] if o["output_type"] == "stream")
    assert printed.strip() == "(32, 32, 3) uint8"


def test_check_results_show_as_a_table(executed: dict[str, list[dict]]) -> None:
    shown = _shown(executed["checks"])
    assert "<strong>Sanity checks</strong>" in shown["text/html"] and "determinism" in shown["text/html"]
    assert re.fullmatch(
        r"<\d+ sanity check results: \d+ pass, \d+ fail, \d+ inconclusive(, \d+ info)?>", shown["text/plain"]
    )


def test_the_report_shows_inline_in_a_frame(executed: dict[str, list[dict]]) -> None:
    shown = _shown(executed["report"])
    assert '<iframe srcdoc="&lt;!DOCTYPE html&gt;' in shown["text/html"]
    assert shown["text/plain"].startswith("<Report 'Occlusion sensitivity report': 2 samples, checks ")
