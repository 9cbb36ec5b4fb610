"""``occsens bench``: occsens against Captum, MONAI and a per-position loop, timed in one run.

For each model, setting (patch, stride) and image count, every engine first computes its answer once
(the warm-up) and the answers are compared (max abs difference, printed before any time): occsens brute
force, occsens incremental, occsens auto (the default engine, timed as itself) and the per-position loop
on probabilities, Captum's ``Occlusion`` and MONAI's ``OcclusionSensitivity`` on the per-pixel map
(``clean - MONAI's map`` equals occsens' ``attribution()`` where the windows agree). Then the engines
are timed interleaved (A B C A B C, so the machine's drifting speed hits all alike), ``--reps`` times,
and the median is reported in ms per image and as a ratio to Captum's best configuration. On one image
every Captum ``perturbations_per_eval`` and MONAI ``n_batch`` is timed; on more images each peer's
configuration that was fastest in the warm-up is timed (the others would add minutes per case and
never win the warm-up by the noise margin).

Also reported: achieved GFLOP/s (windows x images x model FLOPs / time) against the model's own
large-batch forward throughput (the practical ceiling, best of NCHW and channels-last) and a float32
matmul's; where the FLOPs are (the share of every layer that a window changes: the floor for exact
incremental inference); which engine ``engine="auto"`` picks; and peak memory, measured for one image
in a fresh process per engine (the rise of the resident set's high-water mark during one run),
against a forward pass of one chunk of occluded images.

Captum and MONAI are optional (``pip install occsens[bench]``); an engine that is missing or cannot
express a setting is reported as such, never silently dropped.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from occsens._alloc import keep_heap_memory
from occsens.bench_results import Row, _best, markdown
from occsens.cifar.models import count_flops, load_model, resnet20
from occsens.cifar.samples import load_samples
from occsens.engine import default_batch_size, occlude, sliding_plan
from occsens.engine.extents import layer_extents
from occsens.engine.incremental import supports
from occsens.engine.receptive import Unsupported
from occsens.errors import OcclusionError
from occsens.files import check_out_dir, write_files

SETTINGS = {"p4s4": (4, 4), "p8s2": (8, 2), "p4s1": (4, 1), "p16s8": (16, 8), "p32s16": (32, 16)}
CAPTUM_PPE = (16, 64, 256)
MONAI_BATCH = (16, 64, 256)
# At 224x224 a chunk of 256 occluded images is 154 MB of input and, for VGG-16, about 15 GB of
# activations (60 MB per image): more than this 24 GB machine can hold beside everything else.
LARGE_PPE = (16, 64)
FILL = 0.5
MODELS: dict[str, Callable[[], nn.Module]] = {
    "default": lambda: load_model("default"),
    "resnet20": lambda: _seeded_resnet20(),
    "resnet18": lambda: _torchvision("resnet18"),
    "vgg16": lambda: _torchvision("vgg16"),
    # timm's modern blocks (issue 27): squeeze-excitation and norm-act layers, ConvNeXt's channels-last
    # MLP, ResNet-D's ceil_mode downsampling
    "timm-efficientnet_b0": lambda: _timm("efficientnet_b0"),
    "timm-convnext_atto": lambda: _timm("convnext_atto"),
    "timm-resnet50d": lambda: _timm("resnet50d"),
    # transformers, which the engine cannot run incrementally: auto must cost no more than brute force
    "timm-vit_tiny": lambda: _timm("vit_tiny_patch16_224"),
    "timm-swin_tiny": lambda: _timm("swin_tiny_patch4_window7_224"),
}
# Input size per model: the CIFAR-10 models take 32x32, the torchvision and timm ImageNet models 224x224
# (the embedded CIFAR-10 samples are upsampled bilinearly to it).
INPUT_SIZE = {"default": 32, "resnet20": 32, "resnet18": 224, "vgg16": 224} | {
    name: 224 for name in MODELS if name.startswith("timm-")
}


def _seeded_resnet20() -> nn.Module:
    torch.manual_seed(0)  # untrained, but the same weights in every process (the memory probes rebuild it)
    return resnet20().eval()


def _torchvision(name: str) -> nn.Module:
    try:
        import torchvision  # optional here: only the ImageNet-size rows need it
    except ImportError:
        raise OcclusionError(
            f'--models {name} needs torchvision, an optional dependency: pip install "occsens[bench]"'
        ) from None

    torch.manual_seed(0)  # random weights, the same in every process
    return getattr(torchvision.models, name)(weights=None).eval()


def _timm(name: str) -> nn.Module:
    try:
        import timm  # optional here: only the timm rows need it
    except ImportError:
        raise OcclusionError(
            f'--models timm-{name} needs timm, an optional dependency: pip install "occsens[bench]"'
        ) from None

    torch.manual_seed(0)  # random weights, the same in every process; nothing is downloaded
    return timm.create_model(name, pretrained=False).eval()


def _large(images: torch.Tensor) -> bool:
    return images.shape[-1] > 64


# --------------------------------------------------------------------------- engines


def _softmax_model(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def forward(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    return forward


def per_position_loop(model: nn.Module, images: torch.Tensor, patch: int, stride: int) -> torch.Tensor:
    """The notebook's way: one model call per window position. Returns probabilities [N, P, K]."""
    plan = sliding_plan((images.shape[2], images.shape[3]), (patch, patch), (stride, stride))
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
) -> torch.Tensor:
    from captum.attr import Occlusion  # optional: installed with .[bench]

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
) -> torch.Tensor:
    """``clean - MONAI's per-pixel probability`` of the target: occsens' attribution, where windows agree."""
    from monai.visualize import OcclusionSensitivity  # optional: installed with .[bench]

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


