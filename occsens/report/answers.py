"""The four answers: one plain sentence, then at most three of evidence, every word chosen by the numbers.

Each answer opens with a sentence a student can read on its own; the evidence sentences after it say
their scope ("on test #1", "over all 8 samples") whenever the numbers are not the whole report's.
"Most" is a computed strict majority and "the largest" a computed unique maximum
(``occsens.report.consistency``); a claim a failed check contradicts is not made (its ``vetoes``).

Each function takes one record of ``occsens.report.evidence`` and returns a ``Finding`` (the text and
the formatted numbers it rests on, each also shown in a table of the report). Where the wording
depends on a number, the comparison is with a constant of ``occsens.report.thresholds`` or between
two of the cited numbers themselves, made on the numbers as printed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from occsens.report import evidence as ev
from occsens.report.analysis import fill_label
from occsens.report.cards import Card
from occsens.report.consistency import REPLACEMENTS_FROM_IMAGE, largest, most, vetoes
from occsens.report.data import Finding, ReportData
from occsens.report.formatting import pct, points, prob, region_text
from occsens.report.thresholds import SAME_MAP_SHARE, SQUARE_SIZE_FACTOR

FROM_THE_IMAGE = "Every prediction and probability in this report comes from the whole, unoccluded image."


def _all(n: int) -> str:
    return "both" if n == 2 else f"all {n}"


def answer_last(e: ev.LastInput | None, names: Sequence[str], samples: Sequence[str]) -> Finding:
    """Q1, doubt 1: ``np.amax(out)`` is the last occluded input's top probability."""
    text = (
        "Yes: np.amax(out) is the top probability of the last occluded input in the loop, not of the "
        "image, so print np.amax(pred)."
    )
    if e is None:
        return Finding(f"{text} {FROM_THE_IMAGE}", ())
    clean, last, where = names[e.clean_class], names[e.last_class], region_text(e.last)
    text += (
        f" On {samples[e.sample]} ({clean}) that last input has {where} greyed and the model gives it {last} "
        f"{prob(e.last_prob)}; the whole image gives {clean} {prob(e.clean_prob)}"
    )
    if e.last_class == e.clean_class:
        same = prob(e.last_prob) == prob(e.clean_prob)
        text += " (the same class and probability by chance)." if same else " (the same class, by chance)."
    else:
        text += "."
    if e.samples > 1:
        if e.other_class == 0:
            text += (
                f" On {_all(e.samples)} samples the last input happens to name the clean class; only the "
                "number is wrong."
            )
        elif e.other_class == e.samples:
            text += f" On {_all(e.samples)} samples the last input names another class than the image."
        else:
            text += (
                f" On {e.other_class} of the {e.samples} samples the last input names another class than the "
                "image."
            )
    numbers = (where, prob(e.last_prob), prob(e.clean_prob), str(e.other_class))
    return Finding(f"{text} {FROM_THE_IMAGE}", numbers)


def _a(number: int) -> str:
    """The article before a number as it is spoken: "an 8x8 cell", "an 11x11 cell", "a 4x4 cell"."""
    spoken = str(number)
    return "an" if spoken.startswith("8") or spoken in ("11", "18") else "a"


def _plain_class_map(c: ev.Causes) -> str:
    """Q2's first sentence: the main cause, in words a student reads once."""
    square = f"{c.square}x{c.square}"
    if c.notebook_lost == 0 and c.lost == 0:
        return (
            "On these images no other class takes over, neither under the notebook's square nor under "
            f"true {c.size}x{c.size} windows."
        )
    if c.notebook_lost >= SQUARE_SIZE_FACTOR * c.lost:
        return (
            f"Mostly because the notebook greys {_a(c.square)} {square} square at each position "
            f"({pct(c.square_share)} of the image), not the {c.size}x{c.size} cell it draws: hiding that "
            f"much takes the clean class away at least {SQUARE_SIZE_FACTOR:g} times as often as a true "
            "window does."
        )
    return (
        f"Not mainly because of the square's size here: the notebook greys {_a(c.square)} {square} square "
        f"({pct(c.square_share)} of the image) where it draws {_a(c.size)} {c.size}x{c.size} cell, but true "
        f"{c.size}x{c.size} windows take the clean class away more than 1/{SQUARE_SIZE_FACTOR:g} as often."
    )


