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
