"""The report's figures of one sample: its maps, their class counts, the reveal, fill and notebook maps.

Each function returns the matplotlib ``Figure`` (for the report through ``figures.uri``, for a notebook
through ``Occlusion.plot``); the drawing helpers they share and the conventions (colour maps, DPI,
class colours) are in ``occsens.report.figures``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from occsens.report import figures as fg
from occsens.report.analysis import FillStats, MapStats
from occsens.report.colours import grouped
from occsens.report.thresholds import IMPORTANT_DROP

_TICK_POINTS = 7  # the bar chart's class names, as ``figures._STYLE`` sets tick labels


def heatmap_figure(image: np.ndarray, stats: MapStats, target: str) -> Figure:
    """The target's probability per window (low = important) and the signed drop as a layer over a greyed,
    contrast-normalised copy of the image (opaque where the drop is large), the windows that matter
    (drop > IMPORTANT_DROP) outlined."""
    with fg.style():
        fig = fg.figure(7.4, 3.1, layout=None)
        size, bar = stats.image_size, fg.colourbar_space(["−0.0000"])
        left = fg.EDGE + fg.LABEL_SPACE + fg.tick_width(size)
        bottom = fg.EDGE + fg.tick_height() + fg.LABEL_SPACE
        titles = [
            f"P({target}) per window (low = important)",
            f"drop over the image (outlined: drop > {IMPORTANT_DROP:g})",
        ]
        axes, (titles,) = fg.titled_grid(
            fig, [titles], size, bottom=bottom, left=left, right=bar, wgap=bar + left
        )
        fg.heat(axes[0, 0], fig, stats, target, titles[0], own_scale=True)
        fg.drop_panel(axes[0, 1], fig, image, stats, target, titles[1])
        return fig


def class_map_figure(stats: MapStats, names: Sequence[str], colours: Sequence[str]) -> Figure:
    """The most probable class per window, with a class legend, and the class counts as bars (one per
    shown class, one "other" bar for the grouped ones)."""
    with fg.style():
        fig = fg.figure(6.4, 2.6, layout=None)  # narrow enough for the counts table beside it on the page
        size = stats.image_size
        left = fg.EDGE + fg.LABEL_SPACE + fg.tick_width(size)
        bottom = fg.EDGE + fg.tick_height() + fg.LABEL_SPACE
        height = fig.get_size_inches()[1] - fg.title_space(1) - bottom
        width = height * size[1] / size[0]
        ax1 = fg.add_axes(fig, left, bottom, width, height)
        fg.classes(ax1, stats, colours, "most probable class per window")
        drawn = fg.legend(
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
        bars = grouped(stats.class_counts, names, colours)
        # the bars take what the map, its legend and their class names leave, at least an inch (then the
        # map gives way: long class names shrink it, as they would under a layout engine)
        fw = fig.get_size_inches()[0]
        labels = max(fg.text_size(n, _TICK_POINTS)[0] for n, _, _ in bars) + fg.TICK_SPACE
        beside = fg.legend_size(fig, drawn)[0] + 0.15 + labels + 0.3  # 0.3: the counts past the longest bar
        if left + 1.02 * width + beside + 1.0 > fw - fg.EDGE:
            width = max(0.5, (fw - fg.EDGE - 1.0 - beside - left) / 1.02)
            height = width * size[0] / size[1]
            ax1.set_position(
                (left / fw, bottom / fig.get_size_inches()[1], width / fw, height / fig.get_size_inches()[1])
            )
            # the title, centred on the smaller map, wrapped to what the map and the margin left of it offer
            ax1.set_title(fg.wrap(ax1.get_title(), width + 2 * (left - fg.EDGE)))
        start = left + 1.02 * width + beside - 0.3
        ax2 = fg.add_axes(fig, start, bottom, fw - fg.EDGE - 0.3 - start, height)
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


def reveal_figure(
    occ: MapStats, rev: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> Figure:
    """Background-only (occlude) and patch-only (reveal) maps in one row: both heatmaps, then both class
    maps."""
    first, second = ("image minus the window", occ), ("only the window shown", rev)
    panels = [(first, "heat"), (second, "heat"), (first, "classes"), (second, "classes")]
    return _maps_row(panels, names, colours, target)


def fills_figure(
    fills: Sequence[FillStats], labels: Sequence[str], names: Sequence[str], colours: Sequence[str]
) -> Figure:
    """Per fill, the class map under that fill (the table beside it shows an image made only of each fill
    and the model's answer for it)."""
    with fg.style():
        n = len(fills)
        fig = fg.figure(1.5 * n + 0.4, 2.5, layout=None)
        shown = fg.present(*(f.stats for f in fills))
        below = fg.legend_below(fig, shown, names, colours, fills[0].stats.clean_class)
        titles = [
            f"{label}\nclean kept {f.stats.kept} of {f.stats.positions}"
            for f, label in zip(fills, labels, strict=True)
        ]
        axes, titles = _row(fig, titles, fills[0].stats.image_size, below)
        for ax, f, title in zip(axes, fills, titles, strict=True):
            fg.classes(ax, f.stats, colours, title)
        fg.shared_labels(axes)
        return fig


def notebook_maps_figure(
    notebook: MapStats, same: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> Figure:
    """The notebook's square and true size x size windows on one image: heatmap and class map of each."""
    size, square = notebook.patch[0], int(notebook.windows[..., 2].max())
    ours, true = (f"notebook's {square}x{square}", notebook), (f"true {size}x{size}", same)
    return _maps_row(
        [(ours, "heat"), (ours, "classes"), (true, "heat"), (true, "classes")], names, colours, target
    )


def _maps_row(
    panels: Sequence[tuple[tuple[str, MapStats], str]],
    names: Sequence[str],
    colours: Sequence[str],
    target: str,
) -> Figure:
    """One row of panels, each a (label, map) drawn as its heatmap ("heat") or class map ("classes"), one
    class legend beneath."""
    maps = [m for (_, m), _ in panels]
    with fg.style():
        fig = fg.figure(7.4, 2.5, layout=None)
        below = fg.legend_below(fig, fg.present(*maps), names, colours, maps[0].clean_class)
        titles = [
            f"{label}:\n" + (f"P({target})" if kind == "heat" else "top class") for (label, _), kind in panels
        ]
        axes, titles = _row(fig, titles, maps[0].image_size, below)
        for ax, ((_, m), kind), title in zip(axes, panels, titles, strict=True):
            if kind == "heat":
                fg.heat(ax, fig, m, target, title, colourbar=False)
            else:
                fg.classes(ax, m, colours, title)
        fg.shared_labels(axes)
        return fig


def _row(fig: Figure, titles: list[str], size: tuple[int, int], below: float) -> tuple[list, list[str]]:
    """One map panel per title in a row, above ``below`` inches of legend, the titles wrapped to fit; the
    first panel's ticks and axis labels serve all of them."""
    ticks = fg.tick_width(size)
    axes, (wrapped,) = fg.titled_grid(
        fig,
        [titles],
        size,
        bottom=below + fg.tick_height() + fg.LABEL_SPACE,
        left=fg.EDGE + fg.LABEL_SPACE + ticks,
        wgap=0.4,  # air between titles a little wider than their panel
        shared=True,
    )
    return list(axes[0]), wrapped


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
