"""Chunks and progress: how many windows go to the model per call, and when a progress bar shows.

* The default chunk is the memory budget over one image's estimated footprint, but on the CPU never
  below ``_CPU_FLOOR`` windows per call while that stays within ``_FLOOR_MEMORY`` (a 224x224 image
  used to get chunks of 1, paying each call's fixed cost per window).
* ``progress=None`` (the default) shows a bar when the call is estimated to take longer than
  ``PROGRESS_AFTER_S``; ``False`` never shows one, ``True`` always does.
"""

from __future__ import annotations

import io
import sys

import pytest
import torch
from torch import nn

import occsens
from occsens.engine import model as engine_model
from occsens.engine import schedule

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # 32x32x3 float32 = 12 kB, x64 estimated activations = 786 kB: the 48 MB budget holds 64
        (32, 64),
        # 224x224x3 float32 = 602 kB, x64 = 38.5 MB: the budget holds 1, the floor makes it 16
        (224, engine_model._CPU_FLOOR),
        # 1024x1024x3 float32 = 12.6 MB, x64 = 805 MB: one fits under _FLOOR_MEMORY (1 GiB), two do not
        (1024, 1),
    ],
)
def test_the_default_chunk_on_the_cpu_has_a_floor_that_yields_to_memory(size: int, expected: int) -> None:
    images = torch.zeros(1, 3, size, size)
    assert engine_model.default_batch_size(images, CPU) == expected


def test_gpus_keep_the_memory_budget_alone() -> None:
    # 224x224: 1 GiB / 38.5 MB = 27 images per call, no floor involved
    assert engine_model.default_batch_size(torch.zeros(1, 3, 224, 224), torch.device("cuda")) == 27


NET = nn.Sequential(
    nn.Conv2d(3, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
).eval()
IMAGES = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (pytest's capture says it is not)."""

    def isatty(self) -> bool:
        return True


def _bar_shown(monkeypatch: pytest.MonkeyPatch, stream: io.StringIO | None = None, **kw: object) -> bool:
    stream = Terminal() if stream is None else stream
    monkeypatch.setattr(sys, "stderr", stream)
    occsens.occlude(NET, IMAGES, patch=2, **kw)
    return "occluding" in stream.getvalue()


def test_progress_none_shows_a_bar_only_for_calls_estimated_to_be_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine_model, "BAR_DELAY_S", 0.0)  # the bar's own delay is tested below
    monkeypatch.setattr(schedule, "PROGRESS_AFTER_S", 1e9)  # no call is that slow
    assert not _bar_shown(monkeypatch)
    monkeypatch.setattr(schedule, "PROGRESS_AFTER_S", 0.0)  # every call is slower than nothing
    assert _bar_shown(monkeypatch)
    assert not _bar_shown(monkeypatch, progress=False)
    monkeypatch.setattr(schedule, "PROGRESS_AFTER_S", 1e9)
    assert _bar_shown(monkeypatch, progress=True)


def test_a_bar_shows_only_on_a_terminal_and_only_after_a_couple_of_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 25: bars printed into logs that are not terminals, and for sub-second work."""
    assert engine_model.BAR_DELAY_S == 2.0
    assert not _bar_shown(monkeypatch, progress=True)  # a terminal, but the call takes milliseconds
    monkeypatch.setattr(engine_model, "BAR_DELAY_S", 0.0)
    assert _bar_shown(monkeypatch, progress=True)
    assert not _bar_shown(monkeypatch, io.StringIO(), progress=True)  # a log file: never


@pytest.mark.parametrize("progress", ["yes", 1, 0.5])
def test_progress_must_be_a_bool_or_none(progress: object) -> None:
    with pytest.raises(occsens.OcclusionError, match="progress must be True, False or None"):
        occsens.occlude(NET, IMAGES, patch=2, progress=progress)


def test_the_incremental_engine_runs_chunks_in_parallel_with_the_same_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With two torch threads, 841 windows run as chunks on two single-threaded workers (robust beside a
    busy process); the answer is brute force's within ENGINE_TOLERANCE and the thread count comes back."""
    from occsens.engine import schedule

    model, images = (
        occsens.load_model("default"),
        torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3)),
    )
    seen: list[int] = []
    original = schedule.window_logits

    def spy(*args: object, **kw: object) -> torch.Tensor:
        seen.append(torch.get_num_threads())  # the calling worker's own thread count
        return original(*args, **kw)

    monkeypatch.setattr(schedule, "window_logits", spy)
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fast = occsens.occlude(model, images, patch=4, stride=1, engine="incremental", progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
    brute = occsens.occlude(model, images, patch=4, stride=1, engine="brute", progress=False)
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=schedule.ENGINE_TOLERANCE)
    assert len(seen) >= 2 and set(seen) == {1}  # several chunks, each on a single-threaded worker


def test_one_chunk_per_worker_only_when_each_holds_enough_windows() -> None:
    from occsens.engine import schedule

    # 169 windows over 2 workers: 85 each, above the 64-window minimum and within half of 192
    assert schedule._parallel_chunk(192, 169, 2) == 85
    # 841 windows: half of 192 each, so both workers together hold what one chunk held
    assert schedule._parallel_chunk(192, 841, 2) == 96
    # 64 windows over 2 workers: 32 each, below the minimum; one chunk measured faster
    assert schedule._parallel_chunk(192, 64, 2) == 192
    assert schedule._parallel_chunk(50, 841, 2) == 25  # two workers hold the memory-bound chunk together


def test_workers_only_for_small_images_on_the_cpu() -> None:
    """Each worker keeps its own scratch memory, which grows with the image (ResNet-18 at 224: 663 MB
    with workers against 241 MB without), so 224x224 images run one chunk at a time."""
    from occsens.engine import schedule

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert schedule._workers(cpu, (32, 32)) == 2
        assert schedule._workers(cpu, (224, 224)) == 1
        assert schedule._workers(cuda, (32, 32)) == 1
    finally:
        torch.set_num_threads(saved)
