"""The engine against a plain loop, against Captum, across batch sizes and engines, and the model's handling.

Spec (occsens.engine, "Outputs"): ``clean_probs`` is the softmax of the unoccluded image, ``probs`` the
softmax at every grid position. The ``target`` is each image's clean predicted class unless given.
``heatmap`` is the target's probability per position, ``drop = clean - heatmap``, ``class_map`` the most
probable class per position, ``class_counts`` how many positions each class wins. ``attribution()``
gives each pixel the mean drop over the windows that cover it (Captum's ``Occlusion`` definition).
("Model"): run in eval mode under ``torch.inference_mode()``; each module's training flag is put back
afterwards; a model handed over in training mode is reported with a warning.

Tolerances for the small conv net (oracles.TinyConvNet). Batch size and engine change only the order
in which float32 sums are formed (oneDNN picks kernels by batch shape; the incremental engine convolves
crops), which moves each logit by a few units in the last place of the sums that form it. The net keeps
its logits within about +-5 (He-scaled weights), where that is ~1e-6 at most, and a softmax moves a
probability by at most half of a logit change. The worst seen over 300 random geometries and seeds was
3.6e-7 (against a per-window loop, either engine); 1e-6 is the budget. Drops, a difference of two such values,
get 2e-6. The linear oracle's logits are exact (tests/engine/oracles.py), so with it the results must be
identical, not close.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from torch import nn

import occsens

from .oracles import Brightness, LinearOracle, ModeProbe, TinyConvNet, Wrapped, dyadic_images
from .reference import reference_loop, spread_to_pixels
from .strategies import Case, cases, make_case

PROB_TOL = 1e-6  # module docstring: float32 summation order
DROP_TOL = 2e-6

# Fills a test can write down as images [N, C, H, W] (the others are checked in test_occluded_input.py).
REFERENCE_FILLS = ("number", "channels", "image", "images", "mean", "callable")


def fill_for_reference(case: Case) -> torch.Tensor:
    if case.fill_kind == "mean":  # each image's own per-channel mean
        return case.images.mean(dim=(2, 3), keepdim=True).expand_as(case.images).clone()
    return case.expected_fill


def conv_net(case: Case, wrapped: bool = False) -> nn.Module:
    net = TinyConvNet(case.images.shape[1], classes=4, seed=case.seed)
    return Wrapped(net) if wrapped else net


# ----------------------------------------------------------------------------- against a plain loop


@example(case=make_case((8, 8), (8, 8), fill_kind="number"), reveal=False, wrapped=False).via("patch = image")
@example(case=make_case((5, 6), (1, 1), fill_kind="channels", n=2), reveal=True, wrapped=True).via(
    "1x1 patch"
)
@example(case=make_case((12, 8), (4, 4), fill_kind="mean", n=2), reveal=False, wrapped=False).via(
    "stride = patch"
)
@example(case=make_case((11, 13), (4, 5), (3, 2), fill_kind="images"), reveal=False, wrapped=True).via(
    "flush windows"
)
@given(
    case=cases(fill_kinds=REFERENCE_FILLS, dyadic=False, max_windows=144),
    reveal=st.booleans(),
    wrapped=st.booleans(),
)
@settings(deadline=None)
def test_conv_net_results_equal_a_plain_per_position_loop(case: Case, reveal: bool, wrapped: bool) -> None:
    """A python loop over the documented windows, one sliced image and one model call each, gives the same
    clean_probs, probs, target, heatmap, drop, class_map, class_counts and attribution.

    ``wrapped`` hides the net from the incremental engine, so both engines are held to the same loop.
    """
    model = conv_net(case, wrapped)
    res = occsens.occlude(
        model, case.images, patch=case.patch, stride=case.stride, fill=case.fill, reveal=reveal
    )
    ref = reference_loop(model, case.images, case.windows, fill_for_reference(case), reveal=reveal)
    torch.testing.assert_close(res.clean_probs, ref.clean_probs, rtol=0, atol=PROB_TOL)
    torch.testing.assert_close(res.probs, ref.probs, rtol=0, atol=PROB_TOL)
    torch.testing.assert_close(res.heatmap, ref.heatmap, rtol=0, atol=PROB_TOL)
    torch.testing.assert_close(res.drop, ref.drop, rtol=0, atol=DROP_TOL)
    # A mean of drops each within DROP_TOL is within DROP_TOL.
    torch.testing.assert_close(res.attribution().double(), ref.attribution, rtol=0, atol=DROP_TOL)
    # Classes compare exactly wherever the top two probabilities are further apart than the tolerance.
    top2 = ref.probs.topk(2, dim=3).values
    clear = (top2[..., 0] - top2[..., 1]) > 2 * PROB_TOL
    assert torch.equal(res.class_map[clear], ref.class_map[clear])
    if clear.all():
        assert torch.equal(res.class_counts, ref.class_counts)
    clean_top2 = ref.clean_probs.topk(2, dim=1).values
    if ((clean_top2[:, 0] - clean_top2[:, 1]) > 2 * PROB_TOL).all():
        assert torch.equal(res.target, ref.target)


@example(case=make_case((6, 6), (6, 6), fill_kind="number"), reveal=True)
@example(case=make_case((4, 5), (1, 1), fill_kind="callable", n=2), reveal=False)
@given(case=cases(fill_kinds=REFERENCE_FILLS, max_windows=144), reveal=st.booleans())
@settings(deadline=None)
def test_linear_oracle_results_are_identical_to_the_plain_loop(case: Case, reveal: bool) -> None:
    """With exact logits nothing is left to rounding order: every view equals the loop's bit for bit."""
    n, c, h, w = case.images.shape
    model = LinearOracle(c, h, w, classes=3, seed=case.seed)
    res = occsens.occlude(
        model, case.images, patch=case.patch, stride=case.stride, fill=case.fill, reveal=reveal
    )
    ref = reference_loop(model, case.images, case.windows, fill_for_reference(case), reveal=reveal)
    if case.fill_kind == "mean":  # the mean is not dyadic, so the logits are not exact
        torch.testing.assert_close(res.probs, ref.probs, rtol=0, atol=PROB_TOL)
        return
    assert torch.equal(res.clean_probs, ref.clean_probs)
    assert torch.equal(res.probs, ref.probs)
    assert torch.equal(res.target, ref.target)
    assert torch.equal(res.heatmap, ref.heatmap)
    assert torch.equal(res.drop, ref.drop)
    assert torch.equal(res.class_map, ref.class_map)
    assert torch.equal(res.class_counts, ref.class_counts)
    # attribution() is returned in float32: one rounding of the float64 mean, <= 2**-24 relative.
    torch.testing.assert_close(res.attribution().double(), ref.attribution, rtol=2**-23, atol=1e-12)


