"""Models with their own ``forward`` (torchvision's) run incrementally, read from their traced graph.

Spec (occsens.engine.graph): a model that is not already a tree of ``nn.Sequential``, ``Residual`` and
known layers is traced with ``torch.fx``; its graph is rebuilt as such a tree over the user's own layers
(``a + b`` of two branches from a common value -> ``Residual``, ``torch.flatten`` -> ``nn.Flatten``,
``F.relu`` -> ``nn.ReLU``, ``F.adaptive_avg_pool2d`` -> ``nn.AdaptiveAvgPool2d``), and the walk and the
engine run that tree. Anything else, a forward that cannot be traced, an in-place write another layer
would see, and hooks on any module are refused with a reason naming them, and "auto" runs brute force.
Tracing leaves the model as it was.

Tolerance: ``ENGINE_TOLERANCE`` (1e-5 in probability), the engines' documented agreement. Each
comparison also checks that the windows move the probabilities by at least 100x that bound, so
agreement within it says something (torchvision's random initialisation gives 1000 near-uniform
probabilities; batch-norm statistics are set from random images and the classifier sharpened).
"""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import occsens
from occsens.engine import ENGINE_TOLERANCE, Residual, graph
from occsens.engine.graph import leaves, structure
from occsens.engine.incremental import supports

# --------------------------------------------------------------------------- helpers


def _calibrated(model: nn.Module, size: int, sharpen: float = 1.0) -> nn.Module:
    """Seeded random weights with batch-norm statistics of random images; the last Linear scaled."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # a plain average over the calibration batch
            m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(0)))
        last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        last.weight.mul_(sharpen)
        if last.bias is not None:
            last.bias.mul_(sharpen)
    return model.eval()


def _images(n: int, size: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _assert_incremental_equals_brute(model: nn.Module, images: torch.Tensor, patch: int, stride: int) -> None:
    assert supports(model, images.shape[2:], images.shape[1]) is None
    brute = occsens.occlude(model, images, patch=patch, stride=stride, engine="brute", progress=False)
    fast = occsens.occlude(model, images, patch=patch, stride=stride, engine="incremental", progress=False)
    assert fast.engine == "incremental"
    torch.testing.assert_close(fast.clean_probs, brute.clean_probs, rtol=0, atol=ENGINE_TOLERANCE)
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=ENGINE_TOLERANCE)
    n, k = brute.clean_probs.shape
    moved = float((brute.probs.reshape(n, -1, k) - brute.clean_probs.unsqueeze(1)).abs().max())
    assert moved > 100 * ENGINE_TOLERANCE, f"the windows barely move the probabilities ({moved:.2g})"


def _assert_refused_and_auto_is_brute(model: nn.Module, size: int, expected: list[str]) -> None:
    reason = supports(model, (size, size), 3)
    assert reason is not None and all(e in reason for e in expected), reason
    images = _images(1, size)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused statically: no fallback warning
        auto = occsens.occlude(model, images, patch=4, stride=2, progress=False)
    brute = occsens.occlude(model, images, patch=4, stride=2, engine="brute", progress=False)
    assert auto.engine == f"brute (incremental not used: {reason})"
    assert torch.equal(auto.probs, brute.probs)


# --------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "vgg11", "vgg16", "mobilenet_v2"])
def test_torchvision_classifiers_are_supported_and_walked_over_their_own_layers(name: str) -> None:
    """vgg16's AdaptiveAvgPool2d((7, 7)) meets a 7x7 map at 224: the identity, which the walk accepts."""
    model = getattr(torchvision.models, name)(weights=None).eval()
    assert supports(model, (224, 224), 3) is None
    tree, _ = structure(model)
    convs = [m for m in leaves(tree) if isinstance(m, nn.Conv2d)]
    assert {id(m) for m in convs} == {id(m) for m in model.modules() if isinstance(m, nn.Conv2d)}
    assert len(convs) == sum(isinstance(m, nn.Conv2d) for m in model.modules())  # each called once


