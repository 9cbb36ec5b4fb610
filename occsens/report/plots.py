"""An ``Occlusion`` result as figures, an array and a summary, for a notebook: ``res.plot(kind, i)``,
``res.overlay(i)`` and the result's inline display (``occlusion_html``).

The figures are drawn by the report's own panels and figure functions (``occsens.report.figures`` and
``figures_sample``), so a map looks the same inline as in the report. ``kind``:

* ``"summary"`` (default): the image, the heatmap, the drop over the image and the class map, in a row;
* ``"heatmap"``: the target's probability per window (low = important; high where ``reveal=True``);
* ``"drop"``: clean minus occluded probability per window, as a layer over a greyed copy of the image;
* ``"class_map"``: the most probable class per window and the class counts (the report's figure);
* ``"attribution"``: ``res.attribution()`` (each pixel's mean drop) over the image: ``overlay``.

Class names: ``class_names`` (one per class), else "class 0", "class 1", ...: a result does not know
what its model's classes are called, and a 10-class model need not be CIFAR-10's (the shipped models'
names are ``occsens.cifar.data.CIFAR10_CLASSES``).

``overlay`` returns uint8 RGB ``[H, W, 3]`` (what ``PIL.Image.fromarray`` and ``imshow`` take): the
attribution in the drop's colours (RdBu_r centred on 0, red = the probability fell), opaque where it is
large, over the image's contrast-normalised grey; the colour scale runs to the largest |attribution| and
at least ``IMPORTANT_DROP``, as the report's drop map does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from occsens.engine import Occlusion
from occsens.engine.model import scores_in_words
from occsens.errors import OcclusionError, integer, shown
from occsens.report import analysis as an
from occsens.report import figures as fg
from occsens.report import figures_sample as fs
from occsens.report.colours import class_colours, shown_classes
from occsens.report.data import class_names_for
from occsens.report.display import MAX_ROWS, snippet
from occsens.report.formatting import prob, region_text

KINDS = ("summary", "heatmap", "drop", "class_map", "attribution")


def image_index(res: Occlusion, i: Any) -> int:
    """``i`` as the index of one of ``res``'s images, or ``OcclusionError`` naming the valid range."""
    n = len(res.images)
    return integer(i, "i", low=0, high=n - 1, valid=f"an image index in 0..{n - 1}")


def overlay(res: Occlusion, i: Any = 0) -> np.ndarray:
    """uint8 RGB [H, W, 3]: image ``i``'s attribution over the image (see the module docstring)."""
    n = image_index(res, i)
    values = res.attribution()[n].numpy().astype(np.float64)
    rgb = fg.over_backdrop(an.hwc(res.images[n]), values, fg.drop_scale(values))
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def plot(
    res: Occlusion, kind: Any = "summary", i: Any = 0, *, class_names: Sequence[str] | None = None
) -> Figure:
    """The figure ``kind`` of image ``i`` (see the module docstring), as a matplotlib ``Figure``."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise OcclusionError(
            f"kind must be one of {', '.join(map(repr, KINDS))}, got {shown(kind)}"
            + (" (the image is chosen with i=)" if isinstance(kind, int) else "")
        )
    n = image_index(res, i)
    names = class_names_for(class_names, res.num_classes)
    stats = an.map_stats(res, n)
    target = names[stats.target]
    image = an.hwc(res.images[n])
    if kind == "class_map":
        return fs.class_map_figure(stats, names, _colours(stats))
    if kind == "summary":
        return summary_figure(image, stats, names, _colours(stats), f"image {n}")
    with fg.style():
        fig = fg.figure(4.2, 3.4)
        ax = fig.add_subplot()
        if kind == "heatmap":
            fg.heat(ax, fig, stats, target, f"image {n}: {_heat_title(stats, target)}")
        elif kind == "drop":
            fg.drop_panel(ax, fig, image, stats, target, f"image {n}: drop over the image")
        else:
            values = res.attribution()[n].numpy().astype(np.float64)
            scale = fg.drop_scale(values)
            h, w = stats.image_size
            ax.imshow(fg.over_backdrop(image, values, scale), extent=(0, w, h, 0), interpolation="nearest")
            fg.pixel_axes(ax, stats.image_size)
            ax.set_title(f"image {n}: attribution (mean drop per pixel)")
            fig.colorbar(scale, ax=ax, shrink=0.85, label=f"mean drop in P({target}) of the windows over it")
        return fig


def summary_figure(
    image: np.ndarray, stats: an.MapStats, names: Sequence[str], colours: Sequence[str], label: str
) -> Figure:
    """The image with its clean class, the heatmap, the drop over the image and the class map, in a row,
    the classes' legend beneath."""
    target = names[stats.target]
    with fg.style():
        fig = fg.figure(10.4, 3.1)
        axes = fig.subplots(1, 4)
        fg.show_image(axes[0], image)
        fg.pixel_axes(axes[0], stats.image_size)
        clean = names[stats.clean_class]
        prob = stats.clean_target_prob if stats.target == stats.clean_class else None
        axes[0].set_title(f"{label}: {clean}" + (f" ({prob:.3f})" if prob is not None else ""))
        fg.heat(axes[1], fig, stats, target, _heat_title(stats, target).replace(" (", "\n("))
        fg.drop_panel(axes[2], fig, image, stats, target, "drop over the image")
        fg.classes(axes[3], stats, colours, "most probable class\nper window")
        fg.shared_labels(axes)  # the class legend beneath the row (the constrained layout places it)
        fg.legend(
            fig,
            fg.present(stats),
            names,
            colours,
            stats.clean_class,
            loc="outside lower center",
            max_cols=6,
            frameon=False,
        )
        return fig