def _asker_sentence(c: ev.Causes, names: Sequence[str], samples: Sequence[str]) -> tuple[str, list[str]]:
    """The featured sample (the asker's class): the square against true windows, beside the asker's count."""
    a = c.asker
    if a is None:
        return "", []
    ac, clean, where = names[a.asker_class], names[a.clean_class], samples[a.sample]
    text = (
        f" On {where} ({clean}, the asker's class) the square leaves {clean} {a.kept} of {a.positions} "
        f"positions and gives {ac} {a.count} (the asker's printout: {ac} {a.asker_count} of "
        f"{a.asker_positions}); "
        f"true {c.size}x{c.size} windows leave {clean} {a.true_kept}."
    )
    return text, [str(a.kept), str(a.positions), str(a.count), str(a.asker_count), str(a.true_kept)]


def _winners_sentence(
    c: ev.Causes, names: Sequence[str], checks: Sequence[Any] | None
) -> tuple[str, list[str]]:
    """Who takes the lost positions: the fill's class under the square, the runner-up with true windows."""
    fc, fill = names[c.fill_class], fill_label(c.fill)
    nums = [prob(c.fill_prob)]
    if c.notebook_lost == 0:
        text = (
            f" An image made only of {fill} is {fc} ({prob(c.fill_prob)}), yet no class takes a position "
            "under the square"
        )
    else:
        share = (
            f"most of the {c.notebook_lost} positions lost under the square ({c.fill_class_notebook})"
            if most(c.fill_class_notebook, c.notebook_lost)
            else f"{c.fill_class_notebook} of the {c.notebook_lost} positions lost under the square"
        )
        text = f" An image made only of {fill} is {fc} ({prob(c.fill_prob)}), and {fc} takes {share}"
        nums.append(str(c.fill_class_notebook))
    if c.lost == 0:
        return text + f"; true {c.size}x{c.size} windows change no class.", nums
    against = vetoes(REPLACEMENTS_FROM_IMAGE, checks)
    if against:
        failed = " and ".join(f"“{r.name}”" for r in against)
        return text + (
            f"; with true windows the {failed} check{'s fail' if len(against) > 1 else ' fails'}, so this "
            "report does not say that what wins comes from the image."
        ), nums
    nums.append(str(c.runner_up))
    if most(c.runner_up, c.lost):
        return text + (
            f"; with true windows what wins comes from the image: its own runner-up takes {c.runner_up} of "
            f"the {c.lost} lost positions."
        ), nums
    return text + (
        f"; with true windows the image's own runner-up takes only {c.runner_up} of the {c.lost} lost "
        "positions."
    ), nums


def _survey_clause(c: ev.Causes, names: Sequence[str]) -> tuple[str, list[str]]:
    """Q2 at data-set scale: the same counts over every image of a survey of this model and settings."""
    row, survey = c.survey_row, c.survey
    if row is None or survey is None:
        return "", []
    group = (
        f"{names[row.cls]} images"
        if survey.grouped_by == "true class"
        else f"images it calls {names[row.cls]}"
    )
    text = f"; in the survey's {row.images:,} {group} (the data-set table) it loses "
    nums = []
    if row.notebook_lost is not None:
        text += f"{pct(row.notebook_lost)} of positions under the square"
        nums.append(pct(row.notebook_lost))
        if row.notebook_taker is not None and row.notebook_taker_share is not None:
            text += f" ({names[row.notebook_taker]} takes {pct(row.notebook_taker_share)} of those)"
            nums.append(pct(row.notebook_taker_share))
        text += " and "
    text += f"{pct(row.lost)} under true windows"
    nums.append(pct(row.lost))
    if row.taker is not None:
        text += f" ({names[row.taker]} takes {pct(row.taker_share)})"
        nums.append(pct(row.taker_share))
    return text, nums


