"""Oracle models: small models whose answer on any input is known in closed form.

Exact arithmetic, on purpose (the same design as ``tests/engine/oracles.py``). Images and fills
are multiples of 1/16 and the linear oracle's weights are too, scaled by a power of two, so every
float32 logit an implementation computes is exact whatever order it sums in; ``logits64`` gives
the same logits in float64 for the closed form. What is left is the float32 softmax: a few ulps.
"""

from __future__ import annotations

import math

import torch
from torch import nn

DYADIC = 16  # pixel values, fills and weights are multiples of 1/DYADIC

Box = tuple[int, int, int, int]  # top, left, height, width


def dyadic_images(
    n: int, channels: int, height: int, width: int, *, seed: int, high: int = DYADIC
) -> torch.Tensor:
    """float32 [N, C, H, W] with every pixel k/16 for k in 0..high (exactly representable)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, high + 1, (n, channels, height, width), generator=gen).float() / DYADIC


class LinearOracle(nn.Module):
    """``logits[k] = scale * <W_k, x> + b_k``: W, b multiples of 1/16, scale a power of two.

    ``gain`` (a power of two) multiplies the scale: 1 keeps the logits O(1), so probabilities are
    not saturated; 16 makes them O(10), so drops of logits and of probabilities differ a lot.
    """

    def __init__(
        self, channels: int, height: int, width: int, classes: int = 3, *, seed: int = 0, gain: int = 1
    ) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        weight = torch.randint(-DYADIC, DYADIC + 1, (classes, channels, height, width), generator=gen).float()
        bias = torch.randint(-DYADIC, DYADIC + 1, (classes,), generator=gen).float()
        # Parameters, as in a real model (``model.parameters()`` finds them), frozen: occlusion needs no
        # gradients, and a frozen parameter lets an implementation that writes into it do so visibly.
        self.weight = nn.Parameter(weight / DYADIC, requires_grad=False)
        self.bias = nn.Parameter(bias / DYADIC, requires_grad=False)
        # dividing by ~sqrt(#pixels) keeps the logits O(gain) whatever the image size
        self.scale = gain * 2.0 ** -math.ceil(math.log2(math.sqrt(channels * height * width)))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) * self.weight).sum(dim=(2, 3, 4)) * self.scale + self.bias

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        """float64 logits [B, K] of float64 images [B, C, H, W]."""
        w = self.weight.double()
        return (x.unsqueeze(1) * w).sum(dim=(2, 3, 4)) * self.scale + self.bias.double()


class Normalised(nn.Module):
    """A model that normalises inside its ``forward``: ``inner((x - mean) / std)`` per channel.

    Means are multiples of 1/4 and stds powers of two, so the normalised pixels stay dyadic and
    the logits exact: the fill property can tell a pixel-space fill from any other to the last bit.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, inner: LinearOracle, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.inner = inner
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner((x - self.mean) / self.std)

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.logits64((x - self.mean.double()) / self.std.double())


class RegionDetector(nn.Module):
    """Reports an object in a known box: class-1 logit = gain * (mean brightness in the box - threshold).

    Class 0's logit is 0. Pixels outside the box are never read, so a window that does not touch
    the box leaves the output bit for bit as it was: its drop is exactly 0.
    """

    def __init__(self, box: Box, *, threshold: float = 0.75, gain: float = 16.0) -> None:
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

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x.double())


def object_image(channels: int, height: int, width: int, box: Box, *, seed: int) -> torch.Tensor:
    """[1, C, H, W]: background of values k/16 <= 7/16, a square of brightness 1.0 at ``box``."""
    image = dyadic_images(1, channels, height, width, seed=seed, high=7)
    t, left, h, w = box
    image[:, :, t : t + h, left : left + w] = 1.0
    return image


class Recorder(nn.Module):
    """Answers with ``inner`` and keeps a copy of every image it is handed: what the model saw."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.seen: list[torch.Tensor] = []
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().to("cpu", torch.float64).clone())
        return self.inner(x)

    def logits64(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.logits64(x)  # type: ignore[operator]
