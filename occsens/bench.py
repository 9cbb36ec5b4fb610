"""``occsens bench``: occsens against Captum, MONAI and a per-position loop, timed in one run.

For each model, setting (patch, stride) and image count, every engine first computes its answer and
the answers are compared (max abs difference, printed before any time): occsens brute force,
occsens incremental and the per-position loop on probabilities, Captum's ``Occlusion`` and MONAI's
``OcclusionSensitivity`` on the per-pixel map (``clean - MONAI's map`` equals occsens'
``attribution()`` where the windows agree). Then the engines are timed interleaved (A B C A B C, so
the machine's drifting speed hits all alike), ``--reps`` times after one warm-up, and the median is
reported in ms per image and as a ratio to Captum's best ``perturbations_per_eval``. Achieved
GFLOP/s (windows x images x model FLOPs / time) is set against the model's own large-batch forward
throughput (the practical ceiling) and a float32 matmul's; peak memory is the largest rise in the
process's resident memory during one run of each engine.

Captum and MONAI are optional (``pip install occsens[bench]``); an engine that is missing or
cannot express a setting is reported as such, never silently dropped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from occsens._alloc import keep_heap_memory
from occsens.core import occlude, sliding_plan
from occsens.errors import OcclusionError
from occsens.models import count_flops, load_model, resnet20

SETTINGS = {"p4s4": (4, 4), "p8s2": (8, 2), "p4s1": (4, 1)}
CAPTUM_PPE = (16, 64, 256)
MONAI_BATCH = (16, 64, 256)
FILL = 0.5


@dataclass
class Row:
    """One (model, setting, images) case: agreement, then the median time of every engine."""

    model: str
    setting: str
    images: int
    windows: int
    agreement: dict[str, float] = field(default_factory=dict)
    ms_per_image: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- engines


def _softmax_model(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    return forward


def per_position_loop(model: nn.Module, images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """The notebook's way: one model call per window position. Returns probabilities [N, P, K]."""
    plan = sliding_plan(tuple(images.shape[2:]), (patch, patch), (stride, stride))
    out = []
    with torch.inference_mode():
        for image in images:
            rows = []
            for top, left, h, w in plan.windows.reshape(-1, 4).tolist():
                x = image.clone()
                x[:, top : top + h, left : left + w] = FILL
                rows.append(torch.softmax(model(x[None]), dim=1)[0])
            out.append(torch.stack(rows))
    return torch.stack(out)


def captum_map(
    model: nn.Module, images: torch.Tensor, targets: torch.Tensor, patch: int, stride: int, ppe: int
):
    from captum.attr import Occlusion

    c = images.shape[1]
    with torch.inference_mode():
        attr = Occlusion(_softmax_model(model)).attribute(
            images,
            sliding_window_shapes=(c, patch, patch),
            strides=(c, stride, stride),
            baselines=FILL,
            target=targets,
            perturbations_per_eval=ppe,
        )
    return attr.sum(dim=1) / c  # identical over channels: the window spans them all


def monai_map(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    clean: torch.Tensor,
    patch: int,
    stride: int,
    n_batch: int,
):
    """``clean - MONAI's per-pixel probability`` of the target: occsens' attribution, where windows agree."""
    from monai.visualize import OcclusionSensitivity

    sens = OcclusionSensitivity(
        model,
        mask_size=patch,
        n_batch=n_batch,
        verbose=False,
        mode=FILL,
        overlap=1 - stride / patch,
        activate=True,
    )
    maps = []
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(images)):  # MONAI takes one image at a time
            occ, _ = sens(images[i : i + 1])
            maps.append(clean[i, targets[i]] - occ[0, targets[i]])
    return torch.stack(maps)


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- measuring


