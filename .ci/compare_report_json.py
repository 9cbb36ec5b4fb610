"""Compare two report.json files: every value of the first must be in the second, equal; fields the
second adds are listed, not failed. Exit 0 when equal in that sense, 1 otherwise, printing each difference.

    python .ci/compare_report_json.py before/report.json after/report.json

Used to hold a refactoring to "the default report is the same in its numbers" (issue 22): floats are
compared exactly, as written (both files come from json.dumps of the same float64 values).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def differences(before: Any, after: Any, where: str = "$") -> tuple[list[str], list[str]]:
    """(differences, added fields) between two JSON values, each named by its path."""
    if isinstance(before, dict) and isinstance(after, dict):
        diffs: list[str] = []
        added = [f"{where}.{k}" for k in after if k not in before]
        for key, value in before.items():
            if key not in after:
                diffs.append(f"{where}.{key}: missing")
                continue
            d, a = differences(value, after[key], f"{where}.{key}")
            diffs += d
            added += a
        return diffs, added
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{where}: {len(before)} items before, {len(after)} after"], []
        diffs, added = [], []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            d, ad = differences(b, a, f"{where}[{i}]")
            diffs += d
            added += ad
        return diffs, added
    if type(before) is not type(after) or before != after:
        return [f"{where}: {before!r} before, {after!r} after"], []
    return [], []


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    with open(argv[0], encoding="utf-8") as f, open(argv[1], encoding="utf-8") as g:
        diffs, added = differences(json.load(f), json.load(g))
    for a in added:
        print(f"added: {a}")
    for d in diffs:
        print(f"differs: {d}")
    print("equal in every value of the first file" if not diffs else f"{len(diffs)} difference(s)")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
