"""``occsens.survey``: occlusion over a whole data set, shard by shard, into a store that resumes.

The images are cut into shards of ``shard_size`` (the last may be shorter); each shard is occluded
with the engine (``occsens.occlude``, and ``occsens.notebook_occlude`` when ``notebook``) and written
as one Parquet file together with the manifest that lists it (``occsens.datasurvey.store``). Only one
shard's images and results are in memory at a time (times the shards in flight on Ray), whatever N.

Resuming (``resume=True``) reads the manifest, checks that everything that defines the results is
the same (settings, model weights, occsens version, the images of each finished shard), and occludes
only the shards that are not finished; a difference is one error line naming it. A folder that
already holds a survey is refused unless ``resume`` or ``overwrite`` says what to do with it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from occsens.datasurvey import store
from occsens.datasurvey.checks import CHECK_IMAGES, check_survey
from occsens.datasurvey.shard import Settings, run_shard
from occsens.datasurvey.sources import Source, images_digest, source_of
from occsens.engine import notebook_plan, occlude, plan_for
from occsens.errors import OcclusionError, flag, integer, shown
from occsens.files import check_out_dir, write_files

# 256 images a shard: the shipped model's shard is ~40 s on 2 busy cores, so an interrupt loses less
# than a minute, and 10,000 images make 40 files of ~1 MB (Parquet reads best from files of MBs).
SHARD_SIZE = 256

# The keys of the manifest that define the results: a resume refuses a store that differs in any.
DEFINING = ("settings", "model", "occsens_version", "class_names")


@dataclass(frozen=True)
class Job:
    """One shard still to do."""

    index: int
    first: int
    count: int


def occsens_version() -> str:
    """The installed occsens's version, read as the report reads it (importing ``occsens`` is a cycle)."""
    from importlib import metadata

    try:
        return metadata.version("occsens")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def model_digest(model: Any) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes, values); "unknown" for a plain callable."""
    state = getattr(model, "state_dict", None)
    if not callable(state):
        return "unknown (not a torch.nn.Module)"
    h = hashlib.sha256()
    for name, tensor in state().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _output_name(output: Any) -> str:
    if isinstance(output, str):
        return output
    return f"{getattr(output, '__module__', '?')}:{getattr(output, '__qualname__', type(output).__name__)}"


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    said = []
    for key in DEFINING:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            said += [
                f"{key}.{k} {shown(a.get(k))} there, {shown(b.get(k))} now"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            ]
        elif a != b:
            said.append(f"{key} {shown(a)} there, {shown(b)} now")
    return said


def _prepare_folder(folder: Path, manifest: dict[str, Any], resume: bool, overwrite: bool) -> dict[str, Any]:
    """The manifest to continue from: the store's own when resuming, else a new empty one."""
    old = store.read_manifest(folder)
    if old is not None and resume:
        differ = _differences(old, manifest)
        if differ:
            raise OcclusionError(
                f"--resume: the survey in {str(folder)!r} was made differently ({'; '.join(differ[:3])}); "
                "resume with the settings it was made with, or survey into a new --out (or --overwrite)"
            )
        return old
    stale = store.stale_files(folder)
    if stale and not overwrite:
        done = len(old.get("shards", [])) if old else 0
        what = f"a survey ({done} shard{'s' if done != 1 else ''} done)" if old else "survey files"
        raise OcclusionError(
            f"--out {str(folder)!r} already holds {what}; pass --resume to continue it or --overwrite to "
            "start again"
        )
    for path in stale:
        path.unlink()
    return manifest


def _in_process(
    model: Any, source: Source, jobs: Sequence[Job], settings: Settings
) -> Iterator[tuple[Job, str, bytes]]:
    """Each shard occluded here, in order: (job, digest of its images, Parquet bytes)."""
    for job in jobs:
        images, names, labels = source.shard(job.first, job.count)
        yield job, images_digest(images), run_shard(model, images, job.first, names, labels, settings)


