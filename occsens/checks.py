"""Sanity checks of occlusion maps: results as data, each with a named pass condition and its reason.

A check measures a value; whether that value passes is decided by a separate, named ``Condition`` whose
threshold and reason are module-level constants below. ``run_checks`` runs the checks one by one and turns
a check that crashes into a failed result carrying the error, so one broken check never hides the others.
The CLI (``occsens check``) prints the results as a table, ``--json`` writes them, and the HTML report
renders the same ``CheckResult`` objects.

The checks (names as in ``CHECKS``):

* ``randomisation`` (Adebayo et al. 2018, "Sanity checks for saliency maps"): re-initialise the model's
  layers from the top down, one group at a time, and compare each map with the trained model's map by
  Spearman rank correlation. A map that survives the loss of everything the model learned explains the
  image, not the model.
* ``patch``: for the windows the map ranks most important, the image minus the window (background only)
  must lower the target probability more than random windows do, and the window alone (patch only, the
  rest filled) must keep more of it than the least important windows.
* ``faithfulness`` (RISE, Petsiuk et al. 2018): delete the image in the map's order of importance, in
  patch-sized tiles filled with the same fill as the occlusion, and the target probability must fall
  faster than for random orders of the same tiles; insert them into a filled image and it must rise
  faster.
* ``leakage`` (ROAD, Rong et al. 2022): what the model predicts for the fill alone, whether the windows'
  replacement classes are that class (explained by the fill, not the image), whether one "sink" class
  wins windows across different images, and how the class map changes between fills.
* ``determinism``: the same probabilities for different batch sizes and repeated runs; a model handed
  over in training mode is reported (occsens runs it in eval mode and says so).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import textwrap
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from occsens import core
from occsens.core import Occlusion, as_images, occlude, resolve_fill
from occsens.errors import OcclusionError

Explainer = Callable[[Any, torch.Tensor], Any]

# --------------------------------------------------------------------------- thresholds and their reasons

# Randomisation. Adebayo et al. (2018) judge the cascade by eye and by rank correlation, with no pass
# threshold. We require the fully randomised model's map to keep at most half of the trained map's rank
# order: mean |Spearman rho| <= 0.5, i.e. at most 25% of the rank variance shared. A map that is a
# function of the image alone (an edge detector) scores exactly 1.0 at every step, so the verdict on
# such a map does not hinge on where in (0, 1) the line is drawn. Chance level is far below the line:
# two unrelated maps of 64 windows score a mean |rho| of about 0.1 (0.05-0.2 measured between small
# random nets on noise images; 0.2-0.35 with only 16 windows per image).
RANDOMISATION_MAX_RHO = 0.5
RANDOMISATION_STEPS = 6  # points on the cascade (the last one: every layer re-initialised)
RANDOMISATION_SAMPLES = 8  # at most this many images (each step is one occlusion run per image)

# Map-against-chance comparisons (patch-only/background-only, deletion, insertion) all ask the same
# question: is the map's ordering better than a random ordering? The map's statistic must lie at least
# Z_MIN standard deviations of the random orderings beyond their mean. Under the null hypothesis (the map
# orders no better than chance) the map is one more draw from that distribution and passes with
# probability ~2.3% (normal tail), ~3.8% with the spread estimated from 10 orders (t, 9 d.o.f.).
Z_MIN = 2.0
TOP_FRACTION = 0.1  # "most/least important windows": the top/bottom 10% of windows (at least one)
NULL_DRAWS = 2000  # random window sets for the patch check's null distribution (no model calls)
RANDOM_ORDERS = 10  # random tile orders for deletion/insertion (the issue asks for >= 10)
CURVE_STEPS = 16  # deletion/insertion curves: 0, 1/16, ..., 16/16 of the image (at most one step per tile)
# Deletion and insertion remove patch-sized tiles (each scored by the map's mean over it), not single
# pixels. Measured on a provisional default model (8 default samples, grey fill): with single-pixel orders the
# occlusion map's deletion AUC was *higher* than random (z = -2.2) and its insertion AUC 21 sd above:
# scattered grey pixels hurt the model more than compact regions whatever they show, so pixel-level
# random orders measure the shape of the removal. Samek et al. (2017, region perturbation) compare
# orders of regions against random orders of the same regions for this reason.

# Leakage. If the class map's changes are explained by the image, a window's replacement class is
# whatever the rest of the image supports next, which coincides with the class of the fill alone only by
# chance (about 1 in K-1). FILL_EXPLAINED_MAX: when more than half of the windows whose class changed
# take the class the model gives the fill alone, the fill decides the class map more than everything
# else together does (majority rule). SINK_FRACTION_MAX: when one class that is not the image's own wins
# more than half of all windows, pooled over images of other classes, the class map of those images is
# dominated by one class that none of them shows: a sink, not a reading of each image.
FILL_EXPLAINED_MAX = 0.5
SINK_FRACTION_MAX = 0.5
LEAKAGE_FILLS: tuple[tuple[str, Any], ...] = (
    ("grey", 0.5),
    ("mean", "mean"),
    ("blur", "blur"),
    ("noise", "noise"),
)

# Determinism. Different batch compositions change the order of float32 sums inside convolutions, which
# moves a CIFAR ResNet's probabilities by ~1e-7 to 1e-6 (2.4e-7 measured on the shipped default model);
# 1e-4 leaves two orders of magnitude for other models and is still 40x below the smallest difference a
# heatmap shows (a 256-level colour scale over [0, 1] steps by ~4e-3). A forward that draws random
# numbers moves probabilities by far more than that.
DETERMINISM_TOL = 1e-4
DETERMINISM_SAMPLES = 2
DETERMINISM_BATCH = 5  # an odd batch size, so chunks split windows differently from the default


# --------------------------------------------------------------------------- results as data


_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


@dataclass(frozen=True)
class Clause:
    """``value[quantity] op threshold``, e.g. ``z >= 2``."""

    quantity: str
    op: str
    threshold: float

    def holds(self, value: Any) -> bool:
        measured = value.get(self.quantity) if isinstance(value, dict) else None
        if not isinstance(measured, (int, float)) or isinstance(measured, bool) or math.isnan(measured):
            return False
        return _OPS[self.op](float(measured), self.threshold)

    @property
    def text(self) -> str:
        return f"{self.quantity} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Condition:
    """A named pass condition: all clauses must hold; ``reason`` says why the threshold is where it is."""

    name: str
    clauses: tuple[Clause, ...]
    reason: str

    def holds(self, value: Any) -> bool:
        return all(c.holds(value) for c in self.clauses)

    @property
    def text(self) -> str:
        return " and ".join(c.text for c in self.clauses) if self.clauses else self.name

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "text": self.text,
            "clauses": [{"quantity": c.quantity, "op": c.op, "threshold": c.threshold} for c in self.clauses],
            "reason": self.reason,
        }


@dataclass(frozen=True)
class CheckResult:
    """One sanity check's verdict: what was measured, the condition it was held to, and for which samples.

    ``value`` is a JSON-able number or dict (it holds every quantity the condition names); ``details``
    holds what a report plots (curves, per-sample numbers); ``samples`` the sample ids concerned.
    """

    name: str
    passed: bool
    value: Any
    condition: Condition
    explanation: str
    samples: tuple[int, ...]
    details: dict | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "passed": bool(self.passed),
            "value": _jsonable(self.value),
            "condition": self.condition.to_dict(),
            "explanation": self.explanation,
            "samples": [int(s) for s in self.samples],
            "details": _jsonable(self.details),
        }


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy/torch scalars to Python, NaN and infinities to None."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def results_to_json(results: Sequence[CheckResult]) -> str:
    """The results as a JSON list of objects (name, passed, value, condition, explanation, samples, ...)."""
    return json.dumps([r.to_dict() for r in results], indent=2, allow_nan=False)


def _result(
    name: str,
    value: dict,
    condition: Condition,
    explanation: str,
    samples: Sequence[int],
    details: dict | None = None,
) -> CheckResult:
    return CheckResult(
        name,
        condition.holds(value),
        value,
        condition,
        " ".join(explanation.split()),
        tuple(int(s) for s in samples),
        details,
    )


# --------------------------------------------------------------------------- conditions (named constants)

RANDOMISATION = Condition(
    "map decorrelates from the trained map once the model is randomised",
    (Clause("final_abs_rank_correlation", "<=", RANDOMISATION_MAX_RHO),),
    "Adebayo et al. (2018) set no threshold; at |rho| <= 0.5 the fully randomised model's map shares at "
    "most 25% of the trained map's rank variance, while a map computed from the image alone keeps rho = 1.",
)
BACKGROUND_ONLY = Condition(
    "hiding the most important windows lowers the target probability, more than random windows",
    (Clause("top_mean_drop", ">", 0.0), Clause("z", ">=", Z_MIN)),
    "The top windows' mean drop must be positive (the probability falls) and 2 standard deviations above "
    "random sets of as many windows: under chance a map passes with probability ~2.3%.",
)
PATCH_ONLY = Condition(
    "the most important windows shown alone keep more of the target than the least important ones",
    (Clause("z", ">=", Z_MIN),),
    "Top-minus-bottom difference of the patch-only target probability, 2 standard deviations above random "
    "pairs of window sets: under chance a map passes with probability ~2.3%.",
)
DELETION = Condition(
    "filling the image tile by tile in the map's order lowers the target faster than random orders",
    (Clause("z", ">=", Z_MIN),),
    "RISE (Petsiuk et al. 2018) compares deletion AUCs; the map's AUC must lie 2 standard deviations of "
    f"{RANDOM_ORDERS} random orders below their mean: a map no better than chance passes ~2-4% of the time.",
)
INSERTION = Condition(
    "restoring the image tile by tile in the map's order raises the target faster than random orders",
    (Clause("z", ">=", Z_MIN),),
    "RISE (Petsiuk et al. 2018) compares insertion AUCs; the map's AUC must lie 2 standard deviations of "
    f"{RANDOM_ORDERS} random orders above their mean: a map no better than chance passes ~2-4% of the time.",
)
FILL_CLASS = Condition(
    "replacement classes are not the class of the fill alone",
    (Clause("fill_explained_share", "<=", FILL_EXPLAINED_MAX),),
    "Image-driven replacements hit the fill's own class by chance (~1/(K-1)); above one half, the fill "
    "explains more of the class map's changes than the image does (ROAD, Rong et al. 2022: the occluder "
    "leaks class information).",
)
SINK_CLASS = Condition(
    "no single sink class wins most windows across images of other classes",
    (Clause("sink_fraction", "<=", SINK_FRACTION_MAX),),
    "If one class wins more than half of all windows of images that are not of that class, the class map "
    "reads the occluder, not each image.",
)
DETERMINISM = Condition(
    "same probabilities for repeated runs and different batch sizes",
    (Clause("max_diff_repeat", "<=", DETERMINISM_TOL), Clause("max_diff_batch", "<=", DETERMINISM_TOL)),
    "float32 summation order moves probabilities by ~1e-6 between batch compositions; 1e-4 leaves 100x "
    "headroom and is 40x below the smallest step a heatmap's colour scale shows.",
)
CHECK_RAN = Condition(
    "the check runs to completion",
    (),
    "A check that cannot run has not shown that the map can be trusted.",
)


# --------------------------------------------------------------------------- shared pieces


def spearman(a: Any, b: Any) -> float:
    """Spearman rank correlation of two equally sized arrays, ties given their average rank.

    Average ranks matter here: occlusion maps are constant over each window, and ordinal ranks would
    break those ties by pixel index, the same way in both maps, and invent a correlation. A constant
    map has no ranking to share: the result is 0.0.
    """
    x = _average_ranks(np.asarray(a, dtype=np.float64).ravel())
    y = _average_ranks(np.asarray(b, dtype=np.float64).ravel())
    if x.shape != y.shape:
        raise OcclusionError(f"cannot correlate maps of {x.size} and {y.size} values")
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else 0.0


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_x[1:] != sorted_x[:-1])))
    ends = np.append(starts[1:], len(x))
    group = np.cumsum(np.concatenate(([True], sorted_x[1:] != sorted_x[:-1]))) - 1
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends - 1) / 2.0 + 1.0)[group]
    return ranks


def _z(stat: float, null: np.ndarray) -> tuple[float, float, float]:
    """(z, null mean, null std): how many null standard deviations ``stat`` lies above the null mean."""
    mean, std = float(np.mean(null)), float(np.std(null, ddof=1))
    if std > 0:
        return (stat - mean) / std, mean, std
    return (0.0 if stat == mean else math.copysign(math.inf, stat - mean)), mean, std


def _order_desc(scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of each row of ``scores`` from highest to lowest, ties broken at random (not by index)."""
    out = np.empty(scores.shape, dtype=np.int64)
    for i, row in enumerate(scores):
        perm = rng.permutation(row.shape[0])
        out[i] = perm[np.argsort(-row[perm], kind="stable")]
    return out