def answer_class_map(
    c: ev.Causes | None,
    names: Sequence[str],
    samples: Sequence[str],
    checks: Sequence[Any] | None = None,
) -> Finding:
    """Q2: why other classes win windows: the plain cause first, then the featured sample, the totals and
    who wins. ``checks`` (the page's check results) can veto the claim that the image decides what wins."""
    if c is None:
        return Finding(
            "The notebook's geometry needs a square patch, which this report's is not, so its class map "
            "was not recomputed; the takeover table shows which classes win with true windows.",
            (),
        )
    asker = _asker_sentence(c, names, samples)
    scope = "On this sample" if c.samples == 1 else f"Over {_all(c.samples)} samples"
    totals = (
        f" {scope} the clean class loses {c.notebook_lost} of {c.windows} positions under the square and "
        f"{c.lost} under true {c.size}x{c.size} windows"
    )
    data_set = _survey_clause(c, names)
    totals += data_set[0] + "."
    winners = _winners_sentence(c, names, checks)
    numbers = [
        f"{c.square}x{c.square}",
        pct(c.square_share),
        *asker[1],
        str(c.notebook_lost),
        str(c.windows),
        str(c.lost),
        *data_set[1],
        *winners[1],
    ]
    return Finding(f"{_plain_class_map(c)}{asker[0]}{totals}{winners[0]}", tuple(numbers))


def answer_readings(r: ev.Readings, names: Sequence[str]) -> Finding:
    """Q3: the image minus the patch, or the patch alone?"""
    scope = "On this sample" if r.samples == 1 else f"Over {_all(r.samples)} samples"
    text = (
        "The first: the model sees the whole image except the grey patch, never only the patch. "
        f"{scope}, shown the image minus a window the model keeps its clean class at {r.kept_occlude} of "
        f"{r.windows} windows; shown only the window, at {r.kept_reveal}."
    )
    nums = [str(r.kept_occlude), str(r.windows), str(r.kept_reveal)]
    if r.reveal_top is not None and r.reveal_top_count:
        top = names[r.reveal_top]
        text += f" Shown only a window it answers {top} at {r.reveal_top_count} of the {r.windows}"
        text += " (most of them)" if most(r.reveal_top_count, r.windows) else ""
        if r.reveal_top == r.fill_class:
            text += ", the class it gives an image made only of the fill"
        text += "."
        nums.append(str(r.reveal_top_count))
    nums.append(str(r.agreement))
    if r.agreement >= SAME_MAP_SHARE * r.windows:
        text += (
            f" The two class maps agree at {r.agreement} of {r.windows} windows, too many to tell the "
            "readings apart from the maps alone; the occluded inputs show which one the model gets."
        )
    else:
        text += (
            f" The two class maps agree at only {r.agreement} of {r.windows} windows, so the occlusion class "
            "map is not a map of the patch alone."
        )
    return Finding(text, tuple(nums))


def _runs(colour: Card, grey: Card) -> str:
    def one(card: Card) -> str:
        bits = [
            f"{card.epochs} epochs" if card.epochs else "",
            f"seed {card.seed}" if card.seed is not None else "",
        ]
        return ", ".join(b for b in bits if b)

    c, g = one(colour), one(grey)
    if c == g:
        return f"Each model is one training run{f' ({c} each)' if c else ''}."
    unknown = "not in its card"
    return f"Each model is one training run (colour: {c or unknown}; greyscale: {g or unknown})."


