"""``occsens.explain``: the HTML report for a model of yours and your images, from Python.

The one path from a model and images to a report: ``occsens report`` and ``occsens explain IMAGE`` call
it too, adding only what they parse from their arguments. It probes the model once, runs the sanity
checks on the same images and settings, then the ``make_report`` pipeline, all on one store of
occlusion runs (``occsens.engine.Runs``), and returns a ``Report`` that shows itself inline and saves
with ``report.save(path)``. Images come in as arrays or tensors (read files with
``occsens.read_image``). What the command line adds for occsens's shipped CIFAR-10 models (their model
cards, the colour-vs-greyscale comparison, the asker's printout) comes in as data (``model_info``,
``twin``, ``question``): ``explain`` knows nothing of the model but what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from occsens.checks import run_checks
from occsens.engine import Runs, as_images, plan_for
from occsens.errors import OcclusionError, flag, shown
from occsens.report.data import (
    ModelInfo,
    Report,
    SurveyNumbers,
    Twin,
    class_names_for,
    model_info_without_card,
)
from occsens.report.make import make_report
from occsens.report.questions import Printout

TWIN_MISSING = (
    "The colour-vs-greyscale comparison measures occsens's two shipped CIFAR-10 models against each "
    "other (occsens report); it says nothing about this model, so it is left out."
)


def _labels(labels: Any, n: int, num_classes: int) -> list[int | None] | None:
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise OcclusionError(
            f"labels must be a sequence of class indices, one per image, got {shown(labels)}"
        )
    if len(labels) != n:
        raise OcclusionError(
            f"labels has {len(labels)} entries for {n} images; give one per image (None: unknown)"
        )
    for y in labels:
        if y is not None and (isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < num_classes):
            raise OcclusionError(
                f"labels must hold class indices in 0..{num_classes - 1} (or None), got {shown(y)}"
            )
    return list(labels)


def _names(sample_names: Any, n: int) -> list[str]:
    if sample_names is None:
        return [f"image {k}" for k in range(n)]
    if isinstance(sample_names, (str, bytes)) or not isinstance(sample_names, Sequence):
        raise OcclusionError(f"sample_names must be a sequence of {n} strings, got {shown(sample_names)}")
    if len(sample_names) != n or not all(isinstance(s, str) for s in sample_names):
        raise OcclusionError(f"sample_names must hold {n} strings, one per image; got {shown(sample_names)}")
    return list(sample_names)


def _check_survey(survey: Any, plan: Any, fill: str, output: str, num_classes: int) -> None:
    """A survey the report cites must measure what the report measures: the same windows, fill and
    output (the model was checked when the survey was read, ``occsens.datasurvey.cited``)."""
    if not isinstance(survey, SurveyNumbers):
        raise OcclusionError(
            f"survey must be occsens.datasurvey.cited(folder, model) or None, got {shown(survey)}"
        )
    ours = {"patch": plan.patch, "stride": plan.stride, "fill": fill, "output": output}
    theirs = {
        "patch": survey.patch,
        "stride": survey.stride,
        "fill": survey.fill,
        "output": survey.output.rsplit(":", 1)[-1].rsplit(".", 1)[-1],  # a callable: by its name
    }
    differ = [f"{k} {shown(theirs[k])} there, {shown(v)} here" for k, v in ours.items() if theirs[k] != v]
    if differ:
        raise OcclusionError(
            f"survey {survey.folder!r} was made with other settings ({'; '.join(differ)}): survey again "
            "with the report's settings, or report with the survey's"
        )
    if len(survey.classes) != num_classes:
        raise OcclusionError(
            f"survey {survey.folder!r} has {len(survey.classes)} classes, the model scores {num_classes}"
        )


def _version() -> str | None:
    try:
        return metadata.version("occsens")
    except metadata.PackageNotFoundError:
        return None


def explain(
    model: Callable,
    images: Any,
    *,
    patch: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] | None = None,
    fill: Any = 0.5,
    class_names: Sequence[str] | None = None,
    labels: Sequence[int | None] | None = None,
    sample_names: Sequence[str] | None = None,
    checks: bool = True,
    output: Any = "softmax",
    layout: str = "NCHW",
    model_name: str | None = None,
    title: str = "Occlusion sensitivity report",
    progress: bool = False,
    batch_size: int | None = None,
    indices: Sequence[int | None] | None = None,
    label_names: Sequence[str] | None = None,
    notes: Sequence[Sequence[str]] | None = None,
    model_info: ModelInfo | None = None,
    twin: Twin | None = None,
    twin_missing: str | None = None,
    question: Printout | None = None,
    timestamp: str | None = None,
    check_images: Any = None,
    check_ids: Sequence[int] | None = None,
    survey: SurveyNumbers | None = None,
) -> Report:
    """The occlusion report on ``images`` (one ``[C, H, W]`` or a batch ``[N, C, H, W]``) for ``model``.

    Args:
        model, images, patch, stride, fill, output, layout, batch_size: as for ``occsens.occlude``.
        class_names: one name per class; default "class 0", "class 1", ... (the shipped models'
            names are ``occsens.cifar.data.CIFAR10_CLASSES``).
        labels: each image's true class index, or None where unknown; shown beside the prediction.
        sample_names: how the report names each image (default "image 0", "image 1", ...).
        checks: run the sanity checks (``occsens.run_checks``) on the same images and settings and
            show their verdicts in the report (about as long again as the report itself).
        model_name: how the report names the model (default: its class name).
        title: the page's title.
        progress: one progress bar for the report (and one for the checks) on stderr.
        indices, label_names, notes, model_info, twin, twin_missing, question, timestamp: as for
            ``make_report`` (a dataset's indices also name the images in the checks' results; the
            labels are in ``label_names``' classes when given); default: none, a card-less model.
        check_images, check_ids: images the checks may add when the ones shown do not decide a
            verdict, and their ids (``run_checks``' ``more_images`` and ``more_ids``); the report shows
            only ``images``, the checks say how many they used.
        survey: a survey of this model over a data set (``occsens.datasurvey.cited(folder, model)``),
            made with the same patch, stride, fill and output; the answer to "why do other classes take
            over?" then cites its numbers beside the images'.

    Returns the ``Report``: shown inline in a notebook, written whole by ``report.save(path)``.
    Bad arguments raise ``OcclusionError`` naming the argument, before any work.
    """
    x = as_images(images, layout)
    n = len(x)
    checks = flag(checks, "checks")
    progress = flag(progress, "progress")
    if not isinstance(title, str):
        raise OcclusionError(f"title must be a string, got {shown(title)}")
    if model_name is not None and not isinstance(model_name, str):
        raise OcclusionError(f"model_name must be a string or None, got {shown(model_name)}")
    names = _names(sample_names, n)
    # one window the size of the image on the first image: the model, fill and output checked, and the
    # number of classes known, in two forward passes before the long runs
    h, w = x.shape[2:]
    runs = Runs()  # one store for the probe, the checks and the report: each map computed once
    probe = runs.occlude(
        model,
        x[:1],
        patch=(h, w),
        fill=fill,
        output=output,
        engine="brute",
        batch_size=batch_size,
    )
    if class_names is not None:
        class_names = class_names_for(class_names, probe.num_classes)
    if survey is not None:
        _check_survey(
            survey, plan_for((h, w), patch, stride), probe.fill, runs.output_name(output), probe.num_classes
        )
    known = _labels(labels, n, len(label_names) if label_names is not None else probe.num_classes)
    results = None
    if checks:
        ids = None if indices is None else [k if i is None else i for k, i in enumerate(indices)]
        results = run_checks(
            model,
            x,
            labels=None if known is None or None in known else known,
            sample_ids=ids,
            patch=patch,
            stride=stride,
            fill=fill,
            output=output,
            class_names=class_names,
            progress=progress,
            runs=runs,
            more_images=check_images,
            more_ids=check_ids,
        )
    return make_report(
        model,
        x,
        names=class_names,
        sample_names=names,
        indices=indices,
        labels=known,
        label_names=label_names,
        notes=notes,
        patch=patch,
        stride=stride,
        fill=fill,
        output=output,
        model_info=model_info or model_info_without_card(model, model_name or type(model).__name__),
        twin=twin,
        twin_missing=TWIN_MISSING if twin_missing is None else twin_missing,
        title=title,
        timestamp=timestamp,
        question=question,
        checks=results,
        version=_version(),
        progress=progress,
        batch_size=batch_size,
        runs=runs,
        survey=survey,
    )
