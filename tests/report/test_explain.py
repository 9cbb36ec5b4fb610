"""``occsens.explain``: the report from Python, with the sanity checks on the same images and settings,
and every bad argument refused by name before the long runs."""

from __future__ import annotations

import pytest
import torch

import occsens
from occsens import OcclusionError, report
from occsens.report.explain import TWIN_MISSING

from .conftest import TinyNet


class Counting(torch.nn.Module):
    """``TinyNet``, counting its forward passes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyNet()
        self.calls = 0
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def test_explain_is_the_public_face_of_the_reports_explain() -> None:
    from occsens.report.explain import explain

    assert occsens.explain is explain and "explain" in occsens.__all__


def test_without_class_names_the_report_numbers_the_classes(images: torch.Tensor) -> None:
    model = TinyNet()
    made = occsens.explain(model, images, patch=8, checks=False)
    assert isinstance(made, report.Report)
    assert made.numbers["classes"] == [f"class {k}" for k in range(10)]
    clean = model(images).argmax(dim=1).tolist()
    assert [s["clean_class"] for s in made.numbers["samples"]] == [f"class {k}" for k in clean]
    assert [s["name"] for s in made.numbers["samples"]] == ["image 0", "image 1"]
    assert "checks" not in made.numbers
    assert TWIN_MISSING in made.html.replace("&#39;", "'")


def test_class_names_labels_and_sample_names_reach_the_report(images: torch.Tensor) -> None:
    names = [f"animal {k}" for k in range(10)]
    made = occsens.explain(
        TinyNet(), images, patch=8, checks=False, class_names=names, labels=[3, None], sample_names=["a", "b"]
    )
    assert made.numbers["classes"] == names
    assert [s["true"] for s in made.numbers["samples"]] == ["animal 3", None]
    assert [s["name"] for s in made.numbers["samples"]] == ["a", "b"]


def test_the_checks_run_on_the_reports_images_and_settings(images: torch.Tensor) -> None:
    model = TinyNet()
    made = occsens.explain(model, images, patch=8, stride=4, fill="mean")
    alone = occsens.run_checks(model, images, patch=8, stride=4, fill="mean")
    assert made.numbers["check_verdicts"] == [r.verdict for r in alone]
    assert [c["value"] for c in made.numbers["checks"]] == [r.to_dict()["value"] for r in alone]


def test_one_image_and_channels_last_images_are_taken_as_occlude_takes_them(images: torch.Tensor) -> None:
    one = occsens.explain(TinyNet(), images[0], patch=8, checks=False)
    last = occsens.explain(TinyNet(), images.permute(0, 2, 3, 1), patch=8, checks=False, layout="NHWC")
    both = occsens.explain(TinyNet(), images, patch=8, checks=False)
    assert len(one.numbers["samples"]) == 1
    assert last.numbers["samples"] == both.numbers["samples"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"class_names": ["a", "b"]}, "class_names has 2 names for a model with 10 classes"),
        ({"class_names": "abc"}, "class_names must be a sequence"),
        ({"class_names": ["cat", "dog", *"abcdefg", "cat"]}, "class_names names 'cat' more than once"),
        ({"labels": [1]}, "labels has 1 entries for 2 images"),
        ({"labels": [1, 10]}, r"labels must hold class indices in 0\.\.9 \(or None\), got 10"),
        ({"labels": [True, 1]}, "labels must hold class indices"),
        ({"labels": 3}, "labels must be a sequence"),
        ({"sample_names": ["a"]}, "sample_names must hold 2 strings"),
        ({"checks": "yes"}, "checks must be True or False"),
        ({"progress": 1}, "progress must be True or False"),
        ({"title": None}, "title must be a string"),
        ({"model_name": 3}, "model_name must be a string"),
        ({"patch": 40}, r"patch \(40, 40\) is larger than the image"),
        ({"fill": "grey"}, "fill 'grey' is unknown"),
        ({"output": "logits"}, "output 'logits' is unknown"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
    ],
)
def test_a_bad_argument_is_refused_by_name_before_the_long_runs(
    images: torch.Tensor, bad: dict, message: str
) -> None:
    model = Counting()
    with pytest.raises(OcclusionError, match=message):
        occsens.explain(model, images, **{"patch": 8, **bad})
    # the probe (the clean image, one window the size of the image) at most: the occlusion runs, 16
    # windows per image at patch 8, never started
    assert model.calls < 16
