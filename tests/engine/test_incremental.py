"""The incremental engine is exact: the same probabilities as brute force, for any network it accepts.

Spec (occsens.engine.incremental): each layer is evaluated only on the box its input changed, read from the
clean activation with the window's values pasted in, so the probabilities equal brute force up to float32
rounding. The networks here are drawn at random from the layers the engine supports (convolutions of any
kernel, stride, padding and dilation, max and average pooling, batch norm with random running statistics,
element-wise activations, residual blocks, global pooling, linear), and the windows from any patch and
stride, so windows sit at every border.

Tolerance 1e-5 (issue 6): both engines run the same float32 arithmetic per output value; only the
summation order inside a convolution differs between a full map and a crop, a few units in the last
place of logits of order 1 (weights scaled by 1/sqrt(fan-in)).
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import occsens
from occsens.cifar.models import Residual, resnet20
from occsens.engine.extents import check_against_model, window_share
from occsens.engine.incremental import supports
from occsens.engine.receptive import Region, walk

from .strategies import networks

TOL = 1e-5


@st.composite
def setups(draw: st.DrawFn) -> tuple[nn.Module, torch.Tensor, tuple[int, int], tuple[int, int], object]:
    size = draw(st.integers(4, 16))
    channels = draw(st.integers(1, 3))
    net = draw(networks(channels=channels, size=size))
    ph, pw = draw(st.integers(1, size)), draw(st.integers(1, size))
    stride = (draw(st.integers(1, ph)), draw(st.integers(1, pw)))
    fill = draw(st.sampled_from([0.5, 0.0, "mean", "blur", "noise"]))
    seed = draw(st.integers(0, 2**16))
    images = torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(seed))
    return net, images, (ph, pw), stride, fill


@settings(deadline=None)
@given(setup=setups())
def test_incremental_probabilities_equal_brute_force_for_random_networks(setup) -> None:
    net, images, patch, stride, fill = setup
    assert supports(net, images.shape[2:], images.shape[1]) is None
    brute = occsens.occlude(net, images, patch=patch, stride=stride, fill=fill, engine="brute")
    fast = occsens.occlude(net, images, patch=patch, stride=stride, fill=fill, engine="incremental")
    torch.testing.assert_close(fast.clean_probs, brute.clean_probs, rtol=0, atol=TOL)
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=TOL)


@example(size=4).via("4x4 cells greying 20x20 squares, clipped at every border")
@given(size=st.integers(1, 8))
@settings(deadline=None)
def test_incremental_equals_brute_force_for_the_notebook_geometry_on_the_shipped_model(size: int) -> None:
    """Clipped squares of different sizes share one box size; the shipped model is what users run."""
    model = occsens.load_model("default")
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(size))
    brute = occsens.notebook_occlude(model, images, size=size, engine="brute")
    fast = occsens.notebook_occlude(model, images, size=size, engine="incremental")
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=TOL)


def test_the_shipped_model_runs_incrementally_by_default() -> None:
    """engine="auto" takes the incremental path for the shipped model (it warns only when it cannot)."""
    model = occsens.load_model("default")
    assert supports(model, (32, 32), 3) is None


@pytest.mark.parametrize(
    "layer, reason",
    [
        (nn.Upsample(scale_factor=2), "Upsample"),
        (nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"), "reflect"),
        (nn.MaxPool2d(3, stride=2, ceil_mode=True), "ceil_mode"),  # a partial last window on 8x8
        (nn.BatchNorm2d(3, track_running_stats=False), "running statistics"),
        # issue 28: passed the static check, then the engine raised (auto paid for both engines)
        (nn.AvgPool2d(3, 1, 1, count_include_pad=False), "count_include_pad=False"),
    ],
)
def test_layers_it_cannot_prove_exact_fall_back_to_brute_force_with_a_notice(layer, reason) -> None:
    net = nn.Sequential(layer, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2)).eval()
    images = torch.rand(1, 3, 8, 8)
    assert reason in (supports(net, (8, 8), 3) or "")
    auto = occsens.occlude(net, images, patch=4)  # no warning: the user did not ask for that engine
    assert auto.engine == f"brute (incremental not used: {supports(net, (8, 8), 3)})"
    brute = occsens.occlude(net, images, patch=4, engine="brute")
    assert torch.equal(auto.probs, brute.probs)
    with pytest.raises(occsens.OcclusionError, match="engine 'incremental' cannot run this model"):
        occsens.occlude(net, images, patch=4, engine="incremental")


class _SumOfItself(nn.Module):
    """``y + y``: one value read twice by one addition (the trace rebuilds it as a residual of two
    empty branches)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool, self.fc = (
            nn.Conv2d(3, 4, 3, padding=1),
            nn.AdaptiveAvgPool2d(1),
            nn.Linear(4, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(torch.flatten(self.pool(y + y), 1))


def _around(middle: nn.Module) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), middle, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )


@pytest.mark.parametrize(
    "net",
    [_around(nn.Sequential()), _around(Residual(nn.Sequential())), _SumOfItself()],
    ids=["empty Sequential", "Residual of an empty body", "y + y"],
)
def test_empty_containers_and_a_value_added_to_itself_run_incrementally_and_exactly(net) -> None:
    """Issue 28: these passed the static check and then crashed the engine, so auto ran both engines."""
    net.eval()
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    assert supports(net, (12, 12), 3) is None
    brute = occsens.occlude(net, images, patch=4, stride=2, engine="brute")
    fast = occsens.occlude(net, images, patch=4, stride=2, engine="incremental")
    assert fast.engine == "incremental"
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    "model, patch, stride, expected",
    [  # incremental / brute time measured for the cost model in occsens.engine.schedule (SHARE_COST)
        ("default", 4, 4, "incremental"),  # 64 windows, FLOP share 0.38: 0.69x brute force's time
        ("default", 8, 2, "incremental"),  # share 0.498: 0.74x
        ("default", 8, 8, "brute"),  # 16 windows: per-call and per-layer work outweigh the saving (1.25x)
        ("default", 16, 4, "brute"),  # share 0.70: 1.10x (2026-11-26)
        ("resnet20", 4, 4, "brute"),  # share 0.53 over 22 layers: 1.14x
        ("resnet20", 4, 1, "incremental"),  # the same share over 841 windows: 0.92x
    ],
)
def test_auto_takes_the_incremental_engine_only_where_it_was_measured_faster(
    model, patch, stride, expected
) -> None:
    net = occsens.load_model("default") if model == "default" else resnet20().eval()
    res = occsens.occlude(net, torch.rand(1, 3, 32, 32), patch=patch, stride=stride)
    assert res.engine == expected