@contextlib.contextmanager
def _eval_flags(model: Any) -> Iterator[None]:
    """Eval mode for a user explainer (gradients stay available); each module's flag is restored."""
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    flags = [m.training for m in modules]
    try:
        for m in modules:
            m.training = False
        yield
    finally:
        for m, flag in zip(modules, flags, strict=True):
            m.training = flag


def _training_flags(model: Any) -> list[bool]:
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


class _Run:
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
    ) -> None:
        self.model, self.images, self.labels, self.sample_ids = model, images, labels, sample_ids
        self.patch, self.stride, self.fill, self.explainer, self.seed = patch, stride, fill, explainer, seed
        self.class_names = list(class_names) if class_names is not None else None
        self.initial_flags = _training_flags(model)
        self.was_training = any(self.initial_flags)
        self.fill_description = resolve_fill(fill, images[:1]).description
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
        return occlude(
            self.model if model is None else model,
            images,
            patch=self.patch,
            stride=self.stride,
            fill=self.fill if fill is None else fill,
            target=target,
            reveal=reveal,
            batch_size=batch_size,
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
        with _eval_flags(model):
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
        """float32 [B, K] softmax of ``model`` on ``x``, in eval mode, in memory-sized chunks."""
        device = core._device(model, None)
        size = core.default_batch_size(x, device)
        with core.eval_mode(model):
            return torch.cat(
                [
                    core._forward(model, x[i : i + size].to(device), len(x[i : i + size]))
                    for i in range(0, len(x), size)
                ]
            )

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
    def map_label(self) -> str:
        return "the occlusion map" if self.explainer is None else "the explainer's map"


# --------------------------------------------------------------------------- 1. model randomisation


def _layer_groups(model: nn.Module) -> list[list[tuple[str, nn.Module]]]:
    """Modules with their own parameters, in registration (forward) order; a normalisation layer joins
    the layer before it (a conv and its batch norm are re-initialised together)."""
    groups: list[list[tuple[str, nn.Module]]] = []
    for name, module in model.named_modules():
        is_norm = isinstance(module, (_NormBase, nn.GroupNorm, nn.LayerNorm))
        if not list(module.parameters(recurse=False)) and not isinstance(module, _NormBase):
            continue
        if is_norm and groups:
            groups[-1].append((name or "model", module))
        else:
            groups.append([(name or "model", module)])
    return groups


def _reinitialise(module: nn.Module) -> None:
    """Fresh initial weights: ``reset_parameters()`` where defined (batch norm: affine 1/0, statistics
    reset, then re-estimated), otherwise a normal draw with each parameter's own mean and spread."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            std = float(p.std()) if p.numel() > 1 else 1.0
            p.normal_(float(p.mean()), std if std > 0 else 1.0)


def _recalibrate(model: nn.Module, norms: Sequence[_NormBase], images: torch.Tensor) -> None:
    """Re-draw the running statistics of re-initialised batch norms from one pass over the images (their
    inputs changed with the layers below them), so randomised layers keep a working scale in eval mode."""
    norms = [m for m in norms if m.track_running_stats]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    model.eval()
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
            m.train()
        with torch.no_grad():
            model(images.to(core._device(model, None)))
    except (ValueError, RuntimeError):
        for m in norms:  # e.g. one value per channel: keep the reset statistics (mean 0, variance 1)
            m.reset_running_stats()
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()


def _cascade_points(groups: int, steps: int) -> list[int]:
    return sorted({int(round(v)) for v in np.linspace(1, groups, min(steps, groups))})


def check_randomisation(run: _Run) -> list[CheckResult]:
    """Cascading randomisation (Adebayo et al. 2018): re-initialise layers from the top down."""
    if not isinstance(run.model, nn.Module):
        raise OcclusionError("model randomisation needs a torch.nn.Module (its layers are re-initialised)")
    groups = _layer_groups(run.model)
    if not groups:
        raise OcclusionError("model randomisation needs a model with parameters; this one has none")
    index = torch.arange(min(RANDOMISATION_SAMPLES, run.n))
    trained = run.maps[index]
    points = _cascade_points(len(groups), RANDOMISATION_STEPS)
    randomised = copy.deepcopy(run.model).eval()
    groups_copy = _layer_groups(randomised)
    top_down = groups_copy[::-1]
    steps: list[dict[str, Any]] = [
        {
            "randomised_layers": 0,
            "down_to": None,
            "mean_rank_correlation": 1.0,
            "mean_abs_rank_correlation": 1.0,
            "per_sample": [1.0] * len(index),
        }
    ]
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        for point in points:
            for group in top_down[done:point]:
                for _, module in group:
                    _reinitialise(module)
            done = point
            norms = [m for g in top_down[:done] for _, m in g if isinstance(m, _NormBase)]
            _recalibrate(randomised, norms, run.images)
            maps = run.explain(randomised, index)
            rhos = [spearman(trained[i], maps[i]) for i in range(len(index))]
            steps.append(
                {
                    "randomised_layers": done,
                    "down_to": top_down[done - 1][0][0],
                    "mean_rank_correlation": float(np.mean(rhos)),
                    "mean_abs_rank_correlation": float(np.mean(np.abs(rhos))),
                    "per_sample": rhos,
                }
            )
    final = steps[-1]
    curve = [round(s["mean_abs_rank_correlation"], 4) for s in steps]
    value = {
        "final_abs_rank_correlation": final["mean_abs_rank_correlation"],
        "final_rank_correlation": final["mean_rank_correlation"],
        "curve": curve,
        "layer_groups": len(groups),
    }
    fell = "fell" if final["mean_abs_rank_correlation"] < 1 else "did not fall"
    explanation = f"""Re-initialising the model's {len(groups)} layer groups from the output towards the input
        (cascade points {points}), the mean absolute Spearman rank correlation between {run.map_label} of the
        trained and the randomised model {fell} from 1 to {final["mean_abs_rank_correlation"]:.3f} once every
        layer was random (curve {curve}). Adebayo et al. (2018): a map that stays similar when the learned
        weights are gone is computed from the image and the architecture, not from what the model learned,
        and cannot explain the model's decision. Randomised batch norms start at their initial affine
        weights with running statistics re-estimated on the images; the randomised model runs in eval mode."""
    return [
        _result(
            "model randomisation",
            value,
            RANDOMISATION,
            explanation,
            run.ids(index),
            {"steps": steps, "layers_top_down": [g[0][0] for g in top_down]},
        )
    ]


# --------------------------------------------------------------------------- 2. patch-only vs background-only


def _window_scores(maps: torch.Tensor, plan: core.Plan) -> np.ndarray:
    """float64 [N, P]: the map's mean over each window's pixels."""
    masks = plan.masks.reshape(plan.positions, -1).to(torch.float64)
    flat = maps.reshape(len(maps), -1).to(torch.float64)
    return (flat @ masks.T / masks.sum(dim=1)).numpy()


def check_patch(run: _Run) -> list[CheckResult]:
    """Background-only (the image minus the window) and patch-only (the window alone) at the map's top
    and bottom windows, against random window sets."""
    occ = run.occ
    positions = occ.plan.positions
    if positions < 2:
        raise OcclusionError(f"the patch check needs at least 2 windows; the plan has {positions}")
    k = max(1, int(round(TOP_FRACTION * positions)))
    k = min(k, positions // 2)
    rng = run.rng(2)
    order = _order_desc(_window_scores(run.maps, occ.plan), rng)
    top, bottom = order[:, :k], order[:, -k:]
    drop = occ.drop.reshape(run.n, -1).double().numpy()
    reveal = run.occlusion(run.images, target=run.target, reveal=True)
    kept = reveal.heatmap.reshape(run.n, -1).double().numpy()

    rows = np.arange(run.n)[:, None]
    random_sets = rng.random((NULL_DRAWS, run.n, positions)).argsort(axis=2)
    top_drop, bottom_drop = float(drop[rows, top].mean()), float(drop[rows, bottom].mean())
    null_drop = drop[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2))
    z_bg, null_bg_mean, null_bg_std = _z(top_drop, null_drop)

    top_kept, bottom_kept = float(kept[rows, top].mean()), float(kept[rows, bottom].mean())
    diff = top_kept - bottom_kept
    null_kept = kept[rows[None], random_sets[:, :, :k]].mean(axis=(1, 2)) - kept[
        rows[None], random_sets[:, :, k : 2 * k]
    ].mean(axis=(1, 2))
    z_patch, null_patch_mean, null_patch_std = _z(diff, null_kept)

    clean = float(occ.clean_target_prob.mean())
    shared = {
        "k": k,
        "windows": positions,
        "top_windows": top.tolist(),
        "bottom_windows": bottom.tolist(),
        "clean_target_prob": occ.clean_target_prob.tolist(),
    }
    bg_details = {**shared, "background_only_drop": drop.tolist()}
    patch_details = {**shared, "patch_only_prob": kept.tolist()}
    bg_value = {
        "z": z_bg,
        "top_mean_drop": top_drop,
        "bottom_mean_drop": bottom_drop,
        "random_mean_drop": null_bg_mean,
        "random_std": null_bg_std,
        "k": k,
    }
    circular = (
        " With the default explainer the windows are ranked by this same drop, so this half only "
        "confirms that the map is not flat; the patch-only half is the independent test."
    )
    bg_text = f"""Hiding each of the {k} windows (of {positions}) that {run.map_label} ranks most important,
        the model seeing the image minus the window, lowered the target probability by {top_drop:.4f} on
        average (least important windows: {bottom_drop:.4f}; random sets of {k} windows:
        {null_bg_mean:.4f} +- {null_bg_std:.4f}; z = {z_bg:.2f}). If the map's important windows carry the
        evidence, removing them must cost the model more than removing windows at random.
        {circular if run.explainer is None else ""}"""
    patch_value = {
        "z": z_patch,
        "top_minus_bottom": diff,
        "top_mean_prob": top_kept,
        "bottom_mean_prob": bottom_kept,
        "random_mean": null_patch_mean,
        "random_std": null_patch_std,
        "clean_mean_prob": clean,
        "k": k,
    }
    patch_text = f"""Showing only one window and filling the rest ({run.fill_description}), the target
        probability averaged {top_kept:.4f} for the {k} most important windows and {bottom_kept:.4f} for the
        {k} least important (clean image: {clean:.4f}); the difference {diff:+.4f} is z = {z_patch:.2f}
        random-set standard deviations ({null_patch_mean:+.4f} +- {null_patch_std:.4f}). Evidence that
        matters should, shown on its own, keep more of the target than the window the map calls least
        important; if it does not, the map's ranking reflects what removing the window breaks (e.g. an
        unusual input) rather than what the window contains."""
    samples = run.ids(range(run.n))
    return [
        _result(
            "background-only (important windows)", bg_value, BACKGROUND_ONLY, bg_text, samples, bg_details
        ),
        _result(
            "patch-only (important windows)", patch_value, PATCH_ONLY, patch_text, samples, patch_details
        ),
    ]


# --------------------------------------------------------------------------- 3. faithfulness


def _tiles(image_size: tuple[int, int], patch: tuple[int, int]) -> torch.Tensor:
    """int64 [H*W]: which patch-sized tile each pixel is in (tiles partition the image, row by row;
    the last row and column of tiles are smaller where the patch does not divide the image)."""
    h, w = image_size
    rows, cols = torch.arange(h) // patch[0], torch.arange(w) // patch[1]
    return (rows[:, None] * (int(cols[-1]) + 1) + cols[None, :]).reshape(-1)


def _curve_probs(
    run: _Run, image: int, orders: np.ndarray, tiles: torch.Tensor, counts: torch.Tensor, fill: core._Fill
) -> tuple[np.ndarray, np.ndarray]:
    """Target probability along deletion and insertion curves: float64 [orders, steps + 1] each.

    ``orders[o]`` lists tile numbers, most important first; at step j the first ``counts[j]`` tiles are
    filled (deletion) or are the only ones kept (insertion)."""
    x = run.images[image]
    c, h, w = x.shape
    position = torch.empty(orders.shape, dtype=torch.int64)  # position[o, t]: where tile t is in order o
    ranks = torch.arange(orders.shape[1]).expand(len(orders), -1).contiguous()
    position.scatter_(1, torch.as_tensor(orders), ranks)
    first = position[:, None, tiles] < counts[None, :, None]  # [O, S+1, HW]: pixels of the first tiles
    first = first.reshape(-1, 1, h, w)
    batch = x.expand(len(first), c, h, w)
    index = [image] * len(first)
    deleted = torch.where(first, fill.images(batch, index, first), batch)  # first tiles filled
    inserted = torch.where(~first, fill.images(batch, index, ~first), batch)  # first tiles kept, rest filled
    probs = run.probs(run.model, torch.cat([deleted, inserted]))[:, int(run.target[image])]
    curves = probs.double().numpy().reshape(2, len(orders), len(counts))
    return curves[0], curves[1]


def _auc(curves: np.ndarray) -> np.ndarray:
    """Area under curves sampled at 0, 1/S, ..., 1 (trapezoid rule), along the last axis."""
    return (curves[..., :-1] + curves[..., 1:]).sum(axis=-1) / (2 * (curves.shape[-1] - 1))


def check_faithfulness(run: _Run) -> list[CheckResult]:
    """Deletion and insertion curves (RISE) against RANDOM_ORDERS random orders, in patch-sized tiles."""
    rng = run.rng(3)
    h, w = run.images.shape[2:]
    tiles = _tiles((h, w), core._pair(run.patch, "patch"))
    n_tiles = int(tiles.max()) + 1
    one_hot = torch.zeros(n_tiles, h * w, dtype=torch.float64)
    one_hot[tiles, torch.arange(h * w)] = 1.0
    maps = run.maps.reshape(run.n, -1).double()
    scores = (maps @ one_hot.T / one_hot.sum(dim=1)).numpy()  # [N, tiles]: the map's mean per tile
    steps = min(CURVE_STEPS, n_tiles)
    counts = torch.as_tensor(np.round(np.linspace(0, n_tiles, steps + 1)).astype(np.int64))
    fill = resolve_fill(run.fill, run.images)
    map_orders = _order_desc(scores, rng)
    deletion, insertion = [], []  # per image: [1 + RANDOM_ORDERS, steps + 1]
    for i in range(run.n):
        orders = np.stack([map_orders[i]] + [rng.permutation(n_tiles) for _ in range(RANDOM_ORDERS)])
        d, ins = _curve_probs(run, i, orders, tiles, counts, fill)
        deletion.append(d)
        insertion.append(ins)
    fractions = (counts.double() / n_tiles).tolist()
    samples = run.ids(range(run.n))
    results = []
    for name, curves, sign, condition in (
        ("deletion", np.stack(deletion), -1.0, DELETION),
        ("insertion", np.stack(insertion), 1.0, INSERTION),
    ):
        aucs = _auc(curves)  # [N, 1 + R]
        map_auc = float(aucs[:, 0].mean())
        random_aucs = aucs[:, 1:].mean(axis=0)  # one AUC per random order, averaged over images
        z, mean, std = _z(sign * map_auc, sign * random_aucs)
        value = {
            "z": z,
            "map_auc": map_auc,
            "random_auc_mean": float(random_aucs.mean()),
            "random_auc_std": float(random_aucs.std(ddof=1)),
            "random_orders": RANDOM_ORDERS,
        }
        details = {
            "fractions": fractions,
            "map_curve": curves[:, 0].mean(axis=0).tolist(),
            "random_curve_mean": curves[:, 1:].mean(axis=(0, 1)).tolist(),
            "random_curve_std": curves[:, 1:].mean(axis=0).std(axis=0, ddof=1).tolist(),
            "map_auc_per_sample": aucs[:, 0].tolist(),
            "random_aucs": random_aucs.tolist(),
            "map_curve_per_sample": curves[:, 0].tolist(),
        }
        if name == "deletion":
            what = (
                f"Filling the image ({run.fill_description}) tile by tile in the order of {run.map_label}, "
                "most important first, the target probability should fall faster than when the same tiles "
                "are filled in a random order: a lower area under the curve"
            )
            verdict = "lower" if z >= 0 else "higher"
        else:
            what = (
                f"Starting from the fill alone ({run.fill_description}) and putting the image back tile by "
                f"tile in the order of {run.map_label}, most important first, the target probability should "
                "rise faster than for a random order: a higher area under the curve"
            )
            verdict = "higher" if z >= 0 else "lower"
        text = f"""{what}. Over {run.n} images, {n_tiles} tiles of the patch size and {steps} steps, the
            map's {name} AUC is {map_auc:.4f}, {verdict} than {RANDOM_ORDERS} random orders
            ({value["random_auc_mean"]:.4f} +- {value["random_auc_std"]:.4f}), z = {z:.2f}. A map that orders
            the image no better than chance carries no information about what the model uses (RISE, Petsiuk
            et al. 2018). Tiles rather than single pixels: a random order of single pixels scatters the fill
            over the whole image, which hurts the model more than compact regions whatever they show, so the
            comparison would measure the shape of the removal, not the map (Samek et al. 2017 compare region
            orders against random region orders for the same reason)."""
        results.append(_result(f"faithfulness: {name}", value, condition, text, samples, details))
    return results


# --------------------------------------------------------------------------- 4. occluder leakage


def _fill_alone(run: _Run, fill: Any) -> torch.Tensor:
    """Softmax [N, K] of each image's fill alone (every pixel replaced)."""
    everywhere = torch.ones(1, 1, *run.images.shape[2:], dtype=torch.bool)
    filled = resolve_fill(fill, run.images).images(run.images, list(range(run.n)), everywhere)
    return run.probs(run.model, filled.expand_as(run.images).contiguous())


