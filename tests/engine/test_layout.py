"""Channels-last images (Keras, PIL, numpy code): ``layout="NHWC"`` reads them; without it, a clear error.

Spec (``occsens.engine.model.as_images``, ``occlude(..., layout=...)``): "NHWC" images ``[N, H, W, C]`` or
``[H, W, C]`` give exactly the result of the same images transposed to ``[N, C, H, W]``; under the
default "NCHW", images whose last axis is 1, 3 or 4 after longer ones are refused with a pointer to
``layout="NHWC"`` (before, a [32, 32, 3] image failed with "patch (4, 4) is larger than the image (32, 3)").
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import occsens

from .oracles import LinearOracle


@settings(deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.sampled_from([1, 3]),
    h=st.integers(5, 12),
    w=st.integers(5, 12),
    seed=st.integers(0, 99),
)
def test_channels_last_images_give_the_result_of_their_channels_first_transpose(n, c, h, w, seed) -> None:
    nchw = np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)
    model = LinearOracle(c, h, w, classes=3, seed=seed)
    want = occsens.occlude(model, nchw, patch=3, stride=2)
    got = occsens.occlude(model, nchw.transpose(0, 2, 3, 1), patch=3, stride=2, layout="NHWC")
    assert torch.equal(got.images, want.images) and torch.equal(got.probs, want.probs)
    one = occsens.occlude(model, nchw[0].transpose(1, 2, 0), patch=3, stride=2, layout="NHWC")
    assert torch.equal(one.probs[0], want.probs[0])


@pytest.mark.parametrize("shape", [(32, 32, 3), (2, 32, 32, 3), (2, 28, 28, 1), (1, 16, 16, 4)])
def test_channels_last_images_without_the_layout_are_refused_with_a_pointer(shape) -> None:
    model = LinearOracle(3, 32, 32, classes=3, seed=0)
    with pytest.raises(occsens.OcclusionError, match=r"look channels-last .* pass layout='NHWC'"):
        occsens.occlude(model, np.zeros(shape, dtype=np.uint8), patch=4)


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(occsens.OcclusionError, match="layout must be 'NCHW' or 'NHWC', got 'CHW'"):
        occsens.as_images(np.zeros((3, 8, 8), dtype=np.uint8), layout="CHW")
