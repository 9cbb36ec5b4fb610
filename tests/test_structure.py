"""How the package is built: layers whose imports run one way, modules of one idea each.

The import graph is read from the source with ``ast`` (every ``import`` statement, at module level
or inside a function), so this runs without importing anything. Layers (README, "How it is built"):

* ``occsens.engine`` imports nothing from occsens but the leaves ``occsens.errors``, ``occsens._alloc``
  and ``occsens.constants``;
* ``occsens.checks`` builds on the engine only; ``occsens.report`` on the engine and the checks;
  ``occsens.datasurvey`` on those three; none knows CIFAR-10 (``occsens.cifar``) or the command line;
* ``occsens.cli`` is the only importer of argparse.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "occsens"
MAX_LINES = 600  # issue 11: one idea per module; past this a module is doing several jobs


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """The occsens modules (and outside top-level packages) that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package upwards
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:  # `from occsens.cifar import samples` imports a module
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        elif (  # importlib.import_module("occsens.x"): an import all the same, made at call time
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


GRAPH = {name: {i for i in _imports(name) if i in MODULES and i != name} for name in MODULES}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node] - set(DISPLAY_HOOKS.get(node, ()))):  # call-time links: no cycle
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycle() is None, " -> ".join(_cycle() or [])


def _in(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


# Leaves every layer may import: the error type and argument checks, the allocator settings, and the
# package's fixed names and limits (no torch in any of them).
LEAVES = ("occsens.errors", "occsens._alloc", "occsens.constants")


def test_the_leaves_import_nothing_of_occsens_or_torch() -> None:
    for leaf in LEAVES:
        imported = _imports(leaf)
        assert not {i for i in imported if i in MODULES or i.split(".")[0] in ("torch", "numpy")}, leaf


@pytest.mark.parametrize(
    "layer, allowed",
    [
        ("occsens.engine", ("occsens.engine", *LEAVES)),
        ("occsens.checks", ("occsens.checks", "occsens.engine", *LEAVES, "occsens.files")),
        ("occsens.report", ("occsens.report", "occsens.checks", "occsens.engine", *LEAVES, "occsens.files")),
        (  # surveys read images (occsens.images) and write stores (occsens.output)
            "occsens.datasurvey",
            (
                "occsens.datasurvey",
                "occsens.report",
                "occsens.checks",
                "occsens.engine",
                *LEAVES,
                "occsens.files",
                "occsens.images",
            ),
        ),  # fmt: skip
    ],
)
def test_a_layer_imports_only_the_layers_below_it(layer: str, allowed: tuple[str, ...]) -> None:
    wrong = {
        f"{name} imports {dep}"
        for name in MODULES
        if _in(name, layer)
        for dep in GRAPH[name]
        if not any(_in(dep, ok) for ok in allowed) and dep not in DISPLAY_HOOKS.get(name, ())
    }
    assert not wrong, sorted(wrong)


# The one upward link, and why: issue 15 asks for ``res.plot()``, ``res.overlay()`` and rich display on
# the result itself. ``Occlusion``'s display methods load the report's plotting module when called
# (``importlib.import_module``), so importing the engine never imports matplotlib or the report, and
# data still flows one way: the report reads a result, the engine never uses what the report computes.
DISPLAY_HOOKS = {"occsens.engine.occlusion": ("occsens.report.plots",)}


def test_the_display_hook_is_the_only_upward_link_and_is_made_at_call_time() -> None:
    for name, targets in DISPLAY_HOOKS.items():
        assert set(targets) <= GRAPH[name], f"{name} no longer reaches {targets}: drop the exception"
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        top_level = {
            alias.name if isinstance(node, ast.Import) else node.module
            for node in tree.body
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        }
        assert not any(_in(t, "occsens.report") for t in top_level), "the engine must not import the report"


def test_the_library_never_imports_the_command_line() -> None:
    """Only ``python -m occsens`` (``__main__``) enters the CLI: the library, the conformance suite and the
    benchmark never import it (user code is loaded by ``occsens.user_code``, shared by the CLI and the
    conformance suite)."""
    users = {
        f"{name} imports {dep}"
        for name in MODULES
        if not _in(name, "occsens.cli") and name != "occsens.__main__"
        for dep in GRAPH[name]
        if _in(dep, "occsens.cli")
    }
    assert not users, sorted(users)


def test_only_the_command_line_imports_argparse() -> None:
    users = {name for name in MODULES if "argparse" in _imports(name) and not _in(name, "occsens.cli")}
    assert not users, sorted(users)


def test_no_module_is_over_the_line_limit() -> None:
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_the_graph_reader_sees_what_it_must() -> None:
    """The reader itself: a known import, a function-local one and a submodule imported by name."""
    assert "occsens.errors" in GRAPH["occsens.engine.plan"]
    assert "occsens.engine.layers" in GRAPH["occsens.cifar.models"]
    assert "argparse" in _imports("occsens.cli.args")


def test_the_public_face_is_what_the_readme_promises() -> None:
    """``occsens.__all__`` is pinned: a name added or lost is a decision, not an accident."""
    import occsens

    assert sorted(occsens.__all__) == sorted(
        [
            "CheckResult",
            "ENGINE_TOLERANCE",
            "Occlusion",
            "OcclusionError",
            "Plan",
            "__version__",
            "as_images",
            "as_model",
            "engine_tolerance",  # issue 28: the engines' agreement bound
            "eval_mode",
            "explain",
            "load_model",
            "notebook_occlude",
            "occlude",
            "read_image",
            "read_images",
            "register_pointwise",
            "run_checks",
            "survey",
        ]
    )
    assert all(getattr(occsens, name, None) is not None for name in occsens.__all__)
