"""Ground truth for calibrating the checks: planted-object images, an oracle model whose evidence is the
object, and known-bad maps and models.

The images: ``PLANTED_SIZE`` x ``PLANTED_SIZE`` noise around mid-grey with one object, a square pattern
of +-``OBJECT_CONTRAST`` that names its class, at a random place, and a fainter distractor of another
class elsewhere (so hiding the object hands the class map to something the image shows, as a second
object in a photograph does). The oracle (``TemplateOracle``) scores class k by how well template k matches
the image at its best position: its evidence *is* the object, and a good map must find it. The
geometry matches the shipped models' default: 32 x 32 images and a 4 x 4 patch (1.6% of the image).

Known-bad maps (``bad_explainer``) corrupt the oracle's own occlusion map, or ignore the model: random,
inverted, constant, shifted by half the image, image-only (edges). Known-bad models read the fill
(``UniformSquareSink``, ``FillAreaReader``) or answer at random or by batch (``NoisyForward``,
``BatchDependent``): the checks that do not read the map (leakage, determinism) are calibrated on them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from occsens.engine import occlude

PLANTED_SIZE = 32  # the shipped models' input size
PLANTED_PATCH = 4  # the default patch: a window is 1.6% of the image, as on CIFAR-10
PLANTED_FILL = 0.5  # the default fill (grey)
PLANTED_CLASSES = 10
OBJECT_SIZE = 10  # about 10% of the image
OBJECT_CONTRAST = 0.4  # object pixels 0.5 +- 0.4
DISTRACTOR_CONTRAST = 0.35  # fainter: the object wins the clean image, the distractor once it is hidden
NOISE = 0.2  # background 0.5 + uniform(-0.2, 0.2): weaker than both patterns
ORACLE_GAIN = 12.0  # logits = gain x match (a full match is the contrast): target probability ~0.6-0.9

BAD_MAPS = ("random", "inverted", "constant", "shifted", "image-only")


def templates(seed: int = 0) -> torch.Tensor:
    """float32 [K, 3, s, s]: one +-1 pattern per class, the same for images and oracle."""
    gen = torch.Generator().manual_seed(seed)
    signs = torch.randint(0, 2, (PLANTED_CLASSES, 3, OBJECT_SIZE, OBJECT_SIZE), generator=gen)
    return signs.float() * 2 - 1


def planted_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images [n, 3, H, W] in [0, 1], object classes [n], object boxes [n, 4] as top, left, h, w).

    Object and distractor never overlap; their classes differ."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    pattern = templates()
    images = 0.5 + NOISE * (2 * torch.rand(n, 3, PLANTED_SIZE, PLANTED_SIZE, generator=gen) - 1)
    classes = torch.randint(0, PLANTED_CLASSES, (n,), generator=gen)
    boxes = torch.zeros(n, 4, dtype=torch.int64)
    span = PLANTED_SIZE - OBJECT_SIZE + 1
    for i in range(n):
        other = int((classes[i] + torch.randint(1, PLANTED_CLASSES, (1,), generator=gen)) % PLANTED_CLASSES)
        while True:
            (t, left), (dt, dl) = torch.randint(0, span, (2, 2), generator=gen).tolist()
            if abs(t - dt) >= OBJECT_SIZE or abs(left - dl) >= OBJECT_SIZE:
                break
        s = OBJECT_SIZE
        images[i, :, t : t + s, left : left + s] = 0.5 + OBJECT_CONTRAST * pattern[int(classes[i])]
        images[i, :, dt : dt + s, dl : dl + s] = 0.5 + DISTRACTOR_CONTRAST * pattern[other]
        boxes[i] = torch.tensor([t, left, s, s])
    return images.clamp(0, 1), classes, boxes


class TemplateOracle(nn.Module):
    """Class k's logit = gain x the best match, over positions, of template k with the image minus grey.

    A matched filter (one convolution) and a global max: its answer is whichever planted pattern is
    strongest in the image, so what it uses is known. The templates are the convolution's weights, so
    re-initialising them (the randomisation check) takes away everything it "learned"."""

    def __init__(self, gain: float = ORACLE_GAIN) -> None:
        super().__init__()
        weights = templates()
        self.match = nn.Conv2d(3, PLANTED_CLASSES, OBJECT_SIZE, bias=False)
        with torch.no_grad():
            self.match.weight.copy_(weights / weights[0].numel())  # a full match scores the contrast
        self.gain = gain
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gain * self.match(x - 0.5).amax(dim=(2, 3))


def trained_cnn(seed: int = 0, images: int = 3000, epochs: int = 4) -> nn.Module:
    """A small CNN trained on planted-object images (in eval mode): a known-good model that *learned* that
    the object is the evidence, unlike the oracle, which is built that way. Deterministic on one machine
    (seeded); ~1-3 minutes of CPU, so the calibration runs it only when asked (``--trained``)."""
    x, y, _ = planted_images(images, seed=100 + seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, PLANTED_CLASSES),
        )  # fmt: skip
        optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
        for _ in range(epochs):
            order = torch.randperm(len(x))
            for start in range(0, len(x), 64):
                batch = order[start : start + 64]
                loss = F.cross_entropy(model(x[batch]), y[batch])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
    return model.eval()


def occlusion_map(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The known-good map: the model's occlusion attribution at the planted geometry."""
    return occlude(model, images, patch=PLANTED_PATCH, fill=PLANTED_FILL, progress=False).attribution()