def _leakage_stats(occ: Occlusion, fill_probs: torch.Tensor, labels: np.ndarray | None) -> dict:
    n = len(occ.images)
    classes = occ.class_map.reshape(n, -1)
    positions = classes.shape[1]
    clean = occ.clean_class
    fill_class = fill_probs.argmax(dim=1)
    flipped = classes != clean[:, None]
    eligible = fill_class != clean
    to_fill = flipped & (classes == fill_class[:, None])
    flips_eligible = int(flipped[eligible].sum())
    share = int(to_fill[eligible].sum()) / flips_eligible if flips_eligible else 0.0
    fractions = []
    for s in range(occ.num_classes):
        others = clean != s
        total = int(others.sum()) * positions
        fractions.append(int((classes[others] == s).sum()) / total if total else 0.0)
    sink = int(np.argmax(fractions))
    per_image = []
    for i in range(n):
        flips = int(flipped[i].sum())
        to = int(to_fill[i].sum())
        per_image.append(
            {
                "clean_class": int(clean[i]),
                "fill_class": int(fill_class[i]),
                "fill_class_prob": float(fill_probs[i, fill_class[i]]),
                "flipped_windows": flips,
                "to_fill_class": to,
                "flagged": bool(eligible[i] and flips and to / flips > FILL_EXPLAINED_MAX),
                "label": None if labels is None else int(labels[i]),
                "fill_class_is_label": labels is not None and int(labels[i]) == int(fill_class[i]),
            }
        )
    return {
        "fill_explained_share": share,
        "flipped_windows": int(flipped.sum()),
        "flip_rate": float(flipped.float().mean()),
        "sink_class": sink,
        "sink_fraction": fractions[sink],
        "sink_images": int(((classes == sink).any(dim=1) & (clean != sink)).sum()),
        "fill_classes": fill_class.tolist(),
        "class_counts": occ.class_counts.sum(dim=0).tolist(),
        "per_image": per_image,
    }