class _PeakRSS:
    """Largest rise in resident memory (MB) while the block runs, sampled every 2 ms."""

    def __enter__(self) -> _PeakRSS:
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _watch(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:  # not Linux: no memory figure
            return 0

    @property
    def rise_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def matmul_gflops(size: int = 2048, reps: int = 5) -> float:
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    return 2 * size**3 / statistics.median(_timed(lambda: torch.mm(a, b)) for _ in range(reps)) / 1e9


def forward_gflops(model: nn.Module, flops: int, batch: int = 64, reps: int = 5) -> float:
    """The model's own forward throughput at a large batch: the ceiling for any occlusion engine."""
    x = torch.rand(batch, 3, 32, 32)
    with torch.inference_mode():
        model(x)
        seconds = statistics.median(_timed(lambda: model(x)) for _ in range(reps))
    return flops * batch / seconds / 1e9


# --------------------------------------------------------------------------- one case


def run_case(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    setting: str,
    reps: int,
    loop: bool,
    progress: Callable[[str], None],
) -> Row:
    patch, stride = SETTINGS[setting]
    n = len(images)
    windows = sliding_plan((32, 32), (patch, patch), (stride, stride)).positions
    row = Row(name, setting, n, windows)
    engines: dict[str, Callable[[], Any]] = {
        "occsens brute": lambda: occlude(
            model, images, patch=patch, stride=stride, fill=FILL, engine="brute"
        ),
        "occsens incremental": lambda: occlude(
            model, images, patch=patch, stride=stride, fill=FILL, engine="incremental"
        ),
    }
    brute = engines["occsens brute"]()
    inc = engines["occsens incremental"]()
    row.agreement["incremental vs brute (probs)"] = float((inc.probs - brute.probs).abs().max())
    if loop:
        engines["per-position loop"] = lambda: per_position_loop(model, images, patch, stride)
        ref = engines["per-position loop"]()
        row.agreement["loop vs brute (probs)"] = float((ref.view_as(brute.probs) - brute.probs).abs().max())
    else:
        row.notes.append(f"per-position loop not run on {n} images ({n * windows} model calls of batch 1)")
    attribution = brute.attribution()
    if _have("captum"):
        for ppe in CAPTUM_PPE:
            engines[f"captum ppe {ppe}"] = functools.partial(
                captum_map, model, images, brute.target, patch, stride, ppe
            )
        got = engines[f"captum ppe {CAPTUM_PPE[0]}"]()
        row.agreement["captum vs occsens (attribution)"] = float((got - attribution).abs().max())
    else:
        row.notes.append("Captum is not installed (pip install captum)")
    if _have("monai"):
        for nb in MONAI_BATCH:
            engines[f"monai n_batch {nb}"] = functools.partial(
                monai_map, model, images, brute.target, brute.clean_probs, patch, stride, nb
            )
        got = engines[f"monai n_batch {MONAI_BATCH[0]}"]()
        row.agreement["monai vs occsens (attribution)"] = float((got - attribution).abs().max())
    else:
        row.notes.append("MONAI is not installed (pip install monai)")
    for engine, fn in engines.items():  # warm-up and memory, one run each
        with _PeakRSS() as peak:
            fn()
        row.peak_mb[engine] = round(peak.rise_mb, 1)
    times: dict[str, list[float]] = {e: [] for e in engines}
    for rep in range(reps):
        for engine, fn in engines.items():
            times[engine].append(_timed(fn))
        progress(f"{name} {setting} x{n}: repetition {rep + 1}/{reps}")
    row.ms_per_image = {e: 1000 * statistics.median(t) / n for e, t in times.items()}
    return row


# --------------------------------------------------------------------------- report


def _best(row: Row, prefix: str) -> tuple[str, float] | None:
    found = [(e, t) for e, t in row.ms_per_image.items() if e.startswith(prefix)]
    return min(found, key=lambda et: et[1]) if found else None


def markdown(rows: Sequence[Row], ceilings: dict[str, Any], command: str) -> str:
    lines = [
        "# occsens benchmark",
        "",
        f"Command: `{command}`. Machine: {ceilings['machine']}. Median of {ceilings['reps']} interleaved "
        "repetitions after a warm-up; ms per image; ratio = time / Captum's best time (lower is faster).",
        f"float32 matmul (2048): {ceilings['matmul_gflops']:.0f} GFLOP/s.",
        "",
        "| model | setting | images | windows | loop | occsens brute | occsens incremental | Captum best "
        "| MONAI best | best occsens / Captum | brute GFLOP/s (ceiling) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cap, mon = _best(r, "captum"), _best(r, "monai")
        brute, inc = r.ms_per_image["occsens brute"], r.ms_per_image["occsens incremental"]
        loop = r.ms_per_image.get("per-position loop")
        ratio = f"{min(brute, inc) / cap[1]:.2f}" if cap else "n/a"
        flops = ceilings["flops"][r.model]
        gf = r.windows * flops / (brute / 1000) / 1e9
        lines.append(
            f"| {r.model} | {r.setting} | {r.images} | {r.windows} | "
            f"{f'{loop:.1f}' if loop else '-'} | {brute:.1f} | {inc:.1f} | "
            f"{f'{cap[1]:.1f} ({cap[0][7:]})' if cap else 'n/a'} | "
            f"{f'{mon[1]:.1f} ({mon[0][6:]})' if mon else 'n/a'} | {ratio} | "
            f"{gf:.0f} ({ceilings['forward_gflops'][r.model]:.0f}) |"
        )
    lines += ["", "## Agreement (max abs difference, computed before timing)", ""]
    for r in rows:
        agree = ", ".join(f"{k} {v:.1e}" for k, v in r.agreement.items())
        lines.append(f"- {r.model} {r.setting} x{r.images}: {agree}")
    lines += ["", "## Peak memory (MB above the process's resident set before the run)", ""]
    for r in rows:
        lines.append(
            f"- {r.model} {r.setting} x{r.images}: " + ", ".join(f"{k} {v}" for k, v in r.peak_mb.items())
        )
    notes = [f"- {r.model} {r.setting} x{r.images}: {n}" for r in rows for n in r.notes]
    if notes:
        lines += ["", "## Notes", "", *notes]
    return "\n".join(lines) + "\n"


def run_bench(
    models: Sequence[str],
    settings: Sequence[str],
    counts: Sequence[int],
    reps: int,
    out: Path,
    command: str,
    progress: bool = True,
) -> list[Row]:
    from tqdm import tqdm

    from occsens.embedded import load_samples

    keep_heap_memory()
    available = {"default": lambda: load_model("default"), "resnet20": lambda: resnet20().eval()}
    for m in models:
        if m not in available:
            raise OcclusionError(f"--models: {m!r} is unknown; use {', '.join(available)}")
    for s in settings:
        if s not in SETTINGS:
            raise OcclusionError(f"--settings: {s!r} is unknown; use {', '.join(SETTINGS)}")
    if reps < 1 or any(c < 1 or c > 100 for c in counts):
        raise OcclusionError("--reps must be >= 1 and --images counts in 1..100 (the embedded samples)")
    out.mkdir(parents=True, exist_ok=True)
    samples = torch.from_numpy(load_samples().images.copy()).float() / 255
    bar = tqdm(total=len(models) * len(settings) * len(counts) * reps, disable=not progress, unit="rep")
    ceilings: dict[str, Any] = {
        "matmul_gflops": matmul_gflops(),
        "forward_gflops": {},
        "flops": {},
        "reps": reps,
        "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads",
    }
    rows = []
    for name in models:
        model = available[name]()
        ceilings["flops"][name] = count_flops(model)
        ceilings["forward_gflops"][name] = forward_gflops(model, ceilings["flops"][name])
        for setting in settings:
            for n in counts:

                def step(msg: str) -> None:
                    bar.set_postfix_str(msg)
                    bar.update(1)

                rows.append(run_case(name, model, samples[:n], setting, reps, loop=n == 1, progress=step))
    bar.close()
    (out / "bench.md").write_text(markdown(rows, ceilings, command))
    (out / "bench.json").write_text(
        json.dumps({"ceilings": ceilings, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    return rows


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="time occsens against Captum, MONAI and a per-position loop",
        description="Benchmark occlusion engines side by side in one run; writes bench.md and bench.json.",
    )
    p.add_argument("--models", default="default,resnet20", help="default, resnet20 (default: both)")
    p.add_argument("--settings", default="p4s4,p8s2,p4s1", help="p4s4, p8s2, p4s1 (default: all)")
    p.add_argument("--images", default="1,32", help="image counts, comma-separated (default 1,32)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after a warm-up (default 5)")
    p.add_argument("--out", default="reports/bench", help="output folder (default reports/bench)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        counts = [int(c) for c in args.images.split(",")]
    except ValueError:
        raise OcclusionError(f"--images {args.images!r} must be comma-separated ints, e.g. 1,32") from None
    command = "occsens bench " + " ".join(
        f"--{k} {v}"
        for k, v in (
            ("models", args.models),
            ("settings", args.settings),
            ("images", args.images),
            ("reps", args.reps),
        )
    )
    rows = run_bench(
        args.models.split(","),
        args.settings.split(","),
        counts,
        args.reps,
        Path(args.out),
        command,
        progress=not args.quiet,
    )
    print((Path(args.out) / "bench.md").read_text())
    return 0 if rows else 1
