"""An oracle model whose occlusion map is known in closed form, shared by the analysis and finding tests."""

from __future__ import annotations

import torch
from torch import nn

SHIP, AIRPLANE, CAT = 8, 0, 3
TOP, LEFT = 8, 16  # the evidence: a bright 4x4 block at rows 8-11, cols 16-19


class RegionDetector(nn.Module):
    """Ship when the block at rows 8-11, cols 16-19 is bright; what replaces it depends on what fills it.

    With s the block's mean: ship's logit is 12 * s, airplane's peaks at s = 0.5 (a grey block reads
    as sky), cat's at s = 0 (a black block). Everything else is 0. So occluding the block with grey gives
    airplane, with black gives cat, and any other window changes nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x[:, :, TOP : TOP + 4, LEFT : LEFT + 4].mean(dim=(1, 2, 3))
        logits = torch.zeros(len(x), 10)
        logits[:, SHIP] = 12 * s
        logits[:, AIRPLANE] = 10 * torch.exp(-(((s - 0.5) / 0.1) ** 2))
        logits[:, CAT] = 10 * torch.exp(-((s / 0.1) ** 2))
        return logits


def block_image() -> torch.Tensor:
    image = torch.full((1, 3, 32, 32), 0.25)
    image[:, :, TOP : TOP + 4, LEFT : LEFT + 4] = 1.0
    return image
