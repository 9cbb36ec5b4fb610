"""The analysis numbers on oracle models whose answer is known: where the evidence is, which class takes
over, whether the fill decides it, and the notebook's geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from occsens.cifar.data import CIFAR10_CLASSES
from occsens.report import analysis as an
from occsens.report.cards import Card
from occsens.report.runs import measure, runs_count

from .oracles import AIRPLANE, CAT, LEFT, SHIP, TOP, RegionDetector, block_image


@pytest.fixture(scope="module")
def sample() -> an.SampleAnalysis:
    runs = measure(RegionDetector(), block_image(), patch=4, fill=0.5)
    (result,) = an.analyse(runs, names=CIFAR10_CLASSES, sample_names=["block"], indices=[None], labels=[SHIP])
    return result


def test_clean_prediction_and_top3(sample: an.SampleAnalysis) -> None:
    logits = RegionDetector()(block_image())[0]
    probs = torch.softmax(logits, 0).double().numpy()
    assert sample.clean_class == SHIP
    assert sample.clean_prob == pytest.approx(probs[SHIP], rel=1e-6)
    assert [k for k, _ in sample.top3][0] == SHIP
    assert sum(p for _, p in sample.top3) <= 1 + 1e-6


def test_most_important_region_is_the_block(sample: an.SampleAnalysis) -> None:
    m = sample.main
    assert (m.most_important.top, m.most_important.left, m.most_important.height, m.most_important.width) == (
        8,
        16,
        4,
        4,
    )
    assert (m.most_important.row, m.most_important.col) == (2, 4)
    assert m.max_drop == pytest.approx(m.clean_target_prob - m.min_target_prob)
    assert m.windows_dropping == 1
    assert np.count_nonzero(np.abs(m.drop) > 1e-6) == 1  # no other window changes anything


def test_replacement_class_and_where(sample: an.SampleAnalysis) -> None:
    m = sample.main
    assert m.kept == 63 and m.positions == 64 and sum(m.class_counts) == 64
    assert m.replacement == AIRPLANE and m.replacement_count == 1
    assert m.replacement_extent == an.CellSpan(8, 11, 16, 19, 1)
    assert m.replacement_best is not None and (m.replacement_best.top, m.replacement_best.left) == (8, 16)
    assert m.replacement_counts() == {AIRPLANE: 1}


def test_reveal_shows_only_the_window(sample: an.SampleAnalysis) -> None:
    # Only the block's own window keeps the block; every other window shows grey where the block was.
    assert sample.reveal.reveal and not sample.main.reveal
    assert sample.reveal.kept == 1
    assert sample.reveal.class_counts[AIRPLANE] == 63
    # Occluding: ship everywhere but the block's window; revealing: ship only at the block's window.
    assert sample.agreement == 0
    both = sample.main.class_map == sample.reveal.class_map
    assert int(both.sum()) == sample.agreement


def test_fills_decide_the_replacement(sample: an.SampleAnalysis) -> None:
    by_fill = {f.fill: f for f in sample.fills}
    assert list(by_fill) == ["0.5", "mean", "blur", "noise", "0"]  # the user's fill first, no repeat
    assert by_fill["0.5"].stats.replacement == AIRPLANE
    assert by_fill["0"].stats.replacement == CAT
    assert sample.fill_driven
    # An image made only of grey is airplane, only of black is cat: the replacement is the fill's own class.
    assert by_fill["0.5"].only_class == AIRPLANE and by_fill["0"].only_class == CAT
    assert np.allclose(by_fill["0.5"].only_image, 0.5) and np.allclose(by_fill["0"].only_image, 0.0)


def test_same_replacement_under_every_fill_is_not_fill_driven() -> None:
    class AnyHole(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            s = x[:, :, TOP : TOP + 4, LEFT : LEFT + 4].mean(dim=(1, 2, 3))
            logits = torch.zeros(len(x), 10)
            logits[:, SHIP] = 20 * (s > 0.95).float()
            logits[:, CAT] = 5.0
            return logits

    runs = measure(AnyHole().eval(), block_image(), patch=4)
    (s,) = an.analyse(runs, names=CIFAR10_CLASSES, sample_names=["b"])
    assert {f.stats.replacement for f in s.fills} == {CAT}
    assert not s.fill_driven


def test_notebook_geometry_numbers(sample: an.SampleAnalysis) -> None:
    nb = sample.notebook
    assert nb is not None
    assert nb.notebook.area_max == 400 and nb.notebook.area_min == 144  # 20x20 inside, 12x12 in the corners
    assert nb.same_size.area_max == nb.same_size.area_min == 16
    assert nb.notebook.grid == nb.same_size.grid == (8, 8)
    # The notebook greys the block from many cells around it: more positions lose the clean class.
    assert nb.notebook.kept < nb.same_size.kept == 63
    assert nb.last == an.Cell(7, 7, 20, 20, 12, 12)  # the last cell's square, clipped at the corner
    assert nb.example.window.height == 20 and nb.same_example.window.height == 4


def test_gallery_items_are_the_inputs_the_model_saw(sample: an.SampleAnalysis) -> None:
    items = sample.gallery
    # The largest drop is also where airplane wins: one item, both reasons.
    assert items[0].reason == "largest drop, airplane wins" and items[0].region == sample.main.most_important
    assert items[1].reason == "smallest drop"
    assert len(items) == an.GALLERY_SIZE
    assert len({(g.region.row, g.region.col) for g in items}) == len(items)
    block = items[0]
    assert np.allclose(block.image[8:12, 16:20], 0.5)  # the block greyed, exactly as the model saw it
    assert block.top_class == AIRPLANE


def test_takeovers_add_up_to_the_lost_positions(sample: an.SampleAnalysis) -> None:
    take = an.takeovers([sample, sample], 10)
    assert sum(t.positions for t in take) == 2 * sample.main.lost
    assert take[AIRPLANE].samples_top == 2
    assert sum(t.notebook_positions or 0 for t in take) == 2 * sample.notebook.notebook.lost  # type: ignore[union-attr]


def test_card_from_json_reads_per_class_accuracy_by_name() -> None:
    card = Card.from_json(
        {
            "name": "m",
            "test_accuracy": 0.9,
            "architecture": {"width": 24},
            "per_class_accuracy": {c: i / 10 for i, c in enumerate(reversed(CIFAR10_CLASSES))},
            "training": {"epochs": 3},
        },
        CIFAR10_CLASSES,
    )
    assert card.per_class_accuracy[0] == 0.9 and card.per_class_accuracy[9] == 0.0
    assert card.epochs == 3 and card.architecture == "width 24"


def test_runs_count_matches_the_steps_measure_takes() -> None:
    for patch, stride, fill in ((4, None, 0.5), (4, 2, "blur"), ((4, 8), None, 0.3)):
        steps: list[str] = []
        measure(RegionDetector(), block_image(), patch=patch, stride=stride, fill=fill, step=steps.append)
        assert len(steps) == runs_count(patch, stride, fill, block_image()), (patch, stride, fill)