def test_resnet18_incremental_equals_brute_force() -> None:
    """BasicBlock calls self.relu twice and adds its shortcut with +=: both must come out right."""
    torch.manual_seed(0)
    model = _calibrated(torchvision.models.resnet18(weights=None), 64)
    _assert_incremental_equals_brute(model, _images(2, 64), patch=16, stride=8)


def test_vgg11_incremental_equals_brute_force_at_224() -> None:
    """Its classifier reads a 7x7 map through an identity adaptive pooling and a flatten of the map."""
    torch.manual_seed(0)
    model = _calibrated(torchvision.models.vgg11(weights=None), 224, sharpen=100.0)
    _assert_incremental_equals_brute(model, _images(1, 224), patch=56, stride=56)


def test_mobilenet_v2_incremental_equals_brute_force() -> None:
    """Depthwise convolutions, ReLU6(inplace=True), x + self.conv(x), F.adaptive_avg_pool2d."""
    torch.manual_seed(0)
    model = _calibrated(torchvision.models.mobilenet_v2(weights=None), 64)
    _assert_incremental_equals_brute(model, _images(1, 64), patch=16, stride=8)


# --------------------------------------------------------------------------- hand-written forwards


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1, depthwise 3x3 (groups), project 1x1, added to its input."""

    def __init__(self, c: int, expand: int = 4) -> None:
        super().__init__()
        hidden = c * expand
        self.conv = nn.Sequential(
            nn.Conv2d(c, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, c, 1, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Custom(nn.Module):
    """A residual add, +=, F.relu, torch.flatten, a layer called twice, a block with its own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.down = nn.Conv2d(8, 8, 1, stride=2)
        self.relu = nn.ReLU(inplace=True)
        self.block = InvertedResidual(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem(x))
        y = self.relu(self.a(x))
        y += x  # in place into a's output, which nothing else reads
        z = self.b(y)
        z = self.relu(z + self.down(y))  # the same ReLU again
        z = self.block(z)
        return self.fc(torch.flatten(self.pool(z), 1))


class SharedAcrossBranches(nn.Module):
    """One ReLU object in both branches of an addition, on different inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 4, 3, padding=1)
        self.c2 = nn.Conv2d(3, 4, 5, padding=2)
        self.relu = nn.ReLU()
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.c1(x)) + self.relu(self.c2(x)))


@pytest.mark.parametrize("make", [Custom, SharedAcrossBranches], ids=lambda m: m.__name__)
@pytest.mark.parametrize("patch, stride", [(4, 2), (5, 3), (16, 16)])
def test_hand_written_forwards_run_incrementally_and_equal_brute_force(make, patch, stride) -> None:
    torch.manual_seed(0)
    model = make()
    with torch.no_grad():  # larger weights than the default init, so windows move the probabilities
        for p in model.parameters():
            p.mul_(3.0)
    model = _calibrated(model, 16)
    _assert_incremental_equals_brute(model, _images(2, 16), patch=patch, stride=stride)


def test_a_vgg_style_head_flattens_an_identity_pooled_map() -> None:
    """Adaptive pooling to the map's own size is the identity; to a smaller map other than 1x1, refused."""
    torch.manual_seed(0)

    def net(pool: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(4),
            nn.AdaptiveAvgPool2d((pool, pool)),
            nn.Flatten(),
            nn.Linear(4 * pool * pool, 3),
        ).eval()

    model = net(4)
    with torch.no_grad():  # larger weights than the default init, so windows move the probabilities
        for p in model.parameters():
            p.mul_(3.0)
    _assert_incremental_equals_brute(model, _images(2, 16), patch=3, stride=2)
    assert "adaptive pooling to 3x3 of a 4x4 map" in (supports(net(3), (16, 16), 3) or "")


