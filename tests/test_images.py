"""Reading a user's image file (``occsens.read_image``): pixels as they look on screen, in [0, 1].

Spec (``occsens/images.py``): 8-bit / 255; 16-bit / 65535; float images as they are in [0, 1], else
scaled by their own range with a warning; EXIF orientation applied; palette, CMYK and transparency
(onto white) converted; images over ``max_pixels`` refused before decoding, with one line naming the
limit and how to raise it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import occsens
from occsens.cli import main
from occsens.images import read_image


def test_an_8_bit_rgb_image_is_its_bytes_over_255(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "rgb.png")
    got = read_image(tmp_path / "rgb.png")
    assert torch.equal(got, torch.from_numpy(arr.transpose(2, 0, 1).copy()).float() / 255)


def test_a_dark_16_bit_png_stays_dark(tmp_path: Path) -> None:
    """The issue's case: a 16-bit PNG at 1000/65535 read as mean 0.967 when it was squeezed into 8 bits."""
    Image.fromarray(np.full((8, 8), 1000, dtype=np.uint16)).save(tmp_path / "dark16.png")
    got = read_image(tmp_path / "dark16.png")
    assert got.shape == (3, 8, 8)
    # float32 rounding of 1000 / 65535 only
    torch.testing.assert_close(got, torch.full((3, 8, 8), 1000 / 65535), rtol=0, atol=1e-7)


def test_16_bit_levels_map_onto_the_8_bit_scale(tmp_path: Path) -> None:
    """65535 = 257 * 255: level k * 257 in 16 bits is level k in 8 bits."""
    levels = np.arange(0, 256, 15, dtype=np.uint16).reshape(1, -1)
    Image.fromarray(levels * 257).save(tmp_path / "ramp16.png")
    got = read_image(tmp_path / "ramp16.png", channels=1)
    torch.testing.assert_close(got[0], torch.from_numpy(levels.astype(np.float32)) / 255, rtol=0, atol=1e-7)


def test_a_float_tiff_in_the_unit_range_is_used_as_it_is(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).random((6, 4)).astype(np.float32)
    Image.fromarray(arr, mode="F").save(tmp_path / "unit.tiff")
    got = read_image(tmp_path / "unit.tiff", channels=1)
    assert torch.equal(got[0], torch.from_numpy(arr))


def test_a_float_tiff_outside_the_unit_range_is_scaled_by_its_own_range(tmp_path: Path) -> None:
    arr = np.array([[-2.0, 0.0], [2.0, 6.0]], dtype=np.float32)
    Image.fromarray(arr, mode="F").save(tmp_path / "wide.tiff")
    with pytest.warns(UserWarning, match=r"floats in \[-2, 6\]; scaled"):
        got = read_image(tmp_path / "wide.tiff", channels=1)
    torch.testing.assert_close(got[0], torch.tensor([[0.0, 0.25], [0.5, 1.0]]), rtol=0, atol=1e-7)


def test_the_exif_orientation_is_applied(tmp_path: Path) -> None:
    """Orientation 6: the stored image must turn 90 degrees clockwise to be upright (as viewers show it)."""
    arr = np.arange(2 * 3, dtype=np.uint8).reshape(2, 3) * 40
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.png", exif=exif)
    got = read_image(tmp_path / "rotated.png", channels=1)
    upright = np.rot90(arr, k=-1)  # clockwise
    assert torch.equal(got[0], torch.from_numpy(upright.copy()).float() / 255)


def test_transparency_is_composited_onto_white_with_a_warning(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[0, 0, 3] = 255  # opaque
    rgba[0, 1, 3] = 0  # transparent: white
    rgba[1, :, 3] = 51  # 20% red over white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "alpha.png")
    with pytest.warns(UserWarning, match="transparency; composited onto white"):
        got = read_image(tmp_path / "alpha.png")
    assert got[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert got[:, 0, 1].tolist() == [1.0, 1.0, 1.0]
    # 255 * (1 - 0.2) = 204 on green and blue, to one 8-bit step of alpha blending
    torch.testing.assert_close(got[1:, 1, 0], torch.full((2,), 204 / 255), rtol=0, atol=1 / 255)


def test_a_palette_image_with_a_transparent_index_and_a_cmyk_jpeg_read_as_rgb(tmp_path: Path) -> None:
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pal.png", transparency=0)
    with pytest.warns(UserWarning, match="transparency"):
        got = read_image(tmp_path / "pal.png")
    assert got[:, 0, 0].tolist() == [1.0, 1.0, 1.0] and got[:, 0, 1].tolist() == [0.0, 0.0, 1.0]
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    white = read_image(tmp_path / "cmyk.jpg")
    assert white.shape == (3, 4, 4) and float(white.min()) > 0.95  # no ink is white, JPEG-rounded


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(
        occsens.OcclusionError, match=r"100x100 = 10,000 pixels, over the limit of 5,000"
    ) as err:
        read_image(tmp_path / "big.png", max_pixels=5000)
    assert "--max-pixels" in str(err.value) and "max_pixels=" in str(err.value)
    assert read_image(tmp_path / "big.png", max_pixels=10_000).shape == (3, 100, 100)


def test_pillows_own_bomb_limit_gives_one_line_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 pixels is over twice that: an error
    with pytest.raises(occsens.OcclusionError, match="decompression-bomb limit"):
        read_image(tmp_path / "bomb.png")


def test_the_cli_refuses_a_large_image_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")
    code = main(["occlude", str(tmp_path / "big.png"), "--max-pixels", "100", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("occsens: error: image")
    assert "over the limit of 100" in err[0]
    with pytest.raises(SystemExit) as usage:
        main(["occlude", str(tmp_path / "big.png"), "--max-pixels", "0"])
    assert usage.value.code == 2
