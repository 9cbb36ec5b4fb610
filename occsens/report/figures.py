"""The drawing helpers every report figure shares, and the conventions they hold.

matplotlib figures on their own Agg canvases (no pyplot, no backend chosen for the process, no global
state). Figures are drawn at ``DPI`` for a page column of about 1,000 px (a 7.4-inch figure is 740 px
wide, shown at its own size), then stored as 256-colour palette PNGs (fast octree, no dithering): a
figure of flat colours and text keeps its look in about a third of the bytes, which keeps the default
report under its size budget. PNGs carry no "Software" entry, so the same numbers give the same bytes.
Axes are in image pixels; grid maps are drawn with each window position as the cell it stands for.
Colour maps: viridis for probabilities (perceptually uniform, fixed 0..1 scale), RdBu_r for the signed
drop (diverging, centred on 0, red = the probability fell) drawn as a layer over a greyed copy of the
image, and one fixed colour per class across the report. Occluded inputs and images are stored at their
own pixel size and enlarged by the page (CSS ``image-rendering: pixelated``).

Class colours come from ``occsens.report.colours``: at most ``MAX_SHOWN_CLASSES`` get their own,
the rest are drawn in one grey and counted as "other" in legends and bar charts.

The figures themselves: one sample's in ``figures_sample``, those across samples in
``figures_overview``, an ``Occlusion`` result's (``res.plot``) in ``plots``; each returns a ``Figure``,
which ``png`` (or ``uri``, for the page) stores.
"""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Sequence
from typing import Any, Literal, cast

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch, Rectangle
from PIL import Image

from occsens.report.analysis import Cell, MapStats
from occsens.report.colours import OTHER, OTHER_COLOUR, is_other
from occsens.report.thresholds import FLAT_DROP, IMPORTANT_DROP

DPI = 100
PALETTE = 256  # colours per stored figure: flat fills, text and a colour bar need no more
PROB_CMAP = "viridis"
DROP_CMAP = "RdBu_r"
# The drop map's backdrop: the image's luminance, contrast-stretched into this band of greys, so a dark
# image is not black under the overlay nor a bright one white, and red and blue read the same on both.
BACKDROP = (0.3, 0.8)
# The drop layer's opacity grows with |drop|: a window that changes nothing leaves the backdrop visible,
# one at the colour scale's end covers it almost fully.
DROP_ALPHA = (0.1, 0.85)
_STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "svg.hashsalt": "occsens",
    # file and class names are the user's: a "$" must print as itself, never start mathtext (which
    # raised on names such as "ship$_{$.png")
    "text.parse_math": False,
}


def style() -> Any:
    """The report's small, uniform font sizes, for the duration of one figure."""
    return matplotlib.rc_context(_STYLE)  # type: ignore[arg-type]


class ShownFigure(Figure):
    """A matplotlib ``Figure`` that Jupyter shows as a PNG wherever it is the value of a cell, also where
    pyplot was never imported (IPython registers its figure display only when pyplot's inline backend
    loads); nothing else differs."""

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
        return buf.getvalue()


def figure(width: float, height: float, layout: Literal["constrained"] | None = "constrained") -> Figure:
    """A new figure on its own Agg canvas: no pyplot, no backend chosen for the process.

    ``layout=None``: the caller places every axes itself (``maps_grid``, ``add_colourbar``, ``legend_below``),
    at fixed margins in inches measured from the text they hold. The report's map figures do: matplotlib's
    constrained layout measures every tick label of every panel twice per figure and was most of the
    report's drawing time. Figures of free-form bars (accuracy, takeovers) keep the constrained layout.
    """
    fig = ShownFigure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


# Fixed layout, in inches at the report's font sizes (``_STYLE``): what a tick, a label and a title take
# beside or above an axes (tick length 3.5 pt + pad 3.5 pt; matplotlib's defaults), with a little air.
TICK_SPACE = 0.1
LABEL_SPACE = 0.2  # an 8 pt axis label and its pad
TITLE_LINE = 0.16  # one line of a 9 pt title
TITLE_PAD = 0.1
EDGE = 0.06  # air at the figure's border
CBAR_PAD, CBAR_WIDTH = 0.08, 0.12  # a colour bar beside its map


@functools.lru_cache(maxsize=4096)  # titles are wrapped word by word; tick labels repeat in every figure
def text_size(text: str, points: float) -> tuple[float, float]:
    """(width, height) in inches of one line of ``text`` at ``points``, as the figures draw it."""
    w, h, _ = _measuring().get_text_width_height_descent(text, FontProperties(size=points), ismath=False)
    return w / DPI, h / DPI


