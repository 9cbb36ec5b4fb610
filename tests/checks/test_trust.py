"""The trust summary as data (``occsens.checks.trust_claims``): each claim answered yes / no / not tested
by the results behind it, a pass counting only when the check's power reaches ``STRONG_POWER``."""

from __future__ import annotations

import dataclasses
import re

from occsens import checks
from occsens.checks import conditions as cond
from occsens.checks.results import check_result
from occsens.checks.trust import CLAIMS, STRONG_POWER


def with_power(result: checks.CheckResult, power: float | None) -> checks.CheckResult:
    return dataclasses.replace(result, power=power)


RANDOMISED = check_result(
    "model randomisation",
    {"final_abs_rank_correlation": 0.1, "layer_groups": 3, "ranked_maps": 8},
    cond.RANDOMISATION,
    "e",
    [0],
    power_condition=cond.RANDOMISATION_POWER,
)
DETERMINISTIC = check_result(
    "determinism", {"max_diff_repeat": 0.0, "max_diff_batch": 0.0}, cond.DETERMINISM, "e", [0]
)


def answers(results: list[checks.CheckResult]) -> dict[tuple[str, ...], str]:
    return {c.checks: c.answer for c in checks.trust_claims(results)}


def test_one_claim_per_entry_in_plain_words() -> None:
    claims = checks.trust_claims([])
    assert [c.claim for c in claims] == [claim for claim, _ in CLAIMS]
    jargon = re.compile(r"sink|insertion|deletion|AUC|AOPC|randomis|z =|Spearman", re.IGNORECASE)
    for c in claims:
        assert not jargon.search(c.claim), c.claim
        assert c.answer == "not tested" and "did not run" in c.why
        assert set(c.to_dict()) == {"claim", "answer", "checks", "power", "why"}


def test_a_weak_pass_does_not_license_what_the_model_learned() -> None:
    # randomisation's calibrated power is 0.40: its pass alone cannot answer "yes"
    assert RANDOMISED.passed and RANDOMISED.power is not None and RANDOMISED.power < STRONG_POWER
    (claim,) = [c for c in checks.trust_claims([RANDOMISED]) if c.checks == ("model randomisation",)]
    assert claim.answer == "not tested" and "power 0.40" in claim.why
    strong = with_power(RANDOMISED, 0.9)
    assert answers([strong])[("model randomisation",)] == "yes"
    summary = checks.trust_summary([RANDOMISED, DETERMINISTIC])
    assert summary.startswith("The maps can be trusted for reproducible numbers; not established")
    assert cond.RANDOMISATION.licence in summary.split("not established")[1]


def test_a_failure_answers_no_and_information_leaves_it_untested() -> None:
    failed = dataclasses.replace(DETERMINISTIC, verdict="fail")
    assert answers([failed])[("determinism",)] == "no"
    info = dataclasses.replace(with_power(RANDOMISED, 0.9), verdict="info")
    (claim,) = [c for c in checks.trust_claims([info]) if c.checks == ("model randomisation",)]
    assert claim.answer == "not tested" and "information" in claim.why


def test_a_claim_with_two_checks_needs_both() -> None:
    fill = check_result(
        "occluder leakage: fill class",
        {"fill_explained_share": 0.0},
        cond.FILL_CLASS,
        "e",
        [0],
    )
    sink = check_result("occluder leakage: sink class", {"sink_fraction": 0.9}, cond.SINK_CLASS, "e", [0])
    key = ("occluder leakage: fill class", "occluder leakage: sink class")
    assert fill.passed and not sink.passed
    assert answers([fill, sink])[key] == "no"
    sink_ok = check_result("occluder leakage: sink class", {"sink_fraction": 0.1}, cond.SINK_CLASS, "e", [0])
    assert answers([fill, sink_ok])[key] == "yes"