class Switchable(nn.Module):
    """Its forward reads a plain attribute: with ``skip`` the block adds its input."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))
        self.skip = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.head(x + y if self.skip else y)


def test_a_changed_attribute_that_the_forward_reads_is_traced_afresh() -> None:
    """The tree kept for a model is reused only while the attributes its forward read are unchanged."""
    torch.manual_seed(0)
    model = _calibrated(Switchable(), 16, sharpen=3.0)
    images = _images(1, 16)
    _assert_incremental_equals_brute(model, images, patch=4, stride=2)
    assert any(isinstance(m, Residual) for m in structure(model)[0].modules())
    model.skip = False
    assert not any(isinstance(m, Residual) for m in structure(model)[0].modules())
    _assert_incremental_equals_brute(model, images, patch=4, stride=2)


# --------------------------------------------------------------------------- refusals


class DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            x = self.conv(x)
        return self.head(x)


class InPlaceReused(nn.Module):
    """ReLU(inplace=True) overwrites y, which the addition then reads: the model computes 2 * relu(y)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.head(self.relu(y) + y)


class AddInPlaceReused(nn.Module):
    """``y += ...`` changes y after ``keep`` took it: the model's two branches are then equal."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.other = nn.Conv2d(3, 3, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        keep = y
        y += self.other(x)
        return self.head(y + keep)


class Sine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.sin(self.conv(x)))


def _hooked_root() -> nn.Module:
    model = Custom()
    model.register_forward_hook(lambda m, args, out: out * 3)
    return model


@pytest.mark.parametrize(
    "make, expected",
    [
        (DataDependent, ["layer DataDependent", "cannot be traced", "TraceError"]),
        (InPlaceReused, ["model.relu in place", "overwriting conv"]),
        (AddInPlaceReused, ["adds in place", "overwriting conv"]),
        (_hooked_root, ["a forward hook on Custom at model"]),
        (Sine, ["layer Sine at model", "torch.sin", "node sin"]),
    ],
    ids=["data-dependent", "in-place-reused", "iadd-reused", "hooked-root", "torch.sin"],
)
def test_what_the_graph_cannot_state_is_refused_by_name_and_runs_brute_force(make, expected) -> None:
    torch.manual_seed(0)
    _assert_refused_and_auto_is_brute(make().eval(), 16, expected)


def test_the_in_place_refusal_is_needed_the_functional_reading_differs_from_the_model() -> None:
    """What the graph says (relu(y) + y) is not what the model computes (2 * relu(y)): refusing is right."""
    torch.manual_seed(0)
    model, x = InPlaceReused().eval(), _images(1, 8) - 0.5
    with torch.no_grad():
        y = model.conv(x)
        assert not torch.allclose(model(x), model.head(F.relu(y) + y))


# --------------------------------------------------------------------------- the model is left alone


def test_tracing_changes_nothing_on_the_model() -> None:
    """No attribute (fx would store a constant tensor on the root), no hook, no parameter changes."""

    class WithConstant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.offset = torch.ones(1, 3, 1, 1)  # a plain attribute, not a buffer

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x) + torch.ones(1)

    class KeepsFeatures(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.seen: list[torch.Tensor] = []

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.features = y = self.conv(x)  # would leave a proxy on the model
            self.seen.append(y)
            return y.flatten(1)

    models = (torchvision.models.resnet18(weights=None).eval(), WithConstant().eval(), KeepsFeatures().eval())
    for model in models:
        before = {name: dict(vars(m)) for name, m in model.named_modules()}
        state = {k: v.clone() for k, v in model.state_dict().items()}
        supports(model, (32, 32), 3)
        after = {name: dict(vars(m)) for name, m in model.named_modules()}
        assert after.keys() == before.keys()
        for name in before:
            assert after[name].keys() == before[name].keys(), name
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
        assert not any(isinstance(v, torch.fx.Proxy) for m in model.modules() for v in vars(m).values())
    assert "constant Tensor" in (supports(WithConstant(), (32, 32), 3) or "")
    reason = supports(models[2], (32, 32), 3) or ""
    assert "stores a traced value in self.seen, self.features" in reason, reason
    assert models[2].seen == []


class _Counting(nn.Module):
    """A forward with side effects: a buffer counter, a plain counter and a flag, as real code keeps."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(4, 3)
        self.register_buffer("calls", torch.zeros(()))
        self.n, self.seen = 0, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1  # a real tensor during the trace: the write is real
        self.n += 1
        self.seen = True
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.conv(x), 1), 1))