def engines_for(
    model: nn.Module, images: torch.Tensor, setting: str, loop: bool
) -> tuple[dict[str, Callable[[], Any]], list[str]]:
    """Every engine for one case, as zero-argument callables, and notes on those that cannot run."""
    patch, stride = SETTINGS[setting]
    size = images.shape[-1]
    windows = sliding_plan((size, size), (patch, patch), (stride, stride)).positions
    # "auto" is timed as itself, not read off the engine it picks: auto traces the model and then runs
    # brute force channels-last where the trace proves that safe, which engine="brute" (no trace) never
    # does; on timm's EfficientNet-B0 at 224x224 that alone made auto 1.3x faster than engine="brute".
    fns: dict[str, Callable[[], Any]] = {
        "occsens brute": lambda: occlude(
            model, images, patch=patch, stride=stride, fill=FILL, engine="brute", progress=False
        ),
        "occsens auto": lambda: occlude(model, images, patch=patch, stride=stride, fill=FILL, progress=False),
    }
    notes = []
    unsupported = supports(model, (size, size), images.shape[1])
    if unsupported is None:
        fns["occsens incremental"] = lambda: occlude(
            model, images, patch=patch, stride=stride, fill=FILL, engine="incremental", progress=False
        )
    else:
        notes.append(f"occsens incremental cannot run: {unsupported}")
    if loop and not _large(images):
        fns["per-position loop"] = lambda: per_position_loop(model, images, patch, stride)
    else:
        notes.append(
            f"per-position loop not run on {len(images)} {size}x{size} image(s) "
            f"({len(images) * windows} calls of batch 1)"
        )
    with torch.inference_mode():
        clean = torch.softmax(model(images), dim=1)
    targets = clean.argmax(dim=1)
    if _have("captum"):
        for ppe in LARGE_PPE if _large(images) else CAPTUM_PPE:
            fns[f"captum ppe {ppe}"] = functools.partial(
                captum_map, model, images, targets, patch, stride, ppe
            )
    else:
        notes.append("Captum is not installed (pip install captum)")
    if _have("monai"):
        for nb in LARGE_PPE if _large(images) else MONAI_BATCH:
            fns[f"monai n_batch {nb}"] = functools.partial(
                monai_map, model, images, targets, clean, patch, stride, nb
            )
    else:
        notes.append("MONAI is not installed (pip install monai)")
    return fns, notes


# --------------------------------------------------------------------------- measuring


