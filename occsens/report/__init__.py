"""The HTML report: engine runs -> numbers -> view model of plain values and strings -> jinja2 -> one file.

Its floors, each importing only those below it:

* ``runs``: every engine run the report needs, planned once, then executed;
* ``analysis``: the numbers, frozen dataclasses read from the runs' ``Occlusion`` results;
* ``figures``: one PNG per figure, from those numbers (matplotlib, no global state);
* ``data``: what comes in (``ModelInfo``, ``Twin``) and goes out (``Report``), and ``ReportData``;
* ``formatting`` and ``findings``: the sentences, each with the formatted numbers it rests on;
* ``view``: the view model the template renders; ``render``: the page and the JSON numbers;
* ``make``: the pipeline (``make_report``) and the atomic writer (``write_report``).

The report knows no dataset and no command line: class names, the model's facts (its label, card
and greyscale twin), samples and images come in as arguments. ``occsens.cli.report`` builds them
for CIFAR-10 and defines ``occsens report`` and ``occsens explain``.
"""

from occsens.report.analysis import Card
from occsens.report.data import Finding, ModelInfo, Report, ReportData, Twin
from occsens.report.make import HTML_NAME, JSON_NAME, make_report, write_report
from occsens.report.render import render, report_numbers
from occsens.report.view import build_view

__all__ = [
    "HTML_NAME",
    "JSON_NAME",
    "Card",
    "Finding",
    "ModelInfo",
    "Report",
    "ReportData",
    "Twin",
    "build_view",
    "make_report",
    "render",
    "report_numbers",
    "write_report",
]
