"""Shards as Ray tasks: the same ``run_shard`` on each worker, the store written by the driver.

The driver reads each shard's images, hands them with the model (put once in Ray's object store) to a
task, and writes the Parquet bytes the task returns together with the manifest, as the in-process
survey does; so the workers need no shared file system, and a store is the same whichever ran it.
A task whose worker dies (killed, out of memory, a node lost) is run again by Ray (``max_retries``):
it costs that shard's work only, and since only the driver writes, a shard is never written twice.
An error in the user's model is not retried; it ends the survey with that error, finished shards kept.

On a real cluster: install occsens (and the model's own code) on every node, start Ray there
(``ray start --head`` on one node, ``ray start --address HEAD:6379`` on the others), and run
``occsens survey --ray auto`` on the head node, or ``--ray ray://HEAD:10001`` from elsewhere. GPU
workers: ``--ray-gpus 1`` gives each task a GPU (``num_gpus`` per task; 0.25 packs four on one GPU),
and the task moves the model onto it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from occsens.errors import OcclusionError

# A worker lost to a crash or a killed process is retried this often before the survey gives up on
# its shard: Ray's own default for tasks (3), so a flaky node costs time, not the survey.
MAX_RETRIES = 3
# Tasks in flight per CPU (or GPU) the cluster offers: one queued behind each running one keeps every
# worker busy while the driver writes, and bounds the images held in the object store.
IN_FLIGHT_PER_SLOT = 2


@dataclass(frozen=True)
class RayTarget:
    """Where and how shards run on Ray. ``address`` None starts (or joins) Ray on this machine."""

    address: str | None = None
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0  # per task
    max_retries: int = MAX_RETRIES


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise OcclusionError(
            'a survey on Ray needs ray, an optional dependency: pip install "occsens[ray]"'
        ) from None
    return ray


def target_of(ray_arg: Any) -> RayTarget:
    """``survey``'s ``ray`` argument as a ``RayTarget``: True (this machine), an address, or a target."""
    if isinstance(ray_arg, RayTarget):
        return ray_arg
    if ray_arg is True:
        return RayTarget()
    if isinstance(ray_arg, str) and ray_arg:
        return RayTarget(address=None if ray_arg == "local" else ray_arg)
    raise OcclusionError(
        f"ray must be True (Ray on this machine), an address such as 'auto' or 'ray://head:10001', or a "
        f"RayTarget; got {ray_arg!r}"
    )


def _shard_task(model: Any, images: Any, first: int, names: list[str], labels: list, settings: Any) -> bytes:
    """What a worker runs: the in-process shard function, on the task's GPU if it was given one."""
    from dataclasses import replace

    import ray

    from occsens.datasurvey.shard import run_shard

    if ray.get_gpu_ids():
        model = model.to("cuda")
        settings = replace(settings, device="cuda")
    return run_shard(model, images, first, names, labels, settings)


def run(
    model: Any, source: Any, jobs: Sequence[Any], settings: Any, ray_arg: Any
) -> Iterator[tuple[Any, str, bytes]]:
    """Each shard of ``jobs`` run as a Ray task, yielded as it finishes: (job, images digest, bytes)."""
    from occsens.datasurvey.sources import images_digest

    target = target_of(ray_arg)
    ray = _require_ray()
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(address=target.address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise OcclusionError(
                f"--ray {target.address or 'local'}: cannot start or join Ray ({exc})"
            ) from None
    try:
        task = ray.remote(_shard_task).options(
            num_cpus=target.num_cpus, num_gpus=target.num_gpus, max_retries=target.max_retries
        )
        model_ref = ray.put(model)
        slots = ray.cluster_resources().get("GPU" if target.num_gpus else "CPU", 1.0)
        per_task = target.num_gpus or target.num_cpus or 1.0
        window = max(1, int(slots / per_task) * IN_FLIGHT_PER_SLOT)
        waiting = list(jobs)
        in_flight: dict[Any, tuple[Any, str]] = {}
        while waiting or in_flight:
            while waiting and len(in_flight) < window:
                job = waiting.pop(0)
                images, names, labels = source.shard(job.first, job.count)
                ref = task.remote(model_ref, images, job.first, names, labels, settings)
                in_flight[ref] = (job, images_digest(images))
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            job, digest = in_flight.pop(ready[0])
            try:
                data = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, Exception) else exc) from None
            yield job, digest, data
    finally:
        for ref in list(locals().get("in_flight", {})):
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
