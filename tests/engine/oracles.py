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

from .reference import Window

DYADIC = 16  # pixel values and weights are multiples of 1/DYADIC


def dyadic_images(
    n: int, channels: int, height: int, width: int, *, seed: int, high: int = DYADIC
) -> torch.Tensor:
    """float32 [N, C, H, W] with every pixel k/16 for k in 0..high (exactly representable)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, high + 1, (n, channels, height, width), generator=gen).float() / DYADIC


class LinearOracle(nn.Module):
    """``logits[k] = scale * <W_k, x> + b_k``, with W, b multiples of 1/16 and scale a power of two.

    On dyadic images its float32 logits are exact (module docstring), so ``logits64`` (the same
    formula in float64) is the truth, and on any occluded input that a test builds by slicing,
    the logit is known without running occsens.
    """

    def __init__(self, channels: int, height: int, width: int, classes: int = 2, *, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        weight = torch.randint(-DYADIC, DYADIC + 1, (classes, channels, height, width), generator=gen).float()
        bias = torch.randint(-DYADIC, DYADIC + 1, (classes,), generator=gen).float()
        self.register_buffer("weight", weight / DYADIC)
        self.register_buffer("bias", bias / DYADIC)
        # A power of two keeps the logits exact; dividing by ~sqrt(#pixels) keeps them O(1), so the
        # probabilities are not all saturated at 0 or 1.
        self.scale = 2.0 ** -math.ceil(math.log2(math.sqrt(channels * height * width)))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) * self.weight).sum(dim=(2, 3, 4)) * self.scale + self.bias

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        """The logits of one image [C, H, W] (or a batch), in float64."""
        x = x.double()
        if x.ndim == 3:
            x = x.unsqueeze(0)
        return (x.unsqueeze(1) * self.weight.double()).sum(dim=(2, 3, 4)) * self.scale + self.bias.double()

    def window_term64(self, image: torch.Tensor, fill: torch.Tensor, window: Window) -> torch.Tensor:
        """``scale * <W, (image - fill) restricted to the window>`` for each class, in float64, by slicing.

        Occluding the window changes the logits by minus this; revealing it, starting from the
        all-fill image, adds it.
        """
        t, left, h, w = window.top, window.left, window.height, window.width
        diff = (image.double() - fill.double())[:, t : t + h, left : left + w]
        return (self.weight.double()[:, :, t : t + h, left : left + w] * diff).sum(dim=(1, 2, 3)) * self.scale


class RegionDetector(nn.Module):
    """Reports an object in a known box: class-1 logit = gain * (mean brightness inside the box - threshold).

    Class 0's logit is 0. Pixels outside the box are never read, so a window that does not touch
    the box cannot change the answer at all. With an object of brightness 1 and fill 0.5, the box
    mean is ``0.5 + 0.5 * visible / area``: fully visible gives logit +gain/4, fully hidden -gain/4.
    """

    def __init__(
        self, box: tuple[int, int, int, int], *, threshold: float = 0.75, gain: float = 16.0
    ) -> None:
        super().__init__()
        self.box = box
        self.threshold = threshold
        self.gain = gain
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, left, h, w = self.box
        mean = x[:, :, t : t + h, left : left + w].mean(dim=(1, 2, 3))
        logit = self.gain * (mean - self.threshold)
        return torch.stack([torch.zeros_like(logit), logit], dim=1)

    def p_object64(self, box_mean: float) -> float:
        """P(class 1) for a given mean brightness inside the box, in float64: a sigmoid of the logit."""
        return 1.0 / (1.0 + math.exp(-self.gain * (box_mean - self.threshold)))


def object_image(
    channels: int, height: int, width: int, box: tuple[int, int, int, int], *, seed: int
) -> torch.Tensor:
    """[1, C, H, W]: background of values k/16 <= 7/16 (never 0.5 or 1), a square of 1.0 at ``box``."""
    image = dyadic_images(1, channels, height, width, seed=seed, high=7)
    t, left, h, w = box
    image[:, :, t : t + h, left : left + w] = 1.0
    return image


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
