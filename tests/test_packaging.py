"""The package as a user installs and starts it: metadata, a light command line, no side effects.

* ``occsens --help``, every ``occsens COMMAND --help`` and argument errors import no torch (torch
  takes seconds to import; the parser must answer first). ``import occsens`` imports no torch either:
  its public names load on first use, and all of them resolve.
* ``python -m occsens`` is the ``occsens`` command.
* Importing occsens and calling ``occlude`` leaves the process's allocator as it was; the ``occsens``
  command (its own process) applies ``occsens._alloc.keep_heap_memory``.
* A missing optional dependency (torchvision) says which extra installs it.
* The wheel carries the license, ``py.typed`` and the metadata an index shows.

Each "imports no torch" check runs in a fresh interpreter: this test process has torch loaded already.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

import occsens
from occsens.errors import OcclusionError

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    # 300 s: the slowest of these scripts imports torch and runs a tiny model (a few seconds alone;
    # minutes on the 2-core machine when the suite and a benchmark share it).
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def last_json(done: subprocess.CompletedProcess[str]) -> dict:
    assert done.stdout.strip(), f"no output (exit {done.returncode}):\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# Records who imports torch first: the occsens frames of the stack at that moment.
TORCH_SPY = """
import json, sys, traceback

first = []

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not first:
            first.extend(f"{f.filename.split('/occsens/')[-1]}:{f.lineno}" for f in traceback.extract_stack()
                         if "/occsens/" in f.filename)
        return None

sys.meta_path.insert(0, Spy())
"""

HELP_EVERY_COMMAND = (
    TORCH_SPY
    + """
import argparse, contextlib, io
from occsens.cli import build_parser, main