@st.composite
def windows(draw: st.DrawFn, size: int) -> list[list[int]]:
    """A few (top, left, height, width) windows inside a size x size image, at any position."""
    out = []
    for _ in range(draw(st.integers(1, 6))):
        h, w = draw(st.integers(1, size)), draw(st.integers(1, size))
        out.append([draw(st.integers(0, size - h)), draw(st.integers(0, size - w)), h, w])
    return out


@settings(deadline=None)
@given(data=st.data())
def test_every_output_a_window_changes_lies_inside_its_predicted_region(data) -> None:
    """The projective-field walk is sound: filling a window changes no conv output outside its region."""
    size = data.draw(st.integers(4, 16))
    net = data.draw(networks(channels=3, size=size))
    for window in data.draw(windows(size)):
        assert check_against_model(net, (size, size), tuple(window))


@settings(deadline=None)
@given(data=st.data())
def test_the_flop_share_walks_rows_and_columns_apart_and_agrees_with_walking_every_window(data) -> None:
    size = data.draw(st.integers(4, 16))
    net = data.draw(networks(channels=2, size=size))
    wins = data.draw(windows(size))
    full, part = 0, 0
    for t, left, h, w in wins:  # the definition: walk each window, sum the FLOPs inside its regions

        def visit(layer, out, f, p) -> None:  # noqa: ANN001
            nonlocal full, part
            full, part = full + f, part + p

        walk(net, Region(t, left, t + h, left + w, (size, size)), 2, visit)
    assert window_share(net, (size, size), wins, 2) == pytest.approx(part / full, rel=1e-12)


def test_a_layer_used_twice_and_an_in_place_activation_on_a_shared_input_stay_exact() -> None:
    """The kept clean activations are keyed per call, and in-place layers never overwrite shared maps.

    The same in-place ReLU instance runs at two depths (two different clean inputs), and a
    pre-activation residual's body starts with it, so an in-place write would corrupt the shortcut.
    """
    torch.manual_seed(0)
    relu = nn.ReLU(inplace=True)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        relu,
        Residual(nn.Sequential(nn.BatchNorm2d(4), relu, nn.Conv2d(4, 4, 3, padding=1))),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1),
        relu,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()
    bn = net[2].body[0]
    with torch.no_grad():  # far from identity, so mixing up the ReLU's three outputs shows
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.2, 3), bn.weight.uniform_(0.5, 2)
    images = torch.rand(2, 3, 24, 24)
    assert supports(net, (24, 24), 3) is None
    brute = occsens.occlude(net, images, patch=3, stride=2, engine="brute")
    fast = occsens.occlude(net, images, patch=3, stride=2, engine="incremental")
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=TOL)


def test_a_residual_branch_that_overwrites_its_input_in_place_runs_in_full() -> None:
    """Pre-activation with ReLU(inplace=True): the model's own shortcut then sees relu(x), not x.

    No per-layer rule reproduces that (the incremental answer differed by 3e-3), so the engine refuses.
    """
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        Residual(nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(4, 4, 3, padding=1))),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    ).eval()
    assert "in-place" in (supports(net, (24, 24), 3) or "")
    engine = occsens.occlude(net, torch.rand(1, 3, 24, 24), patch=3, stride=2).engine
    assert engine.startswith("brute (incremental not used:") and "in-place" in engine


def test_engine_auto_keeps_gpus_on_brute_force() -> None:
    """Measured on an H200: the incremental engine's small kernels took 1.4-5x brute force's time there."""
    from occsens.engine import plan_for
    from occsens.engine.schedule import _use_incremental

    model, images = occsens.load_model("default"), torch.rand(1, 3, 32, 32)
    plan = plan_for((32, 32), 4, 4)
    assert _use_incremental("auto", model, images, plan, False, None, torch.device("cpu")) == (True, None)
    assert _use_incremental("auto", model, images, plan, False, None, torch.device("cuda")) == (False, None)


def test_incremental_chunks_grow_as_far_as_a_windows_boxes_shrink_against_a_whole_map() -> None:
    """A 3x3 conv (padding 1) on 8x8 images: a 2x2 window at stride 2 changes at most a 4x4 box of its
    8x8 output, so a window carries 4*4*C of the 8*8*C values a whole image does (footprint 1/4), and
    its chunk may hold 3x brute force's windows (the cap), where a window carrying half a map gets 2x and
    one carrying the whole map 1x (the same memory per chunk)."""
    from occsens.engine import plan_for
    from occsens.engine.schedule import _incremental_chunk, _walked

    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    assert _walked(net, plan_for((8, 8), 2, 2), 3).footprint == pytest.approx(16 / 64)
    assert _walked(net, plan_for((8, 8), 8, 8), 3).footprint == pytest.approx(1.0)  # one window, all of it
    assert [_incremental_chunk(64, f) for f in (1.0, 0.5, 0.25, 0.1)] == [64, 128, 192, 192]
