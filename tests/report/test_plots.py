"""``res.plot`` and ``res.overlay``: an ``Occlusion`` result drawn by the report's own code, for a notebook.

Each kind is a matplotlib ``Figure`` with the panels it promises; the drop panel is the report's, pixel
for pixel of its colour layer; the overlay is red where occluding lowers the probability, blue where it
raises it, and the image's grey where nothing changes; bad arguments get one ``OcclusionError`` naming
what is valid.
"""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import occsens
from occsens import OcclusionError
from occsens.report import analysis as an
from occsens.report import figures as fg
from occsens.report import figures_sample as fs
from occsens.report import plots

from .conftest import TinyNet

NAMES = tuple(f"name{k}" for k in range(10))


@pytest.fixture(scope="module")
def res() -> occsens.Occlusion:
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    return occsens.occlude(TinyNet(), images, patch=8, stride=4)


class Regions(torch.nn.Module):
    """Two classes on 16x16 images: class 0's logit is 8 x (mean of the top-left 4x4 block minus the mean
    of the bottom-right 4x4 block). On an image where both blocks are white, P(class 0) is 0.5; greying
    the top-left block lowers it by 0.5 - sigmoid(-8), greying the bottom-right one raises it by as
    much; every other window changes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 8 * (x[:, :, :4, :4].mean(dim=(1, 2, 3)) - x[:, :, 12:, 12:].mean(dim=(1, 2, 3)))
        return torch.stack([z, torch.zeros_like(z)], dim=1)


@pytest.fixture(scope="module")
def regions() -> occsens.Occlusion:
    image = torch.full((1, 3, 16, 16), 0.5)
    image[:, :, :4, :4] = image[:, :, 12:, 12:] = 1.0
    return occsens.occlude(Regions().eval(), image, patch=4, fill=0.0, target=0)


def _titles(fig: matplotlib.figure.Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


# --------------------------------------------------------------------------- plot


def test_the_summary_is_the_image_the_heatmap_the_drop_and_the_class_map_in_a_row(
    res: occsens.Occlusion,
) -> None:
    fig = res.plot("summary", i=1, class_names=NAMES)
    assert isinstance(fig, matplotlib.figure.Figure)
    # four panels and two colour bars (the heatmap's probability, the drop)
    assert len(fig.axes) == 6
    titles = _titles(fig)
    clean = NAMES[int(res.clean_class[1])]
    assert titles[0].startswith(f"image 1: {clean}")
    assert f"P({clean}) per window" in titles[1]
    assert titles[2] == "drop over the image"
    assert titles[3].startswith("most probable class")
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"{clean} = clean" in legend


@pytest.mark.parametrize(
    "kind, panels, title",
    [
        ("heatmap", 2, "per window (low = important)"),
        ("drop", 2, "drop over the image"),
        ("class_map", 2, "most probable class per window"),
        ("attribution", 2, "attribution (mean drop per pixel)"),
    ],
)
def test_each_kind_draws_its_panel_with_its_colour_bar_or_counts(
    res: occsens.Occlusion, kind: str, panels: int, title: str
) -> None:
    fig = res.plot(kind, i=0)
    assert len(fig.axes) == panels
    assert any(title in t for t in _titles(fig)), _titles(fig)


def test_without_class_names_the_classes_are_numbered(res: occsens.Occlusion) -> None:
    clean = int(res.clean_class[0])
    assert f"P(class {clean})" in _titles(res.plot("heatmap"))[0]


def test_the_drop_panel_is_the_reports_own(res: occsens.Occlusion) -> None:
    """The same colour layer, value for value, as the report's heatmap figure draws for this image."""
    stats = an.map_stats(res, 1)
    image = an.hwc(res.images[1])
    report_panel = fs.heatmap_figure(image, stats, "t").axes[1]
    ours = res.plot("drop", i=1).axes[0]

    def layer(ax) -> np.ndarray:  # noqa: ANN001
        (mesh,) = [c for c in ax.collections if c.__class__.__name__ == "QuadMesh"]
        return np.asarray(mesh.get_array())

    np.testing.assert_array_equal(layer(ours), layer(report_panel))


def test_a_figure_shows_itself_as_a_png_in_a_notebook_without_pyplot(res: occsens.Occlusion) -> None:
    """Jupyter calls ``_repr_png_`` on a cell's value; IPython's own figure display needs pyplot."""
    png = res.plot("heatmap")._repr_png_()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.parametrize("kind", ["map", "", None, "Summary"])
def test_an_unknown_kind_is_refused_naming_the_kinds(res: occsens.Occlusion, kind: object) -> None:
    with pytest.raises(OcclusionError, match="kind must be one of 'summary', 'heatmap', 'drop', 'class_map'"):
        res.plot(kind)  # type: ignore[arg-type]


def test_an_image_index_given_as_the_kind_says_where_the_index_goes(res: occsens.Occlusion) -> None:
    with pytest.raises(OcclusionError, match=r"got 1 \(the image is chosen with i=\)"):
        res.plot(1)  # type: ignore[arg-type]