def _per_class_sentence(c: ev.Colour, names: Sequence[str], better: str) -> tuple[str, list[str]]:
    """Where the gap lies, computed: "most of it on X" only when X holds more than half the per-class
    losses of the worse model; else the largest class's share, said as a share."""
    ahead, behind = (c.colour, c.grey) if better == "colour" else (c.grey, c.colour)
    # in tenths of a point, as printed, so the comparisons are exact
    lost = [
        max(0, round(1000 * (a - b)))
        for a, b in zip(ahead.per_class_accuracy, behind.per_class_accuracy, strict=True)
    ]
    total = sum(lost)
    k = largest(lost)
    if k is None or total <= 0:
        return "", []
    name, share = names[k], lost[k] / total
    pair = f"{prob(ahead.per_class_accuracy[k])} against {prob(behind.per_class_accuracy[k])}"
    part, whole = f"{lost[k] / 10:.1f}", f"{total / 10:.1f}"
    nums = [prob(ahead.per_class_accuracy[k]), prob(behind.per_class_accuracy[k]), part, whole]
    if most(lost[k], total):
        return f" Most of it is on {name} ({pair}).", nums
    return (
        f" No class holds most of it: the largest share is {name}'s ({pair}), {part} of the {whole} "
        f"per-class points the {better} model gains ({round(100 * share)}%).",
        nums,
    )


def answer_colour(c: ev.Colour | None, missing: str | None, names: Sequence[str]) -> Finding:
    """Q4: colour or greyscale, with the run-to-run spread the gap must stand out from."""
    if c is None:
        why = (missing or "").strip()
        why = why[:1].upper() + why[1:] + ("" if why.endswith(".") or not why else ".")
        return Finding(f"This report has no colour-vs-greyscale comparison. {why}".strip(), ())
    col, grey = c.colour, c.grey
    gap = round(100 * (col.test_accuracy - grey.test_accuracy), 1)  # as printed
    gap_text = points(abs(gap) / 100)
    nums = [prob(col.test_accuracy), prob(grey.test_accuracy), gap_text]
    sc, sg = col.seed_spread, grey.seed_spread
    spread = None if sc is None or sg is None else round(100 * max(sc.range, sg.range), 1)
    outside = spread is not None and abs(gap) > spread
    accuracies = (
        f"{prob(col.test_accuracy)} test accuracy in colour against {prob(grey.test_accuracy)} in greyscale"
    )
    if gap == 0:
        text = (
            "Neither, on this evidence: the same network reaches the same test accuracy on colour and on "
            f"greyscale images ({accuracies})."
        )
        better = ""
    else:
        better = "colour" if gap > 0 else "greyscale"
        if spread is not None and not outside:
            text = (
                f"Not settled by these runs: the same network is {gap_text} points better on {better} images "
                f"({accuracies}), no more than two runs of one recipe can differ."
            )
        else:
            text = (
                f"{better.capitalize()}, on this evidence: the same network is {gap_text} points more "
                f"accurate on {better} images ({accuracies})."
            )
    if better:
        where = _per_class_sentence(c, names, better)
        text += where[0]
        nums += where[1]
    text += f" {_runs(col, grey)}"
    if sc is None or sg is None or spread is None:
        text += (
            f" The run-to-run spread was not measured, so whether {gap_text} points is more than two runs "
            "of the same recipe differ by is not known."
        )
        return Finding(text, tuple(nums))
    seeds = ", ".join(str(s) for s in sc.seeds)
    text += (
        f" Runs of a shorter recipe that differ only in their seed ({sc.epochs} epochs, seeds {seeds}) "
        f"differ by up to {points(sc.range)} points in colour and {points(sg.range)} in greyscale, so the "
        f"{gap_text}-point gap is "
    )
    text += "outside that spread." if outside else "within that spread: a second run could move it that far."
    nums += [points(sc.range), points(sg.range)]
    return Finding(text, tuple(nums))


def answers(data: ReportData, e: ev.Evidence | None = None) -> tuple[Finding, Finding, Finding, Finding]:
    """The four answers for a report, in question order (``occsens.report.questions.QUESTIONS``), from its
    evidence (``evidence.gather(data)`` unless given)."""
    e = ev.gather(data) if e is None else e
    samples = [s.name for s in data.samples]
    return (
        answer_last(e.last, data.names, samples),
        answer_class_map(e.causes, data.names, samples, data.checks),
        answer_readings(e.readings, data.names),
        answer_colour(e.colour, e.missing, data.names),
    )
