"""Your model, your images: every command and the API work for any classifier a user brings.

The models are the kinds users bring, written here as a user would: two classes, one logit read
through a sigmoid (binary), several independent sigmoids (multi-label), 1000 classes at 64x64, a
model that already returns probabilities, and a segmentation model scored by a function of its
output. Each goes through the API (``occsens.occlude``, ``occsens.run_checks``) and the command line
(``occsens explain`` on a file, ``occsens check --images`` and ``occsens report --images`` on a
folder with a labels CSV). What is asserted is what a user relies on: the right number of classes
and names, scores that mean what ``--output`` says, and reports that leave out what does not apply.
"""

from __future__ import annotations

import html
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import occsens
from occsens import cli
from occsens.checks import conditions as cond

MODELS = '''
import torch
from torch import nn


def _trunk(classes):
    torch.manual_seed(classes)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, classes)
    )


def two():
    return _trunk(2)


def binary():
    return _trunk(1)


def multilabel():
    return _trunk(4)


def thousand():
    return _trunk(1000)


def probabilities():
    return nn.Sequential(_trunk(5), nn.Softmax(dim=1))


def segmenter():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 1))


def centre_mean(out):
    """A segmentation model's score per class: its mean logit over the image's centre."""
    h, w = out.shape[2:]
    return out[:, :, h // 4 : 3 * h // 4, w // 4 : 3 * w // 4].mean(dim=(2, 3))
'''


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding the user's module ``mymodels`` and a folder ``photos`` of three images."""
    (tmp_path / "mymodels.py").write_text(MODELS)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.jpg", "c.png"):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(photos / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("mymodels", None)
    return tmp_path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = cli.main(args)
    except SystemExit as exc:  # an argument error: the parser exits, as argparse does
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _load(name: str) -> torch.nn.Module:
    import mymodels  # the fixture's module, as a user's own code

    return getattr(mymodels, name)().eval()


IMAGES = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


# --- the API ---------------------------------------------------------------------------------------------


def test_a_two_class_model_maps_its_two_softmax_probabilities(user: Path) -> None:
    model = _load("two")
    res = occsens.occlude(model, IMAGES, patch=8)
    with torch.inference_mode():
        expected = torch.softmax(model(IMAGES), dim=1)
    torch.testing.assert_close(res.clean_probs, expected, rtol=0, atol=1e-6)  # float32 rounding
    assert res.num_classes == 2 and res.class_counts.sum(dim=1).tolist() == [16, 16]  # 4x4 windows each


def test_a_binary_model_with_one_logit_is_a_two_class_model_under_sigmoid(user: Path) -> None:
    model = _load("binary")
    res = occsens.occlude(model, IMAGES, patch=8, output="sigmoid")
    with torch.inference_mode():
        positive = torch.sigmoid(model(IMAGES))[:, 0]
    torch.testing.assert_close(res.clean_probs[:, 1], positive, rtol=0, atol=1e-6)
    assert res.clean_class.tolist() == (positive > 0.5).long().tolist()


def test_a_multi_label_model_scores_each_class_on_its_own(user: Path) -> None:
    model = _load("multilabel")
    res = occsens.occlude(model, IMAGES, patch=8, output="sigmoid")
    with torch.inference_mode():
        expected = torch.sigmoid(model(IMAGES))
    torch.testing.assert_close(res.clean_probs, expected, rtol=0, atol=1e-6)
    assert res.output == "sigmoid"


def test_a_thousand_class_model_at_64x64(user: Path) -> None:
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    res = occsens.occlude(_load("thousand"), images, patch=16)
    assert res.probs.shape == (1, 4, 4, 1000) and res.heatmap.shape == (1, 4, 4)


def test_a_model_returning_probabilities_is_used_as_is_and_the_default_warns(user: Path) -> None:
    model = _load("probabilities")
    with pytest.warns(UserWarning, match="look like probabilities.*output='probs'"):
        squashed = occsens.occlude(model, IMAGES, patch=8)
    res = occsens.occlude(model, IMAGES, patch=8, output="probs")
    with torch.inference_mode():
        expected = model(IMAGES)
    torch.testing.assert_close(res.clean_probs, expected, rtol=0, atol=1e-6)
    # softmax of probabilities flattens them towards 1/K: the warning is about a real distortion
    assert float(squashed.clean_probs.max()) < float(res.clean_probs.max())


