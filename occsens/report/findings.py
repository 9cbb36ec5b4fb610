"""The report's sentences: small functions over the analysis dataclasses, each returning a ``Finding``.

A finding is one sentence and the formatted numbers it rests on; every one of those numbers is also
shown in a table of the report, formatted the same way (``occsens.report.formatting``), so a
reader can check each sentence against the table next to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occsens.report import analysis as an
from occsens.report.data import Finding, ReportData
from occsens.report.formatting import extent_text, pct, prob, region_text, rep_name


def finding_prediction(s: an.SampleAnalysis, names: Sequence[str], label_names: Sequence[str]) -> Finding:
    (k1, p1), *rest = s.top3
    text = f"On the unoccluded image the model predicts {names[k1]} with probability {prob(p1)}"
    nums = [prob(p1)]
    if rest:
        k2, p2 = rest[0]
        text += f"; the runner-up is {names[k2]} at {prob(p2)}"
        nums.append(prob(p2))
    if s.true_label is not None:
        right = names[k1] == label_names[s.true_label]
        verdict = "right" if right else "wrong"
        text += f". The true label is {label_names[s.true_label]}, so the prediction is {verdict}"
    return Finding(text + ".", tuple(nums))


def finding_region(m: an.MapStats, names: Sequence[str]) -> Finding:
    t, where = names[m.target], region_text(m.most_important)
    return Finding(
        f"The region that matters most is {where}: hiding it lowers P({t}) from {prob(m.clean_target_prob)} "
        "to "
        f"{prob(m.min_target_prob)}, a drop of {prob(m.max_drop)}.",
        (where, prob(m.clean_target_prob), prob(m.min_target_prob), prob(m.max_drop)),
    )


def finding_spread(m: an.MapStats, names: Sequence[str]) -> Finding:
    t, limit = names[m.target], f"{an.IMPORTANT_DROP:g}"
    if m.positions_dropping == 0:
        return Finding(
            f"No single window lowers P({t}) by more than {limit}: the largest drop is {prob(m.max_drop)}, "
            "and at "
            f"the median window P({t}) is still {prob(m.median_target_prob)}, so the evidence is spread out "
            "or "
            "redundant.",
            (limit, prob(m.max_drop), prob(m.median_target_prob)),
        )
    windows = "window" if m.positions_dropping == 1 else "windows"
    return Finding(
        f"Hiding {m.positions_dropping} of the {m.positions} {windows} (one at a time) lowers P({t}) by more "
        "than "
        f"{limit}; at the median window P({t}) is still {prob(m.median_target_prob)}.",
        (str(m.positions_dropping), str(m.positions), limit, prob(m.median_target_prob)),
    )


def finding_takeover(m: an.MapStats, names: Sequence[str]) -> Finding:
    clean = names[m.clean_class]
    if m.replacement is None:
        return Finding(
            f"{clean} stays the most probable class at all {m.positions} windows: no class takes over.",
            (str(m.positions),),
        )
    assert m.replacement_extent is not None and m.replacement_best is not None
    rep, where = names[m.replacement], extent_text(m.replacement_extent)
    best = region_text(m.replacement_best)
    e = m.replacement_extent
    spread = (e.bottom - e.top + 1) * (e.right - e.left + 1) >= m.pixels / 2
    within = f"spread across {where}" if spread else f"within {where}"
    text = (
        f"{clean} stays the most probable class at {m.kept} of {m.positions} windows; {rep} takes over at "
        f"{m.replacement_count}, {within}, most strongly (P({rep}) = {prob(m.replacement_best_prob)}) "
        f"when the window at {best} is hidden"
    )
    nums = [
        str(m.kept),
        str(m.positions),
        str(m.replacement_count),
        where,
        prob(m.replacement_best_prob),
        best,
    ]
    others = [(k, v) for k, v in m.replacement_counts().items() if k != m.replacement]
    if others:
        text += "; other classes: " + ", ".join(f"{names[k]} {v}" for k, v in others)
        nums += [str(v) for _, v in others]
    return Finding(text + ".", tuple(nums))


def finding_reveal(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    occ, rev = s.main, s.reveal
    t, clean, n = names[occ.target], names[occ.clean_class], str(occ.positions)
    nums = (
        str(occ.kept),
        str(rev.kept),
        n,
        prob(occ.median_target_prob),
        prob(rev.median_target_prob),
        str(s.agreement),
    )
    text = (
        f"With the image minus the window the model keeps {clean} at {occ.kept} of {n} windows (median "
        f"P({t}) {prob(occ.median_target_prob)}); with only the window shown it keeps it at {rev.kept} of "
        f"{n} "
        f"(median {prob(rev.median_target_prob)}), and the two class maps agree at {s.agreement} of {n} "
        "windows"
    )
    if occ.kept > rev.kept:
        text += (
            ", so the occlusion maps describe what the model makes of the image minus the patch, "
            "not of the patch alone"
        )
    elif occ.kept < rev.kept:
        text += ", so on this image a single window carries more of the answer than the rest of the image"
    return Finding(text + ".", nums)


def finding_fills(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    parts = [f"{an.fill_label(f.fill)}: {rep_name(f.stats, names)}" for f in s.fills]
    nums = tuple(str(f.stats.replacement_count) for f in s.fills if f.stats.replacement is not None)
    listed = "; ".join(parts)
    taken = [f for f in s.fills if f.stats.replacement is not None]
    if s.fill_driven:
        return Finding(
            f"The top replacement class changes with the fill ({listed}): the replacement class is "
            "driven by the occluder, not the image.",
            nums,
        )
    if not taken:
        return Finding(
            f"No class takes over under any of the {len(s.fills)} fills: the clean class stays the most "
            "probable at every window whatever fills it.",
            (str(len(s.fills)),),
        )
    rep = names[taken[0].stats.replacement]  # type: ignore[index]
    under = (
        f"under all {len(s.fills)} fills"
        if len(taken) == len(s.fills)
        else f"under each of the {len(taken)} of {len(s.fills)} fills that let any class take over"
    )
    return Finding(
        f"The top replacement class is {rep} {under} ({listed}): it comes from the image, not from what "
        "fills the window.",
        (str(len(taken)), str(len(s.fills)), *nums),
    )


def finding_fill_only(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    parts = [f"{an.fill_label(f.fill)} as {names[f.only_class]} ({prob(f.only_prob)})" for f in s.fills]
    matches = sum(
        1 for f in s.fills if f.stats.replacement is not None and f.stats.replacement == f.only_class
    )
    with_rep = sum(1 for f in s.fills if f.stats.replacement is not None)
    text = "The model classifies an image made only of " + ", ".join(parts)
    nums = [prob(f.only_prob) for f in s.fills]
    if with_rep:
        text += (
            f". For {matches} of the {with_rep} fills under which a class takes over, the top replacement is "
            "the class the model gives an image made only of that fill"
        )
        nums += [str(matches), str(with_rep)]
    return Finding(text + ".", tuple(nums))


def finding_notebook(nb: an.NotebookStats, names: Sequence[str]) -> Finding:
    m, t = nb.notebook, nb.same_size
    size = m.patch[0]
    text = (
        f"The notebook's geometry greys up to {m.area_max} pixels ({pct(m.area_max / m.pixels)} of the "
        "image; "
        f"{m.area_min} in the corners, {m.area_mean:.1f} on average) at each position while drawing a "
        f"{size}x{size} "
        f"cell; true {size}x{size} windows grey {t.area_max} ({pct(t.area_max / t.pixels)}). Under the "
        "notebook's "
        f"geometry the clean class stays most probable at {m.kept} of {m.positions} positions, against "
        f"{t.kept} "
        f"with true windows"
    )
    nums = [
        str(m.area_max),
        pct(m.area_max / m.pixels),
        str(m.area_min),
        f"{m.area_mean:.1f}",
        str(t.area_max),
        pct(t.area_max / t.pixels),
        str(m.kept),
        str(t.kept),
        str(m.positions),
    ]
    if m.replacement is not None:
        text += f", and {names[m.replacement]} takes over at {m.replacement_count}"
        nums.append(str(m.replacement_count))
    return Finding(text + ".", tuple(nums))


def finding_last(s: an.SampleAnalysis, nb: an.NotebookStats, names: Sequence[str]) -> Finding:
    return Finding(
        "The notebook printed np.amax(out), the top probability of its last occluded input "
        f"({region_text(nb.last)} "
        f"greyed): {prob(nb.last_prob)} for {names[nb.last_class]}, not the unoccluded {prob(s.clean_prob)} "
        "for "
        f"{names[s.clean_class]}; the report's prediction comes from the unoccluded image.",
        (region_text(nb.last), prob(nb.last_prob), prob(s.clean_prob)),
    )


def finding_takeovers(data: ReportData) -> Finding | None:
    tk = [t for t in data.takeovers if t.positions or (t.notebook_positions or 0)]
    if not tk:
        return None
    windows = sum(s.main.positions for s in data.samples)
    lost = sum(s.main.lost for s in data.samples)
    best = max(data.takeovers, key=lambda t: (t.positions, -t.cls))
    text = (
        f"Across the {len(data.samples)} samples the clean class loses {lost} of {windows} window positions "
        f"with true windows"
    )
    nums = [str(len(data.samples)), str(lost), str(windows)]
    if best.positions:
        text += (
            f"; {data.names[best.cls]} takes over most often ({best.positions} positions, top replacement in "
            f"{best.samples_top} sample{'' if best.samples_top == 1 else 's'})"
        )
        nums += [str(best.positions), str(best.samples_top)]
    if all(t.notebook_positions is not None for t in data.takeovers):
        nb = max(data.takeovers, key=lambda t: (t.notebook_positions or 0, -t.cls))
        nb_lost = sum(s.notebook.notebook.lost for s in data.samples if s.notebook)
        text += f". Under the notebook's larger square the clean class loses {nb_lost} positions"
        nums.append(str(nb_lost))
        if nb.notebook_positions:
            text += f", and {data.names[nb.cls]} takes over most often ({nb.notebook_positions})"
            nums.append(str(nb.notebook_positions))
    return Finding(text + ".", tuple(nums))


def finding_card(card: an.Card, names: Sequence[str]) -> Finding:
    acc = card.per_class_accuracy
    lo, hi = int(np.argmin(acc)), int(np.argmax(acc))
    if acc[lo] == acc[hi]:
        return Finding(
            f"The model's test accuracy is {prob(card.test_accuracy)}; its card gives every class the "
            f"same accuracy, {prob(acc[lo])}.",
            (prob(card.test_accuracy), prob(acc[lo])),
        )
    return Finding(
        f"The model's test accuracy is {prob(card.test_accuracy)}; its weakest class is {names[lo]} "
        f"({prob(acc[lo])}) and its strongest {names[hi]} ({prob(acc[hi])}).",
        (prob(card.test_accuracy), prob(acc[lo]), prob(acc[hi])),
    )


def findings_twins(c: an.TwinComparison, names: Sequence[str]) -> list[Finding]:
    gap = c.accuracy_gap
    better = "colour" if gap > 0 else "greyscale" if gap < 0 else None
    out = [
        Finding(
            f"Test accuracy: colour {prob(c.colour.test_accuracy)}, greyscale {prob(c.grey.test_accuracy)}"
            + (
                f": the {better} model is {abs(100 * gap):.1f} points more accurate."
                if better
                else ": a tie."
            ),
            (prob(c.colour.test_accuracy), prob(c.grey.test_accuracy))
            + ((f"{abs(100 * gap):.1f}",) if better else ()),
        )
    ]
    k = c.largest_class_gap()
    cg = c.colour.per_class_accuracy[k] - c.grey.per_class_accuracy[k]
    if cg > 0:
        out.append(
            Finding(
                f"Greyscale loses most on {names[k]}: {prob(c.grey.per_class_accuracy[k])} against "
                f"{prob(c.colour.per_class_accuracy[k])} in colour.",
                (prob(c.grey.per_class_accuracy[k]), prob(c.colour.per_class_accuracy[k])),
            )
        )
    if c.labelled:
        out.append(
            Finding(
                f"On the {c.labelled} samples of this report, colour gets {c.correct('colour')} right and "
                "greyscale "
                f"{c.correct('grey')}.",
                (str(c.labelled), str(c.correct("colour")), str(c.correct("grey"))),
            )
        )
    cm = float(np.mean([s.colour.max_drop for s in c.samples]))
    gm = float(np.mean([s.grey.max_drop for s in c.samples]))
    out.append(
        Finding(
            f"Hiding the most important window lowers the clean class's probability by {prob(cm)} on average "
            "in colour "
            f"and {prob(gm)} in greyscale.",
            (prob(cm), prob(gm)),
        )
    )
    if better:
        out.append(
            Finding(
                "Answer to \u201cgreyscale or colour?\u201d: on CIFAR-10, train on colour images"
                if better == "colour"
                else "Answer to \u201cgreyscale or colour?\u201d: here the greyscale twin is the "
                "more accurate one",
                (),
            )
        )
        text = (
            out[-1].text
            + f" (test accuracy {prob(max(c.colour.test_accuracy, c.grey.test_accuracy))} against "
            f"{prob(min(c.colour.test_accuracy, c.grey.test_accuracy))})."
        )
        out[-1] = Finding(text, (prob(c.colour.test_accuracy), prob(c.grey.test_accuracy)))
    return out