@example(case=make_case((7, 9), (2, 3), (1, 2), fill_kind="number", n=2))
@given(case=cases(max_windows=400))
@settings(deadline=None)
def test_attribution_is_each_pixels_mean_drop_over_the_windows_covering_it(case: Case) -> None:
    """attribution()[n, y, x] = mean of drop[n, r, c] over the windows containing (y, x).

    The reference sums window by window in float64; the float32 result is within one rounding of it.
    """
    n, c, h, w = case.images.shape
    res = occsens.occlude(
        LinearOracle(c, h, w, classes=3, seed=case.seed),
        case.images,
        patch=case.patch,
        stride=case.stride,
        fill=case.fill,
    )
    expected = spread_to_pixels(res.drop, case.windows, (h, w))
    assert res.attribution().shape == (n, h, w)
    torch.testing.assert_close(res.attribution().double(), expected, rtol=2**-23, atol=1e-12)


# ----------------------------------------------------------------------------- batch size and engine


@example(case=make_case((8, 8), (8, 8)))
@example(case=make_case((5, 4), (1, 1), n=2))
@given(case=cases(max_windows=144))
@settings(deadline=None)
def test_probs_do_not_depend_on_the_batch_size(case: Case) -> None:
    """batch_size 1, 7, the default and more than the number of positions: the same probabilities; for the
    linear oracle identical, for the conv net (through either engine) within float32 rounding order."""
    n, c, h, w = case.images.shape
    models = {
        "linear": LinearOracle(c, h, w, classes=3, seed=case.seed),
        "conv": conv_net(case),
        "conv-brute": conv_net(case, wrapped=True),
    }
    for name, model in models.items():
        runs = [
            occsens.occlude(
                model, case.images, patch=case.patch, stride=case.stride, fill=case.fill, batch_size=size
            )
            for size in (1, 7, None, 10**6)
        ]
        for res in runs[1:]:
            if name == "linear" and case.fill_kind not in (
                "mean",
                "blur",
                "noise",
            ):  # dyadic fills: exact logits
                assert torch.equal(res.probs, runs[0].probs)
                assert torch.equal(res.clean_probs, runs[0].clean_probs)
            else:
                torch.testing.assert_close(res.probs, runs[0].probs, rtol=0, atol=PROB_TOL)
                torch.testing.assert_close(res.clean_probs, runs[0].clean_probs, rtol=0, atol=PROB_TOL)


