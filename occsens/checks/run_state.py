"""What the checks share in one run: the inputs, the settings, and the trained model's map.

``CheckRun`` computes the trained model's occlusion result and the map under test once, on first use, and
gives every check the same helpers (an occlusion with the run's settings, scores in chunks, sample ids,
class names, seeded random streams). Model modes: the map's explainer runs with every module's training
flag off and restored afterwards (``occsens.engine.model.eval_flags``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from occsens.engine import Occlusion
from occsens.engine.incremental import supports
from occsens.engine.model import (
    default_batch_size,
    eval_flags,
    eval_mode,
    is_probability,
    model_scores,
    run_device,
)
from occsens.engine.store import Runs
from occsens.errors import OcclusionError

Explainer = Callable[[Any, torch.Tensor], Any]  # explainer(model, images) -> maps [N, H, W]


def training_flags(model: Any) -> list[bool]:
    return [m.training for m in model.modules()] if isinstance(model, nn.Module) else []


class _Lazy:
    """A value computed once on first use; a failure is remembered and raised again, not recomputed."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._fn, self._done = fn, False
        self._value: Any = None
        self._error: Exception | None = None

    def get(self) -> Any:
        if not self._done:
            try:
                self._value = self._fn()
            except Exception as exc:
                self._error = exc
            self._done = True
        if self._error is not None:
            raise self._error
        return self._value


