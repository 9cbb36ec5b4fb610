"""The figures as the page needs them: a drop map readable on dark and bright images, palette PNGs that
are small and the same for the same numbers, and images stored at their own pixels."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

import occsens
from occsens.report import analysis as an
from occsens.report import figures as fg
from occsens.report import figures_sample as fs
from occsens.report.colours import class_colours
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
    first, second = fg.png(fs.heatmap_figure(image, stats, "c")), fg.png(fs.heatmap_figure(image, stats, "c"))
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


# Class names as long as CIFAR-10's longest ("automobile") and longer, in every legend and bar label.
LONG_NAMES = ["automobile", "a much longer class name", *(f"class {k}" for k in range(2, 10))]


def _fixed_layout_figures(stats: an.MapStats) -> dict[str, Figure]:
    colours = class_colours(10, list(range(10)))
    image = np.random.default_rng(0).random((*stats.image_size, 3))
    return {
        "heatmap": fs.heatmap_figure(image, stats, LONG_NAMES[1]),
        "class map": fs.class_map_figure(stats, LONG_NAMES, colours),
        "reveal": fs.reveal_figure(stats, stats, LONG_NAMES, colours, LONG_NAMES[1]),
        "notebook maps": fs.notebook_maps_figure(stats, stats, LONG_NAMES, colours, LONG_NAMES[1]),
    }


def _overlap(a: Any, b: Any) -> bool:
    """Two boxes share more than a pixel of antialiasing each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1


@pytest.mark.parametrize("kind", ["heatmap", "class map", "reveal", "notebook maps"])
def test_figures_laid_out_by_hand_keep_every_text_inside_and_apart(stats: an.MapStats, kind: str) -> None:
    """The map figures place their panels at fixed margins (no layout engine, issue 22): with class names
    of any length, every title, tick label, axis label and legend entry stays inside the figure, no two
    texts overlap, and no text lies on a panel other than its own."""
    fig = _fixed_layout_figures(stats)[kind]
    assert fig.get_layout_engine() is None
    fg.rgb(fig)  # drawn as the report draws it
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    page = fig.bbox
    drawn: list[Text] = [t for legend in fig.legends for t in legend.get_texts()]
    for ax in fig.axes:  # tick labels as drawn: those inside the axis limits
        drawn += [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
        drawn += [*ax.texts, *(ax.get_legend().get_texts() if ax.get_legend() else [])]
    texts = [t for t in drawn if t.get_visible() and t.get_text().strip()]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    for t, box in boxes:
        inside = (
            page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1 and page.y0 - 1 <= box.y0 <= box.y1 <= page.y1 + 1
        )
        assert inside, (kind, t.get_text(), box)
    for i, (t, a) in enumerate(boxes):
        for u, b in boxes[i + 1 :]:
            assert not _overlap(a, b), (kind, t.get_text(), u.get_text())
        for ax in fig.axes:
            if ax is not t.axes:
                assert not _overlap(a, ax.bbox), (kind, t.get_text(), ax.get_title())


def test_shared_panels_carry_ticks_once_per_row(stats: an.MapStats) -> None:
    """Panels in the same pixel coordinates: the first names and numbers the axes, the others repeat
    neither (their ticks were most of the cost of drawing them)."""
    first, *others = _fixed_layout_figures(stats)["reveal"].axes
    assert len(first.get_yticks()) > 1 and first.get_ylabel()
    for ax in others:
        assert len(ax.get_yticks()) == 0 and not ax.get_ylabel()
        assert list(ax.get_xticks()) == list(first.get_xticks())
