"""Untrusted text in figures: file and class names are the user's, and a "$" in them prints as itself."""

from __future__ import annotations

import io

import numpy as np
import pytest
from matplotlib.figure import Figure

from occsens.report import figures

# Two "$" around an unbalanced brace: matplotlib's mathtext cannot parse it.
NAME = "ship$_{$.png"


def test_matplotlib_itself_would_fail_on_such_a_name() -> None:
    """The case is real: with mathtext on (matplotlib's default), drawing the name raises."""
    fig = Figure()
    fig.suptitle(NAME)
    with pytest.raises(ValueError):
        fig.savefig(io.BytesIO(), format="png")


def test_a_figure_titled_with_it_renders() -> None:
    png = figures.image_png(np.zeros((32, 32, 3), dtype=np.uint8), NAME)
    assert png.startswith(b"\x89PNG")
