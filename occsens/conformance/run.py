"""``verify``: every property against one implementation, each case search seeded, bounded and shrunk.

Cases are drawn by hypothesis (``hypothesis.find`` with ``random=Random(seed)`` and no example
database), so the same seed draws the same cases and a failure shrinks towards its smallest form.
Each property checks at most ``CASES_PER_EXAMPLE * examples`` cases, searching and shrinking
together (a case calls the implementation once, or once per image for batch independence, twice
for determinism): the run is bounded by a count, not a clock, so it stays deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from random import Random
from typing import Any

from occsens.conformance import expected
from occsens.conformance.cases import Case
from occsens.conformance.properties import (
    BORDER,
    BORDER_CLAIM,
    BORDER_PROBES,
    PROPERTIES,
    Broken,
    NotApplicable,
    Property,
    attribution,
    closed_form_failure,
    property_names,
)
from occsens.conformance.results import (
    DEFAULT_EXAMPLES,
    PropertyResult,
    Unsupported,
    contract_failures,
    not_verified_words,
    verified,
)
from occsens.errors import OcclusionError, integer
from occsens.leash import DEFAULT_TIMEOUT, ExitCalled, TimedOut, call, timeout_seconds

# Cases checked per property, searching and shrinking together, per example asked for: the first
# ``examples`` are drawn, the rest shrink a failure. With 3, shrinking gets twice the search's cases,
# and every planted mistake in tests/conformance shrinks to an image of at most 16 pixels.
CASES_PER_EXAMPLE = 3


def verify(
    impl: Callable[..., Any],
    *,
    examples: int = DEFAULT_EXAMPLES,
    seed: int = 0,
    properties: Sequence[str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[PropertyResult]:
    """Check ``impl(model, images, *, patch, stride, fill) -> attribution [N, H, W]`` against the properties.

    ``impl`` gets a torch model (eval mode, float32 ``[B, C, H, W]`` pixel-space input in [0, 1],
    logits out), float32 ``images [N, C, H, W]``, ``patch`` and ``stride`` as (height, width) pairs
    of ints and ``fill`` as a float; it returns per-pixel scores ``[N, H, W]`` (numpy or torch) with
    Captum's meaning: each pixel's mean drop of the target class's softmax probability over the
    windows covering it, the target being each image's clean prediction. For a case it cannot
    express it raises ``Unsupported``.

    Returns one ``PropertyResult`` per property (``properties`` picks some by name), each from up
    to ``examples`` drawn cases (the fixed cases of "realistic sizes" are always all checked); the
    same ``seed`` draws the same cases. Each call of ``impl`` runs at most ``timeout`` seconds (None:
    no limit); past it, ``occsens.leash.TimedOut`` (an ``OcclusionError``) ends the verification.
    ``impl`` gets a model and images of its own on every call; what it changes in them is the
    "model and images unchanged" property's failure, and never moves the values it is held to.
    """
    if not callable(impl):
        raise OcclusionError(
            f"impl must be a callable impl(model, images, *, patch, stride, fill), got {type(impl).__name__}"
        )
    examples = integer(examples, "examples", low=1, high=10_000)
    seed = integer(seed, "seed", low=0)
    names = property_names()
    chosen = names if properties is None else list(properties)
    unknown = [n for n in chosen if n not in names]
    if unknown or not chosen:
        raise OcclusionError(
            f"properties {unknown or chosen!r} are unknown; choose from {', '.join(map(repr, names))}"
        )
    timeout = timeout_seconds(timeout)
    guarded = _leashed(impl, timeout)
    results = [
        _probe(prop, guarded) if prop.probes else _search(prop, guarded, examples, seed)
        for prop in PROPERTIES
        if prop.name in chosen
    ]
    if BORDER in chosen:
        results.append(border_convention(guarded))
    return results


def _leashed(impl: Callable[..., Any], timeout: float | None) -> Callable[..., Any]:
    """``impl`` run under ``leash.call``: at most ``timeout`` seconds a call, every exit an exception."""
    what = f"the implementation {getattr(impl, '__qualname__', None) or type(impl).__name__}"
    module = getattr(impl, "__module__", None)
    if module and not module.startswith("occsens."):
        what = f"the implementation {module}:{getattr(impl, '__qualname__', '?')}"

    def guarded(*args: Any, **kwargs: Any) -> Any:
        return call(impl, *args, timeout=timeout, what=what, **kwargs)

    return guarded


def _probe(prop: Property, impl: Callable[..., Any]) -> PropertyResult:
    """``prop`` checked on each of its fixed cases in turn, up to the first that fails."""
    checked, skipped = 0, 0
    for case in prop.probes:
        try:
            text = prop.check(impl, case, True)
        except Unsupported:
            skipped += 1
            continue
        except NotApplicable:
            continue
        except Broken as exc:
            text = str(exc)
        checked += 1
        if text is not None:
            return _failed(prop, text, checked, skipped, case)
    return _held(prop, checked, skipped)


def _failed(prop: Property, text: str, cases: int, skipped: int, case: Case) -> PropertyResult:
    """``prop`` failed on ``case`` (after ``cases`` checked cases), ``text`` saying how."""
    return PropertyResult(
        prop.name, prop.kind, "fail", prop.claim, text, cases=cases, skipped=skipped, case=case.as_dict()
    )


def _held(prop: Property, cases: int, skipped: int) -> PropertyResult:
    """``prop`` held on every case it checked: a pass, or untested where it checked none."""
    if not cases:
        said = f"Not tested: the implementation raised Unsupported for all {skipped} cases."
        return PropertyResult(prop.name, prop.kind, "untested", f"{prop.claim} {said}", skipped=skipped)
    return PropertyResult(prop.name, prop.kind, "pass", prop.claim, cases=cases, skipped=skipped)


def _search(prop: Property, impl: Callable[..., Any], examples: int, seed: int) -> PropertyResult:
    from hypothesis import HealthCheck, Phase, Verbosity, find, settings
    from hypothesis.errors import NoSuchExample

    count = {"calls": 0, "cases": 0, "skipped": 0}
    # Each case's verdict is kept, so that hypothesis replaying a case (it does, to confirm the
    # smallest one) gets the same answer without calling the implementation again: the search stays
    # consistent even for an implementation that is not deterministic, and after the budget is spent.
    verdicts: dict[Any, str | None] = {}

    stopped: list[BaseException] = []  # a call past its time limit ends the search, and then the verification

    def fails(case: Any) -> bool:
        if case not in verdicts:
            budget_left = count["calls"] < CASES_PER_EXAMPLE * examples and not stopped
            verdicts[case] = _verdict(case) if budget_left else None
        return verdicts[case] is not None

    def _verdict(case: Any) -> str | None:
        count["calls"] += 1
        try:
            text = prop.check(impl, case, False)
        except Unsupported:
            count["skipped"] += 1
            return None
        except NotApplicable:
            return None
        except (TimedOut, ExitCalled) as exc:  # raised after the search, not through hypothesis
            stopped.append(exc)
            return None
        except Broken as exc:
            text = str(exc)
        count["cases"] += 1
        return text

    budget = settings(
        max_examples=examples,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    try:
        case = find(prop.cases(), fails, settings=budget, random=Random(seed))
    except NoSuchExample:
        case = None
    if stopped:
        raise stopped[0]
    if case is None:
        return _held(prop, count["cases"], count["skipped"])
    try:
        text = prop.check(impl, case, True)  # once more, with the diagnosis
    except Broken as exc:
        text = str(exc)
    if text is None:
        text = f"{verdicts[case]} (a rerun of this case passed: the implementation is not deterministic)"
    return _failed(prop, text, count["cases"], count["skipped"], case)


def border_convention(impl: Callable[..., Any]) -> PropertyResult:
    """Which border convention ``impl`` follows, from the probes where the three conventions differ."""
    agreeing: set[str] | None = None
    tried, skipped = 0, 0

    def failed(case: Case, text: str | None, convention: str) -> PropertyResult:
        return PropertyResult(
            BORDER, "convention", "fail", BORDER_CLAIM, text, convention, tried, skipped, case.as_dict()
        )

    for case in BORDER_PROBES:
        model, images = case.oracle(), case.images()
        try:
            got = attribution(impl, model, images, case)
        except Unsupported:
            skipped += 1
            continue
        except Broken as exc:
            return failed(case, str(exc), "none")
        tried += 1
        here = {
            conv
            for conv in expected.CONVENTIONS
            if (found := expected.compare(got, model, images, case.fill, case.patch, case.stride, (conv,)))
            and found.agrees
        }
        if not here:
            return failed(case, closed_form_failure(got, model, images, case, diagnose=True), "none")
        agreeing = here if agreeing is None else agreeing & here
        if not agreeing:
            text = (
                f"{case.describe()}: follows the {sorted(here)[0]} convention here, but another one on an "
                "earlier probe"
            )
            return failed(case, text, "mixed")
    if agreeing is None:
        return PropertyResult(
            BORDER,
            "convention",
            "untested",
            BORDER_CLAIM + " Not tested: it raised Unsupported for every probe.",
            skipped=skipped,
        )
    name = next(c for c in expected.CONVENTIONS if c in agreeing)
    return PropertyResult(
        BORDER,
        "convention",
        "pass",
        f"It follows the {name} convention: {expected.CONVENTIONS[name]}.",
        convention=name,
        cases=tried,
        skipped=skipped,
    )


def assert_conforms(
    impl: Callable[..., Any],
    *,
    examples: int = DEFAULT_EXAMPLES,
    seed: int = 0,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> list[PropertyResult]:
    """``verify``, then ``AssertionError`` listing every failed contract property with its counterexample.

    For a test of your own: ``def test_mine(): assert_conforms(my_occlusion)``. Returns the results
    (conventions included) when every contract property holds.
    """
    results = verify(impl, examples=examples, seed=seed, timeout=timeout)
    failed = contract_failures(results)
    if not verified(results):
        raise AssertionError(not_verified_words(results))
    if failed:
        lines = [f"{len(failed)} contract propert{'y' if len(failed) == 1 else 'ies'} failed:"]
        lines += [f"- {r.name}: {r.counterexample}" for r in failed]
        raise AssertionError("\n".join(lines))
    return results