@functools.cache
def _measuring() -> Any:
    return FigureCanvasAgg(Figure(dpi=DPI)).get_renderer()


def title_space(title_lines: int) -> float:
    return TITLE_PAD + TITLE_LINE * title_lines if title_lines else EDGE


def tick_width(size: tuple[int, int]) -> float:
    """Inches the y tick labels of a ``pixel_axes`` panel take, ticks included."""
    return text_size(str(max(size)), _STYLE["ytick.labelsize"])[0] + TICK_SPACE


def tick_height() -> float:
    return text_size("0", _STYLE["xtick.labelsize"])[1] + TICK_SPACE + 0.04


def add_axes(fig: Figure, left: float, bottom: float, width: float, height: float) -> Any:
    """An axes at (left, bottom) with (width, height), all in inches."""
    fw, fh = fig.get_size_inches()
    return fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))


def maps_grid(
    fig: Figure,
    rows: int,
    cols: int,
    size: tuple[int, int],
    *,
    top: float,
    bottom: float,
    left: float,
    right: float = EDGE,
    wgap: float,
    hgap: float = 0.0,
    shared: bool = False,
) -> np.ndarray:
    """``rows`` x ``cols`` map panels in image proportions (``size`` = (height, width) pixels), as large as
    the margins and gaps (inches) allow, centred across the figure and hung from its top.

    ``shared``: the panels show the same pixel coordinates, so only the first column carries y ticks and
    only the bottom row x ticks (``pixel_axes`` reads the panel's label); ticks are most of the cost of
    drawing a small map, and repeated on every panel they only repeat the first one's numbers."""
    fw, fh = fig.get_size_inches()
    h, w = size
    pw = (fw - left - right - wgap * (cols - 1)) / cols
    ph = (fh - top - bottom - hgap * (rows - 1)) / rows
    ph = min(ph, pw * h / w)
    pw = ph * w / h
    x0 = left + (fw - left - right - (pw * cols + wgap * (cols - 1))) / 2
    axes = np.empty((rows, cols), dtype=object)
    for r in range(rows):
        for c in range(cols):
            axes[r, c] = add_axes(fig, x0 + c * (pw + wgap), fh - top - ph - r * (ph + hgap), pw, ph)
            if shared:
                axes[r, c].set_label(("" if c == 0 else " no-y") + ("" if r == rows - 1 else " no-x"))
    return axes


def wrap(text: str, width: float, points: float = _STYLE["axes.titlesize"]) -> str:
    """``text`` broken at spaces into lines at most ``width`` inches wide at ``points`` (a word wider
    than that keeps its own line); its own line breaks are kept."""
    lines = []
    for line in text.split("\n"):
        current = ""
        for word in line.split(" "):
            trial = f"{current} {word}" if current else word
            if current and text_size(trial, points)[0] > width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return "\n".join(lines)


def titled_grid(
    fig: Figure,
    titles: Sequence[Sequence[str]],
    size: tuple[int, int],
    *,
    bottom: float,
    left: float,
    right: float = EDGE,
    wgap: float,
    hgap: float = 0.0,
    shared: bool = False,
) -> tuple[np.ndarray, list[list[str]]]:
    """``maps_grid`` with one title per panel (``titles``: rows of them): each title is wrapped to the
    width its panel and the air beside it offer, and the space above each row is what its longest title
    needs. A class name of any length stays inside the figure and off its neighbours' titles."""
    fw, fh = fig.get_size_inches()
    rows, cols = len(titles), len(titles[0])
    h, w = size
    lines = max(t.count("\n") + 1 for row in titles for t in row)
    across = (fw - left - right - wgap * (cols - 1)) / cols
    down = (fh - bottom - rows * title_space(lines) - hgap * (rows - 1)) / rows
    panel = min(across, down * w / h)
    room = 0.95 * (panel + min(wgap, 2 * max(left - EDGE, 0.0)))
    wrapped = [[wrap(t, room) for t in row] for row in titles]
    top = title_space(max(t.count("\n") + 1 for row in wrapped for t in row))
    axes = maps_grid(
        fig,
        rows,
        cols,
        size,
        top=top,
        bottom=bottom,
        left=left,
        right=right,
        wgap=wgap,
        hgap=hgap + top if rows > 1 else 0.0,
        shared=shared,
    )
    return axes, wrapped


