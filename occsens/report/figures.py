"""The report's figures: each function draws one figure from analysis numbers and returns PNG bytes.

matplotlib with the Agg canvas (no pyplot, no global state); PNGs are saved without the
"Software" entry, so the same numbers give the same bytes. Axes are in image pixels; grid maps
are drawn with each window position as the cell it stands for. Colour maps: viridis for
probabilities (perceptually uniform, fixed 0..1 scale), RdBu_r for the signed drop (diverging,
centred on 0, red = the probability fell), and one fixed colour per class across the report.

Class colours come from ``occsens.report.colours``: at most ``MAX_SHOWN_CLASSES`` get their own,
the rest are drawn in one grey and counted as "other" in legends and bar charts.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from occsens.report.analysis import (  # noqa: E402
    IMPORTANT_DROP,
    Card,
    Cell,
    FillStats,
    GalleryItem,
    MapStats,
    Takeover,
    TwinComparison,
)
from occsens.report.colours import OTHER, OTHER_COLOUR, _grouped, is_other  # noqa: E402

DPI = 100
PROB_CMAP = "viridis"
DROP_CMAP = "RdBu_r"
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


def _style() -> Any:
    """The report's small, uniform font sizes, for the duration of one figure."""
    return matplotlib.rc_context(_STYLE)  # type: ignore[arg-type]


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _edges(centres: np.ndarray, length: int) -> np.ndarray:
    """Cell edges for grid positions centred at ``centres``: midpoints between them, 0 and the border."""
    mids = (centres[:-1] + centres[1:]) / 2
    return np.concatenate([[0.0], mids, [float(length)]])


def _mesh(stats: MapStats) -> tuple[np.ndarray, np.ndarray]:
    cells = stats.cells.astype(np.float64)
    h, w = stats.image_size
    ys = _edges(cells[:, 0, 0] + cells[:, 0, 2] / 2, h)
    xs = _edges(cells[0, :, 1] + cells[0, :, 3] / 2, w)
    return xs, ys


def _pixel_axes(ax, size: tuple[int, int], labels: bool = True) -> None:  # noqa: ANN001
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


def _show_image(ax, image: np.ndarray, alpha: float = 1.0) -> None:  # noqa: ANN001
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


def _outline(ax, region: Cell, colour: str = "white", style: str = "-") -> None:  # noqa: ANN001
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


def _score_norm(stats: MapStats) -> Normalize:
    """The fixed 0..1 scale for probabilities; a scoring callable's scores outside it keep their range."""
    lo, hi = float(np.min(stats.heatmap)), float(np.max(stats.heatmap))
    if 0 <= lo and hi <= 1:
        return Normalize(0, 1)
    return Normalize(lo, hi if hi > lo else lo + 1)


def _heat(ax, fig: Figure, stats: MapStats, target: str, title: str, colourbar: bool = True) -> None:  # noqa: ANN001
    xs, ys = _mesh(stats)
    mesh = ax.pcolormesh(xs, ys, stats.heatmap, cmap=PROB_CMAP, norm=_score_norm(stats), shading="flat")
    _outline(ax, stats.most_important, "white")
    _outline(ax, stats.most_important, "black", ":")
    _pixel_axes(ax, stats.image_size)
    ax.set_title(title)
    if colourbar:
        fig.colorbar(mesh, ax=ax, shrink=0.85, label=f"P({target}), window occluded")


def _classes(ax, stats: MapStats, colours: Sequence[str], title: str) -> None:  # noqa: ANN001
    xs, ys = _mesh(stats)
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
    _pixel_axes(ax, stats.image_size)
    ax.set_title(title)


def _legend(
    fig_or_ax,  # noqa: ANN001
    present: Sequence[int],
    names: Sequence[str],
    colours: Sequence[str],
    clean: int | None = None,
    counts: Sequence[int] | None = None,
    max_cols: int | None = None,
    **kwargs,  # noqa: ANN003
) -> None:
    """One entry per ``present`` class with its own colour, then one "other" entry for the present
    classes that are grouped (their number, and their summed counts)."""
    handles = []
    grouped = [k for k in present if is_other(colours, k)]
    for k in present:
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


def _present(*stats: MapStats) -> list[int]:
    return sorted({int(k) for s in stats for k in np.unique(s.class_map)})


# --------------------------------------------------------------------------- per sample


def image_png(image: np.ndarray, title: str) -> bytes:
    """The sample, enlarged with nearest-neighbour pixels, axes in pixels."""
    with _style():
        fig = _figure(2.7, 2.8)
        ax = fig.add_subplot()
        _show_image(ax, image)
        _pixel_axes(ax, image.shape[:2])
        ax.set_title(title)
        return _png(fig)


