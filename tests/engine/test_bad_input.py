"""Bad input raises ``occsens.OcclusionError`` (a ValueError) whose message names the argument.

Each case pairs a call with the argument its message must name and, where the value is short, the
bad value itself (STYLE.md: "a message that quotes the bad value and says what would be valid").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import occsens
from occsens import OcclusionError

from .oracles import LinearOracle


def logits(x: torch.Tensor) -> torch.Tensor:
    """A valid model: three classes from the mean brightness."""
    m = x.mean(dim=(1, 2, 3))
    return torch.stack([m, 1 - m, 0.5 * m], dim=1)


GOOD = torch.full((2, 3, 8, 8), 0.25)


def run(**overrides: Any) -> occsens.Occlusion:
    kwargs: dict[str, Any] = dict(model=logits, images=GOOD, patch=4)
    kwargs.update(overrides)
    model, images = kwargs.pop("model"), kwargs.pop("images")
    return occsens.occlude(model, images, **kwargs)


def with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    return x


def with_inf(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x[1, 0, 0, 0] = float("inf")
    return x


CASES: list[tuple[str, Callable[[], Any], str]] = [
    # images
    ("images as a file name", lambda: run(images="cat.png"), r"images.*str"),
    ("images as a list of file names", lambda: run(images=["cat.png", "dog.png"]), r"images.*list"),
    ("images as a nested list", lambda: run(images=GOOD.tolist()), r"images"),
    ("empty batch", lambda: run(images=torch.zeros(0, 3, 8, 8)), r"images.*empty.*\(0, 3, 8, 8\)"),
    ("empty image", lambda: run(images=torch.zeros(1, 3, 0, 8)), r"images.*empty"),
    ("rank 2", lambda: run(images=torch.zeros(8, 8)), r"images.*\[N, C, H, W\].*\(8, 8\)"),
    ("rank 5", lambda: run(images=torch.zeros(1, 1, 3, 8, 8)), r"images.*\(1, 1, 3, 8, 8\)"),
    ("bool tensor", lambda: run(images=torch.zeros(1, 3, 8, 8, dtype=torch.bool)), r"images.*bool"),
    ("int64 tensor", lambda: run(images=torch.zeros(1, 3, 8, 8, dtype=torch.int64)), r"images.*int64"),
    ("bool array", lambda: run(images=np.zeros((1, 3, 8, 8), dtype=bool)), r"images.*bool"),
    ("int32 array", lambda: run(images=np.zeros((1, 3, 8, 8), dtype=np.int32)), r"images.*int32"),
    ("NaN pixel", lambda: run(images=with_nan(GOOD)), r"images.*NaN"),
    ("infinite pixel", lambda: run(images=with_inf(GOOD)), r"images.*infinite"),
    ("pixels above 1", lambda: run(images=GOOD + 1), r"images.*\[0, 1\].*1\.25"),
    ("pixels below 0", lambda: run(images=GOOD - 0.5), r"images.*\[0, 1\].*-0\.25"),
    ("0..255 floats", lambda: run(images=GOOD * 255), r"images.*\[0, 1\].*uint8"),
    # patch
    (
        "patch larger than the image",
        lambda: run(patch=9),
        r"patch \(9, 9\) is larger than the image \(8, 8\)",
    ),
    ("patch taller than the image", lambda: run(patch=(9, 2)), r"patch \(9, 2\).*\(8, 8\)"),
    ("patch 0", lambda: run(patch=0), r"patch.*positive.*0"),
    ("negative patch", lambda: run(patch=(-2, 3)), r"patch.*positive.*-2"),
    ("patch as a float", lambda: run(patch=2.5), r"patch.*2\.5"),
    ("patch as a bool", lambda: run(patch=True), r"patch.*True"),
    ("patch with three sides", lambda: run(patch=(2, 2, 2)), r"patch.*\(2, 2, 2\)"),
    # stride
    ("stride 0", lambda: run(stride=0), r"stride.*positive.*0"),
    ("negative stride", lambda: run(stride=(1, -1)), r"stride.*positive"),
    (
        "stride larger than the patch",
        lambda: run(patch=4, stride=5),
        r"stride \(5, 5\) is larger than the patch \(4, 4\)",
    ),
    (
        "stride larger than the patch across",
        lambda: run(patch=(4, 2), stride=(2, 3)),
        r"stride \(2, 3\).*patch \(4, 2\)",
    ),
    # fill
    ("unknown fill name", lambda: run(fill="gray"), r"fill 'gray' is unknown.*'mean', 'blur', 'noise'"),
    ("fill with too few channels", lambda: run(fill=(0.5, 0.5)), r"fill has 2 values.*3 channels"),
    (
        "fill image of the wrong size",
        lambda: run(fill=torch.zeros(3, 4, 4)),
        r"fill has shape \(3, 4, 4\).*\(3, 8, 8\)",
    ),
    (
        "fill images for the wrong batch",
        lambda: run(fill=torch.zeros(5, 3, 8, 8)),
        r"fill has shape \(5, 3, 8, 8\)",
    ),
    ("fill above 1", lambda: run(fill=1.5), r"fill 1\.5 is outside \[0, 1\]"),
    ("fill below 0", lambda: run(fill=-0.1), r"fill -0\.1 is outside \[0, 1\]"),
    ("fill NaN", lambda: run(fill=float("nan")), r"fill nan is outside"),
    ("per-channel fill above 1", lambda: run(fill=(0.5, 2.0, 0.5)), r"fill values.*\[0, 1\]"),
    ("fill image with 255 values", lambda: run(fill=torch.full((3, 8, 8), 255.0)), r"fill values.*\[0, 1\]"),
    ("fill as a bool", lambda: run(fill=True), r"fill.*True"),
    ("fill as an object", lambda: run(fill=object()), r"fill.*object"),
    (
        "fill callable returning the wrong shape",
        lambda: run(fill=lambda x, m: x[:, :1]),
        r"fill callable.*\(1, 8, 8\)|fill callable",
    ),
    ("fill callable returning a number", lambda: run(fill=lambda x, m: 0.5), r"fill callable.*float"),
    # target
    ("negative target", lambda: run(target=-1), r"target \[-1, -1\] out of range.*0\.\.2"),
    ("target out of range", lambda: run(target=3), r"target.*out of range.*0\.\.2"),
    ("per-image target out of range", lambda: run(target=[0, 7]), r"target \[0, 7\] out of range"),
    ("too few targets", lambda: run(target=[1]), r"target has 1 entries but there are 2 images"),
    ("too many targets", lambda: run(target=[1, 0, 2]), r"target has 3 entries but there are 2 images"),
    ("float target", lambda: run(target=1.0), r"target.*1\.0"),
    ("float targets", lambda: run(target=[0.0, 1.0]), r"target.*\[0\.0, 1\.0\]"),
    ("bool target", lambda: run(target=True), r"target.*True"),
    ("nested targets", lambda: run(target=[[0], [1]]), r"target.*\[\[0\], \[1\]\]"),
    ("target as a string", lambda: run(target="cat"), r"target.*'cat'"),
    # model
    ("model not callable", lambda: run(model="resnet18"), r"model must be .*callable.*str"),
    (
        "model returning one number per image",
        lambda: run(model=lambda x: x.mean(dim=(1, 2, 3))),
        r"model returned shape \(2,\)",
    ),
    (
        "model returning one class",
        lambda: run(model=lambda x: x.mean(dim=(1, 2, 3)).view(-1, 1)),
        r"model returned shape \(2, 1\).*K >= 2",
    ),
    (
        "model returning the wrong batch",
        lambda: run(model=lambda x: torch.zeros(len(x) + 1, 3)),
        r"model returned shape \(3, 3\) for 2 images",
    ),
    (
        "model returning NaN",
        lambda: run(model=lambda x: torch.full((len(x), 3), float("nan"))),
        r"model returned NaN",
    ),
    (
        "model returning inf",
        lambda: run(model=lambda x: torch.full((len(x), 3), float("inf"))),
        r"model returned .*infinite",
    ),
    (
        "model returning a numpy array",
        lambda: run(model=lambda x: np.zeros((len(x), 3))),
        r"model must return a tensor.*ndarray.*as_model",
    ),
    (
        "model returning a list",
        lambda: run(model=lambda x: [[0.0, 1.0]] * len(x)),
        r"model must return a tensor.*list",
    ),
    (
        "model changing its class count",
        lambda: run(model=lambda x: torch.zeros(len(x), 3 if (x == 0.25).all() else 4)),
        r"model returned 4 classes for occluded images but 3 for clean ones",
    ),
    # batch size, device
    ("batch_size 0", lambda: run(batch_size=0), r"batch_size must be a positive int.*0"),
    ("negative batch_size", lambda: run(batch_size=-4), r"batch_size.*-4"),
    ("float batch_size", lambda: run(batch_size=2.5), r"batch_size.*2\.5"),
    ("bool batch_size", lambda: run(batch_size=True), r"batch_size.*True"),
    ("unknown device", lambda: run(device="gpu0"), r"device 'gpu0' is not a torch device"),
    # notebook_occlude
    (
        "notebook size 0",
        lambda: occsens.notebook_occlude(logits, GOOD, size=0),
        r"size must be a positive int.*0",
    ),
    ("notebook size as a float", lambda: occsens.notebook_occlude(logits, GOOD, size=4.0), r"size.*4\.0"),
    (
        "notebook size larger than the image",
        lambda: occsens.notebook_occlude(logits, GOOD, size=9),
        r"size 9 is larger than the image \(8, 8\)",
    ),
    (
        "notebook images as a file name",
        lambda: occsens.notebook_occlude(logits, "cat.png", size=4),
        r"images.*str",
    ),
    (
        "notebook fill above 1",
        lambda: occsens.notebook_occlude(logits, GOOD, size=4, fill=2),
        r"fill 2 is outside",
    ),
    # as_model
    (
        "as_model outputs",
        lambda: occsens.as_model(lambda a: a, outputs="logit"),
        r"outputs must be 'logits' or 'probs'.*'logit'",
    ),
    (
        "as_model layout",
        lambda: occsens.as_model(lambda a: a, layout="CHW"),
        r"layout must be 'NCHW' or 'NHWC'.*'CHW'",
    ),
    # the result
    ("occluded image out of range", lambda: run().occluded(2, 0, 0), r"image=2.*images 0\.\.1"),
    ("occluded row out of range", lambda: run().occluded(0, 2, 0), r"row=2.*rows 0\.\.1"),
    ("occluded negative column", lambda: run().occluded(0, 0, -1), r"col=-1.*cols 0\.\.1"),
    # issue 17: integers past int64, text and floats where ints go, flags that are not bools
    (
        "target past int64",
        lambda: run(target=2**70),
        r"target \[1180591620717411303424, .*out of range.*0\.\.2",
    ),
    (
        "targets past int64",
        lambda: run(target=[2**70, 0]),
        r"target \[1180591620717411303424, 0\] out of range",
    ),
    ("batch_size past int64", lambda: run(batch_size=2**70), r"batch_size must be at most 2\*\*63 - 1"),
    ("patch past int64", lambda: run(patch=2**64), r"patch must be at most 2\*\*63 - 1"),
    (
        "notebook size past int64",
        lambda: occsens.notebook_occlude(logits, GOOD, size=2**64),
        r"size must be at most",
    ),
    ("occluded row as text", lambda: run().occluded(0, "1", 0), r"row must be an int.*got '1' \(str\)"),
    (
        "occluded column as a float",
        lambda: run().occluded(0, 0, 1.0),
        r"col must be an int.*got 1\.0 \(float\)",
    ),
    ("occluded image as None", lambda: run().occluded(None, 0, 0), r"image must be an int.*got None"),
    ("occluded row as a bool", lambda: run().occluded(0, True, 0), r"row must be an int.*got True \(bool\)"),
    ("occluded row past int64", lambda: run().occluded(0, 2**70, 0), r"row must be at most 2\*\*63 - 1"),
    (
        "reveal as the text False",
        lambda: run(reveal="False"),
        r"reveal must be True or False, got 'False' \(str\)",
    ),
    ("reveal as None", lambda: run(reveal=None), r"reveal must be True or False, got None"),
    ("reveal as 1", lambda: run(reveal=1), r"reveal must be True or False, got 1 \(int\)"),
    ("progress as text", lambda: run(progress="yes"), r"progress must be True, False or None.*'yes'"),
    ("engine as a list", lambda: run(engine=["auto"]), r"engine \['auto'\] is unknown"),
    # devices: names that do not exist on this machine
    ("device garbage", lambda: run(device="gpu0"), r"device 'gpu0' is not a torch device"),
    ("device as a float", lambda: run(device=0.5), r"device must be a device name.*got 0\.5 \(float\)"),
    ("device meta", lambda: run(device="meta"), r"device 'meta'.*holds shapes but no values"),
    ("device cpu:5", lambda: run(device="cpu:5"), r"device 'cpu:5' does not exist"),
    # fill values and callables: blamed on the fill, never on the model
    ("fill as a complex number", lambda: run(fill=0.5j), r"fill must be a number in \[0, 1\], got 0\.5j"),
    ("fill of ints past float range", lambda: run(fill=10**400), r"fill 1000.* is outside \[0, 1\]"),
    (
        "fill of huge ints per channel",
        lambda: run(fill=[2**70] * 3),
        r"fill must hold real numbers.*\[1180591620717411303424",
    ),
    ("fill as text per channel", lambda: run(fill=["0.5"] * 3), r"fill must hold real numbers"),
    (
        "fill as a meta tensor",
        lambda: run(fill=torch.zeros(3, device="meta")),
        r"fill must be a dense tensor.*meta",
    ),
    (
        "fill as a bool tensor",
        lambda: run(fill=torch.tensor(True)),
        r"fill must be a dense tensor.*torch\.bool",
    ),
    (
        "fill callable returning NaN",
        lambda: run(fill=lambda x, m: torch.full_like(x, float("nan"))),
        r"^the fill callable <lambda> returned NaN or infinite values inside the window",
    ),
    (
        "fill callable returning 0..255",
        lambda: run(fill=lambda x, m: x * 255),
        r"^the fill callable <lambda> returned values in \[.*\] inside the window; a fill is pixel "
        r"values in \[0, 1\]",
    ),
    (
        "fill callable raising",
        lambda: run(fill=lambda x, m: 1 / 0),
        r"^the fill callable <lambda> raised ZeroDivisionError: division by zero$",
    ),
    # the user's own code: the model and the output function say which of them failed
    (
        "model raising",
        lambda: run(model=lambda x: x.view(3)),
        r"^the model, on a batch of shape \(2, 3, 8, 8\), raised RuntimeError: shape '\[3\]' is invalid",
    ),
    (
        "output function raising",
        lambda: run(output=lambda out: out.scores),
        r"^the output function <lambda> raised AttributeError: 'Tensor' object has no attribute 'scores'$",
    ),
    (
        "output function returning NaN",
        lambda: run(output=lambda out: out * float("nan")),
        r"^the output function <lambda> returned NaN or infinite scores; check that function$",
    ),
    (
        "model returning a meta tensor",
        lambda: run(model=lambda x: torch.zeros(len(x), 3, device="meta")),
        r"^the model must return a dense tensor of real logits, got .* on meta$",
    ),
    (
        "numpy model raising",
        lambda: run(model=occsens.as_model(lambda a: a.missing)),
        r"^the numpy model <lambda> raised AttributeError",
    ),
    (
        "numpy model returning text",
        lambda: run(model=occsens.as_model(lambda a: "cat")),
        r"^the numpy model <lambda> returned 'cat', not an array of numbers",
    ),
    ("as_model of a number", lambda: occsens.as_model(5), r"as_model needs a callable.*got 5 \(int\)"),
    # images that hold no dense values
    (
        "meta images",
        lambda: run(images=torch.zeros(1, 3, 8, 8, device="meta")),
        r"images must be a dense tensor.*meta",
    ),
    ("sparse images", lambda: run(images=GOOD.to_sparse()), r"images must be a dense tensor.*sparse"),
    (
        "float128 images",
        lambda: run(images=np.zeros((1, 3, 8, 8), dtype=np.longdouble)),
        r"images must be float.*float128",
    ),
    # register_pointwise
    (
        "register an instance",
        lambda: occsens.register_pointwise(nn.ReLU()),
        r"an instance of ReLU; pass the class itself",
    ),
    (
        "register a non-module class",
        lambda: occsens.register_pointwise(int),
        r"torch\.nn\.Module subclass, got <class 'int'>",
    ),
    (
        "register a string",
        lambda: occsens.register_pointwise("ReLU"),
        r"torch\.nn\.Module subclass, got 'ReLU' \(str\)",
    ),
]


def _half(dtype: torch.dtype) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)).to(dtype).eval()


MODEL_CASES: list[tuple[str, Callable[[], nn.Module], str]] = [
    (
        "float16 model",
        lambda: _half(torch.float16),
        r"model's '1\.weight' is torch\.float16; occsens runs models in float32",
    ),
    ("bfloat16 model", lambda: _half(torch.bfloat16), r"model's '1\.weight' is torch\.bfloat16"),
    ("float64 model", lambda: _half(torch.float64), r"model's '1\.weight' is torch\.float64"),
    ("meta model", lambda: _half(torch.float32).to("meta"), r"model's '1\.weight' is on the meta device"),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_a_model_that_is_not_float32_with_values_is_refused_and_left_as_it_was(
    build: Callable[[], nn.Module], message: str
) -> None:
    """Decision (``occsens.engine.validate``): models run in float32; occsens refuses, never converts."""
    model = build()
    dtypes = [p.dtype for p in model.parameters()]
    with pytest.raises(OcclusionError, match=message):
        occsens.occlude(model, GOOD, patch=4)
    assert [p.dtype for p in model.parameters()] == dtypes


def test_half_precision_images_are_read_exactly_as_float32() -> None:
    """Decision: float16 and bfloat16 images are converted to float32 (exact: both fit in it)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)).eval()
    images = torch.rand(2, 3, 8, 8)
    for dtype in (torch.float16, torch.bfloat16):
        low = images.to(dtype)
        res = occsens.occlude(model, low, patch=4)
        assert res.images.dtype == torch.float32 and torch.equal(res.images, low.float())
        assert torch.equal(res.probs, occsens.occlude(model, low.float(), patch=4).probs)