def add_colourbar(fig: Figure, ax: Any, mappable: Any, label: str, shrink: float = 0.85) -> None:
    """``mappable``'s colour bar beside ``ax``: placed by the layout engine if the figure has one, else
    at ``CBAR_PAD`` to its right, ``shrink`` of its height."""
    if fig.get_layout_engine() is not None:
        fig.colorbar(mappable, ax=ax, shrink=shrink, label=label)
        return
    x, y, w, h = ax.get_position().bounds
    fw, fh = fig.get_size_inches()
    cax = fig.add_axes((x + w + CBAR_PAD / fw, y + h * (1 - shrink) / 2, CBAR_WIDTH / fw, h * shrink))
    centre = (y + h / 2) * fh  # the label runs along the bar, centred on it: wrapped to stay in the figure
    room = 2 * min(centre, fh - centre) - 2 * EDGE
    fig.colorbar(mappable, cax=cax, label=wrap(label, room, _STYLE["axes.labelsize"]))


def colourbar_space(labels: Sequence[str]) -> float:
    """Inches ``add_colourbar`` takes right of its map: pad, bar, its widest tick label and its label."""
    ticks = max(text_size(t, _STYLE["ytick.labelsize"])[0] for t in labels)
    return CBAR_PAD + CBAR_WIDTH + TICK_SPACE + ticks + LABEL_SPACE


def legend_size(fig: Figure, legend: Any) -> tuple[float, float]:
    """(width, height) in inches of ``legend``, measured (one artist, not the whole figure)."""
    box = legend.get_window_extent(cast(FigureCanvasAgg, fig.canvas).get_renderer())
    return box.width / DPI, box.height / DPI


def rgb(fig: Figure) -> Image.Image:
    """The figure drawn at ``DPI`` on its Agg canvas, as an RGB image.

    One draw, which runs the layout: ``savefig`` would draw twice (once to lay out, once to print) and
    encode a PNG only for it to be decoded again."""
    if fig.dpi != DPI:
        fig.set_dpi(DPI)
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB")


