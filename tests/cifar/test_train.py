"""``occsens.cifar.train.train``: every argument checked before any work, a corrupt checkpoint refused
with one line, and every file written whole.

Training runs on a made-up release (20 images per batch: 100 training, 20 test) at width 2, so one
epoch takes seconds. The data folder passed to the refused calls does not exist: an argument that
were checked after the data is read would fail on the data instead, and the test would see it.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest
import torch

from occsens.cifar import data
from occsens.cifar.models import Architecture, build_model
from occsens.cifar.train import MAX_EPOCHS, MAX_SEED, Recipe, train
from occsens.errors import OcclusionError
from occsens.files import write

from .conftest import SMALL_BATCH, write_release

TINY = Architecture(width=2)
QUICK = Recipe(epochs=1, batch_size=50)  # 100 training images: two steps an epoch


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished one-epoch run: its folder holds tiny.pt, tiny.json, tiny.md, tiny.checkpoint.pt."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
        write_release(root, SMALL_BATCH)
        train(root / "run", name="tiny", arch=TINY, recipe=QUICK, data_dir=root, progress=False)
    return root


def _copy_run(finished: Path, tmp_path: Path) -> Path:
    shutil.copytree(finished, tmp_path / "copy")
    return tmp_path / "copy"


def test_a_run_writes_the_weights_the_card_and_the_checkpoint_and_nothing_else(finished: Path) -> None:
    names = sorted(p.name for p in (finished / "run").iterdir())
    assert names == ["tiny.checkpoint.pt", "tiny.json", "tiny.md", "tiny.pt"]
    weights = torch.load(finished / "run" / "tiny.pt", weights_only=True)
    checkpoint = torch.load(finished / "run" / "tiny.checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1
    assert all(torch.equal(weights[k], checkpoint["model"][k]) for k in weights)


# Each call must fail on its argument, named in the message, before the (missing) data is looked for.
BAD_CALLS = [
    ("width 0", dict(arch=lambda: Architecture(width=0)), r"^width must be an int in 1\.\.256, got 0$"),
    (
        "negative width",
        dict(arch=lambda: Architecture(width=-3)),
        r"^width must be an int in 1\.\.256, got -3$",
    ),
    (
        "absurd width",
        dict(arch=lambda: Architecture(width=10**6)),
        r"^width must be an int in 1\.\.256, got 1000000$",
    ),
    ("width as text", dict(arch=lambda: Architecture(width="24")), r"^width must be .*got '24' \(str\)$"),
    ("width as a float", dict(arch=lambda: Architecture(width=2.0)), r"^width must be .*got 2\.0 \(float\)$"),
    (
        "greyscale as text",
        dict(arch=lambda: Architecture(greyscale="False")),
        r"^greyscale must be True or False",
    ),
    (
        "epochs 0",
        dict(recipe=lambda: Recipe(epochs=0)),
        rf"^epochs must be an int in 1\.\.{MAX_EPOCHS}, got 0$",
    ),
    (
        "negative epochs",
        dict(recipe=lambda: Recipe(epochs=-1)),
        r"^epochs must be an int in 1\.\.1000, got -1$",
    ),
    (
        "absurd epochs",
        dict(recipe=lambda: Recipe(epochs=2**70)),
        r"^epochs must be an int in 1\.\.1000, got 1180591620717411303424$",
    ),
    (
        "negative seed",
        dict(recipe=lambda: Recipe(seed=-1)),
        rf"^seed must be an int in 0\.\.{MAX_SEED}, got -1$",
    ),
    ("seed as a float", dict(recipe=lambda: Recipe(seed=1.5)), r"^seed must be .*got 1\.5 \(float\)$"),
    ("batch 0", dict(recipe=lambda: Recipe(batch_size=0)), r"^batch_size must be a positive int, got 0$"),
    (
        "NaN rate",
        dict(recipe=lambda: Recipe(peak_lr=float("nan"))),
        r"^peak_lr must be a number in \[0, 10\], got nan$",
    ),
    (
        "zero rate",
        dict(recipe=lambda: Recipe(peak_lr=0.0)),
        r"^peak_lr must be a number in \(0, 10\], got 0$",
    ),
    (
        "padding 40",
        dict(recipe=lambda: Recipe(crop_padding=40)),
        r"^crop_padding must be an int in 0\.\.16, got 40$",
    ),
    (
        "batch past the data",
        dict(recipe=lambda: Recipe(batch_size=10**6)),
        r"^batch_size must be at most the 50,000",
    ),
    (
        "eleven classes",
        dict(arch=lambda: Architecture(num_classes=11)),
        r"^num_classes must be 10 to train on CIFAR",
    ),
    (
        "arch as a dict",
        dict(arch=lambda: {"width": 8}),
        r"^arch must be an occsens\.cifar\.models\.Architecture",
    ),
    ("empty name", dict(name=""), r"^name must be 1-100 letters"),
    ("name with a folder", dict(name="../escape"), r"^name must be .*got '\.\./escape'$"),
    ("hidden name", dict(name=".hidden"), r"^name must be .*got '\.hidden'$"),
    ("name as a number", dict(name=5), r"^name must be .*got 5$"),
    ("resume as text", dict(resume="False"), r"^resume must be True or False, got 'False' \(str\)$"),
    ("progress as 1", dict(progress=1), r"^progress must be True or False, got 1 \(int\)$"),
    ("note of two lines", dict(note="a\nb"), r"^note must be one line of text"),
]


@pytest.mark.parametrize(("overrides", "message"), [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_a_bad_argument_is_refused_before_any_work(tmp_path: Path, overrides: dict, message: str) -> None:
    kwargs = {
        "name": "tiny",
        "arch": TINY,
        "recipe": QUICK,
        "data_dir": tmp_path / "no-data",
        "progress": False,
    }
    with pytest.raises(OcclusionError) as err:
        # the dataclasses check themselves: building one can be the failing step
        resolved = {k: (v() if callable(v) else v) for k, v in overrides.items()}
        train(tmp_path / "run", **{**kwargs, **resolved})
    assert re.search(message, str(err.value)), str(err.value)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing written, not even the folder


def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "taken").write_text("a file")
    with pytest.raises(OcclusionError, match=r"^--out '.*taken' is not usable: .* is a file, not a folder$"):
        train(tmp_path / "taken", name="tiny", arch=TINY, recipe=QUICK, data_dir=tmp_path / "no-data")


def _checkpoint_variants(run: Path) -> dict[str, bytes | None]:
    """Damaged checkpoints, each replacing ``run/tiny.checkpoint.pt``; ``None`` means a special file."""
    good = (run / "tiny.checkpoint.pt").read_bytes()
    wrong_tensors = torch.load(io.BytesIO(good), weights_only=True)
    wrong_tensors["model"] = build_model(Architecture(width=3)).state_dict()  # same settings, other shapes
    no_keys = io.BytesIO()
    torch.save({"model": {}}, no_keys)
    bad_epoch = torch.load(io.BytesIO(good), weights_only=True)
    bad_epoch["epoch"] = 7  # past the recipe's one epoch
    bad_optimizer = torch.load(io.BytesIO(good), weights_only=True)
    bad_optimizer["optimizer"] = {"state": {}, "param_groups": [{"params": [0]}]}
    deep_history = torch.load(io.BytesIO(good), weights_only=True)
    deep_history["history"] = "[" * 100_000 + "]" * 100_000  # issue 26: a RecursionError was exit 3

    def saved(obj: object) -> bytes:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        return buffer.getvalue()

    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "random bytes": os.urandom(4096),
        "a pickle with code": pickle.dumps(_Exploit()),
        "other tensors": saved(wrong_tensors),
        "no keys": no_keys.getvalue(),
        "epoch past the recipe": saved(bad_epoch),
        "an optimizer of another model": saved(bad_optimizer),
        "deeply nested history": saved(deep_history),
    }


class _Exploit:
    """Unpickling this runs ``os.system``: ``torch.load(weights_only=True)`` must refuse it unrun."""

    def __reduce__(self) -> tuple:
        return (os.system, ("touch /tmp/occsens-exploit-ran",))


EXPECTED = {
    "empty": r"is not a readable state dict saved by torch\.save",
    "truncated": r"is not a readable state dict saved by torch\.save",
    "random bytes": r"is not a readable state dict saved by torch\.save",
    "a pickle with code": r"is not a readable state dict saved by torch\.save",
    "other tensors": r"does not match the architecture \(size mismatch",
    "no keys": r"is not a checkpoint written by occsens train",
    "epoch past the recipe": r"is corrupt \(epoch 7 of 1",
    "an optimizer of another model": r"its optimizer state does not fit this model",
    "deeply nested history": r"is corrupt \(its settings or history are nested too deeply\)",
}


@pytest.mark.parametrize("variant", sorted(EXPECTED))
def test_a_corrupt_checkpoint_is_one_clear_error_before_the_data_is_read(
    finished: Path, tmp_path: Path, variant: str
) -> None:
    run = _copy_run(finished, tmp_path) / "run"
    (run / "tiny.checkpoint.pt").write_bytes(_checkpoint_variants(run)[variant])  # type: ignore[arg-type]
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    Path("/tmp/occsens-exploit-ran").unlink(missing_ok=True)
    with pytest.raises(OcclusionError) as err:
        train(run, name="tiny", arch=TINY, recipe=QUICK, data_dir=tmp_path / "no-data", resume=True)
    assert re.search(EXPECTED[variant], str(err.value)), str(err.value)
    assert "checkpoint" in str(err.value) and "\n" not in str(err.value)
    assert not Path("/tmp/occsens-exploit-ran").exists()  # the pickle's code never ran
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # nothing replaced


def test_a_checkpoint_of_another_architecture_says_the_settings_differ(
    finished: Path, tmp_path: Path
) -> None:
    run = _copy_run(finished, tmp_path) / "run"
    with pytest.raises(OcclusionError, match=r"was made with other settings; rerun without --resume"):
        train(
            run,
            name="tiny",
            arch=Architecture(width=3),
            recipe=QUICK,
            data_dir=tmp_path / "no-data",
            resume=True,
        )


def test_resuming_a_finished_run_rewrites_the_same_model(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _copy_run(finished, tmp_path)
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
    before = (copy / "run" / "tiny.pt").read_bytes()
    (copy / "run" / "tiny.pt").unlink()
    train(copy / "run", name="tiny", arch=TINY, recipe=QUICK, data_dir=copy, resume=True, progress=False)
    assert (copy / "run" / "tiny.pt").read_bytes() == before


def test_a_failure_while_writing_the_model_leaves_the_previous_model_and_card(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights and both card files are one set: when the card cannot be written, the weights of
    the previous run stay too (the issue: `occsens train` wrote its files in place)."""
    copy = _copy_run(finished, tmp_path)
    run = copy / "run"
    (run / "tiny.pt").write_bytes(b"previous weights")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
    real_replace, moved = os.replace, []

    def disk_fails_on_the_second_file(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        if str(src).endswith(".tmp"):
            moved.append(Path(dst).name)
            if len(moved) == 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(src, dst)

    monkeypatch.setattr(write.os, "replace", disk_fails_on_the_second_file)
    with pytest.raises(OcclusionError, match=r"cannot write the weights and model card \(No space left"):
        train(run, name="tiny", arch=TINY, recipe=QUICK, data_dir=copy, resume=True, progress=False)
    assert moved == ["tiny.pt", "tiny.json"]  # the weights had been renamed into place first
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_an_interrupted_run_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its first checkpoint, a two-epoch run resumed from it ends where an uninterrupted one
    does, bit for bit (the checkpoint is read before the data; its normalisation is the model's)."""
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
    write_release(tmp_path, SMALL_BATCH)
    two = Recipe(epochs=2, batch_size=50)
    straight = train(
        tmp_path / "straight", name="tiny", arch=TINY, recipe=two, data_dir=tmp_path, progress=False
    )

    real_write = write.write_files

    def killed_after_the_first_checkpoint(out: Path, payload: dict, what: str, option: str = "--out") -> list:
        real_write(out, payload, what, option)
        raise KeyboardInterrupt

    import occsens.cifar.train as training

    monkeypatch.setattr(training, "write_files", killed_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "resumed", name="tiny", arch=TINY, recipe=two, data_dir=tmp_path, progress=False)
    assert torch.load(tmp_path / "resumed" / "tiny.checkpoint.pt", weights_only=True)["epoch"] == 1
    monkeypatch.setattr(training, "write_files", real_write)
    resumed = train(
        tmp_path / "resumed",
        name="tiny",
        arch=TINY,
        recipe=two,
        data_dir=tmp_path,
        resume=True,
        progress=False,
    )
    a, b = torch.load(straight, weights_only=True), torch.load(resumed, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("left", ["finished", "partial"])
def test_a_run_already_in_the_folder_is_never_replaced_silently(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, left: str
) -> None:
    """Issue 26: without --resume a finished run's four files were all replaced; a partial run (only its
    checkpoint) is refused the same way. The refusal comes before the data is read (it does not exist)."""
    copy = _copy_run(finished, tmp_path)
    run = copy / "run"
    if left == "partial":
        for file in ("tiny.pt", "tiny.json", "tiny.md"):
            (run / file).unlink()
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(OcclusionError, match=r"already holds a run named 'tiny' \(.*tiny\.checkpoint\.pt\)"):
        train(run, name="tiny", arch=TINY, recipe=QUICK, data_dir=tmp_path / "absent", progress=False)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    with pytest.raises(OcclusionError, match="resume and overwrite exclude each other"):
        train(
            run,
            name="tiny",
            arch=TINY,
            recipe=QUICK,
            data_dir=tmp_path / "absent",
            resume=True,
            overwrite=True,
        )
    monkeypatch.setattr(data, "IMAGES_PER_BATCH", SMALL_BATCH)
    train(run, name="tiny", arch=TINY, recipe=QUICK, data_dir=copy, overwrite=True, progress=False)
    assert sorted(p.name for p in run.iterdir()) == ["tiny.checkpoint.pt", "tiny.json", "tiny.md", "tiny.pt"]


def test_the_command_refuses_a_finished_run_without_resume_or_overwrite(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from occsens.cli import main

    copy = _copy_run(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in (copy / "run").iterdir()}
    code = main(
        ["train", "--name", "tiny", "--out", str(copy / "run"), "--data-dir", str(tmp_path / "absent")]
    )
    (line,) = capsys.readouterr().err.splitlines()
    assert code == 2 and "already holds a run named 'tiny'" in line and "--overwrite" in line
    assert {p.name: p.read_bytes() for p in (copy / "run").iterdir()} == before
