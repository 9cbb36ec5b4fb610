"""The CIFAR-10 test images shipped in the package (``occsens.cifar.samples``) and naming by index.

Unit tests read the shipped ``occsens/samples/cifar10_test_samples.npz`` and build small releases in
``tmp_path``; tests marked ``integration`` compare it with the real copy named by ``$OCCSENS_DATA_DIR``.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import numpy as np
import pytest

from occsens.cifar import data
from occsens.cifar import samples as embedded
from occsens.cifar.samples import (
    DEFAULT_SAMPLES,
    build_embedded,
    choose_indices,
    load_samples,
    sample_by_index,
)
from occsens.errors import OcclusionError

SHIP, AIRPLANE, AUTOMOBILE, BIRD, CAT, FROG, TRUCK = 8, 0, 1, 2, 3, 6, 9


def raises_exactly(message: str):
    return pytest.raises(OcclusionError, match=f"^{re.escape(message)}$")


@pytest.fixture
def no_data_dir(monkeypatch):
    """Neither a data_dir argument nor $OCCSENS_DATA_DIR: only the embedded samples are available."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)


# --- the shipped file -------------------------------------------------------------------------------------


def test_the_shipped_file_is_found_inside_the_package_and_is_under_1_mb():
    # 1 MB: the budget for data inside the wheel. 100 images are 307,200 raw bytes, ~280 KB compressed;
    # a file over 1 MB means the wrong images, dtype or compression went in.
    resource = importlib.resources.files("occsens").joinpath("samples").joinpath(embedded.SAMPLES_FILE)
    assert resource.is_file()
    assert len(resource.read_bytes()) < 1_000_000


def test_it_holds_100_test_images_10_of_each_class_with_the_documented_types():
    samples = load_samples()
    assert samples.images.dtype == np.uint8 and samples.images.shape == (100, 3, 32, 32)
    assert samples.labels.dtype == np.int64 and samples.labels.shape == (100,)
    assert samples.indices.dtype == np.int64 and samples.indices.shape == (100,)
    assert np.bincount(samples.labels, minlength=10).tolist() == [10] * 10


def test_its_indices_are_sorted_unique_official_test_indices():
    indices = load_samples().indices
    assert np.all(np.diff(indices) > 0)  # strictly increasing: sorted and no repeats
    assert 0 <= indices.min() and indices.max() < 10_000


def test_it_holds_the_first_ten_test_images_with_their_official_labels():
    # Official labels of test images 0..9 (../shared/cifar10/README.md): the first ten of every class
    # include them all.
    samples = sample_by_index(range(10))
    assert samples.labels.tolist() == [
        CAT,
        SHIP,
        SHIP,
        AIRPLANE,
        FROG,
        FROG,
        AUTOMOBILE,
        FROG,
        CAT,
        AUTOMOBILE,
    ]


def test_its_images_are_not_blank_and_not_all_alike():
    # Guards against a file of zeros or one image repeated, which every check above would let through.
    images = load_samples().images.reshape(100, -1)
    assert len(np.unique(images, axis=0)) == 100
    assert images.std() > 30  # natural images: pixel std about 63 (0.25 x 255); a blank file has 0


def test_the_loaded_arrays_are_read_only_because_every_caller_shares_them():
    samples = load_samples()
    assert load_samples() is samples
    with pytest.raises(ValueError, match="read-only"):
        samples.images[0, 0, 0, 0] = 0


# --- which images are embedded, and rebuilding the file ---------------------------------------------------


def test_the_choice_is_the_first_n_indices_of_each_class_sorted():
    # First two 0s at 1, 3; first two 1s at 2, 5; first two 2s at 0, 4; later ones are left out.
    # Classes 3..9 follow, two each, at 10..23.
    labels = np.concatenate([[2, 0, 1, 0, 2, 1, 1, 0, 2, 0], np.repeat(np.arange(3, 10), 2)])
    assert choose_indices(labels, per_class=2).tolist() == [0, 1, 2, 3, 4, 5, *range(10, 24)]


def test_the_choice_refuses_a_class_with_too_few_images():
    labels = np.repeat(np.arange(10), 3)[:-1]  # class 9 has only 2
    with raises_exactly("classes [9] have fewer than 3 test images: cannot embed 3 per class"):
        choose_indices(labels, per_class=3)


