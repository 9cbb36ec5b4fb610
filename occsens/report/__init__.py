"""The HTML report: engine runs -> numbers -> view model of plain values and strings -> jinja2 -> one file.

Its floors, each importing only those below it:

* ``runs``: every engine run the report needs, planned once, then executed;
* ``analysis``: the numbers, frozen dataclasses read from the runs' ``Occlusion`` results;
* ``figures`` (the shared drawing), ``figures_sample`` and ``figures_overview``: each figure as a
  matplotlib ``Figure`` and as the report's PNG, from those numbers (no pyplot, no global state);
* ``data``: what comes in (``ModelInfo``, ``Twin``) and goes out (``Report``), and ``ReportData``;
* ``cards``: the model cards (with their seed-to-seed spread) and the colour-vs-greyscale comparison;
* ``thresholds``: every number at which a sentence changes its words, with its reason;
* ``formatting`` and ``findings``: the sentences, each with the formatted numbers it rests on;
* ``questions``, ``evidence`` and ``answers``: the asker's four questions, the numbers each answer
  cites and the answers themselves; ``verdicts``: the sanity checks' verdicts, power and summary;
* ``view`` and ``view_sample``: the view model (the records themselves, figures and sentences);
  ``templates``: every page from ``templates/``, numbers formatted there; ``render``: the page and
  the JSON numbers, both read from the same records;
* ``make``: the pipeline (``make_report``) and the atomic writer (``write_report``);
* in a notebook: ``display`` (one-line reprs and small HTML snippets; ``show_checks``), ``plots``
  (``Occlusion.plot``, ``overlay`` and its inline summary) and ``explain`` (``occsens.explain``: the
  report from Python, shown inline, ``Report.save``).

The report knows no dataset and no command line: class names, the model's facts (its label, card
and greyscale twin), samples and images come in as arguments. ``occsens.cli.report`` builds them
for CIFAR-10 and defines ``occsens report`` and ``occsens explain``.
"""

from occsens.constants import HTML_NAME, JSON_NAME
from occsens.report.cards import Card, SeedSpread
from occsens.report.data import Finding, ModelInfo, Report, ReportData, Twin
from occsens.report.display import CheckTable, show_checks
from occsens.report.make import make_report, render_report, write_report
from occsens.report.questions import ASKER, QUESTIONS, Printout
from occsens.report.render import render, report_numbers
from occsens.report.verdicts import CheckReading, read_checks
from occsens.report.view import build_view

__all__ = [
    "ASKER",
    "HTML_NAME",
    "JSON_NAME",
    "Card",
    "CheckReading",
    "CheckTable",
    "Finding",
    "ModelInfo",
    "Printout",
    "QUESTIONS",
    "Report",
    "ReportData",
    "SeedSpread",
    "Twin",
    "build_view",
    "make_report",
    "read_checks",
    "render_report",
    "render",
    "report_numbers",
    "show_checks",
    "write_report",
]