def test_a_segmentation_model_is_mapped_through_a_scoring_function(user: Path) -> None:
    import mymodels

    model = _load("segmenter")
    res = occsens.occlude(model, IMAGES, patch=4, output=mymodels.centre_mean)
    with torch.inference_mode():
        expected = mymodels.centre_mean(model(IMAGES))
    torch.testing.assert_close(res.clean_probs, expected, rtol=0, atol=1e-6)
    assert res.output == "centre_mean"
    # The score reads output rows and columns 8..23; a 3x3 convolution carries a window 1 pixel further.
    # So the corner window (rows and columns 0..3) cannot move it, and a window at the centre must.
    assert float(res.drop[:, 0, 0].abs().max()) == 0.0
    assert float(res.drop[:, 3:5, 3:5].abs().max()) > 1e-4  # far above float32 rounding (~1e-7)


def test_the_checks_run_on_any_output(user: Path) -> None:
    results = occsens.run_checks(
        _load("binary"), IMAGES, patch=8, output="sigmoid", checks=["patch", "determinism"]
    )
    ran = [r for r in results if r.condition is not cond.CHECK_RAN]
    assert len(ran) == len(results) == 3, [r.explanation for r in results]  # 2 patch halves + determinism


# --- the command line ------------------------------------------------------------------------------------