class CheckRun:
    """Everything the checks share: inputs, settings, and the trained model's map (computed once)."""

    def __init__(
        self,
        model: Any,
        images: torch.Tensor,
        labels: np.ndarray | None,
        sample_ids: list[int],
        patch: Any,
        stride: Any,
        fill: Any,
        explainer: Explainer | None,
        seed: int,
        class_names: Sequence[str] | None,
        output: Any = "softmax",
        runs: Runs | None = None,
        more_images: torch.Tensor | None = None,
        more_ids: list[int] | None = None,
    ) -> None:
        self.output = output
        self.runs = Runs() if runs is None else runs  # shared with the report when it runs the checks
        # Images a check may add to ``images`` when those alone do not decide its verdict (faithfulness:
        # the 100 embedded samples behind the 8 shown); their maps are computed only if a check asks.
        self.more_images = more_images
        self.more_ids = list(more_ids) if more_ids is not None else []
        self._more_done: tuple[torch.Tensor, torch.Tensor] | None = None
        self._layouts: dict[tuple, tuple[Any, bool]] = {}
        self.model, self.images, self.labels, self.sample_ids = model, images, labels, sample_ids
        self.patch, self.stride, self.fill, self.explainer, self.seed = patch, stride, fill, explainer, seed
        self.class_names = list(class_names) if class_names is not None else None
        self.initial_flags = training_flags(model)
        self.was_training = any(self.initial_flags)
        self.fill_description = self.runs.fill(fill, images[:1]).description
        self.output_name = self.runs.output_name(output)
        self._occ = _Lazy(lambda: self.occlusion(self.images))
        self._maps = _Lazy(self._trained_maps)

    @property
    def n(self) -> int:
        return len(self.images)

    def occlusion(
        self,
        images: torch.Tensor,
        *,
        model: Any = None,
        fill: Any = None,
        target: Any = None,
        reveal: bool = False,
        batch_size: int | None = None,
    ) -> Occlusion:
        """The run's occlusion with these changes, from the store."""
        return self.runs.occlude(
            self.model if model is None else model,
            images,
            patch=self.patch,
            stride=self.stride,
            fill=self.fill if fill is None else fill,
            target=target,
            reveal=reveal,
            batch_size=batch_size,
            output=self.output,
        )

    @property
    def occ(self) -> Occlusion:
        """The trained model's occlusion result on all images (target: each image's clean prediction)."""
        return self._occ.get()

    @property
    def target(self) -> torch.Tensor:
        return self.occ.target

    @property
    def maps(self) -> torch.Tensor:
        """float32 [N, H, W]: the map under test, for the trained model."""
        return self._maps.get()

    def _trained_maps(self) -> torch.Tensor:
        if self.explainer is None:
            return self.occ.attribution()
        return self.explain(self.model, torch.arange(self.n))

    def explain(self, model: Any, index: torch.Tensor) -> torch.Tensor:
        """The map of ``model`` for images ``index``, explaining the trained model's target class."""
        images = self.images[index]
        if self.explainer is None:
            return self.occlusion(images, model=model, target=self.target[index]).attribution()
        return self._explained(model, images)

    def more_maps(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(targets, maps [.., H, W]) of the trained model on ``more_images[start:stop]``, computed as far
        as asked and kept (a check that decides early never pays for the rest)."""
        assert self.more_images is not None
        have = 0 if self._more_done is None else len(self._more_done[0])
        if stop > have:
            images = self.more_images[have:stop]
            if self.explainer is None:
                occ = self.occlusion(images)
                target, maps = occ.target, occ.attribution()
            else:
                target = self.probs(self.model, images).argmax(dim=1)
                maps = self._explained(self.model, images)
            if self._more_done is not None:
                target = torch.cat([self._more_done[0], target])
                maps = torch.cat([self._more_done[1], maps])
            self._more_done = (target, maps)
        assert self._more_done is not None
        return self._more_done[0][start:stop], self._more_done[1][start:stop]

    def _explained(self, model: Any, images: torch.Tensor) -> torch.Tensor:
        """The explainer's maps of ``model`` for ``images``, checked: [N, H, W], finite, float32."""
        assert self.explainer is not None  # callers take the occlusion map otherwise
        with eval_flags(model):
            out = self.explainer(model, images)
        maps = torch.as_tensor(out.detach().cpu() if isinstance(out, torch.Tensor) else np.asarray(out))
        if maps.ndim == 4 and maps.shape[1] == 1:
            maps = maps[:, 0]
        expected = (len(images), *images.shape[2:])
        if tuple(maps.shape) != expected:
            raise OcclusionError(
                f"explainer returned shape {tuple(maps.shape)}; expected maps {expected} [N, H, W]"
            )
        maps = maps.to(torch.float32)
        if not torch.isfinite(maps).all():
            raise OcclusionError("explainer returned NaN or infinite values")
        return maps

    def probs(self, model: Any, x: torch.Tensor) -> torch.Tensor:
        """float32 [B, K] scores (the run's ``output``) of ``model`` on ``x``, in eval mode, in chunks.

        Chunks of four times the engine's default (256 images at 32x32, about 190 MB of activations),
        channels-last where the engine's walk knows every layer of ``model`` (as ``occsens.occlude``
        does on the CPU): on the shipped model, 2 CPU threads, chunks of 256 channels-last ran 2.2-3.4x
        the images per second of chunks of 64 in the default layout (measured interleaved on a busy
        machine, with and without the allocator settings of ``occsens._alloc``). Deletion and insertion
        curves are tens of thousands of such forwards: the checks' largest cost."""
        device = run_device(model, None)
        size = 4 * default_batch_size(x, device)
        if device.type == "cpu" and self._fast_layout(model, x):
            x = x.contiguous(memory_format=torch.channels_last)
        with eval_mode(model):
            return torch.cat(
                [
                    model_scores(model, x[i : i + size].to(device), len(x[i : i + size]), self.output)
                    for i in range(0, len(x), size)
                ]
            )

    def _fast_layout(self, model: Any, x: torch.Tensor) -> bool:
        """Whether ``model`` may get channels-last inputs: every layer known to the engine's walk (a
        model that calls ``view`` on its inputs would break). Asked once per model object and size."""
        key = (id(model), tuple(x.shape[1:]))
        if key not in self._layouts:
            with torch.inference_mode():
                try:
                    fast = supports(model, (x.shape[2], x.shape[3]), x.shape[1]) is None
                except Exception:  # noqa: BLE001 - a model the walk cannot read runs in its own layout
                    fast = False
            self._layouts[key] = (model, fast)  # the model kept alive so its id is not reused
        return bool(self._layouts[key][1])

    def name(self, k: int) -> str:
        names = self.class_names
        k = int(k)
        if names is not None and len(names) == self.occ.num_classes and 0 <= k < len(names):
            return f"{k} ({names[k]})"
        return str(k)

    def ids(self, index: Sequence[int] | torch.Tensor | range) -> list[int]:
        return [self.sample_ids[int(i)] for i in index]

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, stream])

    @property
    def score(self) -> str:
        """What explanations call one of the model's scores: a probability unless a callable gave it."""
        return "probability" if is_probability(self.output_name) else "score"

    @property
    def scores(self) -> str:
        return "probabilities" if self.score == "probability" else "scores"

    @property
    def map_label(self) -> str:
        return "the occlusion map" if self.explainer is None else "the explainer's map"
