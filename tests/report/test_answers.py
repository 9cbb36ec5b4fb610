"""The four answers, fed hand-made evidence at and around every threshold they use.

Each answer is two to four sentences and picks its words from the numbers it cites; these tests state
the numbers and the words that must (and must not) follow from them. The records are built by hand:
no model runs here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from occsens.cifar.data import CIFAR10_CLASSES as NAMES
from occsens.report import evidence as ev
from occsens.report.analysis import Cell
from occsens.report.answers import answer_class_map, answer_colour, answer_last, answer_readings
from occsens.report.cards import Card, SeedSpread
from occsens.report.thresholds import RUNNER_UP_SHARE, SAME_MAP_SHARE, SQUARE_SIZE_FACTOR

from .conftest import fake_card

SAMPLES = ["test #0", "test #1"]
AIRPLANE, CAT, SHIP, TRUCK = 0, 3, 8, 9


def sentences(text: str) -> int:
    return text.count(". ") + 1  # numbers print as 0.9226: no ". " inside them


# --------------------------------------------------------------------------- Q1: np.amax(out)

LAST = ev.LastInput(
    sample=1,
    clean_class=SHIP,
    clean_prob=0.8118,
    last_class=SHIP,
    last_prob=0.5077,
    last=Cell(7, 7, 20, 20, 12, 12),
    samples=8,
    other_class=1,
)


def test_doubt_1_is_confirmed_with_this_runs_last_input() -> None:
    text = answer_last(LAST, NAMES, SAMPLES).text
    assert text.startswith("Yes, doubt 1 is right: np.amax(out) is the top probability of the loop's last")
    assert "On test #1 (ship) that last input has rows 20-31, cols 20-31 greyed" in text
    assert "ship 0.5077, while the unoccluded image gives ship 0.8118 (the same class, by chance)" in text
    assert "On 1 of the 8 samples its class differs" in text
    assert 2 <= sentences(text) <= 4


@pytest.mark.parametrize(
    ("other", "words"),
    [
        (0, "On all 8 samples it names the clean class by chance; only the number is wrong."),
        (1, "On 1 of the 8 samples its class differs from the unoccluded image's."),
        (8, "On all 8 samples its class differs from the unoccluded image's."),
    ],
)
def test_how_often_the_last_input_names_another_class(other: int, words: str) -> None:
    assert words in answer_last(replace(LAST, other_class=other), NAMES, SAMPLES).text


def test_another_class_or_the_same_probability_is_said_as_it_is() -> None:
    other = answer_last(replace(LAST, last_class=AIRPLANE), NAMES, SAMPLES).text
    assert "gives it airplane 0.5077, while the unoccluded image gives ship 0.8118." in other
    assert "by chance" not in other
    same = answer_last(replace(LAST, last_prob=0.81184), NAMES, SAMPLES).text  # prints as 0.8118 too
    assert "(the same class and probability by chance)" in same


def test_without_the_notebooks_geometry_the_answer_cites_no_numbers() -> None:
    f = answer_last(None, NAMES, SAMPLES)
    assert f.numbers == () and f.text.startswith("Yes, doubt 1 is right")


# --------------------------------------------------------------------------- Q2: the class map

CAUSES = ev.Causes(
    samples=8,
    windows=512,
    size=4,
    square=20,
    square_area=400,
    image_pixels=1024,
    lost=19,
    notebook_lost=107,
    fill="0.5",
    fill_class=AIRPLANE,
    fill_prob=0.2403,
    fill_class_true=0,
    fill_class_notebook=20,
    notebook_top=((SHIP, 25), (TRUCK, 21), (AIRPLANE, 20)),
    runner_up=18,
    asker=ev.AskerMatch(
        sample=1,
        clean_class=SHIP,
        kept=56,
        positions=64,
        asker_class=AIRPLANE,
        asker_count=37,
        asker_positions=64,
        count=3,
    ),
)


def test_the_class_map_answer_weighs_the_causes_in_at_most_four_sentences() -> None:
    text = answer_class_map(CAUSES, NAMES, SAMPLES).text
    assert text.startswith(
        "Mostly the size of the grey square: the notebook greys a 20x20 square (400 pixels"
    )
    assert "39.1% of the image" in text and "loses 107 of 512 positions" in text and "against 19" in text
    assert "an image made only of grey 0.5 is airplane (0.2403)" in text
    assert "airplane takes 20 of those positions (0 with true windows), next to ship 25 and truck 21" in text
    assert "its own runner-up takes 18 of the 19 lost positions" in text
    assert "The asker's 37 of 64 airplane windows do not reproduce with this model" in text
    assert "airplane 3 of 64 windows and ship keeps 56" in text and "which is consistent" in text
    assert 2 <= sentences(text) <= 4


@pytest.mark.parametrize(
    ("notebook_lost", "lost", "words"),
    [
        (38, 19, "Mostly the size of the grey square"),  # exactly SQUARE_SIZE_FACTOR times
        (37, 19, "Not mainly the square's size here"),
        (5, 0, "Mostly the size of the grey square"),
        (0, 0, "On these images no class takes over at all"),
    ],
)
def test_the_square_is_named_the_main_cause_from_twice_the_lost_positions(
    notebook_lost: int, lost: int, words: str
) -> None:
    if lost:
        assert (notebook_lost >= SQUARE_SIZE_FACTOR * lost) == words.startswith("Mostly")
    text = answer_class_map(
        replace(CAUSES, notebook_lost=notebook_lost, lost=lost, runner_up=0), NAMES, SAMPLES
    )
    assert text.text.startswith(words), text.text


@pytest.mark.parametrize(
    ("fill_class_notebook", "top", "words"),
    [
        (0, ((SHIP, 25),), "What wins there is not the fill itself"),
        (30, ((AIRPLANE, 30), (SHIP, 25)), "What wins there is first the fill itself"),
        (20, ((SHIP, 25), (AIRPLANE, 20)), "What wins there is partly the fill itself"),
    ],
)
def test_the_fills_own_class_is_weighed_against_the_other_takeovers(
    fill_class_notebook: int, top: tuple[tuple[int, int], ...], words: str
) -> None:
    causes = replace(CAUSES, fill_class_notebook=fill_class_notebook, notebook_top=top)
    assert words in answer_class_map(causes, NAMES, SAMPLES).text


@pytest.mark.parametrize(("runner_up", "from_image"), [(10, True), (9, False), (0, False)])
def test_the_image_decides_what_wins_when_its_runner_up_takes_most_lost_positions(
    runner_up: int, from_image: bool
) -> None:
    lost = 18  # RUNNER_UP_SHARE of 18 is 9: a majority needs 10
    assert (runner_up > RUNNER_UP_SHARE * lost) == from_image
    text = answer_class_map(replace(CAUSES, lost=lost, runner_up=runner_up), NAMES, SAMPLES).text
    assert ("what wins comes from the image" in text) == from_image
    assert (f"the image's own runner-up takes only {runner_up} of the 18" in text) == (not from_image)


@pytest.mark.parametrize(("count", "kept", "reproduces"), [(3, 56, False), (32, 32, False), (37, 8, True)])
def test_the_askers_effect_reproduces_only_when_their_class_beats_the_clean_one(
    count: int, kept: int, reproduces: bool
) -> None:
    asker = replace(CAUSES.asker, count=count, kept=kept)  # type: ignore[type-var]
    text = answer_class_map(replace(CAUSES, asker=asker), NAMES, SAMPLES).text
    assert ("The asker's effect reproduces with this model" in text) == reproduces
    assert ("do not reproduce with this model" in text) == (not reproduces)


def test_without_the_askers_sample_there_is_no_asker_sentence() -> None:
    assert "asker" not in answer_class_map(replace(CAUSES, asker=None), NAMES, SAMPLES).text


# --------------------------------------------------------------------------- Q3: which reading

READINGS = ev.Readings(
    samples=8,
    windows=512,
    kept_occlude=493,
    kept_reveal=74,
    agreement=71,
    reveal_top=AIRPLANE,
    reveal_top_count=322,
    fill_class=AIRPLANE,
)


@pytest.mark.parametrize("agreement", [512, 461, 460, 71])
def test_the_readings_answer_concludes_from_the_class_map_agreement(agreement: int) -> None:
    same = agreement >= SAME_MAP_SHARE * 512  # 460.8
    text = answer_readings(replace(READINGS, agreement=agreement), NAMES).text
    assert text.startswith("The first: the model sees the whole image except the grey patch")
    assert ("too many to tell the readings apart" in text) == same
    assert (f"agree at only {agreement} of 512 windows, so the occlusion class map is not" in text) == (
        not same
    )
    assert 2 <= sentences(text) <= 4


def test_the_patch_only_class_is_tied_to_the_fill_only_where_it_is_the_fills() -> None:
    text = answer_readings(READINGS, NAMES).text
    assert (
        "shown only the window, at 74, answering airplane at 322, the class of an image made only of" in text
    )
    other = answer_readings(replace(READINGS, reveal_top=CAT), NAMES).text
    assert "answering cat at 322." in other and "made only of the fill" not in other


# --------------------------------------------------------------------------- Q4: colour or greyscale


def card(name: str, accuracy: float, runs: tuple[float, ...] | None = None) -> Card:
    c = replace(fake_card(name, accuracy), epochs=28, seed=0)
    return c if runs is None else replace(c, seed_spread=SeedSpread(4, (1, 2, 3), runs))


def test_without_a_measured_spread_the_answer_says_so() -> None:
    text = answer_colour(ev.Colour(card("colour", 0.9226), card("grey", 0.9037)), None, NAMES).text
    assert text.startswith("Colour, on this evidence: the same network and recipe reach 0.9226")
    assert "1.9 points apart in favour of colour" in text
    assert "Each model is one training run (28 epochs, seed 0 each)." in text
    assert "The run-to-run spread was not measured" in text
    assert 2 <= sentences(text) <= 4


@pytest.mark.parametrize(
    ("colour_runs", "grey_runs", "outside"),
    [
        ((0.80, 0.81, 0.805), (0.79, 0.80, 0.795), True),  # spread 1.0 point < 1.9
        ((0.80, 0.819, 0.81), (0.79, 0.80, 0.795), False),  # 1.9 points as printed: not outside
        ((0.80, 0.8194, 0.81), (0.79, 0.80, 0.795), False),  # 1.94 prints 1.9: judged as printed
        ((0.80, 0.818, 0.81), (0.79, 0.80, 0.795), True),  # 1.8 < 1.9
    ],
)
def test_the_gap_is_judged_against_the_largest_seed_to_seed_difference(
    colour_runs: tuple[float, ...], grey_runs: tuple[float, ...], outside: bool
) -> None:
    evidence = ev.Colour(card("colour", 0.9226, colour_runs), card("grey", 0.9037, grey_runs))
    text = answer_colour(evidence, None, NAMES).text
    assert ("so the 1.9-point gap is outside the run-to-run spread" in text) == outside
    assert ("so the 1.9-point gap is within the run-to-run spread" in text) == (not outside)
    assert text.startswith("Colour, on this evidence" if outside else "Not settled by these runs")
    assert "(4 epochs, seeds 1, 2, 3)" in text
    assert 2 <= sentences(text) <= 4


def test_greyscale_ahead_or_a_tie_is_said_as_it_is() -> None:
    grey = answer_colour(ev.Colour(card("colour", 0.90), card("grey", 0.91)), None, NAMES).text
    assert grey.startswith("Greyscale, on this evidence") and "in favour of greyscale" in grey
    tie = answer_colour(ev.Colour(card("colour", 0.90), card("grey", 0.90004)), None, NAMES).text
    assert tie.startswith("Neither, on this evidence")


def test_without_a_twin_the_answer_gives_the_reason() -> None:
    text = answer_colour(None, "It says nothing about a model of yours, so it is left out.", NAMES).text
    why = "It says nothing about a model of yours, so it is left out."
    assert text == f"This report has no colour-vs-greyscale comparison. {why}"


def test_where_nothing_is_lost_nothing_is_said_to_win() -> None:
    quiet = replace(CAUSES, notebook_lost=0, lost=0, fill_class_notebook=0, notebook_top=(), runner_up=0)
    text = answer_class_map(quiet, NAMES, SAMPLES).text
    assert text.startswith("On these images no class takes over at all")
    assert "Nothing takes the clean class's place there, although an image made only of grey 0.5" in text
    assert "What wins" not in text


def test_numbers_are_read_as_spoken() -> None:
    eight = answer_class_map(replace(CAUSES, size=8, square=40), NAMES, SAMPLES).text
    assert "greys a 40x40 square" in eight and "draws it as an 8x8 cell" in eight
    both = answer_last(replace(LAST, samples=2, other_class=2), NAMES, SAMPLES).text
    assert "On both samples its class differs" in both


def test_a_missing_twins_reason_reads_as_a_sentence() -> None:
    text = answer_colour(None, "no greyscale twin was given", NAMES).text
    assert text == "This report has no colour-vs-greyscale comparison. No greyscale twin was given."