def test_explain_a_binary_model_with_one_class_name(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["explain", "photos/a.png", "--model-path", "mymodels:binary", "--output", "sigmoid"]
    code, out, err = run([*args, "--classes", "ship", "--patch", "8", "--out", "rep", "--quiet"], capsys)
    assert code == 0, err
    page = Path("rep/index.html").read_text()
    assert "not ship" in page and "ship" in page
    assert "sigmoid probabilities of the model" in page  # the report says which scores it maps
    assert "left out" in page and "colour-vs-greyscale" in page  # shipped-model comparison left out


def test_explain_a_thousand_class_model_names_classes_and_groups_colours(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Image.fromarray(np.full((64, 64, 3), 90, dtype=np.uint8)).save("big.png")
    names = Path("names.txt")
    names.write_text("\n".join(f"label{k}" for k in range(1000)) + "\n")
    args = ["explain", "big.png", "--model-path", "mymodels:thousand", "--classes-file", str(names)]
    code, _, err = run([*args, "--patch", "16", "--no-checks", "--out", "rep", "--quiet"], capsys)
    assert code == 0, err
    page = Path("rep/index.html").read_text()
    assert "label" in page and "other (" in page  # 10 own colours at most, the rest grouped
    assert "classes take over no window" in page  # not 1000 table rows, most of them zeros
    wrong = names.read_text().splitlines()[:999]
    names.write_text("\n".join(wrong) + "\n")
    code, _, err = run([*args, "--patch", "16", "--out", "rep2", "--quiet"], capsys)
    assert code == 2 and "gives 999 class names but the model scores 1000 classes" in err
    assert not Path("rep2").exists()


def test_explain_a_segmentation_model_through_a_scoring_function(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "explain",
        "photos/a.png",
        "--model-path",
        "mymodels:segmenter",
        "--output",
        "mymodels:centre_mean",
    ]
    code, _, err = run([*args, "--patch", "8", "--no-checks", "--out", "rep", "--quiet"], capsys)
    assert code == 0, err
    page = html.unescape(Path("rep/index.html").read_text())
    assert "scores computed from the model's output by centre_mean()" in page


def test_a_probability_model_is_refused_softmax_twice_only_by_a_warning(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["occlude", "photos/a.png", "--model-path", "mymodels:probabilities", "--patch", "8", "--json"]
    code, out, err = run([*args, "--quiet"], capsys)
    assert code == 0 and err.count("look like probabilities") == 1 and "--output probs" in err
    code, out, err = run([*args, "--output", "probs", "--quiet"], capsys)
    assert code == 0 and "look like probabilities" not in err
    assert json.loads(out)["clean_class_name"] == "class " + str(json.loads(out)["clean_class"])


def test_check_and_report_on_a_folder_of_your_images_with_labels(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("labels.csv").write_text("file,label\na.png,cat\nb.jpg,dog\nc.png,0\n")
    model = ["--model-path", "mymodels:two", "--classes", "cat,dog", "--patch", "8"]
    folder = ["--images", "photos", "--labels", "labels.csv"]
    code, out, err = run(
        ["check", *model, *folder, "--checks", "patch,determinism", "--json", "c.json"], capsys
    )
    assert code in (0, 1), err  # 1: a check failed on this untrained model, which is a verdict, not an error
    assert "images in photos (a.png, b.jpg, c.png)" in out
    results = json.loads(Path("c.json").read_text())
    assert len(results) == 3 and "crashed" not in json.dumps(results)  # 2 patch halves + determinism
    code, out, err = run(["report", *model, *folder, "--out", "rep", "--quiet"], capsys)
    assert code == 0, err
    page = Path("rep/index.html").read_text()
    assert all(name in page for name in ("a.png", "b.jpg", "c.png"))
    assert "<td>dog</td>" in page  # b.jpg's label from the CSV


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--labels", "labels.csv"], "--labels needs --images"),
        (["--images", "photos", "--samples", "1"], "give either --images"),
        (["--images", "nowhere"], "nowhere"),
        (["--images", "photos", "--labels", "bad.csv"], "'horse' is not a class"),
        (["--images", "photos", "--classes", "cat"], "gives 1 class names but the model scores 2 classes"),
        (["--images", "photos", "--output", "mymodels:nothing"], "has no 'nothing'"),
        (["--images", "photos", "--output", "tanh"], "--output 'tanh' is unknown"),
    ],
)
def test_bad_image_and_class_arguments_are_one_line_errors(
    user: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    Path("labels.csv").write_text("a.png,cat\n")
    Path("bad.csv").write_text("a.png,horse\n")
    for command in ("check", "report"):
        code, _, err = run(
            [command, "--model-path", "mymodels:two", "--patch", "8", *extra, "--quiet"], capsys
        )
        assert code == 2 and message in err, (command, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not Path("reports").exists()


def test_the_shipped_models_refuse_another_input_size(user: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["explain", "photos/a.png", "--input-size", "224", "224", "--quiet"], capsys)
    assert code == 2 and "the shipped models take 32x32 CIFAR-10 images" in err


def test_a_module_named_like_a_library_does_not_shadow_it(
    user: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--model-path`` imports the user's module; a ``tabnanny.py`` in the folder must not replace the
    standard library's when that module imports it (the folder is searched after installed packages)."""
    Path("tabnanny.py").write_text("raise SystemExit('the folder shadowed the standard library')\n")
    Path("usesstdlib.py").write_text("import tabnanny\nfrom mymodels import two\n")
    monkeypatch.delitem(sys.modules, "tabnanny", raising=False)
    # sys.path as a console script has it: the script's folder first, not the working folder
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(user))])
    args = ["occlude", "photos/a.png", "--model-path", "usesstdlib:two", "--patch", "8", "--quiet"]
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert Path(sys.modules["tabnanny"].__file__ or "").parent != user


def test_occlude_with_the_notebooks_geometry_names_the_square_it_greys(
    user: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25: `occlude --notebook` printed "patch 4x4" while it greyed a 20x20 square."""
    code, out, err = run(
        ["occlude", "photos/a.png", "--model-path", "mymodels:two", "--notebook", "--quiet"], capsys
    )
    assert code == 0, err
    assert "a 20x20 grey square (clipped at the borders) around each 4x4 cell, stride 4x4" in out
    assert "patch 4x4" not in out
    code, out, err = run(
        ["occlude", "photos/a.png", "--model-path", "mymodels:two", "--patch", "8", "--quiet"], capsys
    )
    assert code == 0 and "sliding geometry, patch 8x8, stride" in out, err