def check_leakage(run: _Run) -> list[CheckResult]:
    """Occluder leakage (ROAD): the fill's own class, sink classes, and the class map across fills."""
    fills: dict[str, tuple[Any, Occlusion]] = {run.fill_description: (run.fill, run.occ)}
    for label, fill in LEAKAGE_FILLS:
        description = resolve_fill(fill, run.images[:1]).description
        if description != run.fill_description:
            fills[label] = (fill, run.occlusion(run.images, fill=fill, target=run.target))
    stats = {
        label: _leakage_stats(occ, _fill_alone(run, fill), run.labels) for label, (fill, occ) in fills.items()
    }
    labels = list(fills)
    agreement = {
        f"{a} vs {b}": float((fills[a][1].class_map == fills[b][1].class_map).float().mean())
        for i, a in enumerate(labels)
        for b in labels[i + 1 :]
    }
    flags = [
        {"sample": run.sample_ids[i], "fill": label, **s["per_image"][i]}
        for label, s in stats.items()
        for i in range(run.n)
        if s["per_image"][i]["flagged"]
    ]
    main = stats[run.fill_description]
    fill_classes = sorted(set(main["fill_classes"]))
    samples = run.ids(range(run.n))
    details = {"by_fill": stats, "class_map_agreement": agreement, "flags": flags}
    sink_keys = ("sink_class", "sink_fraction", "sink_images", "class_counts")
    sink_details = {"by_fill": {label: {k: s[k] for k in sink_keys} for label, s in stats.items()}}
    summary = {
        label: {
            "fill_class": s["fill_classes"][0] if len(set(s["fill_classes"])) == 1 else s["fill_classes"],
            "flip_rate": s["flip_rate"],
            "fill_explained_share": s["fill_explained_share"],
            "sink_class": s["sink_class"],
            "sink_fraction": s["sink_fraction"],
        }
        for label, s in stats.items()
    }
    fill_value = {
        "fill_explained_share": main["fill_explained_share"],
        "flipped_windows": main["flipped_windows"],
        "flip_rate": main["flip_rate"],
        "fill_classes": main["fill_classes"],
        "flagged_maps": len(flags),
        "by_fill": summary,
        "min_class_map_agreement": min(agreement.values()) if agreement else 1.0,
    }
    flagged = ", ".join(f"sample {f['sample']} with fill {f['fill']}" for f in flags) or "none"
    ambiguous = [f for f in flags if f["fill_class_is_label"]]
    if ambiguous:  # e.g. grey read as sky on an airplane the model called a ship
        flagged += (
            f"; in {len(ambiguous)} of them the fill's class is also the image's true label, so fill and "
            "image point to the same class and this test cannot tell them apart"
        )
    agree = ", ".join(f"{k} {v:.2f}" for k, v in agreement.items())
    fill_text = f"""The model classifies the fill alone ({run.fill_description}) as
        {", ".join(run.name(c) for c in fill_classes)}. Of the {main["flipped_windows"]} windows whose most
        probable class differs from the clean prediction ({main["flip_rate"]:.1%} of all windows), a share of
        {main["fill_explained_share"]:.2f} take that class (images already of that class excluded). If the
        replacement classes came from the image, they would hit the fill's class only by chance; a high share
        means the class map reports what the fill looks like (ROAD, Rong et al. 2022). Maps flagged because
        most of their replacement classes are the fill's own class, over the fills
        {", ".join(labels)}: {flagged} (the mean and blur fills are computed from the image itself, so
        their fill-alone class partly reflects the image). Fraction of windows with the same class between
        fills: {agree}."""
    sink_value = {
        "sink_fraction": main["sink_fraction"],
        "sink_class": main["sink_class"],
        "sink_images": main["sink_images"],
        "by_fill": {k: v["sink_fraction"] for k, v in stats.items()},
    }
    sink_text = f"""With fill {run.fill_description}, class {run.name(main["sink_class"])} wins
        {main["sink_fraction"]:.1%} of all windows of the images whose clean prediction is another class
        (present in {main["sink_images"]} of those images); by fill:
        {", ".join(f"{k} {v['sink_fraction']:.1%} ({run.name(v['sink_class'])})" for k, v in stats.items())}.
        A class that takes over windows across different images, whatever they show, is a sink of the
        occluder: the square itself is read as that class."""
    return [
        _result("occluder leakage: fill class", fill_value, FILL_CLASS, fill_text, samples, details),
        _result("occluder leakage: sink class", sink_value, SINK_CLASS, sink_text, samples, sink_details),
    ]


