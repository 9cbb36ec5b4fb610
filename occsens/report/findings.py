"""The report's sentences: small functions over the analysis dataclasses, each returning a ``Finding``.

A finding is one sentence and the formatted numbers it rests on; every one of those numbers is also
shown in a table of the report, formatted the same way (``occsens.report.formatting``), so a
reader can check each sentence against the table next to it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from occsens.report import analysis as an
from occsens.report.cards import Card, TwinComparison
from occsens.report.consistency import largest
from occsens.report.data import Finding, ReportData
from occsens.report.formatting import points, prob, region_text, rep_name
from occsens.report.thresholds import FLAT_DROP, IMPORTANT_DROP, SAME_MAP_SHARE, SPREAD_AREA_SHARE, WEAK_CLEAN


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
    if float(prob(m.max_drop)) < FLAT_DROP:
        return Finding(
            f"The largest drop in P({t}), {prob(m.max_drop)}, is at {where}: too small for any window to "
            "matter.",
            (prob(m.max_drop), where),
        )
    return Finding(
        f"The region that matters most is {where}: hiding it lowers P({t}) from {prob(m.clean_target_prob)} "
        "to "
        f"{prob(m.min_target_prob)}, a drop of {prob(m.max_drop)}.",
        (where, prob(m.clean_target_prob), prob(m.min_target_prob), prob(m.max_drop)),
    )


def finding_spread(m: an.MapStats, names: Sequence[str]) -> Finding:
    """How many windows matter; when none does, why not, in the words its numbers allow."""
    t, limit = names[m.target], f"{IMPORTANT_DROP:g}"
    if m.windows_dropping:
        windows = "window" if m.windows_dropping == 1 else "windows"
        return Finding(
            f"Hiding {m.windows_dropping} of the {m.positions} {windows} (one at a time) lowers P({t}) by "
            f"more than {limit}; at the median window P({t}) is still {prob(m.median_target_prob)}.",
            (str(m.windows_dropping), str(m.positions), limit, prob(m.median_target_prob)),
        )
    if float(prob(m.clean_target_prob)) <= WEAK_CLEAN:
        return Finding(
            f"P({t}) is only {prob(m.clean_target_prob)} on the unoccluded image, so no window can lower it "
            f"by more than {limit}: this map cannot show where the evidence is.",
            (prob(m.clean_target_prob), limit),
        )
    if float(prob(m.max_drop)) <= 0:
        return Finding(
            f"No window lowers P({t}) (the largest drop is {prob(m.max_drop)}): hiding any one of them "
            "leaves the answer as it is or raises it, so this map shows no region the answer rests on.",
            (prob(m.max_drop),),
        )
    if float(prob(m.max_drop)) < FLAT_DROP:
        return Finding(
            f"The map is flat: hiding any one window lowers P({t}) by at most {prob(m.max_drop)}, less than "
            f"{FLAT_DROP:g}, so it shows no region the answer rests on.",
            (prob(m.max_drop),),
        )
    return Finding(
        f"No single window lowers P({t}) by more than {limit}: the largest drop is {prob(m.max_drop)}, and "
        f"at the median window P({t}) is still {prob(m.median_target_prob)}, so the evidence is spread over "
        "several windows or redundant.",
        (limit, prob(m.max_drop), prob(m.median_target_prob)),
    )


def finding_takeover(m: an.MapStats, names: Sequence[str]) -> Finding:
    clean = names[m.clean_class]
    if m.replacement is None:
        return Finding(
            f"{clean} stays the most probable class at all {m.positions} windows: no class takes over.",
            (str(m.positions),),
        )
    assert m.replacement_extent is not None and m.replacement_best is not None
    rep, where = names[m.replacement], region_text(m.replacement_extent)
    best = region_text(m.replacement_best)
    e = m.replacement_extent
    spread = (e.bottom - e.top + 1) * (e.right - e.left + 1) >= SPREAD_AREA_SHARE * m.pixels
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
    """The image minus the window against the window alone; a conclusion only where the maps differ."""
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
        f"{n} (median {prob(rev.median_target_prob)})"
    )
    if s.agreement >= SAME_MAP_SHARE * occ.positions:
        text += (
            f". The two class maps agree at {s.agreement} of {n} windows: on this image they cannot tell the "
            "two readings apart"
        )
    else:
        text += (
            f". The two class maps agree at only {s.agreement} of {n} windows, so the occlusion map is not a "
            "map of the patch alone"
        )
        if occ.kept < rev.kept:
            text += "; here a single window carries more of the answer than the rest of the image"
    return Finding(text + ".", nums)


def finding_fills(s: an.SampleAnalysis, names: Sequence[str]) -> Finding:
    """Does the fill decide the replacement class? Only said where there is something to compare."""
    parts = [f"{an.fill_label(f.fill)}: {rep_name(f.stats, names)}" for f in s.fills]
    nums = tuple(str(f.stats.replacement_count) for f in s.fills if f.stats.replacement is not None)
    listed = "; ".join(parts)
    taken = [f for f in s.fills if f.stats.replacement is not None]
    verdict = s.fill_verdict
    if verdict == "changes":
        return Finding(
            f"The top replacement class changes with the fill ({listed}): the replacement class is "
            "driven by the occluder, not the image.",
            nums,
        )
    if verdict == "none":
        return Finding(
            f"No class takes over under any of the {len(s.fills)} fills: the clean class stays the most "
            "probable at every window whatever fills it, so there is no replacement to compare.",
            (str(len(s.fills)),),
        )
    rep = names[taken[0].stats.replacement]  # type: ignore[index]
    if verdict == "one":
        return Finding(
            f"Only one of the {len(s.fills)} fills lets a class take over ({listed}), so whether the fill "
            f"decides the replacement ({rep}) cannot be told here.",
            (str(len(s.fills)), *nums),
        )
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
    matches, with_rep = s.fill_matches
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
    """This image under the notebook's square against true windows (the square itself is introduced once)."""
    m, t = nb.notebook, nb.same_size
    size = m.patch[0]
    text = (
        f"Under the notebook's square the clean class stays most probable at {m.kept} of {m.positions} "
        f"positions, against {t.kept} with true {size}x{size} windows"
    )
    nums = [str(m.kept), str(m.positions), str(t.kept)]
    if m.replacement is not None:
        text += f"; {names[m.replacement]} takes over at {m.replacement_count}"
        nums.append(str(m.replacement_count))
    return Finding(text + ".", tuple(nums))


