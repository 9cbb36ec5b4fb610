"""Every page occsens writes, from the jinja2 templates in ``templates/``, with autoescape on.

The wheel ships ``templates/`` as the package ``occsens.templates``; a checkout without an install reads
them from the folder. The report (``report.html.j2``), the survey's page (``survey.html.j2``) and the
notebook's snippets (``notebook_*.html.j2``) are rendered by the one ``render_template``; the pages
include the shared stylesheet, ``report.css``.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from occsens.errors import OcclusionError
from occsens.report.analysis import fill_label
from occsens.report.formatting import notebook_square, pct, points, prob, region_text, rep_name

STYLESHEET = "report.css"
# How a template formats a number (``{{ m.max_drop|prob }}``): the formats the findings use, so a
# sentence and the table beside it print a number alike (``occsens.report.formatting``).
FILTERS = {
    "prob": prob,
    "pct": pct,
    "points": points,
    "region": region_text,
    "rep": rep_name,
    "fill": fill_label,
    "square": notebook_square,
    "repr": repr,
    "thousands": lambda v: "" if v is None else f"{v:,}",
}


def _template_sources(wanted: tuple[str, ...]) -> dict[str, str]:
    """The templates ``wanted``: from the installed package ``occsens.templates``, else a checkout's
    ``templates/``."""
    try:
        root = files("occsens.templates")
        return {name: root.joinpath(name).read_text(encoding="utf-8") for name in wanted}
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        folder = Path(__file__).resolve().parents[2] / "templates"
        try:
            return {name: (folder / name).read_text(encoding="utf-8") for name in wanted}
        except OSError:
            raise OcclusionError(
                "the report templates are missing from this installation (occsens.templates); reinstall "
                "occsens"
            ) from None


def render_template(name: str, values: Mapping[str, Any]) -> str:
    """The template ``name`` (and the stylesheet it may include) filled with ``values``, escaped."""
    env = jinja2.Environment(
        loader=jinja2.DictLoader(_template_sources((name, STYLESHEET))),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env.get_template(name).render(**values)
