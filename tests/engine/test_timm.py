"""The incremental engine on timm's CNNs: exact where it runs, and a named reason where it does not.

Spec (issue 27; ``occsens.engine.layers.BY_NAME``): timm's norm-act layers, ``LayerNorm2d``, its own
activations and ``Linear`` are checked against their own forward when first met and then run like
torch's; squeeze-excitation gates, ConvNeXt's channels-last MLP and layer scale, constant padding and
``ceil_mode`` pooling that adds no window are read from the traced forward. Random weights, no downloads.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import occsens
from occsens.engine import schedule
from occsens.engine.incremental import supports
from occsens.engine.plan import sliding_plan

timm = pytest.importorskip("timm")

# The fixed list of 25 timm CNNs the issue measures: the ResNet family (plain, -D, -T, pre-activation,
# ResNeXt, SE), the mobile families (EfficientNet, MobileNetV2/V3, MnasNet, FBNet, TinyNet, LCNet),
# re-parameterisable nets (RepVGG, MobileOne), RegNet X and Y, GENet, ConvNeXt, and two that concatenate
# or slice channels (DenseNet, ReXNet), which the engine's tree cannot express.
CNNS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet50d",
    "resnet26t",
    "resnet10t",
    "resnext26ts",
    "resnetv2_50",
    "seresnext26d_32x4d",
    "efficientnet_b0",
    "efficientnet_lite0",
    "mobilenetv2_100",
    "mobilenetv3_small_100",
    "mnasnet_100",
    "fbnetc_100",
    "tinynet_a",
    "lcnet_050",
    "repvgg_a0",
    "mobileone_s0",
    "regnetx_002",
    "regnety_002",
    "gernet_s",
    "convnext_atto",
    "densenet121",
    "rexnet_100",
]
REFUSED = {"densenet121": "torch.cat", "rexnet_100": "operator.getitem"}
# Deep and slow to run on two cores at any size (resnet34 and resnet50 add nothing resnet18 and resnet50d
# do not cover): the differential test runs the other 21 that the engine accepts.
DIFFERENTIAL = [name for name in CNNS if name not in (*REFUSED, "resnet34", "resnet50")]


def _timm_model(name: str, **kwargs: object) -> nn.Module:
    """A timm model with random weights (seeded) and random batch-norm statistics, so a folded batch norm
    is not close to the identity."""
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=10, **kwargs).eval()
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
            assert module.running_var is not None
            module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
    return model


def _image(size: int) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2))


@pytest.mark.slow
@pytest.mark.parametrize("name", DIFFERENTIAL)
def test_the_incremental_engine_equals_brute_force_on_timm_cnns(name: str) -> None:
    """What "auto" runs where it pays, run here on every accepted model at 32x32: 9 windows (patch 12,
    stride 10: corners at 0, 10 and a last one flush with the border), at both borders and inside."""
    model, images = _timm_model(name), _image(32)
    assert supports(model, (32, 32), 3) is None
    brute = occsens.occlude(model, images, patch=12, stride=10, engine="brute")
    fast = occsens.occlude(
        model, images, patch=12, stride=10, engine="incremental"
    )  # raises if a check fails
    assert fast.engine == "incremental"
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=schedule.ENGINE_TOLERANCE)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_timm_cnn_the_engine_cannot_express_runs_brute_force_and_names_the_layer(name: str) -> None:
    model, images = _timm_model(name), _image(32)
    auto = occsens.occlude(model, images, patch=16)
    assert auto.engine.startswith("brute (incremental not used: layer ")
    assert REFUSED[name] in auto.engine and " at model." in auto.engine
    assert torch.equal(auto.probs, occsens.occlude(model, images, patch=16, engine="brute").probs)


def _auto_choice(model: nn.Module, size: int, patch: int, stride: int) -> tuple[bool, str | None, float]:
    """What ``engine="auto"`` decides before running (the static proof, then the cost model), and the
    predicted time ratio over brute force (nan when refused)."""
    plan = sliding_plan((size, size), (patch, patch), (stride, stride))
    images = torch.zeros(1, 3, size, size)
    with torch.inference_mode():
        reason = supports(model, (size, size), 3)
        use, _ = schedule._use_incremental("auto", model, images, plan, False, reason, torch.device("cpu"))
        if reason is not None:
            return use, reason, float("nan")
        walked = schedule._walked(model, plan, 3)
    return use, None, schedule.predicted_ratio(walked.share, walked.layers, plan.positions)


@pytest.mark.slow
def test_auto_runs_at_least_15_of_25_timm_cnns_incrementally_at_224_pixels() -> None:
    """ImageNet size, patch 16 stride 8 (the benchmark's setting): the walk proves the model exact and the
    cost model (``schedule.predicted_ratio``) predicts a saving. Every other model is either refused, with
    the layer named, or accepted and predicted no faster (a squeeze-excitation gate early in the network
    makes everything after it change with every window)."""
    incremental, others = [], {}
    for name in CNNS:
        use, reason, ratio = _auto_choice(_timm_model(name), 224, 16, 8)
        if use:
            incremental.append(name)
        else:
            others[name] = reason or f"predicted {ratio:.2f}x brute force's time"
            assert reason is None and ratio >= 1.0 or reason is not None and " at model" in reason
    assert set(REFUSED) <= set(others), others
    assert len(incremental) >= 15, (incremental, others)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vit_tiny_patch16_224", {"img_size": 32}),
        # the size its windows need (stage maps 56, 28, 14, 7), made narrow and shallow
        ("swin_tiny_patch4_window7_224", {"img_size": 224, "embed_dim": 24, "depths": (1, 1, 1, 1)}),
    ],
)
def test_vision_transformers_stay_brute_force(name: str, kwargs: dict) -> None:
    """Attention mixes every position: the walk refuses it, and "auto" is brute force's answer exactly."""
    model = _timm_model(name, **kwargs)
    size = int(kwargs["img_size"])  # type: ignore[call-overload]
    images = _image(size)
    auto = occsens.occlude(model, images, patch=size // 2)
    assert auto.engine.startswith("brute (incremental not used: ")
    assert torch.equal(auto.probs, occsens.occlude(model, images, patch=size // 2, engine="brute").probs)


# --------------------------------------------------------------------------- the checks on timm's layers


def test_a_norm_act_layer_whose_forward_differs_from_its_documented_semantics_is_refused() -> None:
    class Shifted(timm.layers.BatchNormAct2d):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1.0  # not batch norm then drop then act

    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), Shifted(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )
    reason = supports(net.eval(), (8, 8), 3) or ""
    assert "Shifted does not compute batch norm then drop then act" in reason


def test_a_checked_timm_layer_patched_afterwards_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), timm.layers.LayerNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    ).eval()
    assert supports(net, (8, 8), 3) is None  # checked and accepted
    monkeypatch.setattr(timm.layers.LayerNorm2d, "forward", lambda self, x: x)
    assert "LayerNorm2d.forward was replaced after occsens saw it" in (supports(net, (8, 8), 3) or "")


def test_timm_batchnormact_after_a_convolution_is_folded_and_still_runs_its_activation() -> None:
    """The sparse pass folds the batch norm into the convolution, then runs the layer's act itself."""
    bn = timm.layers.BatchNormAct2d(4, act_layer=nn.ReLU6)
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.uniform_(0.5, 3)  # outputs above 6, clipped by ReLU6 only if the act runs
    conv = nn.Conv2d(3, 4, 3, padding=1)
    net = nn.Sequential(conv, bn, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()
    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        conv.weight.mul_(8)
        normed = nn.functional.batch_norm(conv(images), bn.running_mean, bn.running_var, bn.weight, bn.bias)
    assert normed.max() > 6  # so a missing ReLU6 would change the answer
    brute = occsens.occlude(net.eval(), images, patch=4, stride=2, engine="brute")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fast = occsens.occlude(net, images, patch=4, stride=2, engine="incremental")
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=schedule.ENGINE_TOLERANCE)