def test_build_embedded_writes_the_first_ten_of_each_class_with_their_pixels_and_the_same_bytes_twice(
    tmp_path, cifar, monkeypatch
):
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", 200)  # 20 test images per class: room to choose 10
    images, labels = cifar.batch_images(200, 7), np.array(cifar.balanced_labels(200, 7))
    cifar.write_batch(tmp_path / data.TEST_FILE, images, labels.tolist())

    first = build_embedded(tmp_path, tmp_path / "a.npz")
    build_embedded(tmp_path, tmp_path / "b.npz")

    expected = np.sort(np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(10)]))
    with np.load(first, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["images", "indices", "labels"]
        np.testing.assert_array_equal(npz["indices"], expected)
        np.testing.assert_array_equal(npz["labels"], labels[expected])
        np.testing.assert_array_equal(npz["images"], images[expected])
        assert npz["labels"].dtype == np.int64 and npz["indices"].dtype == np.int64
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()


# --- the default report's samples -------------------------------------------------------------------------


def test_default_samples_are_embedded_distinct_and_start_with_the_two_first_ships(no_data_dir):
    assert len(DEFAULT_SAMPLES) == 8 and len(set(DEFAULT_SAMPLES)) == 8
    assert set(DEFAULT_SAMPLES) <= set(load_samples().indices.tolist())
    labels = dict(zip(DEFAULT_SAMPLES, sample_by_index(DEFAULT_SAMPLES).labels.tolist(), strict=True))
    assert labels[1] == SHIP and labels[2] == SHIP  # test images 1 and 2, both ships


def test_default_samples_cover_ship_airplane_cat_frog_automobile_bird_and_truck(no_data_dir):
    labels = sample_by_index(DEFAULT_SAMPLES).labels.tolist()
    assert labels.count(SHIP) >= 2
    assert {AIRPLANE, CAT, FROG, AUTOMOBILE, BIRD, TRUCK} <= set(labels)


# --- sample_by_index --------------------------------------------------------------------------------------


def test_embedded_images_come_back_in_the_order_asked_with_repeats(no_data_dir):
    samples = load_samples()
    got = sample_by_index([25, 0, 25, 3])
    row = {int(i): k for k, i in enumerate(samples.indices)}
    assert got.indices.tolist() == [25, 0, 25, 3]
    np.testing.assert_array_equal(got.images, samples.images[[row[25], row[0], row[25], row[3]]])
    np.testing.assert_array_equal(got.labels, [BIRD, CAT, BIRD, AIRPLANE])


def test_every_embedded_index_is_served_without_a_data_dir(no_data_dir):
    samples = load_samples()
    got = sample_by_index(samples.indices)
    np.testing.assert_array_equal(got.images, samples.images)
    np.testing.assert_array_equal(got.labels, samples.labels)
    np.testing.assert_array_equal(got.indices, samples.indices)


def test_a_single_integer_index_is_accepted(no_data_dir):
    assert sample_by_index(np.int64(3)).labels.tolist() == [AIRPLANE]


def test_embedded_images_need_no_data_dir_even_when_one_is_given(tmp_path):
    # The data_dir below is an empty folder: had it been read, load_split would have raised. (A folder
    # that does not exist at all is an error of its own: see the last test.)
    assert sample_by_index([1, 2], tmp_path).labels.tolist() == [SHIP, SHIP]


@pytest.mark.parametrize("index", [10_000, 12_345, -1])
def test_an_index_outside_the_test_set_is_refused(no_data_dir, index):
    with raises_exactly(f"sample {index} is out of range: CIFAR-10 test indices are 0..9999"):
        sample_by_index([1, index])


@pytest.mark.parametrize(("index", "shown"), [("3", "'3'"), (1.5, "1.5"), (True, "True"), (None, "None")])
def test_an_index_that_is_not_an_integer_is_refused(no_data_dir, index, shown):
    with raises_exactly(f"sample {shown} is not an integer: CIFAR-10 test indices are 0..9999"):
        sample_by_index([index] if index is not None else [1, None])


def test_no_indices_at_all_is_refused(no_data_dir):
    with raises_exactly(
        "no samples were given: pass CIFAR-10 test indices 0..9999, e.g. (0, 1, 2, 3, 4, 6, 11, 25)"
    ):
        sample_by_index([])


def test_an_index_not_embedded_without_a_data_dir_says_how_to_give_one(no_data_dir):
    message = (
        "sample 200 is not embedded (embedded: 100 samples, 10 per class, see occsens.cifar.samples) and no "
        "data_dir was given: pass --data-dir DIR (the folder holding cifar-10-batches-py/) "
        "or set OCCSENS_DATA_DIR"
    )
    with raises_exactly(message):
        sample_by_index([1, 200])


def test_several_indices_not_embedded_are_listed_once_each(no_data_dir):
    with pytest.raises(OcclusionError, match=r"^samples 200, 9000 are not embedded \(embedded: 100 samples"):
        sample_by_index([9000, 1, 200, 9000])


@pytest.fixture
def fake_test_set(tmp_path, cifar, monkeypatch):
    """A made-up test set of 200 images in ``tmp_path``: index 150 is in it and not embedded (max 128)."""
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", 200)
    images, labels = cifar.batch_images(200, 3), cifar.balanced_labels(200, 3)
    cifar.write_batch(tmp_path / data.TEST_FILE, images, labels)
    return tmp_path, images, np.array(labels)


def test_an_index_not_embedded_is_read_from_data_dir_and_embedded_ones_still_from_the_package(
    no_data_dir, fake_test_set
):
    folder, images, labels = fake_test_set
    got = sample_by_index([150, 1], folder)
    np.testing.assert_array_equal(got.images[0], images[150])
    assert got.labels[0] == labels[150]
    # Index 1 is embedded: the package's ship, not the made-up image 1 of this folder.
    np.testing.assert_array_equal(got.images[1], load_samples().images[1])
    assert got.labels[1] == SHIP


def test_without_data_dir_the_environment_variable_names_the_test_set(fake_test_set, monkeypatch):
    folder, images, _ = fake_test_set
    monkeypatch.setenv(data.ENV_VAR, str(folder))
    np.testing.assert_array_equal(sample_by_index([150]).images[0], images[150])


# --- against the real copy --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_test(cifar_dir) -> data.Split:
    return data.load_split(False, cifar_dir)


@pytest.mark.integration
def test_every_embedded_image_and_label_equals_the_real_test_image_at_its_index(real_test):
    samples = load_samples()
    np.testing.assert_array_equal(samples.images, real_test.images[samples.indices])
    np.testing.assert_array_equal(samples.labels, real_test.labels[samples.indices])


@pytest.mark.integration
def test_the_embedded_indices_are_the_first_ten_of_each_class_in_the_real_test_set(real_test):
    np.testing.assert_array_equal(load_samples().indices, choose_indices(real_test.labels))


@pytest.mark.integration
def test_rebuilding_from_the_real_copy_gives_the_shipped_arrays(cifar_dir, tmp_path):
    shipped = load_samples()
    with np.load(build_embedded(cifar_dir, tmp_path / "rebuilt.npz"), allow_pickle=False) as npz:
        for name in ("images", "labels", "indices"):
            np.testing.assert_array_equal(npz[name], getattr(shipped, name))


@pytest.mark.integration
def test_the_class_names_constant_matches_batches_meta(cifar_dir):
    assert data.CIFAR10_CLASSES == data.class_names(cifar_dir)


@pytest.mark.integration
def test_indices_not_embedded_come_from_the_real_test_set(cifar_dir, real_test):
    got = sample_by_index([9999, 0, 5000], cifar_dir)
    np.testing.assert_array_equal(got.images, real_test.images[[9999, 0, 5000]])
    np.testing.assert_array_equal(got.labels, real_test.labels[[9999, 0, 5000]])


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_data_folder_that_does_not_exist_is_an_error_even_for_embedded_samples(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in --data-dir must not pass unnoticed because the samples asked for happen to be embedded."""
    missing = tmp_path / "not-here"
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    if how == "environment":
        monkeypatch.setenv(data.ENV_VAR, str(missing))
    with pytest.raises(OcclusionError, match="is not a folder"):
        embedded.sample_by_index([0], missing if how == "argument" else None)
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    assert len(embedded.sample_by_index([0])) == 1  # unset: the embedded samples, as before