def test_both_engines_agree_on_a_net_the_incremental_engine_can_walk() -> None:
    """engine="brute" and engine="incremental" agree (occsens.engine.incremental's claim)."""
    case = make_case((20, 17), (5, 4), (2, 3), fill_kind="mean", n=2, seed=11, dyadic=False)
    model = conv_net(case)
    brute = occsens.occlude(model, case.images, patch=(5, 4), stride=(2, 3), fill="mean", engine="brute")
    incremental = occsens.occlude(
        model, case.images, patch=(5, 4), stride=(2, 3), fill="mean", engine="incremental"
    )
    torch.testing.assert_close(incremental.probs, brute.probs, rtol=0, atol=PROB_TOL)
    assert torch.equal(incremental.clean_probs, brute.clean_probs)


# ----------------------------------------------------------------------------- Captum


captum_attr = pytest.importorskip("captum.attr", reason="captum is a test dependency (pip install captum)")


@example(case=make_case((8, 8), (8, 8), fill_kind="number")).via("patch = image")
@example(case=make_case((5, 4), (1, 1), fill_kind="channels", n=2)).via("1x1 patch")
@example(case=make_case((12, 12), (4, 4), fill_kind="image")).via("stride = patch")
@example(case=make_case((10, 13), (4, 5), (3, 4), fill_kind="images", n=2)).via("overlapping windows")
@given(
    case=cases(
        fill_kinds=("number", "channels", "image", "images", "mean"),
        dividing=True,
        max_side=24,
        max_windows=144,
        dyadic=False,
    )
)
@settings(deadline=None)
def test_attribution_equals_captums_occlusion_where_both_define_the_same_windows(case: Case) -> None:
    """attribution() equals Captum's Occlusion wherever the two define the same windows.

    That is where the stride steps exactly from border to border ((H - ph) % sh == 0, same across): then
    Captum's windows are ours, and its attribution of the target's softmax equals ours in every channel.

    1e-5: both spread float32 drops that agree to 1e-6 (two runs of the same model), and Captum accumulates up
    to 144 of them in float32 (~144 * 2**-24 ~ 1e-5 worst case before dividing by the count).
    """
    model = conv_net(case)
    n, c, h, w = case.images.shape
    res = occsens.occlude(model, case.images, patch=case.patch, stride=case.stride, fill=case.fill)
    baselines = fill_for_reference(case)

    def probabilities(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(model(x), dim=1)

    with torch.no_grad():
        theirs = captum_attr.Occlusion(probabilities).attribute(
            case.images,
            sliding_window_shapes=(c, *case.patch),
            strides=(c, *case.stride),
            baselines=baselines,
            target=res.target,
            perturbations_per_eval=64,
        )
    ours = res.attribution()
    for channel in range(c):
        torch.testing.assert_close(theirs[:, channel], ours, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------- clean probabilities and targets


@example(case=make_case((8, 8), (4, 4), fill_kind="number", fill_value=0)).via(
    "regression: the notebook reported the last occluded prediction as the clean one"
)
@given(case=cases(fill_kinds=("number", "image", "images", "callable"), max_windows=144))
@settings(deadline=None)
def test_clean_probs_are_the_softmax_of_the_unoccluded_images(case: Case) -> None:
    """clean_probs = softmax(model(images)), computed here directly (exact logits: identical)."""
    n, c, h, w = case.images.shape
    model = LinearOracle(c, h, w, classes=3, seed=case.seed)
    res = occsens.occlude(model, case.images, patch=case.patch, stride=case.stride, fill=case.fill)
    with torch.no_grad():
        assert torch.equal(res.clean_probs, torch.softmax(model(case.images), dim=1))
    assert torch.allclose(res.clean_probs.sum(dim=1), torch.ones(n))


def test_clean_probs_are_not_the_last_occluded_prediction() -> None:
    """Regression for the notebook's bug 1 (it printed np.amax(out) of the last occluded input). On a bright
    image,
    a grey window lowers the brightness model's confidence, so the two must differ."""
    images = torch.ones(2, 3, 8, 8)
    res = occsens.occlude(Brightness(), images, patch=4)
    last = res.probs[:, -1, -1]
    assert not torch.allclose(res.clean_probs, last, atol=1e-3)
    # z = 8 * (mean - 1/2): clean mean 1 -> z = 4; one 4x4 grey window of 64 pixels -> mean 7/8, z = 3.
    expected_clean = torch.softmax(torch.tensor([[4.0, -4.0]]), dim=1).expand(2, 2)
    expected_last = torch.softmax(torch.tensor([[3.0, -3.0]]), dim=1).expand(2, 2)
    torch.testing.assert_close(res.clean_probs, expected_clean, rtol=0, atol=PROB_TOL)
    torch.testing.assert_close(last, expected_last, rtol=0, atol=PROB_TOL)


def test_default_target_is_each_images_own_clean_prediction() -> None:
    """Regression for the notebook's bug 2 (it read the class from a different sample). A bright image (class
    0)
    and a dark one (class 1) in one batch: each heatmap shows its own image's class."""
    images = torch.stack([torch.full((3, 8, 8), 0.9), torch.full((3, 8, 8), 0.1)])
    res = occsens.occlude(Brightness(), images, patch=4)
    assert res.target.tolist() == [0, 1]
    assert torch.equal(res.heatmap[0], res.probs[0, ..., 0])
    assert torch.equal(res.heatmap[1], res.probs[1, ..., 1])
    # A grey window pulls both towards 1/2 brightness: both lose confidence in their own class.
    assert (res.drop > 0).all()


@given(case=cases(max_images=4, max_windows=64))
@settings(deadline=None)
def test_default_target_is_the_clean_argmax_per_image(case: Case) -> None:
    n, c, h, w = case.images.shape
    model = LinearOracle(c, h, w, classes=4, seed=case.seed)
    res = occsens.occlude(model, case.images, patch=case.patch, stride=case.stride, fill=case.fill)
    with torch.no_grad():
        assert torch.equal(res.target, model(case.images).argmax(dim=1))
    assert torch.equal(
        res.heatmap, res.probs.gather(3, res.target.view(n, 1, 1, 1).expand(*res.probs.shape[:3], 1))[..., 0]
    )


@given(case=cases(max_images=3, max_windows=64), data=st.data())
@settings(deadline=None)
def test_a_given_target_is_honoured_as_an_int_or_one_per_image(case: Case, data: st.DataObject) -> None:
    """heatmap = probs[..., t_n] and drop = clean_probs[n, t_n] - probs[n, ..., t_n] for the target given."""
    n, c, h, w = case.images.shape
    k = 4
    model = LinearOracle(c, h, w, classes=k, seed=case.seed)
    if data.draw(st.booleans(), label="one int for all"):
        target = data.draw(st.integers(0, k - 1), label="target")
        per_image = [target] * n
    else:
        target = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n), label="targets")
        per_image = target
    res = occsens.occlude(
        model, case.images, patch=case.patch, stride=case.stride, fill=case.fill, target=target
    )
    assert res.target.tolist() == per_image
    for i, t in enumerate(per_image):
        assert torch.equal(res.heatmap[i], res.probs[i, ..., t])
        assert torch.equal(res.drop[i], res.clean_probs[i, t] - res.probs[i, ..., t])
    # The class views do not depend on the target.
    assert torch.equal(res.class_map, res.probs.argmax(dim=3))


