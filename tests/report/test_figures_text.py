"""Untrusted text in figures: file and class names are the user's, and a "$" in them prints as itself."""

from __future__ import annotations

import io

import pytest
import torch
from matplotlib.figure import Figure

import occsens
from occsens.report import analysis as an
from occsens.report import figures, figures_sample

# Two "$" around an unbalanced brace: matplotlib's mathtext cannot parse it.
NAME = "ship$_{$.png"


def test_matplotlib_itself_would_fail_on_such_a_name() -> None:
    """The case is real: with mathtext on (matplotlib's default), drawing the name raises."""
    fig = Figure()
    fig.suptitle(NAME)
    with pytest.raises(ValueError):
        fig.savefig(io.BytesIO(), format="png")


def test_a_figure_labelled_with_it_renders() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)).eval()
    res = occsens.occlude(model, torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)), patch=4)
    stats = an.map_stats(res, 0)
    names = [NAME, f"not {NAME}"]  # class names appear in the legend and the bar labels
    png = figures.png(figures_sample.class_map_figure(stats, names, ["#1f77b4", "#ff7f0e"]))
    assert png.startswith(b"\x89PNG")