# --------------------------------------------------------------------------- 5. determinism


def check_determinism(run: _Run) -> list[CheckResult]:
    """The same probabilities for repeated runs and for different batch sizes."""
    index = torch.arange(min(DETERMINISM_SAMPLES, run.n))
    images, target = run.images[index], run.target[index]
    first = run.occlusion(images, target=target)
    again = run.occlusion(images, target=target)
    other = run.occlusion(images, target=target, batch_size=DETERMINISM_BATCH)
    base = run.occ.probs[index]

    def diff(a: Occlusion | torch.Tensor, b: Occlusion) -> float:
        pa = a.probs if isinstance(a, Occlusion) else a
        return float((pa - b.probs).abs().max())

    repeat = max(diff(first, again), float((first.clean_probs - again.clean_probs).abs().max()))
    batch = max(diff(first, other), diff(base, first))
    restored = _training_flags(run.model) == run.initial_flags
    value = {
        "max_diff_repeat": repeat,
        "max_diff_batch": batch,
        "batch_sizes": [core.default_batch_size(images, core._device(run.model, None)), DETERMINISM_BATCH],
        "model_was_training": run.was_training,
        "mode_restored": restored,
    }
    mode = (
        "The model was handed over in training mode: occsens ran every forward in eval mode (dropout off, "
        "batch-norm running statistics) and restored its mode afterwards"
        + ("." if restored else ", but its mode differs now: something changed it.")
        if run.was_training
        else "The model was handed over in eval mode."
    )
    text = f"""Occluding {len(index)} image(s) twice with the same settings changed the probabilities by at
        most {repeat:.2e}; with a different batch size ({DETERMINISM_BATCH}) and batch composition, by at most
        {batch:.2e}. A map must not depend on how the windows were batched or on the run: if it does, the
        model's forward is random (dropout or noise that eval mode does not switch off, or batch statistics)
        and any difference between windows may be noise. {mode}"""
    return [_result("determinism", value, DETERMINISM, text, run.ids(index))]