def test_class_map_and_counts_are_the_winning_class_per_position() -> None:
    """A hand-checkable case: the brightness model on a half-bright image; windows over the bright half
    make it dark (class 1), windows over the dark half keep it bright (class 0)."""
    image = torch.zeros(1, 1, 4, 8)
    image[..., :, :4] = 1.0  # left half white, right half black: mean 1/2
    # fill 0: hiding a 4x4 white block leaves mean 1/4 (dark, class 1); hiding black changes nothing: mean
    # 1/2,
    # a tie that argmax breaks to class 0.
    res = occsens.occlude(Brightness(), image, patch=4, fill=0.0)
    assert res.class_map.tolist() == [[[1, 0]]]
    assert res.class_counts.tolist() == [[1, 1]]


# ----------------------------------------------------------------------------- the model's mode


@pytest.mark.parametrize("wrapped", [False, True], ids=["incremental-walkable", "brute"])
def test_a_model_in_training_mode_gives_the_eval_map_warns_and_is_left_training(wrapped: bool) -> None:
    case = make_case((12, 12), (4, 4), (2, 2), n=2, seed=3, dyadic=False)
    evaluated = conv_net(case, wrapped).eval()
    training = conv_net(case, wrapped).train()
    bn = [m for m in training.modules() if isinstance(m, nn.BatchNorm2d)][0]
    stats = (bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked))
    with pytest.warns(UserWarning, match="training mode"):
        res_train = occsens.occlude(training, case.images, patch=4, stride=2)
    res_eval = occsens.occlude(evaluated, case.images, patch=4, stride=2)
    # Same weights, same (eval) arithmetic: identical, so dropout was off and batch norm used running
    # statistics.
    assert torch.equal(res_train.probs, res_eval.probs)
    assert torch.equal(res_train.clean_probs, res_eval.clean_probs)
    assert all(m.training for m in training.modules())
    # Batch norm's running statistics were not updated by the occluded batches.
    assert torch.equal(bn.running_mean, stats[0]) and torch.equal(bn.running_var, stats[1])
    assert int(bn.num_batches_tracked) == stats[2]


