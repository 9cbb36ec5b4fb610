"""Oracle models: small models whose answer on any input is known in closed form.

Exact arithmetic, on purpose. Test images and fills are built from multiples of 1/16
(``dyadic_images``) and the linear oracle's weights are multiples of 1/16 too, so every
product is a multiple of 2**-8 and every partial sum stays below 2**13 (at most
3 * 40 * 40 = 4800 terms of size <= 1): all of it fits in float32's 24-bit significand. The
logits are therefore exact whatever order the model, BLAS or the batch size sums them in,
and the only rounding left is the float32 softmax. That turns "close to" into "equals" for
everything that does not go through the softmax, and bounds what does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from occsens.conformance import oracles as shared
from occsens.conformance.oracles import DYADIC, dyadic_images, object_image

from .reference import Window

__all__ = ["DYADIC", "dyadic_images", "object_image"]  # the library's own oracles, shared with verify()


class LinearOracle(shared.LinearOracle):
    """``logits[k] = scale * <W_k, x> + b_k``, with W, b multiples of 1/16 and scale a power of two.

    The conformance suite's oracle (``occsens.conformance.oracles``), with two classes by default and
    the per-window term the engine tests compare against. On dyadic images its float32 logits are exact
    (module docstring), so ``logits64`` is the truth, and on any occluded input that a test builds by
    slicing, the logit is known without running occsens.
    """

    def __init__(self, channels: int, height: int, width: int, classes: int = 2, *, seed: int = 0) -> None:
        super().__init__(channels, height, width, classes, seed=seed)

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of one image [C, H, W] (or a batch), in float64."""
        x = x.double()
        return super().logits64(x.unsqueeze(0) if x.ndim == 3 else x)

    def window_term64(self, image: torch.Tensor, fill: torch.Tensor, window: Window) -> torch.Tensor:
        """``scale * <W, (image - fill) restricted to the window>`` for each class, in float64, by slicing.

        Occluding the window changes the logits by minus this; revealing it, starting from the
        all-fill image, adds it.
        """
        t, left, h, w = window.top, window.left, window.height, window.width
        diff = (image.double() - fill.double())[:, t : t + h, left : left + w]
        return (self.weight.double()[:, :, t : t + h, left : left + w] * diff).sum(dim=(1, 2, 3)) * self.scale


class RegionDetector(shared.RegionDetector):
    """Reports an object in a known box: class-1 logit = gain * (mean brightness inside the box - threshold).

    Class 0's logit is 0. Pixels outside the box are never read, so a window that does not touch
    the box cannot change the answer at all. With an object of brightness 1 and fill 0.5, the box
    mean is ``0.5 + 0.5 * visible / area``: fully visible gives logit +gain/4, fully hidden -gain/4.
    """

    def p_object64(self, box_mean: float) -> float:
        """P(class 1) for a given mean brightness inside the box, in float64: a sigmoid of the logit."""
        return 1.0 / (1.0 + math.exp(-self.gain * (box_mean - self.threshold)))


class Recorder(nn.Module):
    """Stores a copy of every batch it receives, then answers with ``inner`` (default: a fixed linear map).

    Put it first in a model to see exactly the pixels the model is handed.
    """

    def __init__(self, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.batches: list[torch.Tensor] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.detach().clone())
        if self.inner is not None:
            return self.inner(x)
        # Three classes that depend on different pixels, so occlusion moves the probabilities.
        mean = x.mean(dim=(1, 2, 3))
        return torch.stack([mean, 1 - mean, x[:, :, 0, 0].mean(dim=1)], dim=1)

    @property
    def inputs(self) -> torch.Tensor:
        """[total, C, H, W]: every image received, in call order."""
        return torch.cat(self.batches)


class Normalise(nn.Module):
    """The normalisation a model does inside its ``forward``: (x - mean) / std per channel."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TinyConvNet(nn.Sequential):
    """A small CNN with batch norm and dropout, so training mode and eval mode give different answers.

    A plain ``nn.Sequential`` of layers ``occsens.engine.incremental`` can walk, so ``engine="auto"`` runs the
    incremental engine on it; ``Wrapped`` hides it from that engine.
    """

    def __init__(self, channels: int = 3, classes: int = 4, *, seed: int = 0) -> None:
        super().__init__(
            nn.Conv2d(channels, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Conv2d(6, 8, 3, padding=1, stride=2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(8, classes),
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                # He-style scaling keeps activations, and so the logits, at a few units whatever the seed: the
                # probabilities are neither saturated nor uniform, and float32 rounding stays small
                # (test_engine.py).
                fan_in = p[0].numel() if p.ndim > 1 else 4
                p.copy_(torch.randn(p.shape, generator=gen) * (2 / fan_in) ** 0.5)
            self[-1].weight.mul_(0.5)
            bn = self[1]
            # Running statistics far from a batch's own, so batch-statistics mode would change the answer.
            bn.running_mean.copy_(torch.randn(6, generator=gen))
            bn.running_var.copy_(torch.rand(6, generator=gen) + 0.5)
        self.eval()


class Wrapped(nn.Module):
    """The same model behind a module the incremental engine cannot walk: every window runs in full."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.train(inner.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


class ModeProbe(nn.Module):
    """Records, at every call, whether it ran in training mode, under inference mode, and with autograd on."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[bool, bool, bool]] = []
        self.train(inner.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((self.training, torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        return self.inner(x)


class Brightness(nn.Module):
    """Two classes by mean brightness: logits +-gain * (mean - 1/2), so bright is class 0, dark class 1."""

    def __init__(self, gain: float = 8.0) -> None:
        super().__init__()
        self.gain = gain
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.gain * (x.mean(dim=(1, 2, 3)) - 0.5)
        return torch.stack([z, -z], dim=1)