def test_devices_that_this_machine_lacks_are_refused_by_name() -> None:
    cases = {"cuda": torch.cuda.is_available(), "cuda:7": torch.cuda.device_count() > 7}
    cases["mps"] = torch.backends.mps.is_available()
    for name, exists in cases.items():
        if exists:
            continue
        with pytest.raises(OcclusionError, match=rf"^device '{name}' does not exist: this machine has"):
            run(device=name)


def test_a_device_other_than_the_models_is_refused() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU: the model on one device, the call asking for another")
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3)).cuda().eval()
    with pytest.raises(OcclusionError, match=r"device 'cpu' is not where the model is"):
        occsens.occlude(model, GOOD, patch=4, device="cpu")


def test_the_user_code_error_keeps_its_cause() -> None:
    """The one-line message names the callable; the original exception stays attached for debugging."""
    with pytest.raises(OcclusionError) as err:
        run(model=lambda x: 1 / 0)
    assert isinstance(err.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize(
    ("call", "message"), [(c, m) for _, c, m in CASES], ids=[name for name, _, _ in CASES]
)
def test_bad_input_raises_occlusion_error_naming_the_argument(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(OcclusionError) as info:
        call()
    assert re.search(message, str(info.value)), f"message {str(info.value)!r} does not match {message!r}"


def test_occlusion_error_is_a_value_error() -> None:
    assert issubclass(OcclusionError, ValueError)
    with pytest.raises(ValueError):
        run(patch=0)


def test_valid_edge_values_are_accepted() -> None:
    """The limits of the valid ranges are valid: pixels and fills of exactly 0 and 1, patch = image, stride 1,
    a target at K - 1, a numpy int target, batch_size 1."""
    images = torch.zeros(2, 3, 8, 8)
    images[1] = 1.0
    res = occsens.occlude(logits, images, patch=8, stride=1, fill=1.0, target=np.int64(2), batch_size=1)
    assert res.target.tolist() == [2, 2]
    occsens.occlude(logits, images, patch=(8, 1), fill=0.0, target=np.array([0, 2]))
    occsens.occlude(LinearOracle(3, 8, 8), images, patch=1, fill=(0.0, 1.0, 0.5))


def test_zero_dimensional_tensors_are_accepted_as_a_target_and_a_fill() -> None:
    """``target=labels[i]`` and ``fill=torch.tensor(0.5)`` are one number each, not a shape error."""
    images = torch.rand(1, 3, 8, 8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    as_tensors = occsens.occlude(model, images, patch=4, target=torch.tensor(2), fill=torch.tensor(0.5))
    as_numbers = occsens.occlude(model, images, patch=4, target=2, fill=0.5)
    assert as_tensors.target.tolist() == [2]
    assert torch.equal(as_tensors.probs, as_numbers.probs)
