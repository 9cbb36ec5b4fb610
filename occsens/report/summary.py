"""What a report on a reader's own images opens with: per image, the prediction, where the evidence lies
and whether to trust it.

The asker's four questions are about CIFAR-10 and the notebook; they open only the demo report (the one
given the asker's printout). A report on other images opens here instead. Each image gets one plain
sentence (what the model predicts, and whether that is its label) and at most two of evidence (the
window whose hiding costs the prediction most, in the words ``occsens.report.findings`` uses; how
sure the model is); one closing sentence says whether the checks that bear on "where the evidence
lies" passed (``occsens.report.consistency.EVIDENCE_REGION``): a failed one vetoes the region claim,
and the summary then says not to read the map as a map of the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from occsens.checks.trust import STRONG_POWER
from occsens.report import analysis as an
from occsens.report.consistency import EVIDENCE_REGION, vetoes
from occsens.report.data import Finding, ReportData
from occsens.report.formatting import prob, region_text
from occsens.report.thresholds import FLAT_DROP, IMPORTANT_DROP


def _image(s: an.SampleAnalysis, data: ReportData, vetoed: bool) -> Finding:
    names, m = data.names, s.main
    cls = names[s.clean_class]
    text = f"The model predicts {cls} ({prob(s.clean_prob)})"
    if s.true_label is not None:
        label = data.label_names[s.true_label]
        text += f", and the label is {label}: {'right' if label == cls else 'wrong'}."
    else:
        text += "."
    nums = [prob(s.clean_prob)]
    where, drop = region_text(m.most_important), prob(m.max_drop)
    if float(drop) < FLAT_DROP:
        text += (
            f" No window changes the answer visibly (the largest drop in P({cls}) is {drop}), so the map "
            "shows no place where the evidence lies."
        )
    elif vetoed:
        text += (
            f" Hiding {where} lowers P({cls}) most, by {drop}; see below why that is not read as where "
            "the evidence lies."
        )
    else:
        spread = (
            f"{m.windows_dropping} of {m.positions} windows lower it by more than {IMPORTANT_DROP:g}"
            if m.windows_dropping
            else f"no window lowers it by more than {IMPORTANT_DROP:g}"
        )
        text += f" The window that matters most is {where}: hiding it lowers P({cls}) by {drop}; {spread}."
        nums.append(str(m.windows_dropping))
    nums += [where, drop]
    return Finding(text, tuple(nums))


def _trust(checks: Sequence[Any] | None) -> str:
    if checks is None:
        return "No sanity checks were run with this report, so nothing here says whether to trust the maps."
    against = vetoes(EVIDENCE_REGION, checks)
    if against:
        failed = ", ".join(f"“{r.name}”" for r in against)
        return f"Do not read these maps as where the evidence lies: {failed} failed (see the sanity checks)."
    bearing = [r for r in checks if r.condition.name in EVIDENCE_REGION.vetoed_by]
    if bearing and all(r.verdict == "pass" for r in bearing):
        # a pass licenses a claim only with power (occsens.checks.trust.STRONG_POWER): say which is weak
        weak = [r for r in bearing if r.power is not None and r.power < STRONG_POWER]
        if not weak:
            return "The checks that bear on where the evidence lies passed: the regions above can be read so."
        names = ", ".join(f"“{r.name}” (catches {r.power:.0%} of known-bad maps)" for r in weak)
        return (
            "The checks that bear on where the evidence lies passed, but "
            f"{names} {'is' if len(weak) == 1 else 'are'} too weak to settle it alone: read the regions "
            "above as likely, not established (see the sanity checks)."
        )
    return (
        "The checks that bear on where the evidence lies did not all have power here: read the regions "
        "above as untested (see the sanity checks)."
    )


@dataclass(frozen=True)
class ImageSummary:
    """What a report on a reader's own images opens with, built once for the page and the JSON."""

    rows: tuple[dict, ...]  # per image: its anchor ("sample-1"), name and summary text
    trust: str  # whether to read the maps as where the evidence lies
    findings: tuple[Finding, ...]  # the summaries as findings (text and the numbers they cite)


def image_summary(data: ReportData) -> ImageSummary:
    """One row per image (its anchor, name and summary), the trust sentence, and the findings."""
    vetoed = bool(vetoes(EVIDENCE_REGION, data.checks))
    found = tuple(_image(s, data, vetoed) for s in data.samples)
    rows = tuple(
        {"id": f"sample-{i + 1}", "name": s.name, "text": f.text}
        for i, (s, f) in enumerate(zip(data.samples, found, strict=True))
    )
    return ImageSummary(rows, _trust(data.checks), found)
