"""Train a shipped CIFAR-10 model: resumable, seeded, one checkpoint per epoch.

Recipe (after Page, "How to train your ResNet", 2018, at reduced width): SGD with
Nesterov momentum 0.9, weight decay 5e-4, batch 512, learning rate rising linearly to
0.4 over the first fifth of training and falling linearly to 0, label smoothing 0.2;
augmentation by random 32x32 crops of the 4-pixel reflect-padded image and random
horizontal flips. Each epoch's shuffle and augmentation draw from a generator seeded
by ``(seed, epoch)``, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from occsens._alloc import keep_heap_memory
from occsens.cifar import data
from occsens.cifar.evaluation import evaluate, predict
from occsens.cifar.models import (
    LUMA_WEIGHTS,
    Architecture,
    Normalize,
    build_model,
    count_flops,
)
from occsens.cifar.samples import load_samples
from occsens.engine.extents import affected_share
from occsens.errors import OcclusionError


@dataclass(frozen=True)
class Recipe:
    epochs: int = 20
    batch_size: int = 512
    peak_lr: float = 0.4
    warmup_fraction: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    crop_padding: int = 4
    seed: int = 0


def _lr_at(step: int, total: int, recipe: Recipe) -> float:
    warm = max(1, int(recipe.warmup_fraction * total))
    if step < warm:
        return recipe.peak_lr * (step + 1) / warm
    return recipe.peak_lr * max(0.0, (total - step) / (total - warm))


def _augment(images: torch.Tensor, padding: int, gen: torch.Generator) -> torch.Tensor:
    """Random crops of the reflect-padded batch and random horizontal flips (uint8 in, uint8 out)."""
    n, _, h, w = images.shape
    padded = F.pad(images.float(), (padding,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=gen)
    out = torch.empty(n, 3, h, w)
    for oy in range(2 * padding + 1):  # group by offset: 81 slices instead of n gathers
        for ox in range(2 * padding + 1):
            idx = ((dy == oy) & (dx == ox)).nonzero().squeeze(1)
            if len(idx):
                out[idx] = padded[idx, :, oy : oy + h, ox : ox + w]
    flip = torch.rand(n, generator=gen) < 0.5
    out[flip] = out[flip].flip(3)
    return out


def _set_normalisation(model: torch.nn.Module, train_images: np.ndarray, greyscale: bool) -> None:
    """Put the training set's per-channel mean and std into the model's Normalize buffers."""
    x = torch.from_numpy(train_images).float().div_(255)
    if greyscale:
        x = (x * torch.tensor(LUMA_WEIGHTS).view(1, 3, 1, 1)).sum(1, keepdim=True)
    mean = x.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
    std = x.std(dim=(0, 2, 3)).view(1, -1, 1, 1)
    norm = next(m for m in model.modules() if isinstance(m, Normalize))
    norm.mean.copy_(mean)
    norm.std.copy_(std)


def train(
    out_dir: str | Path,
    name: str = "default",
    arch: Architecture = Architecture(),
    recipe: Recipe = Recipe(),
    data_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    note: str = "",
) -> Path:
    """Train ``arch`` with ``recipe``; write ``<name>.pt`` (state dict) and its model card to ``out_dir``."""
    keep_heap_memory()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OcclusionError(f"out {str(out)!r} cannot be created ({exc.strerror})") from None
    ckpt_path = out / f"{name}.checkpoint.pt"
    config = {"architecture": asdict(arch), "recipe": asdict(recipe)}

    train_split = data.load_split(True, data_dir)
    test_split = data.load_split(False, data_dir)
    torch.manual_seed(recipe.seed)
    model = build_model(arch)
    _set_normalisation(model, train_split.images, arch.greyscale)
    model = model.to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.0,
        momentum=recipe.momentum,
        nesterov=True,
    )
    start_epoch, elapsed, history = 0, 0.0, []
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if json.loads(ckpt["config"]) != config:
            raise OcclusionError(
                f"resume: checkpoint {str(ckpt_path)!r} was made with other settings; "
                f"rerun without --resume or with the same settings"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        start_epoch, elapsed = int(ckpt["epoch"]), float(ckpt["elapsed_s"])
        history = json.loads(ckpt["history"])

    images = torch.from_numpy(train_split.images)
    labels = torch.from_numpy(train_split.labels)
    steps_per_epoch = len(labels) // recipe.batch_size  # drop the last partial batch
    total_steps = steps_per_epoch * recipe.epochs
    for epoch in range(start_epoch, recipe.epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)
        order = torch.randperm(len(labels), generator=gen)
        model.train()
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{name} epoch {epoch + 1}/{recipe.epochs}",
            unit="batch",
            disable=not progress,
            mininterval=5,
        )
        loss_sum = 0.0
        for i in bar:
            idx = order[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            x = _augment(images[idx], recipe.crop_padding, gen).div_(255)
            x = x.contiguous(memory_format=torch.channels_last)
            lr = _lr_at(epoch * steps_per_epoch + i, total_steps, recipe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss)
            bar.set_postfix(loss=f"{loss_sum / (i + 1):.3f}", lr=f"{lr:.3f}", refresh=False)
        elapsed += time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / steps_per_epoch, "elapsed_s": round(elapsed, 1)}
        if (epoch + 1) % 5 == 0 or epoch + 1 == recipe.epochs:
            entry["test_accuracy"] = evaluate(model, test_split).accuracy
        history.append(entry)
        print(json.dumps(entry), flush=True)
        torch.save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch + 1,
                "elapsed_s": elapsed,
                "config": json.dumps(config),
                "history": json.dumps(history),
            },
            ckpt_path,
        )

    model.eval()
    weights = out / f"{name}.pt"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, weights)
    write_card(out, name, model, arch, recipe, elapsed, history, data_dir, note)
    return weights


def write_card(
    out: Path,
    name: str,
    model: torch.nn.Module,
    arch: Architecture,
    recipe: Recipe,
    elapsed: float,
    history: list,
    data_dir: str | Path | None,
    note: str = "",
) -> dict:
    """The model card, JSON and markdown, from the trained model and a full test-set evaluation."""
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
            + f" --epochs {recipe.epochs} --seed {recipe.seed}",
            "recipe": asdict(recipe),
            "epochs": recipe.epochs,
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
    (out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / f"{name}.md").write_text(card_markdown(card))
    return card


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
