"""Train a shipped CIFAR-10 model: resumable, seeded, one checkpoint per epoch.

Recipe (after Page, "How to train your ResNet", 2018, at reduced width): SGD with
Nesterov momentum 0.9, weight decay 5e-4, batch 512, learning rate rising linearly to
0.4 over the first fifth of training and falling linearly to 0, label smoothing 0.2;
augmentation by random 32x32 crops of the 4-pixel reflect-padded image and random
horizontal flips. Each epoch's shuffle and augmentation draw from a generator seeded
by ``(seed, epoch)``, so a resumed run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from occsens.cifar import data
from occsens.cifar.card import build_card, card_files
from occsens.cifar.evaluation import evaluate
from occsens.cifar.models import LUMA_WEIGHTS, Architecture, Normalize, apply_state, build_model, load_state
from occsens.constants import MAX_EPOCHS, MAX_SEED
from occsens.errors import OcclusionError, flag, integer, path, real, shown
from occsens.files import check_out_dir, write_files

# Page's recipe reaches 94% in 24 epochs and the shipped models took 28; 1,000 is 36x that (about 28
# hours on the development machine at 1.7 min per epoch): past it an epoch count is a typo.
# numpy's and most tools' seed range (32 bits); torch's generator is seeded with seed * 100,003 + epoch,
# which stays far inside its 64 bits.
# Random crops shift the image by up to this many pixels each way: half the 32-pixel side (reflect
# padding cannot reach past the image's own width anyway).
MAX_CROP_PADDING = 16
# A learning rate past this diverges for any SGD recipe on this network (Page's peak is 0.4).
MAX_LR = 10.0


@dataclass(frozen=True)
class Recipe:
    """How ``train`` trains; every field is checked when a recipe is made (``OcclusionError``)."""

    epochs: int = 20
    batch_size: int = 512
    peak_lr: float = 0.4
    warmup_fraction: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.2
    crop_padding: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        integer(self.epochs, "epochs", low=1, high=MAX_EPOCHS)
        integer(self.batch_size, "batch_size", low=1)
        if real(self.peak_lr, "peak_lr", 0.0, MAX_LR) == 0:
            raise OcclusionError(f"peak_lr must be a number in (0, {MAX_LR:g}], got 0")
        real(self.warmup_fraction, "warmup_fraction", 0.0, 1.0)
        real(self.momentum, "momentum", 0.0, 0.999)
        real(self.weight_decay, "weight_decay", 0.0, 1.0)
        real(self.label_smoothing, "label_smoothing", 0.0, 1.0)
        integer(self.crop_padding, "crop_padding", low=0, high=MAX_CROP_PADDING)
        integer(self.seed, "seed", low=0, high=MAX_SEED)


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


# A model name becomes file names (<name>.pt, .json, .md, .checkpoint.pt): letters, digits, "-", "_"
# and ".", not starting with ".", and short enough that the longest of them fits a 255-byte file name.
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")
# The note is one line of the model card: a sentence or two, not a document.
MAX_NOTE_CHARS = 1000


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise OcclusionError(
            f"name must be 1-100 letters, digits, '-', '_' or '.' (not starting with '.'), used for file "
            f"names, got {shown(name)}"
        )
    return name


def _files(name: str) -> tuple[str, str, str, str]:
    """The files ``train`` writes: weights, card JSON, card markdown, checkpoint."""
    return f"{name}.pt", f"{name}.json", f"{name}.md", f"{name}.checkpoint.pt"


def _check_arguments(
    out_dir: object,
    name: object,
    arch: object,
    recipe: object,
    resume: object,
    progress: object,
    note: object,
    overwrite: object = False,
) -> Path:
    """Everything ``train`` is given, checked before any work; returns the output folder."""
    _check_name(name)
    if not isinstance(arch, Architecture):
        raise OcclusionError(f"arch must be an occsens.cifar.models.Architecture, got {shown(arch)}")
    if arch.num_classes != data.NUM_CLASSES:
        raise OcclusionError(
            f"num_classes must be {data.NUM_CLASSES} to train on CIFAR-10, got {arch.num_classes}"
        )
    if not isinstance(recipe, Recipe):
        raise OcclusionError(f"recipe must be an occsens.cifar.train.Recipe, got {shown(recipe)}")
    images = len(data.TRAIN_FILES) * data.IMAGES_PER_BATCH
    if recipe.batch_size > images:
        raise OcclusionError(
            f"batch_size must be at most the {images:,} training images, got {recipe.batch_size:,}"
        )
    flag(resume, "resume")
    flag(overwrite, "overwrite")
    flag(progress, "progress")
    if not isinstance(note, str) or len(note) > MAX_NOTE_CHARS or "\n" in note or "\r" in note:
        raise OcclusionError(
            f"note must be one line of text, at most {MAX_NOTE_CHARS} characters, got {shown(note)}"
        )
    out = check_out_dir(path(out_dir, "out"), "--out")
    for file in _files(str(name)):
        if (out / file).is_dir():
            raise OcclusionError(
                f"--out {str(out)!r}: {file!r} there is a folder; train writes a file of that name"
            )
    if resume and overwrite:
        raise OcclusionError("resume and overwrite exclude each other: continue the run, or start it over")
    found = [file for file in _files(str(name)) if (out / file).exists()]
    if found and not resume and not overwrite:  # a finished or a partial run: never replaced silently
        raise OcclusionError(
            f"--out {str(out)!r} already holds a run named {name!r} ({', '.join(found)}); continue it with "
            "--resume (resume=True), replace it with --overwrite (overwrite=True), or choose another "
            "--name or --out"
        )
    return out


def train(
    out_dir: str | Path,
    name: str = "default",
    arch: Architecture = Architecture(),
    recipe: Recipe = Recipe(),
    data_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    note: str = "",
    overwrite: bool = False,
) -> Path:
    """Train ``arch`` with ``recipe``; write ``<name>.pt`` (state dict) and its model card to ``out_dir``.

    A run of the same ``name`` already in ``out_dir`` (finished, or a checkpoint of one in progress) is
    continued with ``resume``, replaced with ``overwrite``, and otherwise refused before any work.

    Every argument is checked first, and with ``resume`` the checkpoint too, before the data is read.
    Each epoch's checkpoint, and at the end the weights with the card's two files, are written whole
    (temporary files renamed into place, all files of a step together): an interrupted run leaves the
    previous checkpoint or the previous model as it was.
    """
    out = _check_arguments(out_dir, name, arch, recipe, resume, progress, note, overwrite)
    weights_file, _, _, ckpt_file = _files(name)
    ckpt_path = out / ckpt_file
    config = {"architecture": asdict(arch), "recipe": asdict(recipe)}

    torch.manual_seed(recipe.seed)
    model = build_model(arch).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=0.0,
        momentum=recipe.momentum,
        nesterov=True,
    )
    start_epoch, elapsed, history = 0, 0.0, list[dict]()
    resumed = resume and ckpt_path.exists()
    if resumed:
        start_epoch, elapsed, history = _resume(ckpt_path, model, optimizer, config, recipe)

    train_split = data.load_split(True, data_dir)
    test_split = data.load_split(False, data_dir)
    if not resumed:  # a checkpoint's model holds the normalisation it was trained with
        _set_normalisation(model, train_split.images, arch.greyscale)
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
            disable=None if progress else True,  # on a terminal only
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
            loss_sum += float(loss.detach())
            bar.set_postfix(loss=f"{loss_sum / (i + 1):.3f}", lr=f"{lr:.3f}", refresh=False)
        elapsed += time.perf_counter() - t0
        entry = {"epoch": epoch + 1, "train_loss": loss_sum / steps_per_epoch, "elapsed_s": round(elapsed, 1)}
        if (epoch + 1) % 5 == 0 or epoch + 1 == recipe.epochs:
            entry["test_accuracy"] = evaluate(model, test_split).accuracy
        history.append(entry)
        print(json.dumps(entry), flush=True)
        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "epoch": epoch + 1,
            "elapsed_s": elapsed,
            "config": json.dumps(config),
            "history": json.dumps(history),
        }
        write_files(out, {ckpt_file: _saved(checkpoint)}, "the checkpoint")

    model.eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    card = build_card(name, model, arch, asdict(recipe), elapsed, history, data_dir, note)
    write_files(out, {weights_file: _saved(state), **card_files(name, card)}, "the weights and model card")
    return out / weights_file


def _saved(obj: object) -> bytes:
    """``torch.save`` into bytes (written to disk by ``occsens.files.write_files``, whole or not at all)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


