"""The four answers: two to four sentences each, every word chosen by the numbers it cites.

Each function takes one record of ``occsens.report.evidence`` and returns a ``Finding`` (the text and
the formatted numbers it rests on, each also shown in a table of the report). Where the wording
depends on a number, the comparison is with a constant of ``occsens.report.thresholds`` or between
two of the cited numbers themselves, made on the numbers as printed.
"""

from __future__ import annotations

from collections.abc import Sequence

from occsens.report import evidence as ev
from occsens.report.analysis import fill_label
from occsens.report.cards import Card
from occsens.report.data import Finding, ReportData
from occsens.report.formatting import pct, points, prob, region_text
from occsens.report.thresholds import RUNNER_UP_SHARE, SAME_MAP_SHARE, SQUARE_SIZE_FACTOR

FROM_THE_IMAGE = "Every prediction and probability in this report comes from the unoccluded image."


def answer_last(e: ev.LastInput | None, names: Sequence[str], samples: Sequence[str]) -> Finding:
    """Q1, doubt 1: ``np.amax(out)`` is the last occluded input's top probability."""
    text = (
        "Yes, doubt 1 is right: np.amax(out) is the top probability of the loop's last occluded input, "
        "not of the image, so np.amax(pred) is the number to print."
    )
    if e is None:
        return Finding(f"{text} {FROM_THE_IMAGE}", ())
    clean, last, where = names[e.clean_class], names[e.last_class], region_text(e.last)
    text += (
        f" On {samples[e.sample]} ({clean}) that last input has {where} greyed and the model gives it {last} "
        f"{prob(e.last_prob)}, while the unoccluded image gives {clean} {prob(e.clean_prob)}"
    )
    if e.last_class == e.clean_class:
        same = prob(e.last_prob) == prob(e.clean_prob)
        text += " (the same class and probability by chance)." if same else " (the same class, by chance)."
    else:
        text += "."
    if e.other_class == 0:
        text += f" On {_all(e.samples)} samples it names the clean class by chance; only the number is wrong."
    elif e.other_class == e.samples:
        text += f" On {_all(e.samples)} samples its class differs from the unoccluded image's."
    else:
        text += (
            f" On {e.other_class} of the {e.samples} samples its class differs from the unoccluded image's."
        )
    numbers = (where, prob(e.last_prob), prob(e.clean_prob), str(e.other_class))
    return Finding(f"{text} {FROM_THE_IMAGE}", numbers)


def _a(number: int) -> str:
    """The article before a number as it is spoken: "an 8x8 cell", "an 11x11 cell", "a 4x4 cell"."""
    spoken = str(number)
    return "an" if spoken.startswith("8") or spoken in ("11", "18") else "a"


def _all(n: int) -> str:
    return "both" if n == 2 else f"all {n}"


def _size_sentence(c: ev.Causes) -> str:
    square = (
        f"the notebook greys {_a(c.square)} {c.square}x{c.square} square ({c.square_area} pixels, "
        f"{pct(c.square_share)} of the image) at each position but draws it as {_a(c.size)} "
        f"{c.size}x{c.size} cell"
    )
    counts = (
        f"the clean class loses {c.notebook_lost} of {c.windows} positions under it across the {c.samples} "
        f"sample{'s' if c.samples != 1 else ''}, against {c.lost} with true {c.size}x{c.size} windows"
    )
    if c.notebook_lost == 0 and c.lost == 0:
        return f"On these images no class takes over at all: {square}, yet {counts}."
    if c.notebook_lost >= SQUARE_SIZE_FACTOR * c.lost:
        return f"Mostly the size of the grey square: {square}, and {counts}."
    return (
        f"Not mainly the square's size here: {square}, but {counts}, less than "
        f"{SQUARE_SIZE_FACTOR:g} times as many."
    )