def _heat_title(stats: an.MapStats, target: str) -> str:
    shown_alone = "only the window shown" if stats.reveal else "low = important"
    return f"P({target}) per window ({shown_alone})"


def _colours(stats: an.MapStats) -> list[str]:
    """One colour per class; past ``MAX_SHOWN_CLASSES`` classes, those that win most windows keep theirs."""
    frequency = list(stats.class_counts)
    frequency[stats.clean_class] += 1  # the clean class keeps its colour even where it wins no window
    return class_colours(len(frequency), shown_classes(frequency))


def occlusion_html(res: Occlusion) -> str:
    """``Occlusion._repr_html_``: the settings, each image's clean class and largest drop, and the
    summary figure of the first image (as a palette PNG, as in the report)."""
    n, c, h, w = res.images.shape
    (rows, cols), (ph, pw), (sh, sw) = res.grid, res.plan.patch, res.plan.stride
    names = class_names_for(None, res.num_classes)
    geometry = (
        " (the notebook's geometry: each cell greys a larger square)"
        if res.plan.geometry == "notebook"
        else ""
    )
    settings = [
        ("images", f"{n} of {c}x{h}x{w} (channels x height x width)"),
        ("windows", f"patch {ph}x{pw}, stride {sh}x{sw}: {rows}x{cols} = {rows * cols} positions{geometry}"),
        ("fill", f"{res.fill}, " + ("only the window shown (reveal)" if res.reveal else "over the window")),
        ("scores", scores_in_words(res.output)),
        ("engine", res.engine),
    ]
    table = []
    for k in range(min(n, MAX_ROWS)):
        m = an.map_stats(res, k)
        clean = float(res.clean_probs[k, m.clean_class])
        table.append(
            (
                k,
                names[m.clean_class],
                prob(clean),
                names[m.target],
                prob(m.max_drop),
                region_text(m.most_important),
            )
        )
    stats = an.map_stats(res, 0)
    figure = fg.uri(summary_figure(an.hwc(res.images[0]), stats, names, _colours(stats), "image 0"))
    return snippet(
        "occlusion",
        line=repr(res).strip("<>").removeprefix("Occlusion: "),
        settings=settings,
        header=("image", "clean class", "P(clean)", "target", "largest drop", "at"),
        rows=table,
        more=max(0, n - MAX_ROWS),
        figure=figure,
        alt="image 0, its heatmap, drop map and class map",
        hint=f"res.plot(kind, i) draws one figure (kind: {', '.join(KINDS)}); res.overlay(i) gives the "
        "attribution over the image as an RGB array; class_names=[...] names the classes.",
    )
