"""Compute once, read many (issue 22): a report with its checks asks the engine for each map once.

Every engine call goes through ``occsens.engine.occlusion.compute`` (behind ``occlude``'s and
``notebook_occlude``'s doors, and the run store's); the tests wrap it and name each call by what decides its
numbers, computed here from the call itself, not by the store's own key.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from occsens import cli
from occsens.checks import run_checks
from occsens.checks.conditions import CHECK_RAN, DETERMINISM_TOL
from occsens.engine import Runs, occlusion
from occsens.report.runs import execute, plan_runs

from .conftest import TinyNet, shipped_default


def _sha1(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().contiguous().numpy().tobytes()).hexdigest()


def _call_name(request: occlusion.Request, res: Any) -> tuple:
    model, images, plan = request.model, request.images, request.plan
    params = model.parameters() if isinstance(model, nn.Module) else ()
    buffers = model.buffers() if isinstance(model, nn.Module) else ()
    return (
        id(model),
        tuple(
            hashlib.sha1(t.detach().contiguous().numpy().tobytes()).hexdigest() for t in [*params, *buffers]
        ),
        _sha1(images),
        tuple(images.shape),
        plan.geometry,
        plan.patch,
        plan.stride,
        res.fill,
        tuple(res.target.tolist()),  # None and the classes it resolves to are the same request
        bool(request.reveal),
        request.batch_size,
        request.engine,
        res.output,
    )


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple]]:
    calls: list[tuple] = []
    real = occlusion.compute

    def counted(request: occlusion.Request) -> Any:
        res = real(request)
        calls.append(_call_name(request, res))
        return res

    monkeypatch.setattr(occlusion, "compute", counted)
    yield calls


def _repeated(calls: list[tuple]) -> dict[tuple, int]:
    return {key: n for key, n in Counter(calls).items() if n > 1}


def test_the_store_computes_a_run_once_and_a_changed_model_again(engine_calls: list[tuple]) -> None:
    model, images = TinyNet(), torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    runs = Runs()
    first = runs.occlude(model, images, patch=8)
    assert (
        runs.occlude(model, images.clone(), patch=(8, 8), stride=8) is first
    )  # an equal copy, the same pair
    assert runs.occlude(model, images, patch=8, target=first.target) is first  # the classes None resolved to
    assert len(engine_calls) == 1
    runs.occlude(model, images, patch=8, fill="mean")
    runs.occlude(model, images, patch=8, reveal=True)
    runs.notebook_occlude(model, images, size=8)
    assert len(engine_calls) == 4
    with torch.no_grad():
        model.conv.weight.mul_(-1)  # the same object, other weights: its maps are new
    changed = runs.occlude(model, images, patch=8)
    assert changed is not first and len(engine_calls) == 5
    assert not torch.equal(changed.probs, first.probs)
    model.conv.bias.data.add_(1)  # a write no version counter sees
    assert runs.occlude(model, images, patch=8) is not changed and len(engine_calls) == 6
    assert len(runs) == 6 and _repeated(engine_calls) == {}
    assert len(set(runs.made)) == len(runs.made)


def test_the_checks_and_the_report_runs_on_one_store_make_no_engine_call_twice(
    engine_calls: list[tuple],
) -> None:
    """Every check (determinism included: it scores one batch twice instead of rerunning a map) and the
    report's runs, on one store: no key is made twice, by the store's count and by the engine's."""
    model, images = TinyNet(), torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    runs = Runs()
    results = run_checks(model, images, patch=8, runs=runs)
    assert len(results) == 8 and not [r for r in results if r.condition is CHECK_RAN]  # all five ran
    (determinism,) = [r for r in results if r.name == "determinism"]
    assert determinism.value["max_diff_repeat"] == 0.0  # a deterministic model on the CPU: bit for bit
    checks_made = len(runs.made)
    execute(model, plan_runs(images, patch=8), runs=runs)
    assert len(runs.made) > checks_made  # the report asked for maps the checks did not need
    assert len(set(runs.made)) == len(runs.made), Counter(runs.made).most_common(2)
    assert _repeated(engine_calls) == {} and len(engine_calls) == len(runs.made)


@pytest.mark.skipif(shipped_default() is None, reason="needs the shipped default model")
def test_a_report_with_checks_never_asks_the_engine_twice_for_the_same_map(
    tmp_path: Path, engine_calls: list[tuple], capsys: pytest.CaptureFixture[str]
) -> None:
    """The default report (shipped model, its greyscale twin, checks on) on two embedded samples."""
    code = cli.main(["report", "--samples", "1,3", "--out", str(tmp_path), "--quiet", "--no-fail", "--json"])
    assert code == 0, capsys.readouterr().err
    assert _repeated(engine_calls) == {}  # not even the determinism check's: it scores one batch twice
    # the report's own maps (main, patch-only, compared fills) on all images of the report's model: the
    # checks asked for the main map, the patch-only view and three fills first; the report read them
    model = engine_calls[0][:2]  # the first call is the checks' main map
    own = [k for k in engine_calls if k[:2] == model and k[3][0] == 2 and k[4:6] == ("sliding", (4, 4))]
    once = [(k[7], k[9]) for k in own if k[10] is None]  # (fill, reveal); determinism's other batch left out
    want = [("0.5", False), ("0.5", True), ("mean", False), ("blur", False), ("noise", False), ("0", False)]
    assert sorted(once) == sorted(want)
    assert '"checks"' in (tmp_path / "report.json").read_text()  # the checks' numbers, no second command


class _DropoutAlwaysOn(TinyNet):
    """Dropout called with training=True in its forward: random in eval mode, as a careless model is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(nn.functional.dropout(x, 0.2, training=True))


def test_without_a_rerun_of_the_engine_a_random_forward_still_fails_determinism() -> None:
    runs = Runs()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    (result,) = run_checks(_DropoutAlwaysOn(), images, patch=8, checks=["determinism"], runs=runs)
    assert result.verdict == "fail"
    # both measures see it, each past the line of a random forward: the same batch scored twice, and the
    # maps of two batch sizes
    assert min(result.value["max_diff_repeat"], result.value["max_diff_batch"]) > DETERMINISM_TOL
    assert len(set(runs.made)) == len(runs.made)