def png(fig: Figure) -> bytes:
    """The figure as a 256-colour palette PNG, without metadata, drawn in the report's ``style`` (tick
    labels are made when the figure is drawn)."""
    # fast octree: on the report's map figures (measured, issue 22) 0.01 s a figure against 0.06 s for
    # median cut with a k-means pass, a fifth fewer bytes, the same largest error (37 of 255 levels, on
    # antialiased text edges) and a mean error of 1.7 levels, which no colour bar shows; median cut
    # alone drew the dark end of a viridis colour bar in a brown of another box
    with style():
        picture = rgb(fig)
    small = picture.quantize(colors=PALETTE, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def data_uri(png_bytes: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")


def uri(fig: Figure) -> str:
    """The figure as the report embeds it: its palette PNG as a ``data:`` URI."""
    return data_uri(png(fig))


def _edges(centres: np.ndarray, length: int) -> np.ndarray:
    """Cell edges for grid positions centred at ``centres``: midpoints between them, 0 and the border."""
    mids = (centres[:-1] + centres[1:]) / 2
    return np.concatenate([[0.0], mids, [float(length)]])


def mesh(stats: MapStats) -> tuple[np.ndarray, np.ndarray]:
    cells = stats.cells.astype(np.float64)
    h, w = stats.image_size
    ys = _edges(cells[:, 0, 0] + cells[:, 0, 2] / 2, h)
    xs = _edges(cells[0, :, 1] + cells[0, :, 3] / 2, w)
    return xs, ys


def pixel_axes(ax, size: tuple[int, int], labels: bool = True) -> None:  # noqa: ANN001
    h, w = size
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_aspect("equal")
    step = 8 if max(h, w) <= 64 else max(8, (max(h, w) // 4 // 8) * 8)
    role = ax.get_label()  # set by ``maps_grid(shared=True)`` on panels whose ticks the first one gives
    ax.set_xticks([] if "no-x" in role else np.arange(0, w + 1, step))
    ax.set_yticks([] if "no-y" in role else np.arange(0, h + 1, step))
    if labels:
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")


def show_image(ax, image: np.ndarray, alpha: float = 1.0) -> None:  # noqa: ANN001
    h, w = image.shape[:2]
    data = image[..., 0] if image.shape[2] == 1 else image
    ax.imshow(
        np.clip(data, 0, 1),
        extent=(0, w, h, 0),
        interpolation="nearest",
        alpha=alpha,
        cmap="gray" if data.ndim == 2 else None,
        vmin=0,
        vmax=1,
    )


def backdrop(image: np.ndarray) -> np.ndarray:
    """The image as a greyed, contrast-normalised copy in the ``BACKDROP`` band: [H, W] in [0, 1]."""
    lum = image[..., 0] if image.shape[2] == 1 else image[..., :3] @ np.array([0.299, 0.587, 0.114])
    lo, hi = np.percentile(lum, [2, 98])
    norm = np.full(lum.shape, 0.5) if hi - lo < 1e-6 else np.clip((lum - lo) / (hi - lo), 0, 1)
    return BACKDROP[0] + (BACKDROP[1] - BACKDROP[0]) * norm


def drop_scale(values: np.ndarray) -> ScalarMappable:
    """The drop's colour scale: ``DROP_CMAP`` centred on 0, out to the largest |drop| and at least
    +-IMPORTANT_DROP, so drops too small to matter stay pale instead of being stretched to full colour."""
    limit = max(float(np.abs(values).max()), IMPORTANT_DROP)
    return ScalarMappable(Normalize(-limit, limit), DROP_CMAP)


def drop_layer(values: np.ndarray, scale: ScalarMappable) -> np.ndarray:
    """RGBA ``[..., 4]`` in [0, 1]: each drop's colour on ``scale``, its opacity growing with |drop| from
    ``DROP_ALPHA[0]`` (nothing changed: the backdrop shows) to ``DROP_ALPHA[1]`` (the scale's end)."""
    layer = np.asarray(scale.to_rgba(values), dtype=np.float64)
    low, high = DROP_ALPHA
    limit = float(scale.norm.vmax)  # type: ignore[arg-type]
    layer[..., 3] = low + (high - low) * np.clip(np.abs(values) / limit, 0, 1)
    return layer


def over_backdrop(image: np.ndarray, values: np.ndarray, scale: ScalarMappable) -> np.ndarray:
    """Per-pixel ``values`` [H, W] (a drop, an attribution) as ``drop_layer`` over the image's
    ``backdrop``, composited as matplotlib draws one layer over another: float RGB [H, W, 3] in [0, 1]."""
    layer = drop_layer(values, scale)
    alpha = layer[..., 3:]
    return layer[..., :3] * alpha + backdrop(image)[..., None] * (1 - alpha)


def drop_panel(ax, fig: Figure, image: np.ndarray, stats: MapStats, target: str, title: str) -> None:  # noqa: ANN001
    """The signed drop per window as a layer over the image's backdrop, the windows whose drop exceeds
    IMPORTANT_DROP outlined, with its colour bar."""
    h, w = image.shape[:2]
    ax.imshow(backdrop(image), extent=(0, w, h, 0), cmap="gray", vmin=0, vmax=1)
    xs, ys = mesh(stats)
    scale = drop_scale(stats.drop)
    ax.pcolormesh(xs, ys, drop_layer(stats.drop, scale), shading="flat")
    _mask_outline(ax, stats.drop > IMPORTANT_DROP, xs, ys)
    pixel_axes(ax, stats.image_size)
    ax.set_title(title)
    add_colourbar(fig, ax, scale, f"drop in P({target}) = clean − occluded")


def outline(ax, region: Cell, colour: str = "white", style: str = "-") -> None:  # noqa: ANN001
    ax.add_patch(
        Rectangle(
            (region.left, region.top),
            region.width,
            region.height,
            fill=False,
            edgecolor=colour,
            linewidth=1.6,
            linestyle=style,
        )
    )


def _mask_outline(ax, mask: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> None:  # noqa: ANN001
    """The outline of the cells where ``mask`` holds: black on a white halo, readable on any backdrop."""
    rows, cols = mask.shape
    segments = []
    for r in range(rows):
        for c in range(cols):
            if not mask[r, c]:
                continue
            x0, x1, y0, y1 = xs[c], xs[c + 1], ys[r], ys[r + 1]
            if r == 0 or not mask[r - 1, c]:
                segments.append([(x0, y0), (x1, y0)])
            if r == rows - 1 or not mask[r + 1, c]:
                segments.append([(x0, y1), (x1, y1)])
            if c == 0 or not mask[r, c - 1]:
                segments.append([(x0, y0), (x0, y1)])
            if c == cols - 1 or not mask[r, c + 1]:
                segments.append([(x1, y0), (x1, y1)])
    if segments:
        ax.add_collection(LineCollection(segments, colors="white", linewidths=2.6))
        ax.add_collection(LineCollection(segments, colors="black", linewidths=1.1))


def _score_norm(stats: MapStats) -> Normalize:
    """The fixed 0..1 scale for probabilities; a scoring callable's scores outside it keep their range."""
    lo, hi = float(np.min(stats.heatmap)), float(np.max(stats.heatmap))
    if 0 <= lo and hi <= 1:
        return Normalize(0, 1)
    return Normalize(lo, hi if hi > lo else lo + 1)


def map_norm(stats: MapStats) -> Normalize:
    """One map's own scale, for a heatmap drawn alone: from its lowest value to the clean probability.

    On the fixed 0..1 scale a confident image's map (every window between 0.98 and 0.9993) is one flat
    colour; stretched to its own range, the windows that lower the probability show. The range is never
    narrower than ``FLAT_DROP``, the drop below which the report calls a map flat, so noise on a flat
    map is not stretched into structure. Maps compared side by side keep the shared ``_score_norm``."""
    fixed = _score_norm(stats)
    if (fixed.vmin, fixed.vmax) != (0, 1):
        return fixed
    lo = float(np.min(stats.heatmap))
    hi = max(float(np.max(stats.heatmap)), stats.clean_target_prob)
    if hi - lo < FLAT_DROP:
        hi = min(1.0, lo + FLAT_DROP)
        lo = hi - FLAT_DROP
    return Normalize(lo, hi)


def heat(  # noqa: ANN001
    ax, fig: Figure, stats: MapStats, target: str, title: str, colourbar: bool = True, own_scale: bool = False
) -> None:
    """The target's probability per window; ``own_scale``: on the map's own range (``map_norm``), stated
    on the colour bar; else on the fixed 0..1 scale maps compared side by side share."""
    xs, ys = mesh(stats)
    norm = map_norm(stats) if own_scale else _score_norm(stats)
    drawn = ax.pcolormesh(xs, ys, stats.heatmap, cmap=PROB_CMAP, norm=norm, shading="flat")
    outline(ax, stats.most_important, "white")
    outline(ax, stats.most_important, "black", ":")
    pixel_axes(ax, stats.image_size)
    ax.set_title(title)
    if colourbar:
        add_colourbar(
            fig, ax, drawn, f"P({target}), window occluded (scale {norm.vmin:.4f} to {norm.vmax:.4f})"
        )


def classes(ax, stats: MapStats, colours: Sequence[str], title: str) -> None:  # noqa: ANN001
    xs, ys = mesh(stats)
    k = len(colours)
    ax.pcolormesh(
        xs,
        ys,
        stats.class_map,
        cmap=ListedColormap(colours),
        norm=BoundaryNorm(np.arange(k + 1) - 0.5, k),
        shading="flat",
        edgecolors="white",
        linewidth=0.3,
    )
    pixel_axes(ax, stats.image_size)
    ax.set_title(title)


def legend(
    fig_or_ax,  # noqa: ANN001
    shown: Sequence[int],
    names: Sequence[str],
    colours: Sequence[str],
    clean: int | None = None,
    counts: Sequence[int] | None = None,
    max_cols: int | None = None,
    **kwargs,  # noqa: ANN003
) -> Any:
    """One entry per ``shown`` class with its own colour, then one "other" entry for the shown
    classes that are grouped (their number, and their summed counts)."""
    handles = []
    grouped = [k for k in shown if is_other(colours, k)]
    for k in shown:
        if k in grouped:
            continue
        label = (
            names[k] + (f" ({counts[k]})" if counts is not None else "") + (" = clean" if k == clean else "")
        )
        handles.append(Patch(facecolor=colours[k], edgecolor="black", linewidth=0.4, label=label))
    if grouped:
        label = (
            f"{OTHER}: {len(grouped)} class{'' if len(grouped) == 1 else 'es'}"
            + (f" ({sum(counts[k] for k in grouped)})" if counts is not None else "")
            + (", clean among them" if clean in grouped else "")
        )
        handles.append(Patch(facecolor=OTHER_COLOUR, edgecolor="black", linewidth=0.4, label=label))
    if max_cols is not None:
        kwargs["ncols"] = min(max_cols, len(handles))
    return fig_or_ax.legend(handles=handles, **kwargs)


def legend_below(
    fig: Figure, shown: Sequence[int], names: Sequence[str], colours: Sequence[str], clean: int | None
) -> float:
    """The class legend centred at the bottom of a figure without a layout engine; the inches it takes."""
    drawn = legend(fig, shown, names, colours, clean, loc="lower center", max_cols=6, frameon=False)
    return legend_size(fig, drawn)[1]


def shared_labels(axes: Sequence) -> None:
    """A row or grid of panels in the same pixel coordinates: only the first panel names its axes."""
    for ax in list(axes)[1:]:
        ax.set_xlabel("")
        ax.set_ylabel("")


def present(*stats: MapStats) -> list[int]:
    return sorted({int(k) for s in stats for k in np.unique(s.class_map)})