parser = build_parser()
(sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
commands = sorted(sub.choices)
codes = {}
for argv in [["--help"], *([c, "--help"] for c in commands), ["occlude", "x.png", "--patch", "4x"]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(argv)
        except SystemExit as exc:
            codes[" ".join(argv)] = exc.code
print(json.dumps({"commands": commands, "codes": codes, "torch": "torch" in sys.modules, "first": first}))
"""
)


def test_help_of_every_command_and_an_argument_error_import_no_torch() -> None:
    out = last_json(run_python(HELP_EVERY_COMMAND))
    # the commands the README documents, so a command missing from the parser fails here too
    assert {"occlude", "report", "explain", "check", "train", "evaluate", "bench"} <= set(out["commands"])
    assert set(out["codes"].values()) <= {0, 2}
    assert out["codes"]["occlude x.png --patch 4x"] == 2  # argparse's usage error
    assert not out["torch"], "building the parser or --help imported torch, first via: " + " <- ".join(
        reversed(out["first"])
    )


def test_import_occsens_imports_no_torch_until_a_name_is_used() -> None:
    code = (
        TORCH_SPY
        + """
import occsens
before = "torch" in sys.modules
occsens.occlude
print(json.dumps({"before": before, "after": "torch" in sys.modules, "first": first}))
"""
    )
    out = last_json(run_python(code))
    assert not out["before"], "import occsens imported torch via: " + " <- ".join(reversed(out["first"]))
    assert out["after"]  # the spy sees torch once a name that needs it is used


def test_every_public_name_resolves_to_the_object_its_module_defines() -> None:
    import importlib

    assert set(occsens.__all__) == set(occsens._LAZY) | {"__version__", "load_model"}
    for name, module in occsens._LAZY.items():
        assert getattr(occsens, name) is getattr(importlib.import_module(module), name), name
    assert set(occsens.__all__) <= set(dir(occsens))
    assert "importlib" not in dir(occsens)  # the module's helpers are not offered for completion
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        occsens.nope  # noqa: B018


def test_python_dash_m_occsens_is_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "occsens", "--help"], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: occsens ")
    assert all(c in done.stdout for c in ("occlude", "report", "check"))
    version = subprocess.run(
        [sys.executable, "-m", "occsens", "--version"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert version.stdout.strip() == f"occsens {occsens.__version__}"


# --------------------------------------------------------------------------- allocator

# Whether glibc serves a 256 MB malloc by mmap, read from mallinfo2's count of mmapped blocks. By
# default it does (glibc's mmap threshold tops out at 32 MB on 64-bit); keep_heap_memory turns mmap
# off (M_MMAP_MAX = 0), so the block comes from the heap. malloc does not touch the pages: no memory
# is used.
MMAP_PROBE = """
import ctypes

class Mallinfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]

def big_malloc_is_mapped():
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Mallinfo2
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblks
    block = libc.malloc(256 << 20)
    mapped = libc.mallinfo2().hblks > before
    libc.free(block)
    return mapped
"""


def _glibc_with_mallinfo2() -> bool:
    import ctypes
    import platform

    return platform.libc_ver()[0] == "glibc" and hasattr(ctypes.CDLL(None), "mallinfo2")


needs_glibc = pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="reads glibc's mallinfo2 (2.33+)")


@needs_glibc
def test_occlude_in_a_users_process_leaves_the_allocator_as_it_was() -> None:
    code = (
        MMAP_PROBE
        + """
import json
import torch
from torch import nn
import occsens
from occsens import _alloc

torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
res = occsens.occlude(model, torch.rand(2, 3, 8, 8), patch=4, progress=False)
print(json.dumps({"windows": res.plan.positions, "called": _alloc._called, "mapped": big_malloc_is_mapped()}))
"""
    )
    out = last_json(run_python(code))
    assert out["windows"] == 4  # it did occlude: 2x2 windows of 4x4 on 8x8
    assert not out["called"]
    assert out["mapped"], "after occlude, glibc no longer maps large blocks: mallopt was changed"


@needs_glibc
def test_the_occsens_command_tunes_the_allocator_of_its_own_process(tmp_path: Path) -> None:
    code = (
        MMAP_PROBE
        + """
import json
from occsens.cli import main
from occsens import _alloc

fresh = big_malloc_is_mapped()
rc = main(["occlude", "no-such-image.png", "--quiet"])
print(json.dumps({"fresh": fresh, "rc": rc, "called": _alloc._called, "mapped": big_malloc_is_mapped()}))
"""
    )
    out = last_json(run_python(code, cwd=tmp_path))
    assert out["fresh"]  # the probe sees glibc's default first, so the next line can tell the difference
    assert out["rc"] == 2  # the missing image: one-line error after the command started
    assert out["called"]
    assert not out["mapped"]


# --------------------------------------------------------------------------- optional dependencies


def test_downloading_cifar10_without_torchvision_names_the_extra(monkeypatch, tmp_path: Path) -> None:
    from occsens.cifar import data

    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)  # `import` of it raises ImportError
    with pytest.raises(OcclusionError, match=r'needs torchvision.*pip install "occsens\[download\]"'):
        data.download(tmp_path)


def test_a_torchvision_benchmark_model_without_torchvision_names_the_extra(monkeypatch) -> None:
    from occsens import bench

    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(OcclusionError, match=r'--models resnet18 needs torchvision.*"occsens\[bench\]"'):
        bench.MODELS["resnet18"]()


# --------------------------------------------------------------------------- the wheel


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    """pyproject lists occsens's packages by hand (templates/ is mapped in); a new one must be added."""
    try:
        import tomllib
    except ImportError:  # Python 3.10: pytest's own dependency
        import tomli as tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "occsens").rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_the_wheel_carries_license_types_and_metadata(tmp_path: Path) -> None:
    setuptools = pytest.importorskip("setuptools", reason="building the wheel without isolation")
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:  # pyproject's build floor: the SPDX license string needs 77
        pytest.skip(f"setuptools {setuptools.__version__} here; pyproject's build needs setuptools>=77")
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    for name in ("occsens", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", "out"]
    done = subprocess.run(cmd, cwd=source, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (source / "out").glob("occsens-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        dist = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = z.read(f"{dist}/METADATA").decode()
        license_text = z.read(f"{dist}/licenses/LICENSE").decode()
    assert "occsens/py.typed" in names
    assert license_text.startswith("MIT License")
    lines = metadata.splitlines()
    assert "License-Expression: MIT" in lines
    assert "License-File: LICENSE" in lines
    assert "Classifier: Typing :: Typed" in lines
    requires = [line.removeprefix("Requires-Dist: ") for line in lines if line.startswith("Requires-Dist: ")]
    torchvision = [r for r in requires if r.startswith("torchvision")]
    assert torchvision and all("extra ==" in r for r in torchvision), torchvision  # never a hard dependency
    assert any(r.startswith("torchvision") and 'extra == "download"' in r for r in requires)
    # every hard dependency has a floor, so `nox -s floors` has something to install
    hard = [r for r in requires if "extra ==" not in r]
    assert hard and all(">=" in r for r in hard), hard
