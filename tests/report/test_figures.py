"""The figures as the page needs them: a drop map readable on dark and bright images, palette PNGs that
are small and the same for the same numbers, and images stored at their own pixels."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import occsens
from occsens.report import analysis as an
from occsens.report import figures as fg
from occsens.report import figures_sample as fs
from occsens.report.thresholds import IMPORTANT_DROP


@pytest.fixture(scope="module")
def stats() -> an.MapStats:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 10)).eval()
    torch.manual_seed(0)
    image = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    return an.map_stats(occsens.occlude(model, image, patch=4), 0)


@pytest.mark.parametrize(
    "image",
    [
        np.full((16, 16, 3), 0.02) + np.linspace(0, 0.05, 16)[None, :, None],  # nearly black, faint detail
        np.full((16, 16, 3), 0.97) + np.linspace(0, 0.03, 16)[None, :, None],  # nearly white
        np.random.default_rng(0).random((16, 16, 3)),  # full range
    ],
    ids=["dark", "bright", "full"],
)
def test_the_drop_maps_backdrop_spans_the_same_band_of_grey_for_dark_and_bright_images(
    image: np.ndarray,
) -> None:
    """Issue 14: the drop map blended over a dark image was nearly black where it mattered most."""
    grey = fg.backdrop(np.clip(image, 0, 1))
    lo, hi = fg.BACKDROP
    assert grey.min() >= lo - 1e-9 and grey.max() <= hi + 1e-9
    # contrast-normalised: the image's own detail uses (nearly) the whole band, whatever its brightness
    assert grey.max() - grey.min() > 0.9 * (hi - lo)


def test_a_flat_image_gets_a_mid_grey_backdrop() -> None:
    assert np.allclose(fg.backdrop(np.zeros((8, 8, 3))), sum(fg.BACKDROP) / 2)


def test_the_drop_layer_is_transparent_where_nothing_changes_and_outlines_what_matters(
    stats: an.MapStats,
) -> None:
    drop = np.zeros_like(stats.drop)
    drop[0, 0], drop[1, 1] = 0.3, -0.3  # one window that matters, one that raised the probability
    fig = fs.heatmap_figure(np.zeros((16, 16, 3)), replace(stats, drop=drop), "class 0")
    ax = fig.axes[1]
    (layer,) = [c for c in ax.collections if c.__class__.__name__ == "QuadMesh"]
    alpha = np.asarray(layer.get_array())[..., 3]
    assert alpha[0, 0] == pytest.approx(fg.DROP_ALPHA[1]) and alpha[1, 1] == pytest.approx(fg.DROP_ALPHA[1])
    assert alpha[2, 2] == pytest.approx(fg.DROP_ALPHA[0])
    outlines = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    assert (
        len(outlines) == 2 and len(outlines[0].get_segments()) == 4
    )  # one cell over IMPORTANT_DROP: 4 edges
    assert (drop > IMPORTANT_DROP).sum() == 1


def test_figures_are_palette_pngs_and_the_same_numbers_give_the_same_bytes(stats: an.MapStats) -> None:
    image = np.zeros((16, 16, 3))
    first, second = fs.heatmap_png(image, stats, "c"), fs.heatmap_png(image, stats, "c")
    assert first == second
    with Image.open(io.BytesIO(first)) as png:
        assert png.mode == "P" and len(png.getpalette() or []) // 3 <= fg.PALETTE
        assert "Software" not in png.info


def test_images_are_stored_at_their_own_pixels_and_tiny_ones_enlarged_without_smoothing() -> None:
    image = np.random.default_rng(0).random((32, 32, 3))
    with Image.open(io.BytesIO(fs.thumbnail_png(image))) as png:
        assert png.size == (32, 32)
        assert np.array_equal(np.asarray(png), np.rint(image * 255).astype(np.uint8))  # lossless
    with Image.open(io.BytesIO(fs.thumbnail_png(image[:8, :8], 4))) as png:
        big = np.asarray(png)
        assert png.size == (32, 32) and np.array_equal(big[::4, ::4], big[3::4, 3::4])  # blocks, no blur