def test_mixed_training_flags_are_restored_module_by_module() -> None:
    model = TinyConvNet(3, 4, seed=1).train()
    model[1].eval()  # batch norm frozen, dropout still training: a common fine-tuning setup
    flags = [m.training for m in model.modules()]
    with pytest.warns(UserWarning, match="training mode"):
        occsens.occlude(model, dyadic_images(1, 3, 8, 8, seed=0), patch=4)
    assert [m.training for m in model.modules()] == flags


def test_a_model_in_eval_mode_is_not_warned_about() -> None:
    model = Wrapped(TinyConvNet(3, 4, seed=1)).eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        occsens.occlude(model, dyadic_images(1, 3, 8, 8, seed=0), patch=4)
    assert not [w for w in caught if "training mode" in str(w.message)]
    assert not model.training


def test_the_model_runs_in_eval_mode_under_inference_mode() -> None:
    """At every call: eval mode, inference mode on, autograd off; the training flag is back afterwards."""
    probe = ModeProbe(LinearOracle(1, 6, 6)).train()
    with pytest.warns(UserWarning, match="training mode"):
        occsens.occlude(probe, dyadic_images(1, 1, 6, 6, seed=0), patch=3, reveal=True)
    assert probe.seen and set(probe.seen) == {(False, True, False)}
    assert probe.training


# ----------------------------------------------------------------------------- inputs and numpy models


def numpy_linear(model: LinearOracle, outputs: str, layout: str):
    """The linear oracle as a numpy function (a stand-in for a Keras or ONNX model)."""
    weight = model.weight.numpy()  # [K, C, H, W]
    if layout == "NHWC":
        weight = weight.transpose(0, 2, 3, 1)
    flat, bias, scale = weight.reshape(len(weight), -1), model.bias.numpy(), np.float32(model.scale)

    def fn(x: np.ndarray) -> np.ndarray:
        assert isinstance(x, np.ndarray) and x.dtype == np.float32
        logits = (x.reshape(len(x), -1) @ flat.T) * scale + bias
        if outputs == "logits":
            return logits
        z = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
        return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)

    return fn


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("outputs", ["logits", "probs"])
def test_as_model_numpy_function_gives_the_torch_models_result(outputs: str, layout: str) -> None:
    """Logits: identical (exact dyadic logits either way). Probabilities: the wrapper's log-then-softmax round
    trip adds a few float32 roundings (~4 * 2**-24 relative), within 1e-6."""
    images = dyadic_images(2, 3, 9, 7, seed=2)
    torch_model = LinearOracle(3, 9, 7, classes=3, seed=5)
    expected = occsens.occlude(torch_model, images, patch=(3, 2), stride=(2, 1), fill=(0.25, 0.5, 0.75))
    numpy_model = occsens.as_model(numpy_linear(torch_model, outputs, layout), outputs=outputs, layout=layout)
    got = occsens.occlude(numpy_model, images, patch=(3, 2), stride=(2, 1), fill=(0.25, 0.5, 0.75))
    if outputs == "logits":
        assert torch.equal(got.probs, expected.probs) and torch.equal(got.clean_probs, expected.clean_probs)
    else:
        torch.testing.assert_close(got.probs, expected.probs, rtol=0, atol=PROB_TOL)
        torch.testing.assert_close(got.clean_probs, expected.clean_probs, rtol=0, atol=PROB_TOL)
    assert torch.equal(got.target, expected.target)


