"""The drawing helpers every report figure shares, and the conventions they hold.

matplotlib figures on their own Agg canvases (no pyplot, no backend chosen for the process, no global
state). Figures are drawn at ``DPI`` for a page column of about 1,000 px (a 7.4-inch figure is 740 px
wide, shown at its own size), then stored as 256-colour palette PNGs (no dithering): a figure of flat
colours and text keeps its look in about a third of the bytes, which keeps the default report under its
size budget. PNGs carry no "Software" entry, so the same numbers give the same bytes. Axes are in image
pixels; grid maps are drawn with each window position as the cell it stands for. Colour maps: viridis
for probabilities (perceptually uniform, fixed 0..1 scale), RdBu_r for the signed drop (diverging,
centred on 0, red = the probability fell) drawn as a layer over a greyed copy of the image, and one
fixed colour per class across the report. Occluded inputs and images are stored at their own pixel size
and enlarged by the page (CSS ``image-rendering: pixelated``).

Class colours come from ``occsens.report.colours``: at most ``MAX_SHOWN_CLASSES`` get their own,
the rest are drawn in one grey and counted as "other" in legends and bar charts.

The figures themselves: one sample's in ``figures_sample``, those across samples in
``figures_overview``, an ``Occlusion`` result's (``res.plot``) in ``plots``; each has a function
returning the ``Figure`` and the report's PNG function wraps it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize
from matplotlib.figure import Figure
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


def figure(width: float, height: float) -> Figure:
    """A new figure on its own Agg canvas: no pyplot, no backend chosen for the process."""
    fig = ShownFigure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig: Figure) -> bytes:
    """The figure as a 256-colour palette PNG, without metadata."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    with Image.open(io.BytesIO(buf.getvalue())) as drawn:
        rgb = drawn.convert("RGB")
    # median cut, refined by one k-means pass: half the colour error of median cut alone, same size
    small = rgb.quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT, kmeans=1, dither=Image.Dither.NONE)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


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
    ax.set_xticks(np.arange(0, w + 1, step))
    ax.set_yticks(np.arange(0, h + 1, step))
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


def show_backdrop(ax, image: np.ndarray) -> None:  # noqa: ANN001
    h, w = image.shape[:2]
    ax.imshow(backdrop(image), extent=(0, w, h, 0), cmap="gray", vmin=0, vmax=1)


def drop_panel(ax, fig: Figure, image: np.ndarray, stats: MapStats, target: str, title: str) -> None:  # noqa: ANN001
    """The signed drop per window as a layer over the image's backdrop, the windows whose drop exceeds
    IMPORTANT_DROP outlined, with its colour bar."""
    show_backdrop(ax, image)
    xs, ys = mesh(stats)
    scale = drop_scale(stats.drop)
    ax.pcolormesh(xs, ys, drop_layer(stats.drop, scale), shading="flat")
    _mask_outline(ax, stats.drop > IMPORTANT_DROP, xs, ys)
    pixel_axes(ax, stats.image_size)
    ax.set_title(title)
    fig.colorbar(scale, ax=ax, shrink=0.85, label=f"drop in P({target}) = clean − occluded")


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


def scale_words(norm: Normalize) -> str:
    """The colour scale as the colour bar states it."""
    return f"scale {norm.vmin:.4f} to {norm.vmax:.4f}"


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
        fig.colorbar(drawn, ax=ax, shrink=0.85, label=f"P({target}), window occluded ({scale_words(norm)})")


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
) -> None:
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
    fig_or_ax.legend(handles=handles, **kwargs)


def present(*stats: MapStats) -> list[int]:
    return sorted({int(k) for s in stats for k in np.unique(s.class_map)})


def row_legend(
    fig: Figure,
    axes: Sequence,
    shown: Sequence[int],
    names: Sequence[str],
    colours: Sequence[str],
    clean: int | None,
) -> None:
    """A row of panels sharing the first one's axis labels, and one class legend beneath them."""
    for ax in axes[1:]:
        ax.set_xlabel("")
        ax.set_ylabel("")
    legend(fig, shown, names, colours, clean, loc="outside lower center", max_cols=6, frameon=False)
