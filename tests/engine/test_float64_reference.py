"""Both engines are as close to exact arithmetic as float32 allows, at the logit scales trained models have.

Spec (occsens.engine.schedule, ``engine_tolerance``): the incremental engine and brute force differ only
in float32 summation order, so they are within ``engine_tolerance(max |logit|, layers)`` of each other,
and the incremental engine is no further from a float64 reference (the same model and occluded inputs
in float64) than brute force plus that bound; the run-time guard holds the incremental engine to it,
so ``engine="incremental"`` runs these models instead of raising. A flat 1e-5 did not fit (issue 28):
on ResNet-50 at 224x224, patch 32 stride 16, brute force itself was 7e-6 to 4.2e-5 from float64,
and explicit ``engine="incremental"`` refused 13 of 18 torchvision models at 64x64.

The models are torchvision's with random weights made realistic: batch norm statistics calibrated on
images (the embedded CIFAR-10 samples, resized) and the classifier scaled so the logits' standard
deviation is 4, as a trained classifier's are; random weights alone give logits near 0, where
float32 rounding hides.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import occsens
from occsens.cifar.samples import load_samples
from occsens.engine import ENGINE_TOLERANCE, engine_tolerance
from occsens.engine.schedule import _walked


def _calibrated(name: str, images: torch.Tensor) -> nn.Module:
    """A torchvision model, batch norm calibrated on ``images``, logits scaled to standard deviation 4."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None, num_classes=10)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for batch in images.split(16):
            model(batch)
        model.eval()
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        scale = 4.0 / float(model(images[:32]).std())
        head.weight.mul_(scale)
        head.bias.mul_(scale)
    return model


def _float64_reference(model: nn.Module, result: occsens.Occlusion) -> torch.Tensor:
    """Softmax of every occluded input the engines saw, computed in float64: [N, R, C, K]."""
    r, c = result.grid
    inputs = torch.stack(
        [
            result.occluded(i, row, col)
            for i in range(len(result.images))
            for row in range(r)
            for col in range(c)
        ]
    )
    exact = copy.deepcopy(model).double()
    with torch.no_grad():
        probs = torch.cat([torch.softmax(exact(x.double()), 1) for x in inputs.split(32)])
    return probs.view(len(result.images), r, c, -1)


@pytest.fixture(scope="module")
def images64() -> torch.Tensor:
    samples = torch.as_tensor(load_samples().images[:66]).float()
    return F.interpolate(samples, size=(64, 64), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])  # mobilenet_v2: the largest float32 error
def test_each_engine_is_within_the_float32_bound_of_a_float64_reference(name: str, images64) -> None:
    model = _calibrated(name, images64[:64])
    images = images64[64:66]
    brute = occsens.occlude(model, images, patch=16, stride=8, engine="brute", progress=False)
    fast = occsens.occlude(model, images, patch=16, stride=8, engine="incremental", progress=False)
    assert fast.engine == "incremental"
    with torch.no_grad():
        logits = model(images)
    assert float(logits.std()) > 2, (
        "the logits are not at a trained model's scale: the test would prove little"
    )
    bound = engine_tolerance(float(logits.abs().max()), _walked(model, brute.plan, 3).layers)
    reference = _float64_reference(model, brute)
    brute_off = float((brute.probs.double() - reference).abs().max())
    fast_off = float((fast.probs.double() - reference).abs().max())
    between = float((fast.probs - brute.probs).abs().max())
    # the incremental engine adds no more than float32 rounding to what brute force itself carries (the
    # model's own float32 error: badly conditioned batch norms amplify it beyond any depth-and-scale bound)
    assert between <= bound, (between, bound)
    assert fast_off <= brute_off + bound, (fast_off, brute_off, bound)
    assert between > 0  # the engines' arithmetic differs: the test compares two computations, not one


def test_the_bound_is_the_floor_for_logits_of_order_one_and_grows_with_depth_and_scale() -> None:
    """The tests' random networks (logits of order 1, a handful of layers) keep the old 1e-5."""
    assert engine_tolerance(1.0, 9) == engine_tolerance(0.01, 9) == ENGINE_TOLERANCE
    assert engine_tolerance(15.0, 54) > engine_tolerance(15.0, 20) > ENGINE_TOLERANCE
    assert engine_tolerance(30.0, 54) > engine_tolerance(15.0, 54)
    assert engine_tolerance(float("nan"), 54) == engine_tolerance(1.0, 54)  # NaN: the guard reports it
