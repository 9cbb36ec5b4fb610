"""Write the shipped models' sanity-check verdicts on the 100 embedded samples into their model cards.

Not a test (pytest does not collect it: minutes of CPU per model). Run from the repository root:

    python tests/checks/card_checks.py [--models default,greyscale] [--dry-run]

For each model it runs ``occsens.run_checks`` exactly as ``occsens check`` does by default (patch 4,
grey fill, seed 0, the occlusion map) but on all 100 embedded CIFAR-10 test samples at once, with their
true labels, and stores every result's verdict, the numbers its condition reads, its power and the
number of images in the card (``<name>.json`` key ``check_verdicts``), plus one line in ``<name>.md``.
The card states what was run (``command``), so anyone can repeat it; nothing is typed in by hand.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

WEIGHTS = Path(__file__).resolve().parents[2] / "occsens" / "weights"
LINE = "- Sanity checks on the 100 embedded samples"


def card_entry(name: str) -> dict:
    """The check verdicts of shipped model ``name`` on the 100 embedded samples, as a card stores them."""
    from occsens.checks import headline, run_checks
    from occsens.cifar.data import CIFAR10_CLASSES
    from occsens.cifar.models import load_model
    from occsens.cifar.samples import load_samples

    samples = load_samples()
    images = torch.as_tensor(np.array(samples.images), dtype=torch.float32) / 255
    start = time.perf_counter()
    results = run_checks(
        load_model(name),
        images,
        labels=[int(y) for y in samples.labels],
        sample_ids=[int(i) for i in samples.indices],
        class_names=list(CIFAR10_CLASSES),
        seed=0,
    )
    return {
        "command": f"python tests/checks/card_checks.py --models {name}",
        "settings": "occsens.run_checks on the 100 embedded test samples with their labels; patch 4, "
        "stride 4, grey fill 0.5, seed 0, the occlusion map",
        "seconds": round(time.perf_counter() - start),
        "results": [
            {
                "check": r.name,
                "verdict": r.verdict,
                "value": headline(r),
                "interval": _interval(r.value),
                "images": len(r.samples),
                "power": r.power,
            }
            for r in results
        ],
    }


def _interval(value: dict) -> list[float] | None:
    """The interval a verdict reads (faithfulness: the mean share of random orders beaten; randomisation
    and background-only: their mean), where the result has one."""
    for low, high in (("share_low", "share_high"), ("interval_low", "interval_high")):
        if low in value and high in value:
            return [round(float(value[low]), 4), round(float(value[high]), 4)]
    return None


def card_line(entry: dict) -> str:
    """The model card's markdown line for ``entry``."""
    parts = []
    for r in entry["results"]:
        interval = f", interval [{r['interval'][0]:.2f}, {r['interval'][1]:.2f}]" if r["interval"] else ""
        parts.append(f"{r['check']} {r['verdict']} ({r['value']}{interval}; {r['images']} images)")
    return f"{LINE} (`{entry['command']}`): " + "; ".join(parts) + "."


def write(name: str, entry: dict) -> None:
    json_path, md_path = WEIGHTS / f"{name}.json", WEIGHTS / f"{name}.md"
    card = json.loads(json_path.read_text())
    card["check_verdicts"] = entry
    json_path.write_text(json.dumps(card, indent=2) + "\n")
    lines = [line for line in md_path.read_text().splitlines() if not line.startswith(LINE)]
    after = next(i for i, line in enumerate(lines) if line.startswith("- Incremental occlusion")) + 1
    lines.insert(after, card_line(entry))
    md_path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default", help="comma-separated shipped model names")
    parser.add_argument("--dry-run", action="store_true", help="print, do not write the cards")
    args = parser.parse_args()
    torch.set_num_threads(2)
    for name in args.models.split(","):
        entry = card_entry(name)
        print(card_line(entry), flush=True)
        if not args.dry_run:
            write(name, entry)


if __name__ == "__main__":
    main()
