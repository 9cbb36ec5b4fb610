"""The pytest entry point: ``pytest --occsens-conform MODULE:FUNCTION``, and the fixture."""

from __future__ import annotations

import textwrap
from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

IMPLS = textwrap.dedent(
    """
    import torch
    import occsens
    import occsens.conformance

    def right(model, images, *, patch, stride, fill):
        return occsens.occlude(model, images, patch=patch, stride=stride, fill=fill).attribution()

    def nothing(model, images, *, patch, stride, fill):
        raise occsens.conformance.Unsupported("nothing at all")

    def hangs(model, images, *, patch, stride, fill):
        import time
        time.sleep(3600)  # in a daemon thread of the leash: it cannot keep pytest alive

    def generator_exit(model, images, *, patch, stride, fill):
        raise GeneratorExit("bye")

    def fails_pytest(model, images, *, patch, stride, fill):
        import pytest
        pytest.fail("the implementation's own pytest.fail")

    def logits(model, images, *, patch, stride, fill):
        # occsens' own windows, but drops of logits: the unnormalised-scores mistake
        res = occsens.occlude(model, images, patch=patch, stride=stride, fill=fill, output=lambda z: z)
        return res.attribution()
    """
)


def test_the_plugin_is_registered_for_pytest() -> None:
    found = [e for e in entry_points(group="pytest11") if e.value == "occsens.conformance.pytest_plugin"]
    assert found, "pip install -e . registers occsens.conformance.pytest_plugin under pytest11"


def test_each_property_is_an_item_and_a_conforming_function_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest(
        "--occsens-conform", "my_impls:right", "--occsens-conform-examples", "2", "-v"
    )
    result.assert_outcomes(passed=12)  # 10 contract properties, the border convention, "verified"
    result.stdout.fnmatch_lines(
        ["*occsens-conform?closed form?*PASSED*", "*occsens conformance: border windows: flush*"]
    )


def test_a_failing_property_fails_its_item_with_the_counterexample(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest("--occsens-conform", "my_impls:logits", "--occsens-conform-examples", "3")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    result.stdout.fnmatch_lines(
        ["*probability scale fails for my_impls:logits:*", "*raw logits (unnormalised scores)*"]
    )


def test_without_the_option_the_plugin_adds_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_fixture_fails_a_test_with_every_failed_property(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_impls=IMPLS)
    pytester.makepyfile(
        test_mine=textwrap.dedent(
            """
            import my_impls

            def test_right(occsens_conformance):
                occsens_conformance(my_impls.right, examples=2)

            def test_logits(occsens_conformance):
                occsens_conformance(my_impls.logits, examples=2)
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*contract propert* failed:*", "*- probability scale:*"])


def test_an_implementation_that_supports_nothing_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest("--occsens-conform", "my_impls:nothing", "--occsens-conform-examples", "2")
    result.assert_outcomes(skipped=11, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["*verified fails for my_impls:nothing:*", "*not verified: the implementation raised Unsupported*"]
    )


@pytest.mark.parametrize("spec", ["my_impls:rihgt", "my_implz:right", "my_impls"])
def test_a_typo_in_the_name_is_one_short_message(pytester: pytest.Pytester, spec: str) -> None:
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest("--occsens-conform", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    error = result.stderr.str().strip()
    assert len(error.splitlines()) == 1 and error.startswith("ERROR: --occsens-conform:") and spec in error
    assert "Traceback" not in result.stdout.str() and len(result.stdout.lines) < 10  # pytest's header only


def test_a_hanging_implementation_fails_each_item_in_one_line_after_the_timeout(
    pytester: pytest.Pytester,
) -> None:
    """Issue 26: a hanging implementation printed nothing, forever; each item now stops at the limit."""
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest(
        "--occsens-conform", "my_impls:hangs", "--occsens-conform-examples", "1",
        "--occsens-conform-timeout", "0.2", "-p", "no:cacheprovider",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    said = "the implementation my_impls:hangs did not return within 0.2 s"
    result.stdout.fnmatch_lines([f"*closed form stopped for my_impls:hangs: {said}*"])
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize("impl", ["generator_exit", "fails_pytest"])
def test_a_base_exception_from_the_implementation_fails_items_in_a_few_lines(
    pytester: pytest.Pytester, impl: str
) -> None:
    """Issue 26: GeneratorExit or pytest.fail from the implementation gave ~10,000 lines of traceback
    (pytest.fail's outcome even ended the run); now each property fails with one line saying what was
    raised, and the whole output stays short."""
    pytester.makepyfile(my_impls=IMPLS)
    result = pytester.runpytest(
        "--occsens-conform", f"my_impls:{impl}", "--occsens-conform-examples", "1", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    raised = {"generator_exit": "GeneratorExit", "fails_pytest": "Failed"}[impl]
    result.stdout.fnmatch_lines([f"*closed form fails for my_impls:{impl}:*", f"*raised {raised}*"])
    # 10 failed contract properties, a few lines each (the counterexample and the property's claim)
    assert "Traceback" not in result.stdout.str() and len(result.stdout.lines) < 200