# --------------------------------------------------------------------------- the runner


CHECKS: dict[str, Callable[[_Run], list[CheckResult]]] = {
    "randomisation": check_randomisation,
    "patch": check_patch,
    "faithfulness": check_faithfulness,
    "leakage": check_leakage,
    "determinism": check_determinism,
}


def _crashed(check: str, exc: BaseException, samples: Sequence[int]) -> CheckResult:
    message = f"{type(exc).__name__}: {exc}"
    return CheckResult(
        name=check,
        passed=False,
        value=None,
        condition=CHECK_RAN,
        explanation=f"The {check} check crashed and could not judge the map: {message}",
        samples=tuple(int(s) for s in samples),
        details={"error": message, "traceback": "".join(traceback.format_exception(exc))},
    )


def run_checks(
    model: Any,
    images: Any,
    *,
    labels: Any = None,
    sample_ids: Sequence[int] | None = None,
    patch: Any = 4,
    stride: Any = None,
    fill: Any = 0.5,
    explainer: Explainer | None = None,
    checks: Sequence[str] | None = None,
    seed: int = 0,
    progress: bool = False,
    class_names: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Run the sanity checks of occlusion maps of ``model`` on ``images``; one or more results per check.

    Args:
        model, images, patch, stride, fill: as for ``occsens.occlude``; each image's target is its clean
            prediction.
        labels: true classes, reported in the details (optional).
        sample_ids: how the results name the images (e.g. CIFAR-10 test indices); default 0..N-1.
        explainer: ``explainer(model, images) -> maps [N, H, W]`` to check instead of the occlusion map
            (higher = more important); default: ``Occlusion.attribution()`` with these settings.
        checks: names from ``CHECKS`` to run, in that order (default: all).
        seed: seeds every random choice (random orders, window sets, re-initialised weights).
        progress: a progress bar on stderr, one step per check.
        class_names: names used in the explanations (ignored unless there is one per class).

    Bad arguments raise ``OcclusionError``; a check that crashes becomes a failed result with the error.
    """
    x = as_images(images)
    _validate_geometry(x, patch, stride)
    resolve_fill(fill, x[:1])
    if explainer is not None and not callable(explainer):
        raise OcclusionError(
            f"explainer must be a callable (model, images) -> maps [N, H, W], got {explainer!r}"
        )
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [c for c in names if c not in CHECKS]
    if unknown:
        raise OcclusionError(f"unknown check(s) {unknown}; valid: {', '.join(CHECKS)}")
    ids = list(range(len(x))) if sample_ids is None else [int(s) for s in sample_ids]
    if len(ids) != len(x):
        raise OcclusionError(f"sample_ids has {len(ids)} entries but there are {len(x)} images")
    label_array = None if labels is None else np.asarray(labels).reshape(-1)
    if label_array is not None and len(label_array) != len(x):
        raise OcclusionError(f"labels has {len(label_array)} entries but there are {len(x)} images")
    run = _Run(model, x, label_array, ids, patch, stride, fill, explainer, int(seed), class_names)
    if run.was_training:
        warnings.warn(
            "model was in training mode; the checks run it in eval mode and restore its mode afterwards",
            stacklevel=2,
        )
    results: list[CheckResult] = []
    bar = core.progress_bar(len(names), progress, unit="check", desc="checks")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="model was in training mode")  # reported once, above
            warnings.filterwarnings("ignore", message="incremental engine not used")  # speed, not verdicts
            for name in names:
                bar.set_description(name)
                try:
                    results.extend(CHECKS[name](run))
                except Exception as exc:  # a crashing check is a failed result, never a crashed run
                    results.append(_crashed(name, exc, ids))
                bar.update(1)
    finally:
        bar.close()
    return results


def _validate_geometry(x: torch.Tensor, patch: Any, stride: Any) -> None:
    core.plan_for((x.shape[2], x.shape[3]), patch, stride)


# --------------------------------------------------------------------------- presentation


def _format_number(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"
    return str(v)


def headline(result: CheckResult) -> str:
    """The values the condition tests, e.g. ``z=3.1``; the error for a crashed check."""
    if not result.condition.clauses:
        return "error"
    value = result.value if isinstance(result.value, dict) else {}
    return ", ".join(
        f"{c.quantity}={_format_number(value.get(c.quantity))}" for c in result.condition.clauses
    )


def format_table(results: Sequence[CheckResult]) -> str:
    """A plain-text table: check, PASS/FAIL, measured value(s), condition."""
    rows = [("check", "result", "value", "condition")]
    rows += [(r.name, "PASS" if r.passed else "FAIL", headline(r), r.condition.text) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * max(len(r[3]) for r in rows))
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _samples_arg(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of test indices, e.g. 0,1,2"
        ) from None


def add_parser(sub: Any) -> None:
    """Add ``occsens check`` to the CLI's subparsers."""
    from occsens.cli import add_model_args, add_occlusion_args

    p = sub.add_parser(
        "check",
        help="sanity checks of the occlusion maps (randomisation, faithfulness, leakage, determinism)",
        description="Run the sanity checks of occlusion maps on CIFAR-10 test images and print a table of "
        "results; exits 1 when a check fails (unless --no-fail), 2 on bad input.",
    )
    add_model_args(p)
    p.add_argument(
        "--samples",
        type=_samples_arg,
        default=None,
        metavar="IDX,...",
        help="CIFAR-10 test indices (default: the embedded default samples 0,1,2,3,4,6,11,25)",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder holding cifar-10-batches-py/, for samples not embedded"
    )
    add_occlusion_args(p)
    p.add_argument("--checks", default=None, metavar="NAME,...", help=f"run only these ({', '.join(CHECKS)})")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results to FILE as JSON")
    p.add_argument("--no-fail", action="store_true", help="exit 0 even when a check fails (only report)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    from occsens.cli import model_from_args
    from occsens.embedded import DEFAULT_SAMPLES, sample_by_index
    from occsens.models import CIFAR10_CLASSES

    start = time.perf_counter()
    model = model_from_args(args)
    samples = sample_by_index(args.samples if args.samples else DEFAULT_SAMPLES, args.data_dir)
    names = [n.strip() for n in args.classes.split(",")] if args.classes else list(CIFAR10_CLASSES)
    checks = [c.strip() for c in args.checks.split(",")] if args.checks else None
    results = run_checks(
        model,
        samples.images,
        labels=samples.labels,
        sample_ids=samples.indices.tolist(),
        patch=args.patch,
        stride=args.stride,
        fill=args.fill,
        checks=checks,
        seed=args.seed,
        progress=not args.quiet,
        class_names=names,
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(results_to_json(results) + "\n")
    failed = [r for r in results if not r.passed]
    print(format_table(results))
    print(
        f"\n{len(results) - len(failed)} of {len(results)} checks passed on samples "
        f"{','.join(str(s) for s in samples.indices.tolist())} in {time.perf_counter() - start:.0f} s"
    )
    for r in failed:
        print("\n" + textwrap.fill(f"FAIL {r.name}: {r.explanation}", width=100))
    return 1 if failed and not args.no_fail else 0