def heatmap_png(image: np.ndarray, stats: MapStats, target: str) -> bytes:
    """The target's probability per window (low = important) and the signed drop over the image."""
    with _style():
        fig = _figure(7.4, 3.1)
        ax1, ax2 = fig.subplots(1, 2)
        _heat(ax1, fig, stats, target, f"P({target}) per window (low = important)")
        _show_image(ax2, image)
        xs, ys = _mesh(stats)
        # At least +-IMPORTANT_DROP: drops too small to matter stay pale, not stretched to full colour.
        limit = max(float(np.abs(stats.drop).max()), IMPORTANT_DROP)
        mesh = ax2.pcolormesh(
            xs, ys, stats.drop, cmap=DROP_CMAP, norm=Normalize(-limit, limit), alpha=0.6, shading="flat"
        )
        _outline(ax2, stats.most_important_window, "black")
        _pixel_axes(ax2, stats.image_size)
        ax2.set_title("drop over the image (red = probability fell)")
        fig.colorbar(mesh, ax=ax2, shrink=0.85, label=f"drop in P({target}) = clean − occluded")
        return _png(fig)


def class_map_figure(stats: MapStats, names: Sequence[str], colours: Sequence[str]) -> Figure:
    """The most probable class per window, with a class legend, and the class counts as bars (one per
    shown class, one "other" bar for the grouped ones)."""
    with _style():
        fig = _figure(7.4, 3.1)
        ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.05])
        _classes(ax1, stats, colours, "most probable class per window")
        _legend(
            ax1,
            _present(stats),
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
    with _style():
        return _png(class_map_figure(stats, names, colours))


def reveal_png(
    occ: MapStats, rev: MapStats, names: Sequence[str], colours: Sequence[str], target: str
) -> bytes:
    """Background-only (occlude) and patch-only (reveal) maps side by side: target probability and class."""
    with _style():
        fig = _figure(7.4, 6.0)
        axes = fig.subplots(2, 2)
        _heat(axes[0, 0], fig, occ, target, f"image minus the window: P({target})", colourbar=False)
        _heat(axes[0, 1], fig, rev, target, f"only the window shown: P({target})")
        _classes(axes[1, 0], occ, colours, "image minus the window: top class")
        _classes(axes[1, 1], rev, colours, "only the window shown: top class")
        _legend(
            fig,
            _present(occ, rev),
            names,
            colours,
            occ.clean_class,
            loc="outside lower center",
            max_cols=5,
            frameon=False,
        )
        return _png(fig)


def fills_png(
    fills: Sequence[FillStats], labels: Sequence[str], names: Sequence[str], colours: Sequence[str]
) -> bytes:
    """Per fill: an image made only of the fill with the model's answer, and the class map under that fill."""
    with _style():
        n = len(fills)
        fig = _figure(1.75 * n + 0.4, 4.3)
        axes = fig.subplots(2, n, squeeze=False)
        for i, (f, label) in enumerate(zip(fills, labels, strict=True)):
            _show_image(axes[0, i], f.only_image)
            _pixel_axes(axes[0, i], f.stats.image_size, labels=i == 0)
            axes[0, i].set_title(f"only {label}:\n{names[f.only_class]} {f.only_prob:.3f}")
            s = f.stats
            _classes(axes[1, i], s, colours, f"{label}: clean kept\n{s.kept} of {s.positions}")
            if i:
                axes[1, i].set_xlabel("")
                axes[1, i].set_ylabel("")
        _legend(
            fig,
            _present(*(f.stats for f in fills)),
            names,
            colours,
            fills[0].stats.clean_class,
            loc="outside lower center",
            max_cols=6,
            frameon=False,
        )
        return _png(fig)


def geometry_png(
    notebook: MapStats,
    same: MapStats,
    notebook_input: GalleryItem,
    same_input: GalleryItem,
    names: Sequence[str],
    colours: Sequence[str],
    target: str,
) -> bytes:
    """The notebook's 5*size square drawn as a size cell, next to true size x size windows."""
    with _style():
        fig = _figure(7.6, 5.6)
        axes = fig.subplots(2, 3)
        size = notebook.patch[0]
        rows = (
            (
                notebook,
                notebook_input,
                f"notebook: {notebook_input.window.height}x{notebook_input.window.width} square",
            ),
            (same, same_input, f"true {size}x{size} window"),
        )
        for i, (stats, item, label) in enumerate(rows):
            _show_image(axes[i, 0], item.image)
            if item.window != item.region:
                _outline(axes[i, 0], item.region, "red", "--")
            _pixel_axes(axes[i, 0], stats.image_size)
            axes[i, 0].set_title(
                f"{label}\n"
                + (
                    "(red: the cell it is drawn as)"
                    if item.window != item.region
                    else "(the cell is the window)"
                )
            )
            _heat(axes[i, 1], fig, stats, target, f"P({target}) per cell")
            _classes(axes[i, 2], stats, colours, "top class per cell")
        _legend(
            fig,
            _present(notebook, same),
            names,
            colours,
            notebook.clean_class,
            loc="outside lower center",
            max_cols=6,
            frameon=False,
        )
        return _png(fig)


def thumbnail_png(image: np.ndarray, scale: int = 4) -> bytes:
    """An occluded input, enlarged ``scale`` times with nearest-neighbour pixels (PIL, no metadata)."""
    data = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    img = Image.fromarray(data[..., 0] if data.shape[2] == 1 else data)
    img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


# --------------------------------------------------------------------------- across samples


def accuracy_png(cards: Sequence[tuple[str, Card]], names: Sequence[str]) -> bytes:
    """Per-class test accuracy of one or more models, grouped bars; the overall accuracy in the legend."""
    with _style():
        fig = _figure(7.4, 2.8)
        ax = fig.add_subplot()
        k = len(names)
        width = 0.8 / len(cards)
        greys = ["#3b6ea8", "#9a9a9a", "#d08c2f"]
        for i, (label, card) in enumerate(cards):
            xs = np.arange(k) + (i - (len(cards) - 1) / 2) * width
            ax.bar(
                xs,
                card.per_class_accuracy,
                width,
                color=greys[i % len(greys)],
                edgecolor="black",
                linewidth=0.4,
                label=f"{label} (test accuracy {card.test_accuracy:.4f})",
            )
        ax.set_xticks(np.arange(k), names, rotation=30, ha="right")
        ax.set_ylim(0, 1.22)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("test accuracy of the class")
        ax.set_title("per-class accuracy on the CIFAR-10 test set")
        ax.legend(loc="upper center", ncols=len(cards), frameon=False)
        ax.grid(axis="y", linewidth=0.3)
        return _png(fig)


def takeover_figure(takeovers: Sequence[Takeover], names: Sequence[str], colours: Sequence[str]) -> Figure:
    """How many window positions each class takes over, across all samples; notebook geometry alongside.
    One bar per shown class, one "other" bar for the grouped ones."""
    with _style():
        fig = _figure(7.4, 2.9)
        ax = fig.add_subplot()
        bars = _grouped([t.positions for t in takeovers], names, colours)
        xs = np.arange(len(bars))
        bar_colours = [c for _, _, c in bars]
        notebook = all(t.notebook_positions is not None for t in takeovers)
        width = 0.4 if notebook else 0.7
        main = [v for _, v, _ in bars]
        ax.bar(
            xs - (width / 2 if notebook else 0),
            main,
            width,
            color=bar_colours,
            edgecolor="black",
            linewidth=0.4,
            label="true windows",
        )
        if notebook:
            nb = [v for _, v, _ in _grouped([t.notebook_positions or 0 for t in takeovers], names, colours)]
            ax.bar(
                xs + width / 2,
                nb,
                width,
                color=bar_colours,
                edgecolor="black",
                linewidth=0.4,
                hatch="///",
                alpha=0.55,
                label="notebook's 5x square",
            )
            for x, v in zip(xs, nb, strict=True):
                ax.text(x + width / 2, v, str(v), ha="center", va="bottom", fontsize=6)
        for x, v in zip(xs, main, strict=True):
            ax.text(x - (width / 2 if notebook else 0), v, str(v), ha="center", va="bottom", fontsize=6)
        ax.set_xticks(xs, [n for n, _, _ in bars], rotation=30, ha="right")
        ax.set_ylabel("positions taken over (all samples)")
        ax.set_title("which classes take over under occlusion (positions where they beat the clean class)")
        ax.margins(y=0.15)
        ax.legend(frameon=False)
        return fig


def takeover_png(takeovers: Sequence[Takeover], names: Sequence[str], colours: Sequence[str]) -> bytes:
    """``takeover_figure`` as PNG."""
    with _style():
        return _png(takeover_figure(takeovers, names, colours))


def twins_png(
    comp: TwinComparison,
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    names: Sequence[str],
    colours: Sequence[str],
) -> bytes:
    """One row per sample: the image, then the colour and greyscale models' heatmaps and class maps."""
    with _style():
        n = len(comp.samples)
        fig = _figure(8.0, 1.75 * n + 0.7)
        axes = fig.subplots(n, 5, squeeze=False)
        for i, (s, image, title) in enumerate(zip(comp.samples, images, titles, strict=True)):
            _show_image(axes[i, 0], image)
            _pixel_axes(axes[i, 0], image.shape[:2], labels=False)
            axes[i, 0].set_title(title)
            for j, (stats, _probs, which) in enumerate(
                ((s.colour, s.colour_probs, "colour"), (s.grey, s.grey_probs, "greyscale"))
            ):
                target = names[stats.target]
                _heat(
                    axes[i, 1 + j],
                    fig,
                    stats,
                    target,
                    f"{which}: P({target})\nclean {stats.clean_target_prob:.3f}",
                    colourbar=False,
                )
                _classes(axes[i, 3 + j], stats, colours, f"{which}: top class")
            for ax in axes[i, 1:]:
                ax.set_xlabel("")
                ax.set_ylabel("")
        mappable = matplotlib.cm.ScalarMappable(norm=Normalize(0, 1), cmap=PROB_CMAP)
        fig.colorbar(
            mappable, ax=axes[:, 1:3], shrink=0.6, location="bottom", label="P(clean class), window occluded"
        )
        present = sorted({k for s in comp.samples for k in _present(s.colour, s.grey)})
        _legend(
            fig,
            present,
            names,
            colours,
            loc="outside lower center",
            max_cols=6,
            frameon=False,
        )
        return _png(fig)