def _timed(fn: Callable[[], object]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def matmul_gflops(size: int = 2048, reps: int = 5) -> float:
    a, b = torch.rand(size, size), torch.rand(size, size)
    torch.mm(a, b)
    return 2 * size**3 / statistics.median(_timed(lambda: torch.mm(a, b))[0] for _ in range(reps)) / 1e9


def forward_gflops(model: nn.Module, flops: int, size: int = 32, reps: int = 5) -> float:
    """The model's own forward throughput at a large batch (64 at 32x32, 16 at 224x224), best of NCHW
    and channels-last inputs."""
    best = 0.0
    batch = 64 if size <= 64 else 16
    for layout in (torch.contiguous_format, torch.channels_last):
        x = torch.rand(batch, 3, size, size).contiguous(memory_format=layout)
        with torch.inference_mode():
            model(x)
            seconds = statistics.median(_timed(lambda: model(x))[0] for _ in range(reps))  # noqa: B023
        best = max(best, flops * batch / seconds / 1e9)
    return best


def first_calls(
    model: nn.Module, images: torch.Tensor, patch: int, stride: int, reps: int
) -> dict[str, float]:
    """Median seconds of ``engine="auto"`` and ``engine="brute"``'s first call on a fresh copy of the model
    (nothing traced or cached yet), interleaved: what a user's first call costs."""
    times: dict[str, list[float]] = {"auto": [], "brute": []}
    for _ in range(reps):
        for engine in times:
            run = functools.partial(
                occlude,
                copy.deepcopy(model),
                images,
                patch=patch,
                stride=stride,
                fill=FILL,
                engine=engine,
                progress=False,
            )
            times[engine].append(_timed(run)[0])
    return {engine: statistics.median(t) for engine, t in times.items()}


def _samples(n: int, size: int = 32) -> torch.Tensor:
    images = torch.from_numpy(load_samples().images[:n].copy()).float() / 255
    if size != images.shape[-1]:
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear").clamp_(0, 1)
    return images


def _memory_in_child(model: str, setting: str, engine: str, threads: int) -> float | None:
    """Peak resident-memory rise (MB) of one run of ``engine`` on one image, in a fresh process."""
    spec = json.dumps({"model": model, "setting": setting, "engine": engine, "threads": threads})
    code = "import sys; from occsens.bench import _memory_probe; print(_memory_probe(sys.argv[1]))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, spec], capture_output=True, text=True, timeout=600, check=True
        )
        return round(float(done.stdout.strip().splitlines()[-1]), 1)
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def _status_kb(field_name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _memory_probe(spec_json: str) -> float:
    """Child side of ``_memory_in_child``: set up, reset the high-water mark, run once, report the rise."""
    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    keep_heap_memory()
    model = MODELS[spec["model"]]()
    images = _samples(1, INPUT_SIZE[spec["model"]])
    patch, stride = SETTINGS[spec["setting"]]
    if spec["engine"] == "one chunk forward":  # the reference: one chunk of occluded images, one forward
        x = images.expand(default_batch_size(images, torch.device("cpu")), -1, -1, -1).clone()

        def run() -> object:
            with torch.inference_mode():
                return model(x)

    else:
        fns, _ = engines_for(model, images, spec["setting"], loop=False)
        run = fns[spec["engine"]]
    with open("/proc/self/clear_refs", "w") as f:  # Linux: resets VmHWM to the current resident set
        f.write("5")
    base = _status_kb("VmRSS")
    run()
    return (_status_kb("VmHWM") - base) / 1024


# --------------------------------------------------------------------------- one case


@contextlib.contextmanager
def _competitor(busy: bool) -> Iterator[None]:
    """One single-threaded busy process beside the timing (a user's machine is rarely idle), or nothing."""
    if not busy:
        yield
        return
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach the scheduler before the first timed run
        yield
    finally:
        spin.kill()
        spin.wait()


def run_case(
    name: str,
    model: nn.Module,
    images: torch.Tensor,
    setting: str,
    reps: int,
    memory: bool,
    progress: Callable[[str], None],
    busy: bool = False,
) -> Row:
    patch, stride = SETTINGS[setting]
    n = len(images)
    size = images.shape[-1]
    windows = sliding_plan((size, size), (patch, patch), (stride, stride)).positions
    row = Row(name, setting, n, windows, busy=busy)
    fns, row.notes = engines_for(model, images, setting, loop=n == 1)
    answers = {}
    for engine, fn in fns.items():  # warm-up: every engine once, its answer kept for the comparison
        seconds, answers[engine] = _timed(fn)
        row.warmup_ms_per_image[engine] = 1000 * seconds / n
    brute = answers["occsens brute"]
    if "occsens incremental" in answers:
        row.agreement["incremental vs brute (probs)"] = float(
            (answers["occsens incremental"].probs - brute.probs).abs().max()
        )
    row.agreement["auto vs brute (probs)"] = float((answers["occsens auto"].probs - brute.probs).abs().max())
    if "per-position loop" in answers:
        ref = answers["per-position loop"]
        row.agreement["loop vs brute (probs)"] = float((ref.view_as(brute.probs) - brute.probs).abs().max())
    attribution = brute.attribution()
    for peer in ("captum", "monai"):
        found = [e for e in answers if e.startswith(peer)]
        if found:
            row.agreement[f"{peer} vs occsens (attribution)"] = max(
                float((answers[e] - attribution).abs().max()) for e in found
            )
    row.auto_engine = answers["occsens auto"].engine
    if "occsens incremental" not in fns:  # auto runs brute force after a trace: what does the trace cost?
        row.first_call_s = first_calls(model, images, patch, stride, reps)
    timed = list(fns)
    if n > 1:  # each peer's fastest warm-up configuration only
        timed = [e for e in fns if not e.startswith(("captum", "monai"))]
        for peer in ("captum", "monai"):
            found = [e for e in fns if e.startswith(peer)]
            if found:
                timed.append(min(found, key=lambda e: row.warmup_ms_per_image[e]))
    times: dict[str, list[float]] = {e: [] for e in timed}
    with _competitor(busy):
        for rep in range(reps):
            for engine in timed:
                times[engine].append(_timed(fns[engine])[0])
            progress(f"{name} {setting} x{n}{' busy' if busy else ''}: repetition {rep + 1}/{reps}")
    row.ms_per_image = {e: 1000 * statistics.median(t) / n for e, t in times.items()}
    if memory and n == 1 and sys.platform.startswith("linux"):
        probe = ["one chunk forward", *(e for e in ("occsens brute", "occsens incremental") if e in fns)]
        probe += [b for b in (_best(row, "captum"), _best(row, "monai")) if b]
        threads = torch.get_num_threads()
        row.peak_mb = {e: _memory_in_child(name, setting, e, threads) for e in probe}
    return row


# --------------------------------------------------------------------------- where the FLOPs are


def flop_floor(model: nn.Module, setting: str, size: int = 32) -> dict[str, Any]:
    """Where a forward's FLOPs are and which share of each layer a window changes (averaged over windows);
    ``share`` None with the reason where the walk cannot state the model's layers."""
    patch, stride = SETTINGS[setting]
    plan = sliding_plan((size, size), (patch, patch), (stride, stride))
    try:
        layers = layer_extents(model, (size, size), plan.windows.reshape(-1, 4).tolist())
    except Unsupported as exc:
        return {"share": None, "layers": [], "reason": str(exc)}
    names = [
        f"{type(m).__name__}({m.in_channels}->{m.out_channels})"
        if isinstance(m, nn.Conv2d)
        else f"{type(m).__name__}({m.in_features}->{m.out_features})"
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    total = sum(layer.full for layer in layers)
    rows: list[dict[str, Any]] = []
    changed_total = 0.0
    if len(names) != len(layers):  # the walk's order need not be the modules' (a traced graph)
        names = [f"layer {i}" for i in range(len(layers))]
    for label, layer in zip(names, layers, strict=True):
        changed = float((layer.per_pixel * layer.rows * layer.cols).float().mean())
        changed_total += changed
        rows.append({"layer": label, "mflop": layer.full / 1e6, "changed_share": changed / layer.full})
    return {"share": changed_total / total, "layers": rows}


def run_bench(
    models: Sequence[str],
    settings: Sequence[str],
    counts: Sequence[int],
    reps: int,
    out: Path,
    command: str,
    progress: bool = True,
    memory: bool = True,
    busy: bool = False,
) -> list[Row]:
    keep_heap_memory()
    for m in models:
        if m not in MODELS:
            raise OcclusionError(f"--models: {m!r} is unknown; use {', '.join(MODELS)}")
    for s in settings:
        if s not in SETTINGS:
            raise OcclusionError(f"--settings: {s!r} is unknown; use {', '.join(SETTINGS)}")
    if reps < 1 or any(c < 1 or c > 100 for c in counts):
        raise OcclusionError("--reps must be >= 1 and --images counts in 1..100 (the embedded samples)")
    check_out_dir(out)  # before half an hour of timing, and the folder made now for the same reason
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OcclusionError(f"--out {str(out)!r} cannot be created ({exc.strerror or exc})") from None
    samples = _samples(max(counts))
    cases = len(models) * len(settings) * len(counts) * (2 if busy else 1)
    bar = tqdm(total=cases * reps, disable=not progress, unit="rep")
    ceilings: dict[str, Any] = {
        "matmul_gflops": matmul_gflops(),
        "forward_gflops": {},
        "flops": {},
        "reps": reps,
        "machine": f"{os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads",
    }
    rows, floors = [], {}
    for name in models:
        model = MODELS[name]()
        size = INPUT_SIZE[name]
        ceilings["flops"][name] = count_flops(model, (1, 3, size, size))
        ceilings["forward_gflops"][name] = forward_gflops(model, ceilings["flops"][name], size)
        for setting in settings:
            floors[f"{name} {setting}"] = flop_floor(model, setting, size)
            for n in counts:

                def step(msg: str) -> None:
                    bar.set_postfix_str(msg)
                    bar.update(1)

                images = samples[:n] if size == 32 else _samples(n, size)
                rows.append(run_case(name, model, images, setting, reps, memory, progress=step))
                if busy:
                    rows.append(run_case(name, model, images, setting, reps, False, step, busy=True))
    bar.close()
    saved: dict[str, Any] = {"ceilings": ceilings, "floors": floors, "rows": [asdict(r) for r in rows]}
    text = markdown(rows, ceilings, floors, command)
    if "default" in models and _have("pyarrow"):  # the survey row (issue 24): the shipped model only
        from occsens import bench_survey

        survey_row = bench_survey.measure(
            MODELS["default"](), samples, reps, captum_map if _have("captum") else None
        )
        saved["survey"] = survey_row
        text += bench_survey.markdown(survey_row)
    payload = {"bench.md": text.encode("utf-8"), "bench.json": json.dumps(saved, indent=2).encode("utf-8")}
    write_files(out, payload, "the benchmark")
    return rows