def _edges(images: torch.Tensor) -> torch.Tensor:
    grey = images.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    gx, gy = F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(2, 3))
    return (gx * gx + gy * gy).sqrt()[:, 0]


def bad_explainer(kind: str, seed: int = 0) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
    """A known-bad map of ``kind`` (one of ``BAD_MAPS``) as an explainer ``(model, images) -> maps``:

    random (the same noise whatever the model), inverted (the occlusion map upside down), constant
    (zeros), shifted (the occlusion map rolled by half the image both ways), image-only (edge strength of
    the image: what the model learned plays no part)."""
    if kind not in BAD_MAPS:
        raise ValueError(f"unknown known-bad map {kind!r}; valid: {', '.join(BAD_MAPS)}")

    def explain(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        if kind == "random":
            return torch.rand(n, h, w, generator=torch.Generator().manual_seed(seed))
        if kind == "constant":
            return torch.zeros(n, h, w)
        if kind == "image-only":
            return _edges(images)
        good = occlusion_map(model, images)
        return -good if kind == "inverted" else torch.roll(good, (h // 2, w // 2), dims=(1, 2))

    return explain


SINK = 3  # the class the fill-reading models push


class _AroundOracle(nn.Module):
    """The known-bad models below: each is the oracle with one thing wrong, in its ``forward``."""

    def __init__(self) -> None:
        super().__init__()
        self.oracle = TemplateOracle()
        self.eval()


class UniformSquareSink(_AroundOracle):
    """The oracle, except that any patch-sized square of one colour (a grey or mean fill) makes it answer
    class SINK: the occluder, not the image, decides."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(x, PLANTED_PATCH, stride=1)
        var = F.avg_pool2d(x * x, PLANTED_PATCH, stride=1) - mean * mean
        uniform = (var.amax(dim=1) < 1e-6).flatten(1).any(dim=1)
        logits = self.oracle(x)
        bonus = torch.zeros_like(logits)
        bonus[:, SINK] = 50.0
        return torch.where(uniform[:, None], logits + bonus, logits)


class FillAreaReader(_AroundOracle):
    """The oracle plus a vote for class SINK in proportion to how much of the image is exactly grey: a
    model that learned "grey means SINK", so every window it hides pushes the class map towards SINK."""

    def __init__(self, weight: float = 400.0) -> None:
        super().__init__()
        self.weight = weight  # one 4x4 window (1.6% of the image) adds 6 to the SINK logit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = ((x - PLANTED_FILL).abs() < 1e-6).all(dim=1).float().mean(dim=(1, 2))
        logits = self.oracle(x)
        bonus = torch.zeros_like(logits)
        bonus[:, SINK] = self.weight * grey
        return logits + bonus


class NoisyForward(_AroundOracle):
    """The oracle with noise drawn in every forward, eval mode or not."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.oracle(x)
        return logits + 0.5 * torch.randn_like(logits)


class BatchDependent(_AroundOracle):
    """The oracle on images centred by their batch's mean: each answer depends on the rest of the batch."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.oracle(x - x.mean(dim=0, keepdim=True) + 0.5)


FILL_READERS: dict[str, Callable[[], nn.Module]] = {
    "uniform-square sink": UniformSquareSink,
    "fill-area reader": FillAreaReader,
}
RANDOM_FORWARDS: dict[str, Callable[[], nn.Module]] = {
    "noisy forward": NoisyForward,
    "batch-dependent": BatchDependent,
}
