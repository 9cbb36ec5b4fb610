"""Reading a user's image files (``occsens.read_image``, ``read_images``): pixels as they look on
screen, in [0, 1]; and their labels (``read_labels``).

Spec (``occsens/images.py``): 8-bit / 255; 16-bit / 65535; float images as they are in [0, 1], else
scaled by their own range with a warning; EXIF orientation applied; palette, CMYK and transparency
(onto white) converted; images over ``max_pixels`` refused before decoding, with one line naming the
limit and how to raise it.

``read_images`` reads a folder (its image files by name, hidden and other files skipped) or a list
of files, and says per image how it was read (notes, sizes height x width) instead of warning;
``read_labels`` maps a ``file,label`` CSV onto those files. Every bad input is one line naming the
argument or file and what is valid.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import occsens
from occsens.cli import main
from occsens.images import IMAGE_SUFFIXES, ImageFiles, read_image, read_images, read_labels


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
    # Over occsens's limit too (1,500 <= 2,000): the message names the limit the user can raise.
    with pytest.raises(occsens.OcclusionError, match="over 2,000 pixels, so over the limit of 1,500") as err:
        read_image(tmp_path / "bomb.png", max_pixels=1500)
    assert "--max-pixels N" in str(err.value)
    # --max-pixels already past Pillow's limit: only Pillow's own limit is left to raise.
    with pytest.raises(occsens.OcclusionError, match="over Pillow's decompression-bomb limit"):
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


# --- read_images: a folder, or a list of files ------------------------------------------------------


def _solid(path: Path, value: int, height: int = 4, width: int = 5, mode: str = "RGB") -> None:
    """A one-colour image: grey level ``value`` (and opaque, for RGBA)."""
    channels = {"RGB": 3, "RGBA": 4}[mode]
    arr = np.full((height, width, channels), value, dtype=np.uint8)
    if mode == "RGBA":
        arr[..., 3] = 255
    Image.fromarray(arr, mode=mode).save(path)


def _one_line(err: pytest.ExceptionInfo[occsens.OcclusionError]) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


def _quietly(*args: object, **kwargs: object) -> ImageFiles:
    """read_images with any warning an error: it reports through notes, never warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return read_images(*args, **kwargs)  # type: ignore[arg-type]


def test_the_accepted_suffixes_are_the_common_image_formats() -> None:
    assert IMAGE_SUFFIXES == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif"}


def test_a_folder_gives_its_image_files_by_name_and_nothing_else(tmp_path: Path) -> None:
    _solid(tmp_path / "c.tif", 30)
    _solid(tmp_path / "a.png", 10)
    _solid(tmp_path / "b.PNG", 20)  # suffixes in any case
    _solid(tmp_path / ".hidden.png", 40)  # hidden: skipped (e.g. macOS ._ files)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub.png").mkdir()  # a folder, even one named like an image: not read, not entered
    _solid(tmp_path / "sub.png" / "d.png", 50)
    got = _quietly(tmp_path)
    assert got.names == ("a.png", "b.PNG", "c.tif")
    assert got.images.dtype == torch.float32 and got.images.shape == (3, 3, 4, 5)
    # each image is its own file's pixels, in the order of the names
    assert [round(float(img.mean()) * 255) for img in got.images] == [10, 20, 30]
    assert got.sizes == ((4, 5),) * 3 and got.notes == ((),) * 3


def test_a_list_of_files_keeps_its_order(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10)
    _solid(tmp_path / "b.png", 20)
    got = _quietly([tmp_path / "b.png", str(tmp_path / "a.png")])
    assert got.names == ("b.png", "a.png")
    assert [round(float(img.mean()) * 255) for img in got.images] == [20, 10]


def test_one_file_is_read_as_a_set_of_one(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10)
    got = _quietly(tmp_path / "a.png")
    assert got.names == ("a.png",) and got.images.shape == (1, 3, 4, 5)


def test_without_a_size_each_image_keeps_its_own_exactly(tmp_path: Path) -> None:
    arr = np.random.default_rng(2).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "x.png")
    got = _quietly(tmp_path)
    assert torch.equal(got.images[0], torch.from_numpy(arr.transpose(2, 0, 1).copy()).float() / 255)
    assert got.sizes == ((6, 7),) and got.notes == ((),)


