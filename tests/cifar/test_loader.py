"""The CIFAR-10 loader, ``occsens.cifar.data``: what it reads, what it refuses, and what it says.

Unit tests build tiny releases in ``tmp_path`` with the loader shrunk to 20 images per batch (the
``small_batches`` fixture); they never read ``../shared``. Tests marked ``integration`` read the real copy
named by ``$OCCSENS_DATA_DIR`` and are skipped, with that reason, where it is not set.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from occsens.cifar import data
from occsens.errors import OcclusionError


def refused(path: Path, what: str) -> str:
    """The message for a batch file that names a global outside the allow-list."""
    return (
        f"data file {str(path)!r} is not a CIFAR-10 batch: it refused to load {what}, "
        "which the format never needs"
    )


def raises_exactly(message: str):
    """``pytest.raises`` for an OcclusionError whose whole message is ``message``."""
    return pytest.raises(OcclusionError, match=f"^{re.escape(message)}$")


class Custom:
    """A class of the caller's own: a batch file must not be able to make the loader build one."""

    def __init__(self) -> None:
        self.data = np.zeros((1, 3072), np.uint8)


class Payload:
    """Unpickling this calls ``func(*args)``: what a hostile batch file would do."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# --- what a good release gives ----------------------------------------------------------------------------


def test_a_split_is_its_batches_in_file_order_with_pixels_and_labels_unchanged(release, cifar, small_batches):
    test = data.load_split(False, release)
    assert test.images.dtype == np.uint8 and test.images.shape == (small_batches, 3, 32, 32)
    assert test.labels.dtype == np.int64
    # write_release seeds the training batches 0..4 and the test batch 5.
    np.testing.assert_array_equal(test.images, cifar.batch_images(small_batches, 5))
    np.testing.assert_array_equal(test.labels, cifar.balanced_labels(small_batches, 5))

    train = data.load_split(True, release)
    assert len(train) == 5 * small_batches
    np.testing.assert_array_equal(
        train.images, np.concatenate([cifar.batch_images(small_batches, s) for s in range(5)])
    )
    np.testing.assert_array_equal(
        train.labels, np.concatenate([cifar.balanced_labels(small_batches, s) for s in range(5)])
    )


def test_a_row_of_data_is_the_red_plane_then_green_then_blue_each_row_major(tmp_path, cifar, small_batches):
    # Rows built by the documented formula, not by numpy's reshape, so the test cannot share a bug with it.
    rows = np.zeros((small_batches, 3072), np.uint8)
    for c in range(3):
        for y in range(32):
            for x in range(32):
                rows[0, c * 1024 + y * 32 + x] = 100 * c + y  # row 0 encodes plane and row
                rows[1, c * 1024 + y * 32 + x] = x  # row 1 encodes column
    cifar.write_batch(tmp_path / data.TEST_FILE, rows, cifar.balanced_labels(small_batches, 0))

    images = data.load_split(False, tmp_path).images
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    np.testing.assert_array_equal(images[0], 100 * c + y)
    np.testing.assert_array_equal(images[1], x)


def test_python3_default_pickles_are_read_as_well_as_python2_ones(tmp_path, cifar, small_batches):
    images, labels = cifar.batch_images(small_batches, 0), cifar.balanced_labels(small_batches, 0)
    raw = pickle.dumps({"data": images.reshape(small_batches, -1), "labels": labels}, protocol=4)
    cifar.write_batch(tmp_path / data.TEST_FILE, images, labels, raw=raw)
    np.testing.assert_array_equal(data.load_split(False, tmp_path).images, images)


# regression: Python 3 writes bytes at protocol 2 via _codecs.encode and arrays at protocol 5 via
# numpy._core.numeric._frombuffer; an honest re-saved batch must still be read
@pytest.mark.parametrize("protocol", [2, 5])
def test_batches_resaved_by_python3_at_protocol_2_or_5_are_read(tmp_path, cifar, small_batches, protocol):
    images, labels = cifar.batch_images(small_batches, 0), cifar.balanced_labels(small_batches, 0)
    raw = pickle.dumps({"data": images.reshape(small_batches, -1), "labels": labels}, protocol=protocol)
    cifar.write_batch(tmp_path / data.TEST_FILE, images, labels, raw=raw)
    np.testing.assert_array_equal(data.load_split(False, tmp_path).images, images)


# --- where the data is: data_dir, its parent, the environment ---------------------------------------------


def test_the_batches_folder_itself_is_accepted_as_well_as_its_parent(release):
    folder = release / data.FOLDER
    assert data.resolve_data_dir(release) == folder
    assert data.resolve_data_dir(folder) == folder
    np.testing.assert_array_equal(
        data.load_split(False, folder).images, data.load_split(False, release).images
    )


def test_a_leading_tilde_means_the_home_folder(release, monkeypatch):
    monkeypatch.setenv("HOME", str(release))
    assert data.resolve_data_dir("~") == release / data.FOLDER


def test_without_data_dir_the_environment_variable_names_the_folder(release, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(release))
    assert data.resolve_data_dir(None) == release / data.FOLDER
    assert len(data.load_split(False)) == data.IMAGES_PER_BATCH


def test_an_explicit_data_dir_wins_over_the_environment_variable(release, tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "not-here"))
    assert data.resolve_data_dir(release) == release / data.FOLDER


@pytest.mark.parametrize("env", [None, ""], ids=["unset", "empty"])
def test_with_neither_data_dir_nor_the_variable_the_error_names_both_ways_to_give_it(monkeypatch, env):
    if env is None:
        monkeypatch.delenv(data.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(data.ENV_VAR, env)
    message = (
        "data_dir is not set: pass --data-dir DIR (the folder holding cifar-10-batches-py/) "
        "or set OCCSENS_DATA_DIR"
    )
    with raises_exactly(message):
        data.load_split(False)


@pytest.mark.parametrize("make", ["missing", "empty", "unrelated files"])
def test_a_folder_without_cifar10_is_named_in_the_error(tmp_path, make):
    root = tmp_path / "where"
    if make != "missing":
        root.mkdir()
    if make == "unrelated files":
        (root / "notes.txt").write_text("no batches here")
        (root / data.FOLDER).mkdir()  # the folder name alone is not enough
    message = (
        f"data_dir {str(root)!r} holds no CIFAR-10: expected cifar-10-batches-py/ with test_batch and "
        "data_batch_1..5 in it (use --download to fetch it where the internet is reachable)"
    )
    with raises_exactly(message):
        data.load_split(False, root)


def test_a_missing_training_batch_is_named_and_the_test_split_still_loads(release):
    folder = release / data.FOLDER
    (folder / "data_batch_3").unlink()
    message = (
        f"data file {str(folder / 'data_batch_3')!r} is missing: CIFAR-10 needs "
        "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5"
    )
    with raises_exactly(message):
        data.load_split(True, release)
    assert len(data.load_split(False, release)) == data.IMAGES_PER_BATCH


def test_a_missing_test_batch_is_named(release):
    folder = release / data.FOLDER
    (folder / data.TEST_FILE).unlink()  # batches.meta still marks the folder as CIFAR-10
    with raises_exactly(f"data file {str(folder / 'test_batch')!r} is missing: CIFAR-10 needs test_batch"):
        data.load_split(False, release)


def test_a_batch_that_cannot_be_read_is_named_with_the_reason(tmp_path, small_batches):
    (tmp_path / data.TEST_FILE).mkdir()  # exists, but reading it fails
    path = tmp_path / data.TEST_FILE
    with raises_exactly(f"data file {str(path)!r} is a folder, not a file occsens can read"):
        data.load_split(False, tmp_path)


# --- files that are not what they claim -------------------------------------------------------------------


@pytest.mark.parametrize("keep", ["nothing", "1 byte", "half", "all but the last byte"])
def test_a_truncated_batch_is_reported_as_truncated(tmp_path, cifar, small_batches, keep):
    path = cifar.write_batch(
        tmp_path / data.TEST_FILE,
        cifar.batch_images(small_batches, 0),
        cifar.balanced_labels(small_batches, 0),
    )
    raw = path.read_bytes()
    cut = {"nothing": 0, "1 byte": 1, "half": len(raw) // 2, "all but the last byte": len(raw) - 1}[keep]
    path.write_bytes(raw[:cut])
    with pytest.raises(
        OcclusionError, match=f"^{re.escape(f'data file {str(path)!r} is truncated or corrupt (')}"
    ):
        data.load_split(False, tmp_path)


def _payloads(marker: Path, cifar, n: int) -> dict[str, object]:
    touch = Payload(os.system, f"touch {shlex.quote(str(marker))}")
    write = Payload(exec, f"open({str(marker)!r}, 'w').close()")
    images = cifar.batch_images(n, 0).reshape(n, -1)
    return {
        "whole file is os.system": touch,
        "labels are os.system": {"data": images, "labels": touch},
        "data is exec": {"data": write, "labels": cifar.balanced_labels(n, 0)},
    }


PAYLOADS = ["whole file is os.system", "labels are os.system", "data is exec"]
PAYLOAD_GLOBALS = {
    "whole file is os.system": f"{os.system.__module__}.system",
    "labels are os.system": f"{os.system.__module__}.system",
    "data is exec": "__builtin__.exec",  # protocol 2 writes Python 2's module names
}


@pytest.mark.parametrize("kind", PAYLOADS)
def test_the_hostile_payloads_are_live_when_unpickled_by_plain_pickle(tmp_path, cifar, small_batches, kind):
    # The control for the next test: without it, "no marker file" could mean a payload that never worked.
    marker = tmp_path / "pwned"
    raw = cifar.official_pickle(_payloads(marker, cifar, small_batches)[kind])
    pickle.loads(raw, encoding="latin1")  # noqa: S301 - on purpose
    assert marker.exists()


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_batch_that_would_run_code_is_refused_before_the_code_runs(tmp_path, cifar, small_batches, kind):
    marker = tmp_path / "pwned"
    raw = cifar.official_pickle(_payloads(marker, cifar, small_batches)[kind])
    path = cifar.write_batch(tmp_path / data.TEST_FILE, None, None, raw=raw)
    with raises_exactly(refused(path, PAYLOAD_GLOBALS[kind])):
        data.load_split(False, tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("obj", "protocol", "problem"),
    [
        pytest.param({1, 2}, 4, "holds a set, expected a dict", id="set (protocol 4 has a set opcode)"),
        pytest.param({1, 2}, 2, "__builtin__.set", id="set (protocol 2 names __builtin__.set)"),
        pytest.param([1, 2], 2, "holds a list, expected a dict", id="list"),
        pytest.param(Custom(), 2, f"{Custom.__module__}.Custom", id="custom class"),
        pytest.param(collections.OrderedDict(data=1), 2, "collections.OrderedDict", id="dict subclass"),
    ],
)
def test_a_file_holding_anything_but_a_dict_of_plain_values_is_refused(
    tmp_path, cifar, small_batches, obj, protocol, problem
):
    path = cifar.write_batch(tmp_path / data.TEST_FILE, None, None, raw=pickle.dumps(obj, protocol=protocol))
    expected = f"data file {str(path)!r} {problem}" if problem.startswith("holds") else refused(path, problem)
    with raises_exactly(expected):
        data.load_split(False, tmp_path)


@pytest.mark.parametrize("missing", ["data", "labels"])
def test_a_dict_without_data_or_labels_is_refused(tmp_path, cifar, small_batches, missing):
    batch = {"data": cifar.batch_images(small_batches, 0).reshape(small_batches, -1)}
    batch["labels"] = cifar.balanced_labels(small_batches, 0)
    del batch[missing]
    path = cifar.write_batch(tmp_path / data.TEST_FILE, None, None, raw=cifar.official_pickle(batch))
    with raises_exactly(f"data file {str(path)!r} lacks the 'data' array or the 'labels' list"):
        data.load_split(False, tmp_path)


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.zeros((20, 3, 32, 32), np.uint8), id="images not flattened"),
        pytest.param(np.zeros((20, 3071), np.uint8), id="a pixel short"),
        pytest.param(np.zeros((20, 32 * 32), np.uint8), id="grey"),
        pytest.param(np.zeros((20, 3072), np.float32), id="float pixels"),
        pytest.param(np.zeros(3072, np.uint8), id="one image, 1-D"),
    ],
)
def test_data_of_the_wrong_shape_or_type_is_refused_with_what_it_is(tmp_path, cifar, small_batches, array):
    raw = cifar.official_pickle({"data": array, "labels": cifar.balanced_labels(small_batches, 0)})
    path = cifar.write_batch(tmp_path / data.TEST_FILE, None, None, raw=raw)
    message = (
        f"data file {str(path)!r}: 'data' is {array.dtype} {tuple(array.shape)}, expected uint8 (N, 3072)"
    )
    with raises_exactly(message):
        data.load_split(False, tmp_path)


@pytest.mark.parametrize(("bad", "shown"), [(10, "0..10"), (-1, "-1..9")])
def test_labels_outside_0_to_9_are_refused_with_their_range(tmp_path, cifar, small_batches, bad, shown):
    labels = cifar.balanced_labels(small_batches, 0)
    labels[labels.index(5)] = bad  # one bad label among good ones
    path = cifar.write_batch(tmp_path / data.TEST_FILE, cifar.batch_images(small_batches, 0), labels)
    with raises_exactly(f"data file {str(path)!r}: labels range {shown}, expected 0..9"):
        data.load_split(False, tmp_path)


@pytest.mark.parametrize(
    ("labels", "got"),
    [
        pytest.param(list(range(10)) * 2 + [0], "(21,) int64", id="one label too many"),
        pytest.param([float(x % 10) for x in range(20)], "(20,) float64", id="float labels"),
    ],
)
def test_labels_that_are_not_one_integer_per_image_are_refused(tmp_path, cifar, small_batches, labels, got):
    raw = cifar.official_pickle(
        {"data": cifar.batch_images(small_batches, 0).reshape(small_batches, -1), "labels": labels}
    )
    path = cifar.write_batch(tmp_path / data.TEST_FILE, None, None, raw=raw)
    with raises_exactly(f"data file {str(path)!r}: 'labels' must be 20 integers, got {got}"):
        data.load_split(False, tmp_path)


def test_a_batch_of_the_wrong_size_is_refused(tmp_path, cifar, small_batches):
    n = small_batches - 1
    path = cifar.write_batch(tmp_path / data.TEST_FILE, cifar.batch_images(n, 0), cifar.balanced_labels(n, 0))
    with raises_exactly(f"data file {str(path)!r} has 19 images, expected 20"):
        data.load_split(False, tmp_path)


def test_a_split_whose_classes_are_unbalanced_is_refused_with_its_counts(tmp_path, cifar, small_batches):
    labels = [0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9]  # three 0s, one 9
    cifar.write_batch(tmp_path / data.TEST_FILE, cifar.batch_images(small_batches, 0), labels)
    message = (
        "test split has 20 images with class counts [3, 2, 2, 2, 2, 2, 2, 2, 2, 1], "
        "expected 2 of each of the 10 classes"
    )
    with raises_exactly(message):
        data.load_split(False, tmp_path)


# --- class names, digests, provenance ---------------------------------------------------------------------


def test_class_names_come_from_batches_meta(release, cifar):
    assert data.class_names(release) == cifar.CLASS_NAMES


@pytest.mark.parametrize(
    "names", [pytest.param(["cat"] * 9, id="nine names"), pytest.param([b"cat"] * 10, id="bytes, not str")]
)
def test_batches_meta_without_ten_names_is_refused(release, cifar, names):
    path = release / data.FOLDER / data.META_FILE
    path.write_bytes(pickle.dumps({"label_names": names}, protocol=4))
    with raises_exactly(f"data file {str(path)!r} does not list 10 class names under 'label_names'"):
        data.class_names(release)


def test_file_digests_cover_the_files_present_and_only_those(release):
    folder = release / data.FOLDER
    (folder / "data_batch_5").unlink()
    digests = data.file_digests(release)
    assert set(digests) == {
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "test_batch",
        "batches.meta",
    }
    assert digests["test_batch"] == hashlib.sha256((folder / "test_batch").read_bytes()).hexdigest()
    assert (
        data.file_digests(release, "md5")["batches.meta"]
        == hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()
    )


def test_provenance_of_made_up_files_is_an_unofficial_copy_with_its_image_count(release, small_batches):
    assert data.provenance(release) == f"unofficial copy, {6 * small_batches} images, checks passed"


def test_provenance_is_official_only_when_every_md5_matches_the_release(release, monkeypatch):
    digests = data.file_digests(release, "md5")
    monkeypatch.setattr(data, "OFFICIAL_MD5", digests)
    assert data.provenance(release) == "official copy"
    monkeypatch.setattr(data, "OFFICIAL_MD5", {**digests, "test_batch": "0" * 32})
    assert data.provenance(release).startswith("unofficial copy")


def test_provenance_never_says_checks_passed_for_a_release_that_fails_them(release):
    (release / data.FOLDER / "data_batch_2").write_bytes(b"")
    with pytest.raises(OcclusionError, match="data_batch_2' is truncated or corrupt"):
        data.provenance(release)


# --- the real copy ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_train(cifar_dir) -> data.Split:
    return data.load_split(True, cifar_dir)


@pytest.fixture(scope="module")
def real_test(cifar_dir) -> data.Split:
    return data.load_split(False, cifar_dir)


@pytest.mark.integration
def test_real_copy_has_50000_training_and_10000_test_images_balanced_over_10_classes(real_train, real_test):
    assert real_train.images.shape == (50_000, 3, 32, 32)
    assert real_test.images.shape == (10_000, 3, 32, 32)
    assert np.bincount(real_train.labels).tolist() == [5000] * 10
    assert np.bincount(real_test.labels).tolist() == [1000] * 10


@pytest.mark.integration
def test_real_copy_keeps_the_official_order(cifar_dir, real_train, real_test):
    # The first labels of the official files, as listed in ../shared/cifar10/README.md.
    names = data.class_names(cifar_dir)
    assert [names[i] for i in real_test.labels[:10]] == [
        "cat", "ship", "ship", "airplane", "frog", "frog", "automobile", "frog", "cat", "automobile",
    ]  # fmt: skip
    assert real_train.labels[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]


@pytest.mark.integration
def test_real_training_set_channel_means_match_the_published_figures(real_train):
    # Published: 0.4914, 0.4822, 0.4465 (transforms.Normalize in kuangliu/pytorch-cifar, main.py, the
    # figures most CIFAR-10 training code copies); 0.49140, 0.48216, 0.44653 are the same means to five
    # places, computed from the official files (../shared/cifar10/README.md). Tolerance 1e-4: the 4-place
    # published figures are within 4e-5 of the 5-place ones, while the mistakes this guards against are
    # much larger: R and B swapped moves a mean by 0.045, G and R by 0.009, dividing by 256 instead of 255
    # by 0.0019. (A missing training batch moves the means by as little as 7e-5; the count test catches it.)
    means = real_train.images.mean(axis=(0, 2, 3), dtype=np.float64) / 255
    np.testing.assert_allclose(means, [0.49140, 0.48216, 0.44653], rtol=0, atol=1e-4)


@pytest.mark.integration
def test_real_class_names_are_the_ten_official_ones(cifar_dir):
    assert data.class_names(cifar_dir) == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )  # fmt: skip


@pytest.mark.integration
def test_real_copy_is_an_unofficial_copy_that_passes_the_checks(cifar_dir):
    # The shared copy was rebuilt without the official 'filenames' key, so its md5s differ from the release's.
    assert data.provenance(cifar_dir) == "unofficial copy, 60000 images, checks passed"


def test_a_failed_download_says_what_to_do_instead(tmp_path, monkeypatch):
    """Offline, torchvision raises; the user gets one line naming the folder and the fix."""
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(
        OcclusionError, match=r"download to '.*' failed .*copy cifar-10-batches-py/ there by hand"
    ):
        data.download(tmp_path)
