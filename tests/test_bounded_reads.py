"""Every file occsens reads is read at most as far as its format allows (``occsens.files``).

A data file that is a link to an endless device (``/dev/zero``, ``/dev/urandom``) or a named pipe must
be refused at once with one line, never read until memory runs out or waited on forever. The readers
run in a child process with its address space capped and an alarm set, so a regression fails this
test instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from occsens.errors import OcclusionError
from occsens.files import read_bounded

pytestmark = pytest.mark.skipif(
    not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="POSIX only"
)

# What the child may use: torch and a model take about 1 GB of address space (torch 2.8's CUDA build,
# the floor, reserves more at import and aborts under 4 GB: nox -s floors); an unbounded read of
# /dev/zero passes 8 GB within seconds and fails there with a MemoryError instead of growing on,
# a third of this 24 GB machine.
_ADDRESS_SPACE = 8 << 30
# Every reader answers in well under a second; a blocking open of a FIFO would wait forever.
_ALARM_S = 60

_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from pathlib import Path
    resource.setrlimit(resource.RLIMIT_AS, ({space}, {space}))
    signal.alarm({alarm})
    import torch
    from occsens import OcclusionError, read_image, read_images
    from occsens.images import read_labels
    from occsens.cifar import data, models
    from occsens.cifar.train import train, Recipe
    from occsens.cifar.models import Architecture

    def attempt(name, call):
        try:
            call()
            return name, "read"
        except OcclusionError as exc:
            return name, "OcclusionError: " + str(exc)
        except BaseException as exc:
            return name, type(exc).__name__ + ": " + str(exc)[:200]

    folder, link = Path(sys.argv[1]), sys.argv[2]
    release = folder / "data" / data.FOLDER
    out = folder / "run"
    results = dict([
        attempt("image", lambda: read_image(folder / link)),
        attempt("images", lambda: read_images([folder / link])),
        attempt("labels", lambda: read_labels(folder / link, ["a.png"], ["cat", "dog"])),
        attempt("cifar batch", lambda: data.load_split(False, release)),
        attempt("cifar meta", lambda: data.class_names(release)),
        attempt("weights", lambda: models.load_weights(models.build_model(), folder / link)),
        attempt("checkpoint", lambda: train(out, name="tiny", arch=Architecture(width=2),
                                            recipe=Recipe(epochs=1, batch_size=50), data_dir=release,
                                            resume=True, progress=False)),
    ])
    print(json.dumps(results))
    """
)


def _read_through(tmp_path: Path, target: str) -> dict[str, str]:
    """Every reader on a file named ``link`` that points at ``target`` (or is a FIFO when ``target`` is
    "fifo"); the release's test batch, its meta file and the checkpoint are such files too."""
    release = tmp_path / "data" / "cifar-10-batches-py"
    release.mkdir(parents=True)
    (tmp_path / "run").mkdir()
    places = [
        tmp_path / "link",
        release / "test_batch",
        release / "batches.meta",
        tmp_path / "run" / "tiny.checkpoint.pt",
    ]
    for place in places:
        if target == "fifo":
            os.mkfifo(place)
        else:
            place.symlink_to(target)
    script = _CHILD.format(space=_ADDRESS_SPACE, alarm=_ALARM_S)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path), "link"],
        capture_output=True,
        text=True,
        timeout=_ALARM_S + 60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("target", "kind"),
    [("/dev/zero", "a device"), ("/dev/urandom", "a device"), ("fifo", r"a named pipe \(FIFO\)")],
)
def test_a_link_to_an_endless_device_or_a_fifo_is_refused_by_every_reader(
    tmp_path: Path, target: str, kind: str
) -> None:
    import re

    results = _read_through(tmp_path, target)
    assert set(results) == {"image", "images", "labels", "cifar batch", "cifar meta", "weights", "checkpoint"}
    for reader, result in results.items():
        assert re.fullmatch(rf"OcclusionError: .* is {kind}, not a file occsens can read", result), (
            reader,
            result,
        )


def test_a_regular_file_over_its_format_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 101)
    with pytest.raises(
        OcclusionError,
        match=r"^labels file '.*big\.csv' is over 100 bytes \(101\), too large for a label file$",
    ):
        read_bounded(big, 100, "labels file", "a label file")
    assert read_bounded(big, 101, "labels file") == b"x" * 101  # the limit itself is allowed


def test_a_missing_file_a_folder_and_a_bad_path_are_one_line_each(tmp_path: Path) -> None:
    with pytest.raises(OcclusionError, match=r"^image '.*nope\.png' does not exist$"):
        read_bounded(tmp_path / "nope.png", 10, "image")
    with pytest.raises(OcclusionError, match=r"^image '.*' is a folder, not a file occsens can read$"):
        read_bounded(tmp_path, 10, "image")
    with pytest.raises(
        OcclusionError, match=r"^image must be a path \(str or pathlib\.Path\), got 5 \(int\)$"
    ):
        read_bounded(5, 10, "image")
    with pytest.raises(OcclusionError, match=r"^image must be a path naming a file or folder"):
        read_bounded("a\0b", 10, "image")
