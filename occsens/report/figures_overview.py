"""The report's figures across samples: per-class accuracy, takeovers, the colour and greyscale twins,
and the notebook's square drawn once; each as a ``Figure`` (see ``occsens.report.figures``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from occsens.report import figures as fg
from occsens.report.analysis import GalleryItem, Takeover
from occsens.report.cards import Card, TwinComparison
from occsens.report.colours import grouped


def notebook_square_figure(notebook_input: GalleryItem, same_input: GalleryItem) -> Figure:
    """What the notebook greys at one position, next to the true window it draws: the two inputs."""
    with fg.style():
        fig = fg.figure(5.2, 2.9, layout=None)
        size = notebook_input.image.shape[:2]
        left = fg.EDGE + fg.LABEL_SPACE + fg.tick_width(size)
        red = "\n(red: the cell drawn in its maps)"
        nb, same = notebook_input.window, same_input.window
        titles = [
            f"the notebook: a {nb.height}x{nb.width} square{red}",
            f"a true {same.height}x{same.width} window{red}",
        ]
        axes, (titles,) = fg.titled_grid(
            fig,
            [titles],
            size,
            bottom=fg.EDGE + fg.tick_height() + fg.LABEL_SPACE,
            left=left,
            wgap=left + 0.2,
        )
        for ax, item, title in zip(axes[0], (notebook_input, same_input), titles, strict=True):
            fg.show_image(ax, item.image)
            fg.outline(ax, item.region, "red", "--")
            fg.pixel_axes(ax, item.image.shape[:2])
            ax.set_title(title)
        return fig


def accuracy_figure(cards: Sequence[tuple[str, Card]], names: Sequence[str]) -> Figure:
    """Per-class test accuracy of one or more models, grouped bars; the overall accuracy in the legend."""
    with fg.style():
        fig = fg.figure(7.4, 2.8)
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
        ax.set_title(
            "per-class accuracy on the test set"
        )  # the cards' test set: the report names no data set
        ax.legend(loc="upper center", ncols=len(cards), frameon=False)
        ax.grid(axis="y", linewidth=0.3)
        return fig


def takeover_figure(takeovers: Sequence[Takeover], names: Sequence[str], colours: Sequence[str]) -> Figure:
    """How many window positions each class takes over, across all samples; notebook geometry alongside.
    One bar per shown class, one "other" bar for the grouped ones."""
    with fg.style():
        fig = fg.figure(7.4, 2.9)
        ax = fig.add_subplot()
        notebook = all(t.notebook_positions is not None for t in takeovers)
        width = 0.4 if notebook else 0.7
        series: list[tuple[str, list[int], float, dict]] = [
            ("true windows", [t.positions for t in takeovers], -width / 2 if notebook else 0, {})
        ]
        if notebook:  # the notebook's square beside each class's bar, hatched
            counts = [t.notebook_positions or 0 for t in takeovers]
            series.append(("notebook's 5x square", counts, width / 2, {"hatch": "///", "alpha": 0.55}))
        outline: dict[str, Any] = {"edgecolor": "black", "linewidth": 0.4}
        for label, counts, offset, look in series:
            bars = grouped(counts, names, colours)
            xs, values = np.arange(len(bars)), [v for _, v, _ in bars]
            colour = [c for _, _, c in bars]
            ax.bar(xs + offset, values, width, color=colour, label=label, **look, **outline)
            for x, v in zip(xs, values, strict=True):
                ax.text(x + offset, v, str(v), ha="center", va="bottom", fontsize=6)
        ax.set_xticks(xs, [n for n, _, _ in bars], rotation=30, ha="right")
        ax.set_ylabel("positions taken over (all samples)")
        ax.set_title("which classes take over under occlusion (positions where they beat the clean class)")
        ax.margins(y=0.15)
        ax.legend(frameon=False)
        return fig


def twins_figure(
    comp: TwinComparison,
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    names: Sequence[str],
    colours: Sequence[str],
) -> Figure:
    """One row per sample: the image, then the colour and greyscale models' heatmaps and class maps."""
    with fg.style():
        n = len(comp.samples)
        fig = fg.figure(8.0, 1.75 * n + 0.7, layout=None)
        present = sorted({k for s in comp.samples for k in fg.present(s.colour, s.grey)})
        below = fg.legend_below(fig, present, names, colours, None)
        size = comp.samples[0].colour.image_size
        ticks, tick_h = fg.tick_width(size), fg.tick_height()
        bar = (0.12, tick_h + fg.LABEL_SPACE)  # the colour bar under the heatmaps, its ticks and label
        heads = [
            [
                title,
                *(
                    f"{which}: P({names[m.target]})\nclean {m.clean_target_prob:.3f}"
                    for which, m in (("colour", s.colour), ("greyscale", s.grey))
                ),
                "colour: top class",
                "greyscale: top class",
            ]
            for s, title in zip(comp.samples, titles, strict=True)
        ]
        axes, heads = fg.titled_grid(
            fig,
            heads,
            size,
            bottom=below + sum(bar) + 0.15 + tick_h,
            left=fg.EDGE + ticks,
            wgap=0.35,  # air between titles a little wider than their panel
            shared=True,
        )
        for i, (s, image) in enumerate(zip(comp.samples, images, strict=True)):
            fg.show_image(axes[i, 0], image)
            fg.pixel_axes(axes[i, 0], image.shape[:2], labels=False)
            axes[i, 0].set_title(heads[i][0])
            for j, stats in enumerate((s.colour, s.grey)):
                fg.heat(axes[i, 1 + j], fig, stats, names[stats.target], heads[i][1 + j], colourbar=False)
                fg.classes(axes[i, 3 + j], stats, colours, heads[i][3 + j])
            fg.shared_labels(axes[i])
        mappable = matplotlib.cm.ScalarMappable(norm=Normalize(0, 1), cmap=fg.PROB_CMAP)
        first, last = axes[-1, 1].get_position(), axes[-1, 2].get_position()
        fh = fig.get_size_inches()[1]
        width = 0.8 * (last.x1 - first.x0)
        cax = fig.add_axes((first.x0 + 0.1 * (last.x1 - first.x0), (below + bar[1]) / fh, width, bar[0] / fh))
        fig.colorbar(mappable, cax=cax, orientation="horizontal", label="P(clean class), window occluded")
        return fig