def survey(
    model: Any,
    images: Any,
    *,
    out: str | Path,
    patch: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] | None = None,
    fill: Any = 0.5,
    output: Any = "softmax",
    labels: Any = None,
    names: Any = None,
    class_names: Sequence[str] | None = None,
    model_name: str | None = None,
    notebook: bool = False,
    shard_size: int = SHARD_SIZE,
    batch_size: int | None = None,
    device: Any = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    ray: str | bool | None = None,
    on_shard: Callable[[store.Shard], None] | None = None,
    check_images: int = CHECK_IMAGES,
) -> Path:
    """Occlude every image of ``images`` with ``model`` and store the results in the folder ``out``.

    Args:
        images: ``[N, C, H, W]`` array or tensor (uint8, or float in [0, 1]) with ``labels`` (N class
            numbers or None) and ``names``; or a dataset whose ``[i]`` is ``(image, label)``; or a
            ``occsens.datasurvey.sources.Source``.
        patch, stride, fill, output: as for ``occsens.occlude``. The target of every map is the image's
            clean prediction.
        notebook: also store the maps under the notebook's square geometry (``occsens.notebook_occlude``
            with ``size=patch``; a square patch), about 5x the work of the true windows.
        shard_size: images per store file (and per resumable unit of work).
        resume: continue the survey in ``out``, occluding only unfinished shards; refused if it was made
            with other settings, another model or other images. ``overwrite``: replace a survey there.
        progress: a bar with images/s and ETA on stderr (None: when stderr is a terminal).
        ray: None or False runs in this process; True starts Ray on this machine; an address
            (``"ray://head:10001"``, ``"auto"``) joins that cluster. Same shards, same files.
        on_shard: called with each finished shard once it is on disk.
        check_images: then run the sanity checks (``occsens.run_checks``) on this many of the images,
            spread evenly over the survey, and store their verdicts for the data-set report
            (``_checks.json``; 0: no checks). A resumed survey whose checks are stored runs none.

    Returns the store's folder; read it with ``pandas.read_parquet(folder)`` or
    ``occsens.datasurvey.read_survey(folder)``.
    """
    folder = check_out_dir(out, "out")
    resume, overwrite, notebook = (
        flag(resume, "resume"),
        flag(overwrite, "overwrite"),
        flag(notebook, "notebook"),
    )
    if resume and overwrite:
        raise OcclusionError(
            "give either resume (continue the survey there) or overwrite (start again), not both"
        )
    shard_size = integer(shard_size, "shard_size", low=1, valid="a positive number of images per file")
    check_images = integer(check_images, "check_images", low=0, valid="0 (no checks) or a number of images")
    source = source_of(images, labels, names)
    first = source.read(0, 1)
    _, channels, h, w = first.shape
    plan = plan_for((h, w), patch, stride)
    notebook_windows: list[list[int]] = []
    if notebook:
        if plan.patch[0] != plan.patch[1] or stride not in (None, patch):
            raise OcclusionError(
                f"notebook=True needs a square patch and no stride of its own (the notebook steps one cell "
                f"at a time), got patch {shown(patch)} stride {shown(stride)}"
            )
        notebook_windows = notebook_plan((h, w), plan.patch[0]).windows.reshape(-1, 4).tolist()
    # The door: one occlusion of the first image with a single full-image window checks the model, the
    # fill and the output function, and counts the classes, before anything is written.
    probe = occlude(model, first, patch=(h, w), fill=fill, output=output, device=device, progress=False)
    k = probe.num_classes
    names_of_classes = list(class_names) if class_names is not None else [f"class {i}" for i in range(k)]
    if len(names_of_classes) != k:
        raise OcclusionError(
            f"class_names has {len(names_of_classes)} names but the model scores {k} classes"
        )
    bad = [lab for lab in source.labels if lab is not None and lab >= k]
    if bad:
        raise OcclusionError(f"a label is {bad[0]} but the model scores {k} classes (0..{k - 1})")
    settings = Settings(
        plan.patch,
        plan.stride,
        fill,
        output,
        notebook,
        batch_size,
        device,
        plan.positions,
        k,
        len(notebook_windows),
    )
    manifest: dict[str, Any] = {
        "format": store.FORMAT,
        "format_version": store.FORMAT_VERSION,
        "occsens_version": occsens_version(),
        "settings": {
            "patch": list(plan.patch),
            "stride": list(plan.stride),
            "fill": probe.fill,
            "output": _output_name(output),
            "notebook": notebook,
            "shard_size": shard_size,
            "images": len(source),
            "image_size": [channels, h, w],
            "source": source.description,
        },
        "model": {"name": model_name or type(model).__name__, "sha256": model_digest(model)},
        "class_names": names_of_classes,
        "grid": list(plan.grid),
        "windows": plan.windows.reshape(-1, 4).tolist(),
        "notebook_grid": list(notebook_plan((h, w), plan.patch[0]).grid) if notebook else None,
        "notebook_windows": notebook_windows or None,
        "shards": [],
    }
    manifest = _prepare_folder(folder, manifest, resume, overwrite)
    n = len(source)
    jobs = [Job(i, first, min(shard_size, n - first)) for i, first in enumerate(range(0, n, shard_size))]
    done = store.finished_shards(folder, manifest) if manifest["shards"] else {}
    for shard in done.values():  # a finished shard must have seen the same images
        if images_digest(source.read(shard.first, shard.first + shard.count)) != shard.images_sha256:
            raise OcclusionError(
                f"--resume: the images of shard {shard.index} (positions {shard.first}.."
                f"{shard.first + shard.count - 1}) differ from those the survey in {str(folder)!r} "
                "occluded; survey into a new --out"
            )
    if not manifest["shards"]:
        write_files(folder, {store.MANIFEST: store.manifest_bytes(manifest)}, "the survey manifest")
    todo = [job for job in jobs if job.index not in done]
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    runner = _in_process(model, source, todo, settings)
    if ray:
        from occsens.datasurvey import on_ray

        runner = on_ray.run(model, source, todo, settings, ray)
    bar = tqdm(
        total=len(source),
        initial=sum(s.count for s in done.values()),
        unit="img",
        desc="surveying",
        disable=not progress,
        smoothing=0.1,  # the rate over the last ~10 shards: steady, yet follows a machine that got busy
    )
    with contextlib.closing(bar), contextlib.closing(runner):  # type: ignore[type-var]
        for job, images_sha, data in runner:
            shard = store.Shard(
                job.index, job.first, job.count, store.shard_name(job.index), store.digest(data), images_sha
            )
            manifest = store.write_shard(folder, manifest, shard, data)
            bar.update(job.count)
            if on_shard is not None:
                on_shard(shard)
    if check_images and (todo or not (folder / store.CHECKS).exists()):
        check_survey(
            folder,
            model,
            source,
            count=check_images,
            patch=plan.patch,
            stride=plan.stride,
            fill=fill,
            output=output,
            class_names=names_of_classes,
            progress=bool(progress),
        )
    return folder
