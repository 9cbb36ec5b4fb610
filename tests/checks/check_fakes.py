"""Small synthetic models and explainers whose verdicts under the sanity checks are known in advance.

Images are 3 x 16 x 16 uniform noise (no uniform squares of their own), the patch is 4: 16 windows and
16 tiles per image, so each check runs in well under a second.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from occsens import occlude

SIZE = 16
PATCH = 4
CLASSES = 10
SINK = 7  # the class the uniform-square model answers


def noise_images(n: int = 6, seed: int = 0) -> torch.Tensor:
    """``n`` images of uniform noise in [0, 1]."""
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def region_model(*, hidden: int | None = None, seed: int = 0, scale: float = 0.5) -> nn.Sequential:
    """A "trained" model that looks only at the left half of the image: the weights of every input pixel
    in the right half are zero, so its occlusion map is zero there and structured on the left. With
    ``hidden`` it is a two-layer MLP (two layer groups for the randomisation cascade), else linear."""
    gen = torch.Generator().manual_seed(seed)
    inputs = 3 * SIZE * SIZE
    region = torch.zeros(3, SIZE, SIZE)
    region[:, :, : SIZE // 2] = 1
    region = region.reshape(1, -1)
    width = hidden or CLASSES
    first = nn.Linear(inputs, width)
    with torch.no_grad():
        first.weight.copy_(torch.randn(width, inputs, generator=gen) * region * scale / 4)
        first.bias.copy_(-first.weight.sum(dim=1) * 0.5)  # centred for mid-grey input
    layers: list[nn.Module] = [nn.Flatten(), first]
    if hidden:
        second = nn.Linear(hidden, CLASSES)
        with torch.no_grad():
            second.weight.copy_(torch.randn(CLASSES, hidden, generator=gen))
            second.bias.zero_()
        layers += [nn.ReLU(), second]
    return nn.Sequential(*layers).eval()


class UniformSquareModel(nn.Module):
    """Answers class SINK whenever some PATCH x PATCH square is constant in every channel (a grey or mean
    fill), otherwise whatever the region model answers: the occluder, not the image, decides."""

    def __init__(self) -> None:
        super().__init__()
        self.base = region_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = F.avg_pool2d(x, PATCH, stride=1)
        var = F.avg_pool2d(x * x, PATCH, stride=1) - mean * mean
        uniform = (var.amax(dim=1) < 1e-6).flatten(1).any(dim=1)
        logits = self.base(x)
        sink = torch.full_like(logits, -20.0)
        sink[:, SINK] = 20.0
        return torch.where(uniform[:, None], sink, logits)


class NoisyModel(nn.Module):
    """The region model with noise added to its logits in every forward, eval mode or not."""

    def __init__(self) -> None:
        super().__init__()
        self.base = region_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.base(x)
        return logits + 0.5 * torch.randn_like(logits)


class DropoutModel(nn.Module):
    """The region model behind a dropout layer: random in training mode, deterministic in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.base = region_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(self.drop(x))


def conv_bn_model(seed: int = 0) -> nn.Sequential:
    """A small conv net with batch norms (for the randomisation cascade's batch-norm handling)."""
    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, CLASSES),
    )  # fmt: skip
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def random_explainer(seed: int = 1):  # noqa: ANN201
    """A fake explainer: a random map, whatever the model and image."""

    def explain(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        gen = torch.Generator().manual_seed(seed)
        return torch.rand(len(images), *images.shape[2:], generator=gen)

    return explain


def edge_explainer(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """A model-independent map: the Sobel gradient magnitude of the image's luminance."""
    grey = images.mean(dim=1, keepdim=True)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kx)
    gy = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3))
    return (gx * gx + gy * gy).sqrt()[:, 0]


def inverted_explainer(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The occlusion map upside down: the least important windows ranked first."""
    return -occlude(model, images, patch=PATCH).attribution()


class FlatModel(nn.Module):
    """A model whose answer ignores the image (an untrained model in the limit): every map is flat, and no
    check has anything to judge."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.linspace(0.0, 1.0, CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1) + 0.0 * x.flatten(1)[:, :1]


class FaintModel(nn.Module):
    """The region model with its logits scaled by 1e-6: the occlusion map has a ranking, but its
    probabilities move by ~1e-7 from window to window, the size of float rounding."""

    def __init__(self) -> None:
        super().__init__()
        self.base = region_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1e-6 * self.base(x)
