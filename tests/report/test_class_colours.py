"""Class colours at any class count: at most MAX_SHOWN_CLASSES classes get a colour, the rest are "other"."""

from __future__ import annotations

import re
import warnings

import matplotlib.colors
import numpy as np
import pytest
import torch

import occsens
from occsens import report
from occsens.report import analysis as an
from occsens.report import colours as cl
from occsens.report import figures as fg
from occsens.report import figures_overview as fo
from occsens.report import figures_sample as fs
from occsens.report.colours import MAX_SHOWN_CLASSES, OTHER_COLOUR

# The colours of the report before class grouping existed (matplotlib's tab10, in class order).
TAB10 = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def names(k: int) -> list[str]:
    return [f"class {i}" for i in range(k)]


def shown_colours(colours: list[str]) -> list[str]:
    return [c for c in colours if c != OTHER_COLOUR]


def pixel_model(num_classes: int = 1000) -> torch.nn.Module:
    """A linear 1000-class model on 8x8 images in which class k (k < 64) wins when pixel k alone is
    greyed: on a black image, occluding with patch 1 gives 64 positions won by 64 different classes."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, num_classes)).eval()
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.zero_()
        for k in range(64):
            model[1].weight[k, [k, 64 + k, 128 + k]] = 1.0
    return model


def occlusion_stats(model: torch.nn.Module, images: torch.Tensor, patch: int) -> an.MapStats:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the flattening model is not one the incremental engine walks
        return an.map_stats(occsens.occlude(model, images, patch=patch), 0)


# --------------------------------------------------------------------------- which class gets which colour


def test_the_most_shown_classes_is_a_readable_number_of_qualitative_colours() -> None:
    assert 10 <= MAX_SHOWN_CLASSES <= 20


@pytest.mark.parametrize("k", [2, 3, 7, 10])
def test_up_to_ten_classes_every_class_keeps_todays_colour(k: int) -> None:
    frequency = [0] * k
    frequency[0] = 5  # classes that do not appear still keep their colour
    colours = cl.class_colours(k, cl.shown_classes(frequency))
    assert colours == TAB10[:k]
    assert cl.class_colours(k) == TAB10[:k]
    assert len(set(colours)) == k


def test_a_thousand_classes_with_seven_present_give_those_seven_their_own_colours() -> None:
    present = [3, 17, 256, 400, 512, 777, 999]
    frequency = [0] * 1000
    for rank, k in enumerate(present):
        frequency[k] = 10 + rank
    colours = cl.class_colours(1000, cl.shown_classes(frequency))
    assert len(colours) == 1000
    assert len({colours[k] for k in present}) == 7
    assert OTHER_COLOUR not in {colours[k] for k in present}
    assert all(colours[k] == OTHER_COLOUR for k in range(1000) if k not in present)


def test_fifty_present_only_the_most_frequent_get_colours_and_no_two_share_one() -> None:
    frequency = [0] * 1000
    present = list(range(100, 600, 10))  # 50 classes, the later ones more frequent
    for rank, k in enumerate(present):
        frequency[k] = 1 + rank
    shown = cl.shown_classes(frequency)
    assert shown == tuple(present[-MAX_SHOWN_CLASSES:])
    colours = cl.class_colours(1000, shown)
    assert len({colours[k] for k in shown}) == MAX_SHOWN_CLASSES
    assert all(colours[k] == OTHER_COLOUR for k in present[:-MAX_SHOWN_CLASSES])
    assert len(shown_colours(colours)) == MAX_SHOWN_CLASSES


def test_ties_go_to_the_lower_class_index() -> None:
    frequency = [0] * 100
    for k in range(30, 60):
        frequency[k] = 4
    assert cl.shown_classes(frequency) == tuple(range(30, 30 + MAX_SHOWN_CLASSES))


@pytest.mark.parametrize("shown", [range(3), range(MAX_SHOWN_CLASSES), [0, 500, 999]])
def test_other_is_a_neutral_grey_visibly_different_from_every_class_colour(shown: range | list[int]) -> None:
    colours = cl.class_colours(1000, shown)
    other = np.array(matplotlib.colors.to_rgb(OTHER_COLOUR))
    assert other.max() - other.min() == 0, "'other' is a neutral grey"
    for c in shown_colours(colours):
        rgb = np.array(matplotlib.colors.to_rgb(c))
        assert np.abs(rgb - other).max() > 0.25, f"{c} is too close to the 'other' grey"
        if rgb.max() - rgb.min() < 0.05:  # a neutral class colour must not read as a shade of "other"
            assert abs(rgb.mean() - other.mean()) > 0.5, f"class colour {c} is a grey like 'other'"


def test_more_shown_classes_than_the_maximum_is_refused() -> None:
    with pytest.raises(ValueError, match="at most"):
        cl.class_colours(1000, range(MAX_SHOWN_CLASSES + 1))


def test_the_legend_lists_the_shown_classes_then_other_with_how_many_it_groups() -> None:
    colours = cl.class_colours(1000, [5, 2, 9])
    entries = cl.legend_entries(names(1000), colours)
    assert [n for n, _ in entries] == ["class 2", "class 5", "class 9", "other (997 classes)"]
    assert entries[-1][1] == OTHER_COLOUR
    assert cl.legend_entries(names(10), cl.class_colours(10)) == list(zip(names(10), TAB10, strict=True))


# --------------------------------------------------------------------------- the figures


def test_a_ten_class_map_keeps_one_bar_per_class() -> None:
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 10)).eval()
    stats = occlusion_stats(model, torch.rand(1, 3, 8, 8, generator=gen), patch=4)
    fig = fs.class_map_figure(stats, names(10), cl.class_colours(10))
    bars = fig.axes[1].containers[0]
    assert len(bars) == 10
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == names(10)
    assert [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars] == TAB10


def test_a_class_map_of_a_1000_class_model_renders() -> None:
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 1000)).eval()
    stats = occlusion_stats(model, torch.rand(2, 3, 8, 8, generator=gen), patch=4)
    colours = cl.class_colours(1000, cl.shown_classes(stats.class_counts))
    png = fg.png(fs.class_map_figure(stats, names(1000), colours))
    assert png.startswith(b"\x89PNG")
    assert (
        len(fs.class_map_figure(stats, names(1000), colours).axes[1].containers[0]) <= MAX_SHOWN_CLASSES + 1
    )


def test_a_map_won_by_64_of_1000_classes_has_one_bar_per_shown_class_and_one_other_bar() -> None:
    stats = occlusion_stats(pixel_model(), torch.zeros(1, 3, 8, 8), patch=1)
    assert sum(1 for v in stats.class_counts if v) == 64
    colours = cl.class_colours(1000, cl.shown_classes(stats.class_counts))
    fig = fs.class_map_figure(stats, names(1000), colours)
    bars = fig.axes[1].containers[0]
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert len(bars) == MAX_SHOWN_CLASSES + 1
    assert labels[-1] == "other (990 classes)"
    assert matplotlib.colors.to_hex(bars[-1].get_facecolor()) == OTHER_COLOUR
    assert bars[-1].get_width() == 64 - MAX_SHOWN_CLASSES, "the 'other' bar counts the rest"
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(legend) == MAX_SHOWN_CLASSES + 1
    assert legend[-1] == f"other: {64 - MAX_SHOWN_CLASSES} classes ({64 - MAX_SHOWN_CLASSES})"


def test_a_legend_names_only_the_classes_present_in_its_figure() -> None:
    stats = occlusion_stats(pixel_model(), torch.zeros(1, 3, 8, 8), patch=1)
    colours = cl.class_colours(1000, [0, 1, 500])  # class 500 is shown but wins no position here
    legend = [
        t.get_text()
        for t in fs.class_map_figure(stats, names(1000), colours).axes[0].get_legend().get_texts()
    ]
    assert legend == ["class 0 (1) = clean", "class 1 (1)", "other: 62 classes (62)"]


def test_the_takeover_bars_group_the_other_classes() -> None:
    takeovers = [an.Takeover(k, k % 7, 0, None) for k in range(1000)]
    colours = cl.class_colours(1000, range(0, 100, 10))
    fig = fo.takeover_figure(takeovers, names(1000), colours)
    bars = fig.axes[0].containers[0]
    assert len(bars) == MAX_SHOWN_CLASSES + 1
    shown = sum(k % 7 for k in range(0, 100, 10))
    assert bars[-1].get_height() == sum(k % 7 for k in range(1000)) - shown


# --------------------------------------------------------------------------- the page


def test_a_1000_class_report_lists_the_shown_classes_and_other_in_its_legend() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = report.make_report(
            pixel_model(), torch.zeros(2, 3, 8, 8), names=names(1000), sample_names=["a", "b"], patch=1
        ).html
    legend = re.search(r'<div class="legend".*?</div>', page, re.S)
    assert legend is not None
    swatches = re.findall(r'<i style="background: (#[0-9a-f]{6})"></i>([^<]*)</span>', legend.group(0))
    assert len(swatches) == MAX_SHOWN_CLASSES + 1
    assert swatches[-1] == (OTHER_COLOUR, f"other ({1000 - MAX_SHOWN_CLASSES} classes)")
    assert len({c for c, _ in swatches}) == MAX_SHOWN_CLASSES + 1
