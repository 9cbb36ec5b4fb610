"""Validate once (issue 22): a public entry point checks its arguments at its door; everything behind it
passes the checked values on and never knocks again.

``occsens.explain`` with its checks on is the widest door: it calls the checks and the report builder,
which ask the run store for every map. The tests wrap each validator wherever occsens imported it and count
the calls of one report.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import occsens
from occsens import report
from occsens.engine import Runs, fill, model, validate

from .conftest import TinyNet, fake_card

VALIDATORS: dict[str, tuple[Any, str]] = {
    "as_images": (model, "as_images"),
    "check_output": (model, "check_output"),
    "resolve_fill": (fill, "resolve_fill"),
    "validate.model": (validate, "model"),
}


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Calls of each validator, wherever a module of occsens holds it (by name or through its module)."""
    seen: Counter[str] = Counter()
    for name, (module, attr) in VALIDATORS.items():
        real = getattr(module, attr)

        def wrapped(*args: Any, _real: Callable = real, _name: str = name, **kw: Any) -> Any:
            seen[_name] += 1
            return _real(*args, **kw)

        for mod in [m for k, m in sys.modules.items() if k.startswith("occsens") and m is not None]:
            for key, value in list(vars(mod).items()):
                if value is real:
                    monkeypatch.setattr(mod, key, wrapped)
    yield seen


def test_a_report_with_checks_validates_at_its_doors_not_once_per_map(counts: Counter[str]) -> None:
    """``occsens.explain`` with its checks and a colour-vs-greyscale twin: 2 images, 22 maps. Before issue
    22 every map knocked on ``occlude``'s door: as_images 26, check_output 30, validate.model 22,
    resolve_fill 39 (measured on this report)."""
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    colour, grey = fake_card("colour", 0.9), fake_card("grey", 0.85)
    model = TinyNet()
    twin = report.Twin(model, colour, TinyNet(seed=1, greyscale=True), grey)
    made = occsens.explain(model, images, twin=twin, checks=True)
    assert made.checks is not None  # the checks ran, on the same store
    # the images: at the three public doors they pass (explain, run_checks, make_report), never per map
    assert counts["as_images"] == 3
    # each model object once, when the store first runs it: the model, the greyscale twin, and the copy
    # the randomisation check re-initialises layer by layer
    assert counts["validate.model"] == 3
    # the output: once by the store (explain's probe; run_checks reads the store's answer), once at
    # make_report's door
    assert counts["check_output"] == 2
    # each fill once (the user's 0.5 and the report's mean, blur, noise and 0 fills, whatever the images
    # they are run on), and once more by the faithfulness check, which fills its extra images itself
    assert counts["resolve_fill"] == 6


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"fill": 2.0}, r"^fill 2\.0 is outside \[0, 1\]"),
        ({"output": "logits"}, r"^output 'logits' is unknown"),
        ({"batch_size": 0}, r"^batch_size must be"),
    ],
)
def test_bad_input_still_meets_the_same_one_line_error_at_the_door(bad: dict, message: str) -> None:
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(occsens.OcclusionError, match=message) as door:
        occsens.occlude(TinyNet(), images, patch=8, **bad)
    with pytest.raises(occsens.OcclusionError, match=message) as behind:
        occsens.explain(TinyNet(), images, patch=8, checks=True, **bad)
    assert str(behind.value) == str(door.value) and "\n" not in str(door.value)


def test_a_model_is_checked_once_by_the_store_and_a_bad_one_refused_there() -> None:
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with pytest.raises(occsens.OcclusionError, match=r"^model's 'conv.weight' is torch.float64"):
        Runs().occlude(TinyNet().double(), images, patch=8)