def test_images_of_different_sizes_need_a_size_and_the_error_names_both(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10, height=40, width=48)
    _solid(tmp_path / "b.png", 20, height=32, width=32)
    with pytest.raises(occsens.OcclusionError) as err:
        read_images(tmp_path)
    message = _one_line(err)
    assert "'a.png' is 40x48" in message and "'b.png' is 32x32" in message
    assert "height x width" in message
    assert "--input-size H W" in message and "size=(H, W)" in message


def test_with_a_size_every_image_is_resized_and_each_resized_one_says_so(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10, height=40, width=48)
    _solid(tmp_path / "b.png", 20, height=32, width=32, mode="RGBA")
    got = _quietly(tmp_path, size=(32, 32))
    assert got.images.shape == (2, 3, 32, 32)
    assert got.sizes == ((40, 48), (32, 32))  # the files' own sizes, not the resized ones
    assert got.notes[0] == ("resized from 40x48 to 32x32 (height x width)",)
    assert got.notes[1] == ("transparency; composited onto white",)  # its size is already 32x32
    # a one-colour image stays that colour when resized (bicubic, to one 8-bit step)
    torch.testing.assert_close(got.images[0], torch.full((3, 32, 32), 10 / 255), rtol=0, atol=1 / 255)


def test_a_size_that_is_not_height_and_width_is_refused(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10)
    for bad in [(0, 32), (32,), (32, 32, 3), (32.0, 32), (True, 32), "32x32"]:
        with pytest.raises(occsens.OcclusionError, match=r"size must be two positive integers") as err:
            read_images(tmp_path, size=bad)  # type: ignore[arg-type]
        _one_line(err)
    assert read_images(tmp_path, size=(2, 3)).images.shape == (1, 3, 2, 3)