_CHECKPOINT_KEYS = ("model", "optimizer", "epoch", "elapsed_s", "config", "history")


def _resume(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, config: dict, recipe: Recipe
) -> tuple[int, float, list]:
    """Load the checkpoint at ``path`` into ``model`` and ``optimizer``; its epoch, time and history.

    Read without running code (``torch.load(weights_only=True)``, bounded by the model's size), and
    checked: the keys ``train`` writes, the same settings, tensors that fit this architecture. Any
    failure is one ``OcclusionError`` saying what is wrong and to rerun without ``--resume``.
    """
    where = f"resume: checkpoint {str(path)!r}"
    fix = "delete it or rerun without --resume"
    ckpt = load_state(path, model, "checkpoint")
    if not isinstance(ckpt, dict) or any(key not in ckpt for key in _CHECKPOINT_KEYS):
        raise OcclusionError(
            f"{where} is not a checkpoint written by occsens train (it lacks its keys); {fix}"
        )
    try:
        saved_config = json.loads(ckpt["config"])
        history = json.loads(ckpt["history"])
    except (TypeError, ValueError):
        raise OcclusionError(f"{where} is corrupt (its settings or history are not JSON); {fix}") from None
    except RecursionError:  # JSON nested deeper than Python's stack: train never writes that
        deep = "its settings or history are nested too deeply"
        raise OcclusionError(f"{where} is corrupt ({deep}); {fix}") from None
    if saved_config != config:
        raise OcclusionError(
            f"{where} was made with other settings; rerun without --resume or with the same settings"
        )
    epoch, elapsed = ckpt["epoch"], ckpt["elapsed_s"]
    ok = (
        isinstance(epoch, int)
        and not isinstance(epoch, bool)
        and 0 <= epoch <= recipe.epochs
        and isinstance(elapsed, (int, float))
        and math.isfinite(elapsed)
        and elapsed >= 0
        and isinstance(history, list)
        and len(history) == epoch
    )
    if not ok:
        raise OcclusionError(
            f"{where} is corrupt (epoch {shown(epoch)} of {recipe.epochs}, elapsed {shown(elapsed)}, "
            f"history {shown(history)}); {fix}"
        )
    apply_state(model, ckpt["model"], where)
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise OcclusionError(f"{where}: its optimizer state does not fit this model ({exc}); {fix}") from None
    return epoch, float(elapsed), history