def _winners_sentence(c: ev.Causes, names: Sequence[str]) -> tuple[str, list[str]]:
    fc, fill = names[c.fill_class], fill_label(c.fill)
    only = f"an image made only of {fill} is {fc} ({prob(c.fill_prob)})"
    takes = f"{fc} takes {c.fill_class_notebook} of those positions ({c.fill_class_true} with true windows)"
    nums = [prob(c.fill_prob), str(c.fill_class_notebook), str(c.fill_class_true)]
    others = [(k, v) for k, v in c.notebook_top if k != c.fill_class][:2]
    if c.notebook_lost == 0:
        text = f"Nothing takes the clean class's place there, although {only}"
    elif c.fill_class_notebook == 0:
        text = f"What wins there is not the fill itself: {only}, yet {fc} takes none of those positions"
    elif c.notebook_top and c.notebook_top[0][0] == c.fill_class:
        text = f"What wins there is first the fill itself: {only}, and {takes}, more than any other class"
    else:
        listed = " and ".join(f"{names[k]} {v}" for k, v in others)
        text = f"What wins there is partly the fill itself: {only}, and {takes}, next to {listed}"
        nums += [str(v) for _, v in others]
    if c.lost == 0:
        return text + "; with true windows no class takes over.", nums
    nums.append(str(c.runner_up))
    if c.runner_up > RUNNER_UP_SHARE * c.lost:
        return text + (
            f"; with true windows what wins comes from the image: its own runner-up takes {c.runner_up} of "
            f"the {c.lost} lost positions."
        ), nums
    return text + (
        f"; with true windows the image's own runner-up takes only {c.runner_up} of the {c.lost} lost "
        "positions."
    ), nums


def _asker_sentence(c: ev.Causes, names: Sequence[str], samples: Sequence[str]) -> tuple[str, list[str]]:
    a = c.asker
    if a is None:
        return "", []
    ac, clean, where = names[a.asker_class], names[a.clean_class], samples[a.sample]
    theirs = f"{a.asker_count} of {a.asker_positions} {ac} windows"
    here = f"on {where} the square gives {ac} {a.count} of {a.positions} windows and {clean} keeps {a.kept}"
    nums = [str(a.asker_count), str(a.asker_positions), str(a.count), str(a.kept)]
    if a.count > a.kept:
        return f" The asker's effect reproduces with this model: {here}, like the asker's {theirs}.", nums
    return (
        f" The asker's {theirs} do not reproduce with this model ({here}), which is consistent: whether "
        f"the fill's class wins depends on how much of the {clean} a model still finds beside the square.",
        nums,
    )


def answer_class_map(c: ev.Causes | None, names: Sequence[str], samples: Sequence[str]) -> Finding:
    """Q2: why other classes win windows, weighing the causes the numbers support."""
    if c is None:
        return Finding(
            "The notebook's geometry needs a square patch, which this report's is not, so its class map "
            "was not recomputed; the takeover table shows which classes win with true windows.",
            (),
        )
    size, winners = _size_sentence(c), _winners_sentence(c, names)
    asker = _asker_sentence(c, names, samples)
    numbers = [
        f"{c.square}x{c.square}",
        str(c.square_area),
        pct(c.square_share),
        str(c.notebook_lost),
        str(c.windows),
        str(c.lost),
        *winners[1],
        *asker[1],
    ]
    return Finding(f"{size} {winners[0]}{asker[0]}", tuple(numbers))