@pytest.mark.parametrize("as_numpy", [False, True], ids=["torch", "numpy"])
def test_uint8_images_equal_float_images_divided_by_255(as_numpy: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (2, 3, 10, 9), generator=gen, dtype=torch.uint8)
    model = TinyConvNet(3, 4, seed=2)
    scaled = occsens.occlude(model, raw.float() / 255, patch=3, stride=2)
    from_uint8 = occsens.occlude(model, raw.numpy() if as_numpy else raw, patch=3, stride=2)
    assert torch.equal(from_uint8.images, raw.float() / 255)
    assert torch.equal(from_uint8.probs, scaled.probs)
    assert torch.equal(from_uint8.clean_probs, scaled.clean_probs)


def test_numpy_float_images_and_a_single_chw_image_are_accepted_as_the_same_batch() -> None:
    images = dyadic_images(1, 3, 6, 6, seed=1)
    model = LinearOracle(3, 6, 6, classes=3)
    batch = occsens.occlude(model, images, patch=2)
    for same in (images[0], images.numpy(), images[0].numpy(), images.double()):
        res = occsens.occlude(model, same, patch=2)
        assert torch.equal(res.images, images) and torch.equal(res.probs, batch.probs)


def test_a_plain_function_model_and_an_explicit_cpu_device_give_the_modules_result() -> None:
    images = dyadic_images(2, 3, 6, 6, seed=1)
    model = LinearOracle(3, 6, 6, classes=3)
    expected = occsens.occlude(model, images, patch=2)
    assert torch.equal(occsens.occlude(lambda x: model(x), images, patch=2).probs, expected.probs)
    assert torch.equal(occsens.occlude(model, images, patch=2, device="cpu").probs, expected.probs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_results_equal_cpu_results() -> None:
    """The same conv net on the GPU: cuDNN sums in another order; within 1e-5 of the CPU."""
    case = make_case((16, 16), (4, 4), (2, 2), fill_kind="blur", n=2, seed=4, dyadic=False)
    cpu = occsens.occlude(conv_net(case), case.images, patch=4, stride=2, fill="blur")
    gpu = occsens.occlude(conv_net(case).cuda(), case.images, patch=4, stride=2, fill="blur")
    torch.testing.assert_close(gpu.probs, cpu.probs, rtol=0, atol=1e-5)
    torch.testing.assert_close(gpu.attribution(), cpu.attribution(), rtol=0, atol=1e-5)


def test_occlusion_runs_without_tf32_and_restores_the_callers_settings() -> None:
    """TF32 convolutions moved the shipped model's probabilities by up to 2e-3 on an H200 (device check)."""
    seen = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32))
            return x.mean(dim=(2, 3))[:, :2]

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        occsens.occlude(Spy().eval(), torch.rand(1, 3, 4, 4), patch=2)
        assert seen and all(flags == (False, False) for flags in seen)
        assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == (True, True)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_a_model_without_convolution_or_linear_layers_is_occluded_exactly() -> None:
    """Regression (issue 17's fuzz test): the walk divided by the model's FLOPs, which are 0 here, and
    ``engine="auto"`` raised ZeroDivisionError. Each class's logit is its channel's mean, so occluding
    the 2x2 top-left window of a 6x6 image with 0.5 moves each mean by (0.5 - the window's mean) * 4 / 36."""
    model = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()
    images = torch.rand(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    means = images.mean(dim=(2, 3))
    window = images[:, :, :2, :2].mean(dim=(2, 3))
    expected = torch.softmax(means + (0.5 - window) * 4 / 36, dim=1)
    for engine in ("auto", "brute", "incremental"):
        res = occsens.occlude(model, images, patch=2, engine=engine)
        torch.testing.assert_close(res.probs[:, 0, 0], expected, rtol=0, atol=1e-6)  # float32 means: ~1e-7
    assert occsens.occlude(model, images, patch=2).engine == "brute"  # no FLOPs for it to save
