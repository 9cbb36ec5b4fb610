"""The CIFAR-10 classifiers occsens ships, and how to load them.

The architecture is a ResNet-9 in the layout of Page's DAWNBench entry ("How to train
your ResNet", 2018): prep conv, then three stages that each widen, convolve and halve
the resolution, with residual blocks after the first and third stage. It is used at a
fraction of its published width (64-128-256-512): occlusion runs the model hundreds
of times per image, so forward cost matters as much as accuracy, and the net pools
early (only two convolutions run at full 32x32 resolution), which keeps each window's
projective field small for exact incremental occlusion.

Every shipped model takes pixel-space images in [0, 1], shape ``[B, 3, 32, 32]``, and
returns logits ``[B, 10]``; normalisation (and, for the greyscale twin, the luminance
conversion) happens inside ``forward``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from occsens.constants import MAX_WIDTH
from occsens.engine.layers import Residual, register_pointwise
from occsens.errors import OcclusionError, flag, integer, shown
from occsens.errors import path as as_path
from occsens.files import bounded_stream, read_json

# ITU-R BT.601 luma weights, the ones PIL's "L" conversion uses.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


# The widest network ``build_model`` makes: 4x the published ResNet-9's 64, about 100 M parameters
# (0.4 GB of float32 weights, 16x the published model's 6.6 M) and 26 GFLOP per 32x32 image; past it a
# width is a typo, not a CIFAR-10 model this project would train or occlude.
# The most classes a head may have: ImageNet-21k's 21,841 is the largest common label set.
MAX_CLASSES = 21_841


@dataclass(frozen=True)
class Architecture:
    """What ``build_model`` needs to rebuild a shipped network before loading its weights.

    Checked when made: ``width`` 1..``MAX_WIDTH``, ``greyscale`` a bool, ``num_classes`` 1..``MAX_CLASSES``.
    """

    width: int = 24  # channels of the prep layer; the stages use 2x, 4x, 8x this
    greyscale: bool = False
    num_classes: int = 10

    def __post_init__(self) -> None:
        integer(self.width, "width", low=1, high=MAX_WIDTH)
        flag(self.greyscale, "greyscale")
        integer(self.num_classes, "num_classes", low=1, high=MAX_CLASSES)


@register_pointwise
class Normalize(nn.Module):
    """Subtract a per-channel mean and divide by a per-channel std (buffers, saved with the weights)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@register_pointwise
class Luminance(nn.Module):
    """RGB to one luminance channel, so the greyscale twin takes the same input as the colour model."""

    weights: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.weights).sum(dim=1, keepdim=True)


