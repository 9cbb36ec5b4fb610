"""The model card of a trained CIFAR-10 model: what it is, how it was trained, how well it does.

``occsens train`` writes it next to the weights (``<name>.json`` and ``<name>.md``); the shipped
models' cards are ``occsens/weights/default.*`` and ``greyscale.*``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from occsens.cifar import data
from occsens.cifar.evaluation import evaluate, predict
from occsens.cifar.models import Architecture, count_flops
from occsens.cifar.samples import load_samples
from occsens.engine.extents import affected_share


def build_card(
    name: str,
    model: torch.nn.Module,
    arch: Architecture,
    recipe: dict,
    elapsed: float,
    history: list,
    data_dir: str | Path | None,
    note: str = "",
) -> dict:
    """The model card (JSON-ready) of a trained model, with a full test-set evaluation.

    ``recipe`` is the training recipe's fields (``dataclasses.asdict`` of ``occsens.cifar.train.Recipe``).
    """
    result = evaluate(model, data.load_split(False, data_dir))
    params = sum(p.numel() for p in model.parameters())
    card = {
        "name": name,
        "architecture": asdict(arch),
        "description": f"ResNet-9 layout (Page 2018) at width {arch.width} "
        f"({arch.width}-{2 * arch.width}-{4 * arch.width}-{8 * arch.width} channels)"
        + (", luminance input" if arch.greyscale else ", RGB input"),
        "parameters": params,
        "flops_per_forward": count_flops(model),
        "incremental_flop_share": {
            "patch 4 stride 4": round(affected_share(model, (32, 32), 4, 4), 4),
            "patch 8 stride 2": round(affected_share(model, (32, 32), 8, 2), 4),
            "meaning": "share of a full forward's FLOPs inside each window's projective field, averaged over "
            "windows: what an exact incremental engine must recompute (occsens.engine.extents)",
        },
        "training": {
            "command": f"occsens train --name {name} --width {arch.width}"
            + (" --greyscale" if arch.greyscale else "")
            + f" --epochs {recipe['epochs']} --seed {recipe['seed']}",
            "recipe": recipe,
            "epochs": recipe["epochs"],
            "wall_time_s": round(elapsed, 1),
            "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
            "history": history,
        },
        "test_accuracy": result.accuracy,
        "embedded_sample_accuracy": _embedded_accuracy(model),
        "test_correct": result.correct,
        "test_images": result.total,
        "per_class_accuracy": {
            c: float(a) for c, a in zip(data.CIFAR10_CLASSES, result.per_class_accuracy, strict=False)
        },
        "confusion_matrix": result.confusion.tolist(),
        "training_data_sha256": data.file_digests(data_dir),
    }
    if note:
        card["note"] = note
    return card


def card_files(name: str, card: dict) -> dict[str, bytes]:
    """The card's two files, ``<name>.json`` and ``<name>.md``, as bytes to write together."""
    return {
        f"{name}.json": (json.dumps(card, indent=2) + "\n").encode("utf-8"),
        f"{name}.md": card_markdown(card).encode("utf-8"),
    }


def _embedded_accuracy(model: torch.nn.Module) -> float:
    """Accuracy on the 100 test images shipped in the package (a quick check that the weights load right)."""
    samples = load_samples()
    return float((predict(model, samples.images) == samples.labels).mean())


def card_markdown(card: dict) -> str:
    """A short human-readable model card from the JSON one."""
    t = card["training"]
    share = card["incremental_flop_share"]
    lines = [
        f"# Model card: `{card['name']}`",
        "",
        f"- Architecture: {card['description']}; {card['parameters']:,} parameters; "
        f"{card['flops_per_forward'] / 1e6:.1f} MFLOP per forward (32x32 image).",
        "- Input: pixel-space RGB in [0, 1], shape [B, 3, 32, 32]; normalisation"
        + (" and luminance conversion" if card["architecture"]["greyscale"] else "")
        + " inside the model. Output: logits over the 10 CIFAR-10 classes.",
        f"- Test accuracy (full 10,000-image CIFAR-10 test set): **{card['test_accuracy']:.4f}** "
        f"({card['test_correct']}/{card['test_images']}); on the 100 embedded test samples "
        f"{card['embedded_sample_accuracy']:.2f}.",
        f"- Training: `{t['command']}`; {t['epochs']} epochs on the 50,000 training images, "
        f"{t['wall_time_s'] / 60:.1f} min wall time on {t['machine']}.",
        f"- Incremental occlusion: windows reach {share['patch 4 stride 4']:.0%} (patch 4 stride 4) and "
        f"{share['patch 8 stride 2']:.0%} (patch 8 stride 2) of a forward's FLOPs.",
        *([f"- Note: {card['note']}"] if card.get("note") else []),
        "",
        "| class | accuracy |",
        "|---|---|",
        *[f"| {c} | {a:.3f} |" for c, a in card["per_class_accuracy"].items()],
        "",
        "Confusion matrix (rows: true class, columns: predicted), training data SHA-256 and the per-epoch "
        f"history are in `{card['name']}.json`.",
        "",
    ]
    return "\n".join(lines)
