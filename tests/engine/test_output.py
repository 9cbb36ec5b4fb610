"""What the maps measure: ``occlude(..., output=...)`` for models that do not return logits.

Spec (``occlude``'s ``output``): "softmax" of logits (default; a model whose outputs already look like
probabilities gets a warning naming output='probs'); "probs" used as they are (refused outside [0, 1]);
"sigmoid" per class (binary with one logit, multi-label); a callable turning any output into
``[B, K]`` scores. ``res.output`` names the choice; every view holds those scores. Tolerances: the
engines' documented 1e-5, relative once scores exceed 1 (``ENGINE_TOLERANCE``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import occsens
from occsens import ENGINE_TOLERANCE


def _logits_net(classes: int) -> nn.Module:
    torch.manual_seed(classes)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes)
    ).eval()


IMAGES = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))


def test_a_probability_model_is_used_as_it_is_with_output_probs() -> None:
    logits = _logits_net(5)
    probs_model = nn.Sequential(logits, nn.Softmax(dim=1)).eval()
    with pytest.warns(UserWarning, match="look like probabilities.*output='probs'"):
        squashed = occsens.occlude(probs_model, IMAGES, patch=4)
    res = occsens.occlude(probs_model, IMAGES, patch=4, output="probs")
    reference = occsens.occlude(logits, IMAGES, patch=4)  # softmax of the logits: the same numbers
    assert res.output == "probs" and squashed.output == "softmax"
    torch.testing.assert_close(res.probs, reference.probs, rtol=0, atol=1e-6)
    # the complaint, measured: softmax over probabilities flattens them towards 1/K
    assert float(squashed.clean_probs.max()) < float(res.clean_probs.max())


def test_a_binary_model_with_one_logit_needs_sigmoid_and_gets_it() -> None:
    binary = _logits_net(1)
    with pytest.raises(
        occsens.OcclusionError, match="K >= 2; for one logit \\(binary\\) pass output='sigmoid'"
    ):
        occsens.occlude(binary, IMAGES, patch=4)
    res = occsens.occlude(binary, IMAGES, patch=4, output="sigmoid")
    with torch.inference_mode():
        positive = torch.sigmoid(binary(IMAGES))[:, 0]
    # One logit z is a two-class classifier: scores [1 - sigmoid(z), sigmoid(z)], softmax of [0, z].
    torch.testing.assert_close(res.clean_probs[:, 1], positive, rtol=0, atol=1e-6)
    torch.testing.assert_close(res.clean_probs.sum(dim=1), torch.ones(2), rtol=0, atol=1e-6)
    assert res.num_classes == 2 and res.heatmap.shape == (2, 3, 3)
    assert res.target.tolist() == (positive > 0.5).long().tolist()  # the predicted side, not always 0


def test_multi_label_scores_are_per_class_sigmoids_not_a_distribution() -> None:
    res = occsens.occlude(_logits_net(3), IMAGES, patch=4, output="sigmoid")
    with torch.inference_mode():
        expected = torch.sigmoid(_logits_net(3)(IMAGES))
    torch.testing.assert_close(res.clean_probs, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(res.clean_probs.sum(dim=1), torch.ones(2))


class Segmenter(nn.Module):
    """Per-pixel logits [B, K, H, W]: a 1x1 conv after a 3x3 one."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def centre_mean(out: torch.Tensor) -> torch.Tensor:
    """A segmentation score: each class's mean logit over the centre 4x4 region."""
    return out[:, :, 4:8, 4:8].mean(dim=(2, 3))


def test_a_callable_scores_a_segmentation_model_at_every_window() -> None:
    model = Segmenter().eval()
    res = occsens.occlude(model, IMAGES, patch=4, stride=2, output=centre_mean)
    assert res.output == "centre_mean" and res.probs.shape == (2, 5, 5, 2)
    with torch.inference_mode():
        for image, row, col in [(0, 0, 0), (1, 2, 3), (1, 4, 4)]:
            want = centre_mean(model(res.occluded(image, row, col)[None]))[0]
            torch.testing.assert_close(res.probs[image, row, col], want, rtol=0, atol=1e-6)


def test_large_scores_run_incrementally_and_agree_with_brute_force_relatively() -> None:
    """A regression-like scale (logits x 1000): the guard compares relative to the scores' size."""
    model = occsens.load_model("default")
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))

    def thousandfold(out: torch.Tensor) -> torch.Tensor:
        return out * 1000

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback notice
        fast = occsens.occlude(model, images, patch=4, output=thousandfold)
    brute = occsens.occlude(model, images, patch=4, output=thousandfold, engine="brute")
    assert fast.engine == "incremental"
    scale = float(brute.probs.abs().max())
    torch.testing.assert_close(fast.probs, brute.probs, rtol=0, atol=ENGINE_TOLERANCE * scale)


@pytest.mark.parametrize(
    "output, message",
    [
        ("logits", "output 'logits' is unknown; use 'softmax'"),
        (3, "output 3 is unknown"),
    ],
)
def test_an_unknown_output_is_refused(output: object, message: str) -> None:
    with pytest.raises(occsens.OcclusionError, match=message):
        occsens.occlude(_logits_net(3), IMAGES, patch=4, output=output)


def test_probs_outside_the_unit_range_are_refused() -> None:
    with pytest.raises(
        occsens.OcclusionError,
        match=r"output='probs' but the model returned values in \[.*pass output='softmax'",
    ):
        occsens.occlude(
            nn.Sequential(_logits_net(3), nn.Identity()).eval(), IMAGES * 0 + 1, patch=4, output="probs"
        )


def test_the_occlude_command_takes_output(tmp_path, capsys) -> None:  # noqa: ANN001
    """``occsens occlude IMG --output sigmoid`` on a one-logit model: the JSON holds sigmoid scores."""
    import json

    from PIL import Image

    from occsens.cli import main

    (tmp_path / "binary.py").write_text(
        "import torch\nfrom torch import nn\n\ndef build():\n    torch.manual_seed(0)\n"
        "    return nn.Sequential(nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),"
        " nn.Linear(2, 1))\n"
    )
    Image.new("RGB", (32, 32), (200, 30, 30)).save(tmp_path / "red.png")
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        args = ["occlude", str(tmp_path / "red.png"), "--model-path", "binary:build", "--classes", "cat"]
        assert main([*args, "--output", "sigmoid", "--json", "--quiet"]) == 0
        summary = json.loads(capsys.readouterr().out)
        # One name X for one logit: the two sides "not X" and "X"; the winner has at least half.
        assert {t["name"] for t in summary["top3"]} == {"cat", "not cat"}
        assert 0.5 <= summary["clean_prob"] < 1
        assert main([*args, "--quiet"]) == 2  # softmax of one logit: refused, pointing at --output
        assert "output='sigmoid'" in capsys.readouterr().err
    finally:
        sys.path.remove(str(tmp_path))