def test_a_forward_with_side_effects_is_put_back_after_the_trace_and_refused_by_name() -> None:
    """Issue 28: each trace ran the forward's side effects on the user's model (calls, n, seen moved)."""
    model = _Counting().eval()
    reason = supports(model, (16, 16), 3) or ""
    assert "changes self.n, self.seen, self.calls when it runs" in reason, reason
    assert (float(model.calls), model.n, model.seen) == (0.0, 0, False)


@pytest.mark.parametrize("engine", ["brute", "auto"])
def test_a_model_sees_only_its_own_calls_whatever_the_engine(engine: str) -> None:
    """The forward runs once for the clean images and once per chunk of windows: no extra run by a trace."""
    model = _Counting().eval()
    occsens.occlude(model, torch.rand(2, 3, 16, 16), patch=4, batch_size=64, engine=engine, progress=False)
    assert (float(model.calls), model.n) == (2.0, 2)  # 2 clean images in one call, 32 windows in one


def test_brute_force_never_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    traced: list[object] = []
    trace = graph._Tracer.trace
    monkeypatch.setattr(
        graph._Tracer, "trace", lambda self, root, *a, **k: traced.append(root) or trace(self, root)
    )
    model = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    res = occsens.occlude(model, torch.rand(1, 3, 32, 32), patch=16, engine="brute", progress=False)
    assert (res.engine, traced) == ("brute", [])
    occsens.occlude(model, torch.rand(1, 3, 32, 32), patch=16, engine="auto", progress=False)
    assert traced  # the spy sees a trace where there is one


def test_the_shipped_model_is_walked_as_it_is_without_tracing() -> None:
    model = occsens.load_model("default")
    assert structure(model) == (model, None)


def test_other_threads_run_their_models_normally_while_a_model_is_traced() -> None:
    """torch.fx patches nn.Module.__call__ for the whole process while it traces."""
    torch.manual_seed(0)
    traced, other = Custom().eval(), Custom().eval()
    x = _images(2, 16)
    with torch.no_grad():
        want = other(x)
    stop, outputs, errors = threading.Event(), [], []

    def forward_loop() -> None:
        try:
            while not stop.is_set():
                with torch.no_grad():
                    outputs.append(other(x))
        except BaseException as exc:  # noqa: BLE001 - reported in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=forward_loop)
    thread.start()
    try:
        for _ in range(50):
            assert structure(traced, fresh=True)[0] is not traced
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert outputs and all(torch.equal(out, want) for out in outputs)


def test_threads_sharing_a_traced_model_get_the_single_thread_answers() -> None:
    """Each call traces the model again (supports); concurrent calls must not see each other's trace."""
    torch.manual_seed(0)
    model = Custom()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0)
    model = _calibrated(model, 16)
    images = [_images(1, 16, seed=10 + i) for i in range(4)]
    alone = [occsens.occlude(model, x, patch=4, stride=2, progress=False) for x in images]
    assert all(a.engine == "incremental" for a in alone)
    together: list[occsens.Occlusion | BaseException | None] = [None] * len(images)

    def work(i: int) -> None:
        try:
            together[i] = occsens.occlude(model, images[i], patch=4, stride=2, progress=False)
        except BaseException as exc:  # noqa: BLE001 - reported in the test's thread
            together[i] = exc

    for _ in range(2):
        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(images))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for got, want in zip(together, alone, strict=True):
            assert isinstance(got, occsens.Occlusion), got
            assert got.engine == "incremental"
            # the same computation in every thread: only float32 rounding may differ
            torch.testing.assert_close(got.probs, want.probs, rtol=0, atol=ENGINE_TOLERANCE)