def answer_readings(r: ev.Readings, names: Sequence[str]) -> Finding:
    """Q3: the image minus the patch, or the patch alone?"""
    text = (
        "The first: the model sees the whole image except the grey patch, and every occluded input in this "
        "report is the image with only the window replaced. "
        f"Shown the image minus the window the model keeps its clean class at {r.kept_occlude} of "
        f"{r.windows} windows; shown only the window, at {r.kept_reveal}"
    )
    nums = [str(r.kept_occlude), str(r.windows), str(r.kept_reveal), str(r.agreement)]
    if r.reveal_top is not None and r.reveal_top_count:
        text += f", answering {names[r.reveal_top]} at {r.reveal_top_count}"
        if r.reveal_top == r.fill_class:
            text += ", the class of an image made only of the fill"
        nums.append(str(r.reveal_top_count))
    if r.agreement >= SAME_MAP_SHARE * r.windows:
        text += (
            f". The two class maps agree at {r.agreement} of {r.windows} windows: too many to tell the "
            "readings apart from the class maps alone; the occluded inputs show which one the model gets."
        )
    else:
        text += (
            f". The two class maps agree at only {r.agreement} of {r.windows} windows, so the occlusion "
            "class map is not a map of the patch alone."
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


def answer_colour(c: ev.Colour | None, missing: str | None, names: Sequence[str]) -> Finding:
    """Q4: colour or greyscale, with the run-to-run spread the gap must stand out from."""
    if c is None:
        why = (missing or "").strip()
        why = why[:1].upper() + why[1:] + ("" if why.endswith(".") or not why else ".")
        return Finding(f"This report has no colour-vs-greyscale comparison. {why}".strip(), ())
    col, grey = c.colour, c.grey
    gap = round(100 * (col.test_accuracy - grey.test_accuracy), 1)  # as printed
    gaps = [a - b for a, b in zip(col.per_class_accuracy, grey.per_class_accuracy, strict=True)]
    nums = [prob(col.test_accuracy), prob(grey.test_accuracy), points(abs(gap) / 100)]
    sc, sg = col.seed_spread, grey.seed_spread
    spread = None if sc is None or sg is None else round(100 * max(sc.range, sg.range), 1)
    outside = spread is not None and abs(gap) > spread
    if gap == 0:
        lead = (
            f"Neither, on this evidence: the colour model and its greyscale twin reach the same test "
            f"accuracy, {prob(col.test_accuracy)} and {prob(grey.test_accuracy)}."
        )
    else:
        better = "colour" if gap > 0 else "greyscale"
        k = max(
            range(len(gaps)), key=lambda i: gaps[i] if gap > 0 else -gaps[i]
        )  # where the better one gains most
        nums += [prob(col.per_class_accuracy[k]), prob(grey.per_class_accuracy[k])]
        accuracies = (
            f"the same network and recipe reach {prob(col.test_accuracy)} test accuracy on colour images and "
            f"{prob(grey.test_accuracy)} on greyscale, {points(abs(gap) / 100)} points apart in favour of "
            f"{better}, most of it on {names[k]} ({prob(col.per_class_accuracy[k])} in colour against "
            f"{prob(grey.per_class_accuracy[k])})"
        )
        verdict = (
            "Not settled by these runs"
            if spread is not None and not outside
            else f"{better.capitalize()}, on this evidence"
        )
        lead = f"{verdict}: {accuracies}."
    text = f"{lead} {_runs(col, grey)}"
    if sc is None or sg is None or spread is None:
        text += (
            f" The run-to-run spread was not measured, so whether {points(abs(gap) / 100)} points is more "
            "than two runs of the same recipe differ by is not known."
        )
        return Finding(text, tuple(nums))
    seeds = ", ".join(str(s) for s in sc.seeds)
    text += (
        f" Runs of a shorter recipe that differ only in their seed ({sc.epochs} epochs, seeds {seeds}) "
        f"spread over {points(sc.range)} points in colour ({prob(sc.low)}-{prob(sc.high)}) and "
        f"{points(sg.range)} in greyscale ({prob(sg.low)}-{prob(sg.high)}), so the "
        f"{points(abs(gap) / 100)}-point gap is "
    )
    text += (
        "outside the run-to-run spread: larger than any difference between two of those runs (a spread "
        "measured on the shorter recipe stands in for the full one's)."
        if outside
        else "within the run-to-run spread: a second run of either model could move it that far."
    )
    nums += [points(sc.range), points(sg.range), prob(sc.low), prob(sc.high), prob(sg.low), prob(sg.high)]
    return Finding(text, tuple(nums))


def answers(data: ReportData, e: ev.Evidence | None = None) -> tuple[Finding, Finding, Finding, Finding]:
    """The four answers for a report, in question order (``occsens.report.questions.QUESTIONS``), from its
    evidence (``evidence.gather(data)`` unless given)."""
    e = ev.gather(data) if e is None else e
    samples = [s.name for s in data.samples]
    return (
        answer_last(e.last, data.names, samples),
        answer_class_map(e.causes, data.names, samples),
        answer_readings(e.readings, data.names),
        answer_colour(e.colour, e.missing, data.names),
    )
