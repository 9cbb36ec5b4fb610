"""The report's figures of one sample: its maps, their class counts, the reveal, fill and notebook maps.

Each figure has a function returning the matplotlib ``Figure`` (for a notebook, ``Occlusion.plot``
and tests) and one returning it as the report's palette PNG; the drawing helpers they share and the
conventions (colour maps, DPI, class colours) are in ``occsens.report.figures``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from occsens.report import figures as fg
from occsens.report.analysis import FillStats, MapStats
from occsens.report.colours import _grouped
from occsens.report.thresholds import IMPORTANT_DROP


def heatmap_png(image: np.ndarray, stats: MapStats, target: str) -> bytes:
    """``heatmap_figure`` as PNG."""
    with fg.style():
        return fg.png(heatmap_figure(image, stats, target))


def heatmap_figure(image: np.ndarray, stats: MapStats, target: str) -> Figure:
    """The target's probability per window (low = important) and the signed drop as a layer over a greyed,
    contrast-normalised copy of the image (opaque where the drop is large), the windows that matter
    (drop > IMPORTANT_DROP) outlined."""
    with fg.style():
        fig = fg.figure(7.4, 3.1)
        ax1, ax2 = fig.subplots(1, 2)
        fg.heat(ax1, fig, stats, target, f"P({target}) per window (low = important)", own_scale=True)
        title = f"drop over the image (outlined: drop > {IMPORTANT_DROP:g})"
        fg.drop_panel(ax2, fig, image, stats, target, title)
        return fig


def class_map_figure(stats: MapStats, names: Sequence[str], colours: Sequence[str]) -> Figure:
    """The most probable class per window, with a class legend, and the class counts as bars (one per
    shown class, one "other" bar for the grouped ones)."""
    with fg.style():
        fig = fg.figure(6.4, 2.6)  # narrow enough for the counts table beside it on the page
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.05])
        fg.classes(ax1, stats, colours, "most probable class per window")
        fg.legend(
            ax1,
            fg.present(stats),
            names,
            colours,
            stats.clean_class,
            stats.class_counts,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0,
            frameon=False,
        )
        bars = _grouped(stats.class_counts, names, colours)
        ys = np.arange(len(bars))
        counts = [v for _, v, _ in bars]
        ax2.barh(ys, counts, color=[c for _, _, c in bars], edgecolor="black", linewidth=0.4)
        for y, v in zip(ys, counts, strict=True):
            ax2.text(v + stats.positions * 0.01, y, str(v), va="center", fontsize=7)
        ax2.set_yticks(ys, [n for n, _, _ in bars])
        ax2.invert_yaxis()
        ax2.set_xlim(0, stats.positions * 1.12)
        ax2.set_xlabel(f"windows won (of {stats.positions})")
        ax2.set_title("class counts")
        return fig


def class_map_png(stats: MapStats, names: Sequence[str], colours: Sequence[str]) -> bytes:
    """``class_map_figure`` as PNG."""
    with fg.style():
        return fg.png(class_map_figure(stats, names, colours))


def reveal_figure(
    occ: MapStats, rev: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> Figure:
    """Background-only (occlude) and patch-only (reveal) maps in one row: target probability and class."""
    with fg.style():
        fig = fg.figure(7.4, 2.5)
        axes = fig.subplots(1, 4)
        fg.heat(axes[0], fig, occ, target, f"image minus the window:\nP({target})", colourbar=False)
        fg.heat(axes[1], fig, rev, target, f"only the window shown:\nP({target})", colourbar=False)
        fg.classes(axes[2], occ, colours, "image minus the window:\ntop class")
        fg.classes(axes[3], rev, colours, "only the window shown:\ntop class")
        fg.row_legend(fig, axes, fg.present(occ, rev), names, colours, occ.clean_class)
        return fig


def reveal_png(
    occ: MapStats, rev: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> bytes:
    """``reveal_figure`` as PNG."""
    with fg.style():
        return fg.png(reveal_figure(occ, rev, names, colours, target))


def fills_figure(
    fills: Sequence[FillStats], labels: Sequence[str], names: Sequence[str], colours: Sequence[str]
) -> Figure:
    """Per fill, the class map under that fill (the table beside it shows an image made only of each fill
    and the model's answer for it)."""
    with fg.style():
        n = len(fills)
        fig = fg.figure(1.5 * n + 0.4, 2.5)
        axes = fig.subplots(1, n, squeeze=False)[0]
        for ax, f, label in zip(axes, fills, labels, strict=True):
            s = f.stats
            fg.classes(ax, s, colours, f"{label}\nclean kept {s.kept} of {s.positions}")
        shown = fg.present(*(f.stats for f in fills))
        fg.row_legend(fig, axes, shown, names, colours, fills[0].stats.clean_class)
        return fig


def fills_png(
    fills: Sequence[FillStats], labels: Sequence[str], names: Sequence[str], colours: Sequence[str]
) -> bytes:
    """``fills_figure`` as PNG."""
    with fg.style():
        return fg.png(fills_figure(fills, labels, names, colours))


def notebook_maps_figure(
    notebook: MapStats, same: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> Figure:
    """The notebook's square and true size x size windows on one image: heatmap and class map of each."""
    with fg.style():
        fig = fg.figure(7.4, 2.5)
        axes = fig.subplots(1, 4)
        size = notebook.patch[0]
        square = int(notebook.windows[..., 2].max())
        ours = f"notebook's {square}x{square}"
        fg.heat(axes[0], fig, notebook, target, f"{ours}:\nP({target})", colourbar=False)
        fg.classes(axes[1], notebook, colours, f"{ours}:\ntop class")
        fg.heat(axes[2], fig, same, target, f"true {size}x{size}:\nP({target})", colourbar=False)
        fg.classes(axes[3], same, colours, f"true {size}x{size}:\ntop class")
        fg.row_legend(fig, axes, fg.present(notebook, same), names, colours, notebook.clean_class)
        return fig


def notebook_maps_png(
    notebook: MapStats, same: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> bytes:
    """``notebook_maps_figure`` as PNG."""
    with fg.style():
        return fg.png(notebook_maps_figure(notebook, same, names, colours, target))


def thumbnail_png(image: np.ndarray, scale: int = 1) -> bytes:
    """An image or occluded input at its own pixels (``scale`` times, nearest neighbour), lossless, no
    metadata: the page enlarges it without smoothing."""
    data = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    img = Image.fromarray(data[..., 0] if data.shape[2] == 1 else data)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
