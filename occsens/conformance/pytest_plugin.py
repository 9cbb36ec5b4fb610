"""pytest plugin: ``pytest --occsens-conform MODULE:FUNCTION`` runs each property as a test item.

Installed with occsens (entry point ``pytest11``), so in a project's CI:

    pytest --occsens-conform myproject.explain:occlusion_map      # one item per property

A failing contract property fails its item with the shrunk counterexample; a property the function
cannot express (it raised ``occsens.conformance.Unsupported`` for every case) is skipped; the border
convention passes and is named in the summary. A last item, ``occsens-conform[verified]``, fails
when no contract property could be tested at all: skips alone must not read as a pass in CI.
``--occsens-conform-examples N``, ``--occsens-conform-seed S`` and ``--occsens-conform-timeout
SECONDS`` (per call, default 600) set the search. A name that cannot be loaded stops the run at
collection with one line. The names ``captum``, ``monai``, ``notebook`` and
``occsens`` work too.

Or, without the option, a test of your own with the fixture (all contract properties in one test):

    def test_my_occlusion_conforms(occsens_conformance):
        occsens_conformance(occlusion_map)       # AssertionError listing each failed property

This module is imported by every pytest run where occsens is installed: it imports nothing heavy
until the option or the fixture is used.
"""

from __future__ import annotations

from typing import Any

import pytest

from occsens.conformance.results import DEFAULT_EXAMPLES
from occsens.leash import DEFAULT_TIMEOUT

_IMPL = pytest.StashKey[Any]()
_CONVENTIONS = pytest.StashKey[list]()
_RESULTS = pytest.StashKey[list]()  # every property's result, for the "verified" item
VERIFIED = "verified"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("occsens", "occsens conformance of an occlusion implementation")
    group.addoption(
        "--occsens-conform",
        default=None,
        metavar="MODULE:FUNCTION",
        help="run occsens' occlusion properties against this function "
        "(model, images, *, patch, stride, fill) "
        "-> attribution [N, H, W], one test item per property",
    )
    group.addoption(
        "--occsens-conform-examples",
        type=int,
        default=DEFAULT_EXAMPLES,
        help=f"cases drawn per property (default {DEFAULT_EXAMPLES})",
    )
    group.addoption("--occsens-conform-seed", type=int, default=0, help="seed of the drawn cases (default 0)")
    group.addoption(
        "--occsens-conform-timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=f"longest one call of the function may take, in seconds (default {DEFAULT_TIMEOUT:g})",
    )


class ConformanceFailure(Exception):
    """A contract property failed; the message is the counterexample."""


class PropertyItem(pytest.Item):
    """One property run against the implementation named by ``--occsens-conform``."""

    def __init__(self, *, spec: str, prop: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.prop = prop

    def runtest(self) -> None:
        from occsens.conformance import verify
        from occsens.conformance.results import not_verified_words, verified

        config = self.config
        if self.prop == VERIFIED:
            results = config.stash.get(_RESULTS, [])
            if results and not verified(results):
                raise ConformanceFailure(not_verified_words(results))
            if not results:
                pytest.skip("no property of the conformance suite ran")
            return
        (result,) = verify(
            config.stash[_IMPL],
            examples=config.getoption("occsens_conform_examples"),
            seed=config.getoption("occsens_conform_seed"),
            properties=[self.prop],
            timeout=config.getoption("occsens_conform_timeout"),
        )
        config.stash.setdefault(_RESULTS, []).append(result)
        if result.kind == "convention" and result.convention is not None:
            said = result.explanation if result.passed else f"no known convention: {result.counterexample}"
            config.stash.setdefault(_CONVENTIONS, []).append(f"{result.name}: {result.verdict} ({said})")
        if result.status == "untested":
            pytest.skip(result.explanation)
        if result.kind == "contract" and result.status == "fail":
            raise ConformanceFailure(f"{result.counterexample}\n\nThe property: {result.explanation}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from occsens.errors import OcclusionError

        if isinstance(excinfo.value, ConformanceFailure):
            return f"{self.prop} fails for {self.spec}:\n{excinfo.value}"
        if isinstance(excinfo.value, OcclusionError):  # a time limit passed, bad arguments: one line
            return f"{self.prop} stopped for {self.spec}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"occsens conformance of {self.spec}: {self.prop}"


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    spec = config.getoption("occsens_conform")
    if not spec:
        return
    from occsens.conformance import load_impl
    from occsens.conformance.properties import property_names
    from occsens.errors import OcclusionError
    from occsens.leash import printable

    try:
        config.stash[_IMPL] = load_impl(spec)
    except OcclusionError as exc:  # a typo in the name: one line, not a traceback per property
        raise pytest.UsageError(f"--occsens-conform: {printable(str(exc))}") from None
    for name in [*property_names(), VERIFIED]:
        items.append(PropertyItem.from_parent(session, name=f"occsens-conform[{name}]", spec=spec, prop=name))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    for line in config.stash.get(_CONVENTIONS, []):
        terminalreporter.write_line(f"occsens conformance: {line}")


@pytest.fixture
def occsens_conformance() -> Any:
    """``occsens.conformance.assert_conforms``: call it with your implementation (and ``examples``)."""
    from occsens.conformance import assert_conforms

    return assert_conforms
