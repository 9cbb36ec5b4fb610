"""How occsens's results show themselves in a notebook: one-line reprs and small HTML snippets.

Jupyter shows an object by its ``_repr_html_`` and a terminal by its ``repr``. The snippets are the
templates ``templates/notebook_*.html.j2``, autoescaped (class, file and fill names are the user's),
styled inline so nothing leaks into the notebook's own page. Three objects use them:

* ``Occlusion`` (``occsens.report.plots.occlusion_html``): settings, per-image classes, the summary figure;
* sanity-check results, through ``show_checks(results)`` (``run_checks`` keeps returning a plain list);
* ``Report``: the page in an iframe (``report_frame``), its CSS and anchors kept inside the frame.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from occsens.checks import CheckResult, format_table
from occsens.errors import OcclusionError, shown
from occsens.report.templates import render_template
from occsens.report.verdicts import read_checks

# The height of the report's frame in a notebook: a screenful, enough for the report's header and its
# first sample's maps; the frame scrolls, and a reader can drag its corner (``resize: vertical``).
FRAME_HEIGHT_PX = 720
# Rows of the per-image table shown inline; a longer result says how many more (its repr has the total).
MAX_ROWS = 20

_TABLE = "border-collapse:collapse;margin:0.3em 0;font-size:90%"
_CELL = "padding:0.15em 0.6em;border-bottom:1px solid #ddd;text-align:left"
VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "inconclusive": "#8a6d00", "info": "#57606a"}


def verdict_counts(verdicts: Sequence[str]) -> str:
    """ "3 pass, 1 fail, 0 inconclusive" (and the info results, only where there are any)."""
    shown = [v for v in VERDICT_COLOURS if v != "info" or "info" in verdicts]
    return ", ".join(f"{verdicts.count(v)} {v}" for v in shown)


def snippet(name: str, **values: Any) -> str:
    """The template ``name`` filled with ``values`` (escaped), and the shared inline styles."""
    return render_template(f"notebook_{name}.html.j2", dict(values, table=_TABLE, cell=_CELL))


def report_frame(page: str, title: str, trust: str | None) -> str:
    """The report's page inside an iframe (``srcdoc``, escaped). Sandboxed: no scripts may run in it (the
    page has none). Same-origin is allowed: a fully sandboxed frame (``sandbox=""``) stayed blank in
    Chromium on the HTML page ``jupyter nbconvert --to html`` exports."""
    return snippet(
        "frame", page=page, title=title or "Occlusion sensitivity report", trust=trust, height=FRAME_HEIGHT_PX
    )


@dataclass(frozen=True)
class CheckTable:
    """Sanity-check results that show themselves: a table in a notebook, one line as a repr, the
    command line's table as ``str``. Iterating gives the results."""

    results: tuple[CheckResult, ...]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __repr__(self) -> str:
        n, counts = len(self.results), verdict_counts([r.verdict for r in self.results])
        return f"<{n} sanity check result{'' if n == 1 else 's'}: {counts}>"

    def __str__(self) -> str:
        return format_table(self.results) + "\n" + read_checks(self.results).summary

    def _repr_html_(self) -> str:
        reading = read_checks(self.results)
        return snippet(
            "checks",
            header=("check", "verdict", "value", "power", "condition"),
            summary=reading.summary,
            rows=reading.rows,
            counts=verdict_counts([r.verdict for r in self.results]),
            colours=VERDICT_COLOURS,
        )


def show_checks(results: Sequence[CheckResult]) -> CheckTable:
    """``run_checks``'s results as a ``CheckTable``: shown as a table in a notebook."""
    if isinstance(results, CheckTable):
        return results
    if isinstance(results, (str, bytes)) or not isinstance(results, Sequence):
        raise OcclusionError(f"results must be the list run_checks returns, got {shown(results)}")
    bad = next((r for r in results if not isinstance(r, CheckResult)), None)
    if bad is not None:
        raise OcclusionError(
            f"results must hold CheckResult objects (from run_checks), got {shown(bad)} "
            f"({type(bad).__name__})"
        )
    return CheckTable(tuple(results))
