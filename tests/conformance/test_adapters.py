"""The adapters run the real libraries (Captum and MONAI are test dependencies) through the contract.

What each library follows was measured, not assumed: Captum clips its last window at the border;
MONAI puts it flush, and applies a sigmoid instead of a softmax when the *image* has one channel.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch

import occsens
from occsens.conformance import Unsupported, load_impl, verify
from occsens.conformance.adapters import ADAPTERS, captum_occlusion, monai_occlusion, monai_overlap
from occsens.conformance.notebook import notebook_loop, notebook_occlusion
from occsens.conformance.oracles import LinearOracle, dyadic_images
from occsens.errors import OcclusionError

EXAMPLES = 6  # cases per property: enough for the library-level facts below, each shown on its first draws


def test_captum_holds_every_contract_property_and_clips_its_last_window() -> None:
    results = verify(captum_occlusion, examples=EXAMPLES)
    assert all(r.passed for r in results), [r.counterexample for r in results]
    assert results[-1].convention == "clipped"


def monai_colour(model, images, **kw):
    """MONAI on colour images only: the one-channel sigmoid is a separate finding (below)."""
    if images.shape[1] == 1:
        raise Unsupported("one-channel images take MONAI's sigmoid")
    return monai_occlusion(model, images, **kw)


def test_monai_on_colour_images_holds_every_contract_property_with_flush_windows() -> None:
    results = verify(monai_colour, examples=EXAMPLES)
    assert all(r.passed for r in results if r.kind == "contract"), [r.counterexample for r in results]
    assert results[-1].convention == "flush"


def test_monai_on_one_channel_images_gives_sigmoid_drops() -> None:
    (result,) = verify(monai_occlusion, examples=EXAMPLES, properties=["probability scale"])
    assert result.status == "fail"
    assert "1 channel" in result.counterexample
    assert "per-class sigmoid scores, not of softmax probabilities" in result.counterexample


@pytest.mark.parametrize("patch", range(1, 9))
def test_monai_steps_by_exactly_the_stride_asked_for(patch: int) -> None:
    from monai.inferers.utils import _get_scan_interval  # MONAI's own rule, not a copy of it

    for stride in range(1, patch + 1):
        overlap = monai_overlap(patch, stride)
        assert 0 <= overlap < 1
        assert _get_scan_interval((64,), (patch,), 1, (overlap,)) == (stride,)


def test_captum_and_monai_agree_with_occsens_where_their_windows_agree() -> None:
    model = LinearOracle(3, 8, 8, seed=4)
    images = dyadic_images(2, 3, 8, 8, seed=5)
    ours = occsens.occlude(model, images, patch=4, stride=2, fill=0.5).attribution()  # 2 divides 8 - 4
    for impl in (captum_occlusion, monai_occlusion):
        got = impl(model, images, patch=(4, 4), stride=(2, 2), fill=0.5)
        torch.testing.assert_close(torch.as_tensor(got).float(), ours, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- the notebook


def test_the_notebook_loop_matches_occsens_notebook_geometry() -> None:
    """Two independent readings of the notebook (this loop, occsens' notebook_occlude) agree per cell."""
    model = LinearOracle(3, 10, 9, seed=2)
    images = dyadic_images(1, 3, 10, 9, seed=3)
    run = notebook_loop(model, images[0].numpy(), 4)
    ref = occsens.notebook_occlude(model, images, size=4)
    cells = ref.heatmap[0].numpy()  # [3, 3]: cells at 0, 4, 8 down and across
    for r, top in enumerate(range(0, 10, 4)):
        for c, left in enumerate(range(0, 9, 4)):
            assert run.heatmap[top, left] == pytest.approx(cells[r, c], abs=1e-6)


def test_the_notebook_prints_the_last_occluded_inputs_probability() -> None:
    model = LinearOracle(1, 8, 8, seed=7)
    image = dyadic_images(1, 1, 8, 8, seed=8)[0]
    printed = io.StringIO()
    run = notebook_loop(model, image.numpy(), 4, print_to=printed)
    # the last cell is the bottom-right one, at (4, 4): its 5x square reaches from (-4, -4), i.e. all
    last = torch.full_like(image, 0.5)
    out = torch.softmax(model(last[None]), dim=1)[0]
    pred = torch.softmax(model(image[None]), dim=1)[0]
    lines = printed.getvalue().splitlines()
    assert lines[0] == f"Correct class: [{int(pred.argmax())}]"
    predicted = re.fullmatch(r"Predicted class: (\d+) \(prob: (\S+)\)", lines[1])
    assert predicted is not None and int(predicted[1]) == int(pred.argmax())
    assert float(predicted[2]) == pytest.approx(float(out.max()), abs=1e-6)  # np.amax(out), not of pred
    assert lines[2] == "Predictions:"
    counts = [int(re.fullmatch(r"Class id \d+: Count (\d+)", line)[1]) for line in lines[3:]]
    assert sum(counts) == 4  # 2 x 2 cells
    assert np.amax(run.out) == pytest.approx(float(out.max()), abs=1e-6)


def test_the_notebook_expresses_only_a_square_stepping_by_its_size() -> None:
    model = LinearOracle(1, 6, 6, seed=0)
    images = dyadic_images(1, 1, 6, 6, seed=0)
    with pytest.raises(Unsupported, match="one size"):
        notebook_occlusion(model, images, patch=(2, 2), stride=(1, 1), fill=0.5)
    with pytest.raises(Unsupported):
        notebook_occlusion(model, images, patch=(2, 3), stride=(2, 3), fill=0.5)


def test_the_notebook_fails_the_contract_and_is_recognised() -> None:
    (closed,) = verify(ADAPTERS["notebook"], examples=EXAMPLES, properties=["closed form"])
    assert closed.status == "fail"
    assert "np.amax(out) of the last occluded input" in closed.counterexample


# ----------------------------------------------------------------------------- loading


def test_load_impl_names_the_built_ins_and_user_functions(tmp_path, monkeypatch) -> None:
    assert load_impl("occsens") is ADAPTERS["occsens"]
    (tmp_path / "my_occlusion.py").write_text(
        "def attribute(model, images, *, patch, stride, fill):\n    return 0\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_impl("my_occlusion:attribute").__name__ == "attribute"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "shap",
            "implementation 'shap' is unknown; use one of captum, monai, notebook, occsens or "
            "MODULE:FUNCTION",
        ),
        ("no_such_module_here:f", "cannot import 'no_such_module_here'"),
        ("occsens.conformance.results:ATOL", "'ATOL' is not callable"),
    ],
)
def test_load_impl_refuses_what_it_cannot_run(name: str, message: str) -> None:
    with pytest.raises(OcclusionError, match=re.escape(message)):
        load_impl(name)
