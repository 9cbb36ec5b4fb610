"""The results as a plain-text table, JSON and one self-contained HTML page. Receives data; no torch.

Nothing here depends on the clock, so the same results give the same bytes.
"""

from __future__ import annotations

import html
import json
import textwrap
from collections.abc import Sequence

from occsens.conformance.results import PropertyResult, contract_failures, verified

COUNTEREXAMPLE_WIDTH = 72  # the table's last column wraps here: the whole table stays within ~130 columns


def summary(name: str, results: Sequence[PropertyResult]) -> str:
    """One sentence: how many contract properties hold, and the conventions followed."""
    contract = [r for r in results if r.kind == "contract"]
    held = sum(r.passed for r in contract)
    untested = sum(r.status == "untested" for r in contract)
    text = f"{name}: {held} of {len(contract)} contract properties hold"
    if not verified(list(results)):
        text = f"{name}: not verified, none of {len(contract)} contract properties could be tested"
    elif untested:
        text += f" ({untested} untested: the implementation cannot express their cases)"
    for r in results:
        if r.kind == "convention":
            text += f"; {r.name}: {r.verdict}"
    return text


def format_table(results: Sequence[PropertyResult]) -> str:
    """property | kind | verdict | counterexample, the counterexample wrapped in its column."""
    rows = [("property", "kind", "verdict", "counterexample")]
    rows += [(r.name, r.kind, r.verdict, r.counterexample or "-") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    indent = sum(widths) + 6
    lines = []
    for i, (name, kind, verdict, text) in enumerate(rows):
        wrapped = textwrap.wrap(text, COUNTEREXAMPLE_WIDTH) or [""]
        lines.append(f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {verdict:<{widths[2]}}  {wrapped[0]}")
        lines += [" " * indent + more for more in wrapped[1:]]
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * COUNTEREXAMPLE_WIDTH)
    return "\n".join(lines)


def to_json(name: str, results: Sequence[PropertyResult], *, examples: int, seed: int) -> str:
    payload = {
        "implementation": name,
        "examples": examples,
        "seed": seed,
        "summary": summary(name, results),
        "verified": verified(list(results)),
        "contract_failures": [r.name for r in contract_failures(list(results))],
        "results": [r.as_dict() for r in results],
    }
    return json.dumps(payload, indent=2) + "\n"


_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; border-bottom: 1px solid #ddd; }
td.pass { color: #176317; font-weight: 600; } td.fail { color: #a11; font-weight: 600; }
td.untested { color: #777; font-weight: 600; } td.explain { color: #555; font-size: 90%; }
"""


def to_html(name: str, results: Sequence[PropertyResult], *, examples: int, seed: int) -> str:
    """One page, CSS inlined, every value escaped."""
    e = html.escape
    rows = []
    for r in results:
        rows.append(
            f'<tr><td>{e(r.name)}</td><td>{e(r.kind)}</td><td class="{e(r.status)}">{e(r.verdict)}</td>'
            f'<td>{e(r.counterexample or "-")}</td><td class="explain">{e(r.explanation)}</td></tr>'
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>occsens conform {e(name)}</title><style>{_CSS}</style></head><body>\n"
        f"<h1>Conformance of {e(name)}</h1>\n<p>{e(summary(name, results))}.</p>\n"
        f"<p>{examples} cases drawn per property, seed {seed} (<code>occsens conform {e(name)} "
        f"--examples {examples} --seed {seed}</code>).</p>\n"
        "<table><thead><tr><th>property</th><th>kind</th><th>verdict</th><th>counterexample</th>"
        "<th>what it checks</th></tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n</body></html>\n"
    )