@pytest.mark.parametrize("i", [2, -1, 1.0, True, "0"])
def test_an_image_index_outside_the_result_is_refused_naming_the_range(
    res: occsens.Occlusion, i: object
) -> None:
    with pytest.raises(OcclusionError, match=r"i must be an image index in 0\.\.1"):
        res.plot("heatmap", i=i)  # type: ignore[arg-type]
    with pytest.raises(OcclusionError, match=r"i must be an image index in 0\.\.1"):
        res.overlay(i)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "names, message",
    [
        (NAMES[:3], "class_names has 3 names for a model with 10 classes"),
        ("airplane", "class_names must be a sequence of 10 strings"),
        ([*NAMES[:9], 9], "class_names must hold strings, got 9"),
    ],
)
def test_class_names_must_be_one_string_per_class(
    res: occsens.Occlusion, names: object, message: str
) -> None:
    with pytest.raises(OcclusionError, match=message):
        res.plot(class_names=names)  # type: ignore[arg-type]


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.sampled_from([torch.tensor(1), torch.tensor([0]), np.int64(1), np.array([0, 1]), [0], (1,), b"0"]),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_plot_and_overlay_draw_or_raise_occlusion_error(res: occsens.Occlusion, data: st.DataObject) -> None:
    """Valid arguments with none or one of them swapped for a hostile value: a Figure (an array), or one
    OcclusionError; never another exception."""
    args = {
        "kind": data.draw(st.sampled_from(plots.KINDS)),
        "i": data.draw(st.sampled_from([0, 1])),
        "class_names": data.draw(st.sampled_from([None, NAMES])),
    }
    swapped = data.draw(st.sampled_from([None, *args]))
    if swapped is not None:
        hostile_names = st.lists(st.one_of(st.text(max_size=3), HOSTILE), max_size=11)
        args[swapped] = data.draw(hostile_names if swapped == "class_names" else HOSTILE)
    try:
        assert isinstance(
            res.plot(args["kind"], args["i"], class_names=args["class_names"]), matplotlib.figure.Figure
        )
        event("drawn")
    except OcclusionError:
        event("refused")
    try:
        assert res.overlay(args["i"]).shape == (32, 32, 3)
    except OcclusionError:
        pass


# --------------------------------------------------------------------------- overlay


def test_the_overlay_is_an_rgb_image_of_the_images_size(res: occsens.Occlusion) -> None:
    rgb = res.overlay(1)
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8


def test_the_overlay_is_red_where_occluding_lowers_the_probability_and_blue_where_it_raises_it(
    regions: occsens.Occlusion,
) -> None:
    attribution = regions.attribution()[0]
    drop = 0.5 - torch.sigmoid(torch.tensor(-8.0))  # the oracle's drop, +- at the two blocks
    torch.testing.assert_close(attribution[:4, :4], torch.full((4, 4), float(drop)))
    torch.testing.assert_close(attribution[12:, 12:], torch.full((4, 4), -float(drop)))
    assert attribution[4:12].abs().max() == 0
    rgb = regions.overlay(0).astype(int)
    red, blue = rgb[:4, :4], rgb[12:, 12:]
    # Both blocks sit at the colour scale's ends, drawn 85% opaque (DROP_ALPHA[1]): RdBu_r's red end
    # #67001f has R - B = 72, its blue end #053061 has B - R = 92; 85% of them is 61 and 78 over any grey.
    # 50 is far above the grey backdrop's 0 and the neutral middle colour's tint (< 3, below).
    assert (red[..., 0] - red[..., 2]).min() > 50
    assert (blue[..., 2] - blue[..., 0]).min() > 50


def test_where_nothing_changes_the_overlay_is_the_images_grey_backdrop(regions: occsens.Occlusion) -> None:
    rgb = regions.overlay(0).astype(int)[4:12]
    # the neutral colour at 10% opacity over grey: the channels stay within a few levels of each other
    assert (rgb.max(axis=2) - rgb.min(axis=2)).max() <= 3
    lo, hi = fg.BACKDROP
    assert lo * 255 - 3 <= rgb.min() and rgb.max() <= hi * 255 + 3


def test_the_overlay_is_the_attribution_figures_image(regions: occsens.Occlusion) -> None:
    """``res.plot("attribution")`` draws exactly the array ``res.overlay`` returns (up to rounding)."""
    (drawn,) = regions.plot("attribution").axes[0].get_images()
    np.testing.assert_allclose(np.asarray(drawn.get_array()) * 255, regions.overlay(0), atol=0.5)


# --------------------------------------------------------------------------- no side effects


def test_importing_the_report_leaves_matplotlibs_backend_alone() -> None:
    """The figures draw on their own Agg canvases; a notebook's backend (inline, widget) stays its own."""
    code = "import matplotlib, occsens.report.plots; print(matplotlib.get_backend())"
    env = {**os.environ, "MPLBACKEND": "pdf"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "pdf"