def test_the_exif_orientation_is_noted_and_the_size_is_the_upright_one(tmp_path: Path) -> None:
    img = Image.fromarray(np.zeros((2, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # stored on its side: 2 rows of 3, upright 3 rows of 2
    img.save(tmp_path / "rotated.png", exif=exif)
    got = _quietly(tmp_path)
    assert got.sizes == ((3, 2),) and got.images.shape == (1, 3, 3, 2)
    assert got.notes == (("rotated upright by its EXIF orientation (6)",),)


def test_read_image_warns_with_the_notes_read_images_returns(tmp_path: Path) -> None:
    """One source of truth: the warning is ``image NAME: NOTE``; read_images only returns the note."""
    Image.fromarray(np.array([[-2.0, 6.0]], dtype=np.float32), mode="F").save(tmp_path / "wide.tiff")
    Image.fromarray(np.zeros((40, 48, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    for name in ["wide.tiff", "big.png"]:
        (note,) = _quietly([tmp_path / name], size=(32, 32), channels=1).notes[0][-1:]
        with pytest.warns(UserWarning) as caught:
            read_image(tmp_path / name, size=(32, 32), channels=1)
        assert [str(w.message) for w in caught][-1] == f"image {name}: {note}"
    assert _quietly([tmp_path / "wide.tiff"]).notes[0] == (
        "floats in [-2, 6]; scaled from that range to [0, 1]",
    )


def test_read_image_does_not_warn_about_an_exif_orientation(tmp_path: Path) -> None:
    """Turning a photo upright is what every viewer does: a note in a report, not a warning."""
    img = Image.fromarray(np.zeros((2, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rotated.png", exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(tmp_path / "rotated.png").shape == (3, 3, 2)


def test_a_missing_or_imageless_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(occsens.OcclusionError, match="image folder .* does not exist") as err:
        read_images(tmp_path / "nowhere")
    _one_line(err)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(occsens.OcclusionError, match="has no image files") as err:
        read_images(tmp_path)
    assert all(suffix in _one_line(err) for suffix in IMAGE_SUFFIXES)
    with pytest.raises(occsens.OcclusionError, match="no image files given") as err:
        read_images([])
    _one_line(err)


def test_an_unreadable_file_in_a_folder_is_named(tmp_path: Path) -> None:
    _solid(tmp_path / "a.png", 10)
    (tmp_path / "broken.jpg").write_bytes(b"this is not a JPEG")
    with pytest.raises(occsens.OcclusionError, match=r"broken\.jpg.* is not a readable image file") as err:
        read_images(tmp_path)
    _one_line(err)
    with pytest.raises(occsens.OcclusionError, match=r"gone\.png.* does not exist"):
        read_images([tmp_path / "a.png", tmp_path / "gone.png"])


def test_files_of_the_same_name_are_refused(tmp_path: Path) -> None:
    """Images are named by their file name (labels, the report), so two cat.png would be confused."""
    for folder in ["one", "two"]:
        (tmp_path / folder).mkdir()
        _solid(tmp_path / folder / "cat.png", 10)
    with pytest.raises(occsens.OcclusionError, match="same name 'cat.png'") as err:
        read_images([tmp_path / "one" / "cat.png", tmp_path / "two" / "cat.png"])
    _one_line(err)


def test_a_folder_over_the_file_limit_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the limit lowered to 2 so the test writes 3 files, not 10,001: the counting is the same
    monkeypatch.setattr("occsens.images.MAX_FILES", 2)
    for name in ["a.png", "b.png"]:
        _solid(tmp_path / name, 10)
    assert len(read_images(tmp_path).names) == 2  # at the limit: read
    (tmp_path / "c.png").write_bytes(b"unreadable: refused before any file is read")
    with pytest.raises(occsens.OcclusionError, match="over 2 images") as err:
        read_images(tmp_path)
    _one_line(err)


# --- read_labels: a file,label CSV ------------------------------------------------------------------

FILES = ["a.png", "b.png", "c.png"]
CLASSES = ["dog", "cat", "bird"]


def _labels(tmp_path: Path, text: str, encoding: str = "utf-8") -> list[int | None]:
    (tmp_path / "labels.csv").write_text(text, encoding=encoding)
    return read_labels(tmp_path / "labels.csv", FILES, CLASSES)


def test_labels_by_name_or_number_with_or_without_a_header(tmp_path: Path) -> None:
    assert _labels(tmp_path, "file,label\na.png,cat\nc.png,2\n") == [1, None, 2]
    assert _labels(tmp_path, "a.png,cat\nc.png,2\n") == [1, None, 2]
    # the header in any case; cells stripped; blank lines skipped; a class name is found before a number
    assert _labels(tmp_path, " File , LABEL \r\n\r\n b.png , dog \r\n") == [None, 0, None]


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM: left in, the header would read as a file named \\ufefffile."""
    assert _labels(tmp_path, "file,label\na.png,bird\n", encoding="utf-8-sig") == [2, None, None]
    assert _labels(tmp_path, "a.png,bird\n", encoding="utf-8-sig") == [2, None, None]


def test_an_unknown_label_names_it_its_line_and_the_classes(tmp_path: Path) -> None:
    with pytest.raises(occsens.OcclusionError, match=r"line 3: label 'cow' is not a class") as err:
        _labels(tmp_path, "file,label\na.png,cat\nb.png,cow\n")
    assert "dog, cat, bird" in _one_line(err) and "0..2" in str(err.value)
    with pytest.raises(occsens.OcclusionError, match=r"line 1: label '3' is not a class"):
        _labels(tmp_path, "a.png,3\n")  # three classes: 0..2
    with pytest.raises(occsens.OcclusionError, match=r"label '-1' is not a class"):
        _labels(tmp_path, "a.png,-1\n")


def test_an_unknown_label_lists_ten_classes_then_an_ellipsis(tmp_path: Path) -> None:
    """Ten names fit one line; a 1000-class model's would not."""
    (tmp_path / "labels.csv").write_text("a.png,cow\n")
    classes = [f"class{i}" for i in range(12)]
    with pytest.raises(occsens.OcclusionError) as err:
        read_labels(tmp_path / "labels.csv", FILES, classes)
    message = _one_line(err)
    assert "class0, class1" in message and "class9, ..." in message and "class10" not in message


def test_a_file_not_among_the_images_is_named_with_its_line(tmp_path: Path) -> None:
    with pytest.raises(
        occsens.OcclusionError, match=r"line 2: file 'z.png' is not among the 3 images"
    ) as err:
        _labels(tmp_path, "a.png,cat\nz.png,dog\n")
    _one_line(err)


def test_a_file_listed_twice_must_agree(tmp_path: Path) -> None:
    assert _labels(tmp_path, "a.png,cat\na.png,1\n") == [1, None, None]  # the same class twice: fine
    with pytest.raises(
        occsens.OcclusionError, match=r"line 3: file 'a.png' is labelled 'dog', but line 1"
    ) as err:
        _labels(tmp_path, "a.png,cat\nb.png,cat\na.png,dog\n")
    _one_line(err)


def test_a_row_that_is_not_two_cells_names_its_line(tmp_path: Path) -> None:
    for text, line in [("a.png,cat,extra\n", 1), ("a.png,cat\nb.png\n", 2), ("a.png,\n", 1)]:
        with pytest.raises(
            occsens.OcclusionError, match=rf"line {line} has .*each row must be file,label"
        ) as err:
            _labels(tmp_path, text)
        _one_line(err)


def test_a_missing_or_non_utf8_labels_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(occsens.OcclusionError, match="labels file .* does not exist") as err:
        read_labels(tmp_path / "none.csv", FILES, CLASSES)
    _one_line(err)
    (tmp_path / "latin1.csv").write_bytes("a.png,café\n".encode("latin-1"))
    with pytest.raises(occsens.OcclusionError, match="is not UTF-8 text") as err:
        read_labels(tmp_path / "latin1.csv", FILES, CLASSES)
    _one_line(err)


def test_a_labels_file_over_the_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the limit lowered to 20 bytes so the test writes 21, not 10 MB: the bounded read is the same
    monkeypatch.setattr("occsens.images.MAX_LABEL_BYTES", 20)
    (tmp_path / "labels.csv").write_text("a.png,cat\nb.png,dog\n")  # exactly 20 bytes: read
    assert read_labels(tmp_path / "labels.csv", FILES, CLASSES) == [1, 0, None]
    (tmp_path / "labels.csv").write_text("a.png,cat\nb.png,dog\n\n")
    with pytest.raises(occsens.OcclusionError, match="is over 20 bytes") as err:
        read_labels(tmp_path / "labels.csv", FILES, CLASSES)
    _one_line(err)


# ----------------------------------------------------------------------------- hostile files (issue 26)


@pytest.mark.parametrize("value", [100_000, 2**31 - 1, 70_000])
def test_a_32_bit_integer_tiff_of_one_value_reads_as_that_value_not_nan(tmp_path: Path, value: int) -> None:
    Image.fromarray(np.full((4, 6), value, dtype=np.int32)).save(tmp_path / "flat.tif")
    files = read_images(tmp_path / "flat.tif")
    # one value has no range to scale from: it reads as its place in the signed 32-bit range
    assert torch.allclose(files.images, torch.full((1, 3, 4, 6), value / (2**31 - 1)))
    assert f"one integer value, {value}, throughout" in files.notes[0][0]


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_link_in_a_folder_that_leads_nowhere_is_refused_not_dropped(tmp_path: Path, kind: str) -> None:
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    if kind == "dangling":
        (tmp_path / "b.png").symlink_to(tmp_path / "missing.png")
    else:
        (tmp_path / "b.png").symlink_to(tmp_path / "c.png")
        (tmp_path / "c.png").symlink_to(tmp_path / "b.png")
    with pytest.raises(occsens.OcclusionError, match=r"'[bc].png' is a link that leads nowhere"):
        read_images(tmp_path)


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp", ".tif"])
def test_a_multi_frame_file_says_it_is_read_as_its_first_of_n_frames(tmp_path: Path, suffix: str) -> None:
    frames = [Image.fromarray(np.full((4, 4, 3), v, dtype=np.uint8)) for v in (10, 120, 240)]
    frames[0].save(tmp_path / f"anim{suffix}", save_all=True, append_images=frames[1:])
    files = read_images(tmp_path / f"anim{suffix}")
    assert "first of 3 frames" in " ".join(files.notes[0])
    assert abs(float(files.images.mean()) - 10 / 255) < 0.02  # the first frame's pixels (lossy WebP: ~1%)
    with pytest.warns(UserWarning, match="first of 3 frames"):
        read_image(tmp_path / f"anim{suffix}")