def finding_last(s: an.SampleAnalysis, nb: an.NotebookStats, names: Sequence[str]) -> Finding:
    """What the notebook's print, np.amax(out), shows for this image (doubt 1)."""
    same = nb.last_class == s.clean_class
    return Finding(
        f"The notebook's np.amax(out) would print {prob(nb.last_prob)}, for {names[nb.last_class]}: its last "
        f"occluded input ({region_text(nb.last)} greyed), not the unoccluded image, which gives "
        f"{names[s.clean_class]} {prob(s.clean_prob)}"
        + (" (the same class)." if same else ", another class."),
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


def finding_card(card: Card, names: Sequence[str]) -> Finding:
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


def findings_twins(c: TwinComparison, names: Sequence[str]) -> list[Finding]:
    """The colour model against its greyscale twin; whether the gap stands out is the Q4 answer's job."""
    gap = c.gap_points
    better = "colour" if gap > 0 else "greyscale" if gap < 0 else None
    out = [
        Finding(
            f"Test accuracy: colour {prob(c.colour.test_accuracy)}, greyscale {prob(c.grey.test_accuracy)}"
            + (
                f": the {better} model is {points(abs(gap) / 100)} points more accurate."
                if better
                else ": a tie."
            ),
            (prob(c.colour.test_accuracy), prob(c.grey.test_accuracy))
            + ((points(abs(gap) / 100),) if better else ()),
        )
    ]
    pairs = zip(c.colour.per_class_accuracy, c.grey.per_class_accuracy, strict=True)
    gaps = [round(1000 * (a - b)) for a, b in pairs]
    k = largest(gaps)  # as printed (tenths of a point); a shared largest names no class
    if k is not None and gaps[k] > 0:
        out.append(
            Finding(
                f"Greyscale's largest per-class loss is on {names[k]}: {prob(c.grey.per_class_accuracy[k])} "
                "against "
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
    cm, gm = c.mean_drop("colour"), c.mean_drop("grey")
    out.append(
        Finding(
            f"Hiding the most important window lowers the clean class's probability by {prob(cm)} on average "
            "in colour "
            f"and {prob(gm)} in greyscale.",
            (prob(cm), prob(gm)),
        )
    )
    return out