@register_pointwise
class Scale(nn.Module):
    """Multiply by a constant (Page scales the logits by 1/8 to tame the final layer's learning rate)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor


def _conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def build_model(arch: Architecture = Architecture()) -> nn.Sequential:
    """The ResNet-9 layout at ``arch.width``; untrained (normalisation buffers at identity)."""
    if not isinstance(arch, Architecture):
        raise OcclusionError(f"arch must be an occsens.cifar.models.Architecture, got {shown(arch)}")
    w = int(arch.width)
    in_channels = 1 if arch.greyscale else 3
    front: list[nn.Module] = [Luminance()] if arch.greyscale else []
    return nn.Sequential(
        *front,
        Normalize(in_channels),
        _conv_bn(in_channels, w),
        _conv_bn(w, 2 * w, pool=True),
        Residual(nn.Sequential(_conv_bn(2 * w, 2 * w), _conv_bn(2 * w, 2 * w))),
        _conv_bn(2 * w, 4 * w, pool=True),
        _conv_bn(4 * w, 8 * w, pool=True),
        Residual(nn.Sequential(_conv_bn(8 * w, 8 * w), _conv_bn(8 * w, 8 * w))),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(8 * w, arch.num_classes, bias=False),
        Scale(0.125),
    )


def resnet20(num_classes: int = 10) -> nn.Sequential:
    """He et al. (2016)'s CIFAR ResNet-20 shape: 16-32-64 channels, 3 basic blocks per stage.

    Strided blocks use a 1x1 convolution shortcut ("option B"); untrained. The benchmark uses it as the
    deep, late-pooling counterpart of the shipped model (its projective fields cover the image early).
    """

    def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        shortcut = None
        if stride != 1 or c_in != c_out:
            shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        return nn.Sequential(Residual(body, shortcut), nn.ReLU(inplace=True))

    layers: list[nn.Module] = [
        nn.Conv2d(3, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(inplace=True),
    ]
    c = 16
    for width, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(block(c, width, stride if i == 0 else 1))
            c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-add FLOPs (2 per MAC) of convolutions and linear layers for one forward pass of one image."""
    total = 0

    def conv_hook(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += 2 * k * output[0].numel()

    def linear_hook(module: nn.Linear, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        total += 2 * module.in_features * module.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            model(torch.zeros(input_shape[:1] + tuple(input_shape[1:])))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total // input_shape[0]


SHIPPED_MODELS = ("default", "greyscale")


def _weights_dir() -> Path:
    return Path(str(resources.files("occsens") / "weights"))


# A model card is a page of JSON (the shipped ones are 3-4 KB); 1 MB is far past any real card.
MAX_CARD_BYTES = 1 << 20


def model_card(name: str) -> dict:
    """The JSON model card of a shipped model."""
    _check_name(name)
    path = _weights_dir() / f"{name}.json"
    if not path.exists():
        raise OcclusionError(f"model {name!r} has no model card at {path}: it has not been trained yet")
    card = read_json(path, MAX_CARD_BYTES, "model card", "a model card")
    if not isinstance(card, dict) or not isinstance(card.get("architecture"), dict):
        raise OcclusionError(f"model card {str(path)!r} does not describe an architecture")
    return card


def _check_name(name: str) -> None:
    if not isinstance(name, str) or name not in SHIPPED_MODELS:
        shipped = ", ".join(SHIPPED_MODELS)
        raise OcclusionError(f"model {shown(name)} is unknown; shipped models are {shipped}")


def state_size_limit(model: nn.Module) -> int:
    """The most bytes a weights file or training checkpoint for ``model`` can have.

    A checkpoint holds the model's tensors and an optimizer's state per parameter: SGD with momentum one
    buffer, Adam two; 4x the model's bytes covers both with room to spare. Every tensor adds its zip and
    pickle records (a few hundred bytes; 4 KB allowed), and 1 MB covers the rest (names, history, config).
    """
    tensors = list(model.state_dict().values())
    data = sum(t.numel() * t.element_size() for t in tensors)
    return 4 * data + 4096 * len(tensors) + (1 << 20)


def load_state(path: Path, model: nn.Module, what: str) -> object:
    """``torch.load(weights_only=True)`` of a file at most ``state_size_limit(model)`` bytes: plain
    tensors and containers only, never code; any failure is one ``OcclusionError`` naming the file."""
    stream = bounded_stream(path, state_size_limit(model), what, "the state of this model")
    try:
        return torch.load(stream, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for corrupt or unsafe files
        raise OcclusionError(
            f"{what} {str(path)!r} is not a readable state dict saved by torch.save: {_load_failure(exc)}"
        ) from None


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one short clause (torch's own message is
    paragraphs long, and advises loading with ``weights_only=False``, which would run the file's code)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if lines and lines[0].startswith("Weights only load failed"):
        named = next((line for line in lines if "GLOBAL" in line), None)
        detail = named or next((line for line in lines if line.startswith("Unsupported")), "")
        detail = detail.split(" was not an allowed global")[0].strip().rstrip(":")
        return (
            "the safe loader refused it"
            + (f" ({detail})" if detail else "")
            + "; it is corrupt, or holds more than tensors and numbers, which occsens never loads"
        )
    if not lines:
        return "it is empty or truncated" if isinstance(exc, EOFError) else type(exc).__name__
    return lines[0].split(". ")[0].rstrip(".")


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a state dict saved with ``torch.save`` into ``model``, refusing anything but plain tensors."""
    if not isinstance(model, nn.Module):
        raise OcclusionError(f"weights are loaded into a torch.nn.Module, got {shown(model)}")
    path = as_path(path, "weights file")
    state = load_state(path, model, "weights file")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint: take its model part
    apply_state(model, state, f"weights file {str(path)!r}")
    return model


def apply_state(model: nn.Module, state: object, where: str) -> None:
    """``model.load_state_dict(state)`` for a state read from a file, every failure one ``OcclusionError``."""
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise OcclusionError(f"{where} does not hold a state dict (name -> tensor)")
    try:
        model.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
        raise OcclusionError(f"{where} does not match the architecture ({detail})") from None


def load_model(name: str = "default") -> nn.Module:
    """A shipped CIFAR-10 model, in eval mode, taking pixel-space [0, 1] images ``[B, 3, 32, 32]``."""
    card = model_card(name)
    try:
        arch = Architecture(**card["architecture"])
    except TypeError as exc:  # a key Architecture does not have
        raise OcclusionError(f"model card of {name!r} names an unknown architecture field ({exc})") from None
    model = build_model(arch)
    load_weights(model, _weights_dir() / f"{name}.pt")
    return model.eval()
