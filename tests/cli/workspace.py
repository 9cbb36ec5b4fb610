"""A folder of everything a command line can be pointed at, good and bad, and a way to run the CLI in it.

The folder holds a user's module of tiny models (8x8 RGB in, 3 classes out: each forward pass takes
microseconds, so a command that gets past its door finishes in well under a second, except the HTML
report's figures), image files, label and class files, weights, and the hostile targets: a folder where
a file is expected, a file where a folder is expected, a named pipe, a text file named like an image,
a corrupt checkpoint. Old outputs are seeded before each run, so a test can tell whether a command
replaced them whole or left them as they were.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from occsens import cli

MODULE = "occsens_cli_fuzz_models"  # a name no installed package has
SCRIPT = "occsens_cli_fuzz_script"  # a script that exits when imported (it parses its own arguments)

MODELS = '''
import torch
from torch import nn


def lin8():
    """8x8 RGB images, 3 classes."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))


class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("the forward pass of Boom always fails")


def boom():
    return Boom()


def factory_fails():
    raise ValueError("this factory fails")


class Late(nn.Module):
    """Runs, but fails when occsens asks for its parameters (outside the wrapped forward pass)."""

    def __init__(self):
        super().__init__()
        self.inner = lin8()

    def forward(self, x):
        return self.inner(x)

    def parameters(self, recurse=True):
        raise TypeError("Late has no parameters to give")


def late():
    return Late()


def scores(out):
    return out.softmax(1)


def bad_scores(out):
    raise ValueError("bad_scores always fails")


not_callable = 3


def exits():
    """Ends the process behind occsens's back (issue 26: exit 0, no output)."""
    import os

    os._exit(0)


def generator_exit():
    raise GeneratorExit("a BaseException that is not an Exception")


def shouts():
    raise RuntimeError("\\x1b]0;pwned\\x07\\x1b[2J escape sequences")


def unsupported(model, images, *, patch, stride, fill):
    from occsens.conformance import Unsupported

    raise Unsupported("nothing at all")
'''

# The outputs a run may replace, seeded with old contents before each run (name: bytes).
OLD_OUTPUTS = {
    "out/index.html": b"<!doctype html><p>the old report</p></html>\n",
    "out/report.json": b'{"old": true}\n',
    "old.json": b'{"old": true}\n',
    "old.html": b"<!doctype html><p>the old conformance page</p></html>\n",
}


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


def _png(path: Path, side: int, value: int) -> None:
    Image.fromarray(np.full((side, side, 3), value, dtype=np.uint8)).save(path)


def make_workspace(root: Path) -> Path:
    """Fill ``root`` with the module, files and hostile targets the tests point commands at."""
    (root / f"{MODULE}.py").write_text(MODELS)
    (root / f"{SCRIPT}.py").write_text("import sys\n\nsys.exit('usage: train.py [--epochs N]')\n")
    (root / "imgs").mkdir()
    _png(root / "imgs" / "a.png", 8, 40)
    _png(root / "imgs" / "b.png", 8, 200)
    _png(root / "img.png", 8, 120)
    _png(root / "big.png", 64, 120)  # 4,096 pixels: over a small --max-pixels
    (root / "notimage.png").write_text("a text file named like an image\n")
    (root / "labels.csv").write_text("a.png,0\nb.png,2\n")
    (root / "badlabels.csv").write_text("a.png,zebra\n")
    (root / "classes.txt").write_text("cat\ndog\nbird\n")
    (root / "afile").write_text("a file where a folder is expected\n")
    (root / "adir").mkdir()
    (root / "adir" / "index.html").mkdir()  # a folder where the report's file would go
    torch.manual_seed(0)
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 3)).state_dict(), root / "w.pt")
    (root / "corrupt.pt").write_bytes(b"PK\x03\x04 not a zip archive at all")
    (root / "ckpt").mkdir()
    (root / "ckpt" / "default.checkpoint.pt").write_bytes(b"\x80\x04 a corrupt checkpoint")
    if hasattr(os, "mkfifo"):
        os.mkfifo(root / "fifo")
    # issue 26: links that lead nowhere, names that are not UTF-8, many frames, labels of many digits
    (root / "loop").symlink_to("loop2")
    (root / "loop2").symlink_to("loop")
    (root / "dangling").symlink_to("nowhere")
    (root / "names").mkdir()
    _png(Path(os.fsdecode(os.fsencode(root / "names") + b"/bad\xff.png")), 8, 90)
    frames = [Image.fromarray(np.full((8, 8, 3), v, dtype=np.uint8)) for v in (10, 200)]
    frames[0].save(root / "names" / "anim.gif", save_all=True, append_images=frames[1:])
    (root / "links").mkdir()
    _png(root / "links" / "a.png", 8, 40)
    (root / "links" / "gone.png").symlink_to("nowhere.png")
    (root / "longlabels.csv").write_text("a.png," + "7" * 5000 + "\n")
    return root


def seed_outputs(root: Path) -> None:
    """Put the old outputs back as they were, and remove what a run added at the top of ``root``."""
    for name, content in OLD_OUTPUTS.items():
        path = root / name
        if path.is_dir():  # a run must not leave a folder here; undo it, so the next run starts clean
            path.rmdir()
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file under ``root`` (content) and folder (None), except Python's and hypothesis's caches."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        if {"__pycache__", ".hypothesis"} & set(path.parts) or path.is_symlink():
            continue
        rel = str(path.relative_to(root))
        if path.is_dir():
            found[rel] = None
        elif path.is_file():
            found[rel] = path.read_bytes()
    return found


def restore(root: Path, pristine: dict[str, bytes | None]) -> None:
    """Put ``root`` back as ``snapshot`` found it: remove what was added, rewrite what was changed."""
    now = snapshot(root)
    for rel in sorted(set(now) - set(pristine), key=lambda r: -r.count(os.sep)):  # deepest first
        path = root / rel
        path.rmdir() if path.is_dir() else path.unlink()
    for rel, content in pristine.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
        elif now.get(rel) != content:
            if path.is_dir():
                path.rmdir()
            path.write_bytes(content)


def leftovers(root: Path) -> list[str]:
    """Temporary or backup files of ``occsens.files.write`` left anywhere under ``root``."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".occsens-*"))


@contextlib.contextmanager
def inside(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the current folder (contextlib.chdir is Python 3.11+)."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


class _FillingFile:
    """A file whose write stores half of the bytes, then fails as a full disk does (ENOSPC)."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data[: len(data) // 2])
        self._file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)

    def __enter__(self) -> _FillingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


@contextlib.contextmanager
def full_disk(after: int = 0) -> Iterator[list[int]]:
    """Every file opened for writing through ``os.fdopen`` (how ``occsens.files.write`` stages a file) after
    the first ``after`` ones fills the disk halfway through its first write. Yields the count of files
    opened, so a test can check the hook was reached."""
    real, opened = os.fdopen, [0]

    def fdopen(fd: int, mode: str = "r", *args: object, **kwargs: object) -> object:
        file = real(fd, mode, *args, **kwargs)  # type: ignore[call-overload]
        if "w" not in mode:
            return file
        opened[0] += 1
        return file if opened[0] <= after else _FillingFile(file)

    os.fdopen = fdopen  # type: ignore[assignment]
    try:
        yield opened
    finally:
        os.fdopen = real


def run_cli(argv: Sequence[str]) -> Outcome:
    """``occsens ARGV`` in this process: the exit code (returned, or from the parser's SystemExit),
    stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return Outcome(code, out.getvalue(), err.getvalue())


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("occsens: error:")]
