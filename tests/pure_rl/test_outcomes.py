"""One masking rule for the trainer and the metrics: a grader timeout or infrastructure failure is neither scored 0 in
the reward nor counted as wrong in the metrics; a wrong answer (and Lean's own heartbeat timeout) is both."""

import pytest

from evals.verifier import math_verdict
from lean_env.types import Status, VerifyResult
from lean_env.verifier import to_verdict
from pure_rl.core.interfaces import Outcome, Verdict
from pure_rl.core.metrics import sample_outcome, summarize
from pure_rl.rewards import verifiable_rewards


def _math(reason, correct=False):
    return math_verdict({"correct": correct, "extracted": "1", "reason": reason}, "1", 5.0, cached=False)


MASKED = {
    "math grader timeout": _math("timeout"),
    "math grader crash": _math("crash"),
    "Lean wall clock": to_verdict(VerifyResult.wall_timeout(60.0)),
    "Lean infrastructure": to_verdict(VerifyResult.infra_error("REPL crashed")),
    "verifier failed": Verdict(None, None, {"reason": "verifier error"}),
}
GRADED = {
    "math right": _math("equal", correct=True),
    "math wrong": _math("not_equal"),
    "no answer": _math("no_answer"),
    "Lean heartbeat timeout": to_verdict(VerifyResult(Status.TIMEOUT)),
    "Lean proved": to_verdict(VerifyResult(Status.PROVED)),
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_a_grader_failure_is_masked_by_the_reward_and_left_out_of_the_metrics(name):
    verdict = MASKED[name]
    assert not verdict.outcome.graded and verdict.reward_or_none is None
    wrong = _math("not_equal")
    rewards, judged = verifiable_rewards([verdict, wrong], [True, True])
    assert judged.tolist() == [False, True] and rewards.tolist() == [0.0, 0.0]
    records = [{"id": "a", "samples": [{"outcome": sample_outcome(verdict), "answer_key": "1"}]},
               {"id": "b", "samples": [{"outcome": sample_outcome(wrong), "answer_key": "2"}]}]
    metrics = summarize(records, [1])
    assert metrics["problems_judged"] == 1 and metrics["samples_graded"] == 1  # the masked sample is no sample
    assert metrics["timeouts"] + metrics["infra_failures"] == 1


@pytest.mark.parametrize("name", sorted(GRADED))
def test_a_judged_answer_is_scored_and_counted(name):
    verdict = GRADED[name]
    assert verdict.outcome.graded
    rewards, judged = verifiable_rewards([verdict], [True])
    assert judged.tolist() == [True] and rewards.tolist() == [1.0 if verdict.outcome is Outcome.CORRECT else 0.0]
    metrics = summarize([{"id": "a", "samples": [{"outcome": sample_outcome(verdict), "answer_key": None}]}], [1])
    assert metrics["samples_graded"] == 1
    assert metrics["accuracy"]["value"] == (1.0 if verdict.outcome is Outcome.CORRECT else 0.0)


def test_the_math_grader_decides_timeouts_as_timeouts():
    assert _math("timeout").outcome is Outcome.TIMEOUT and _math("crash").outcome is Outcome.TIMEOUT
    assert to_verdict(VerifyResult.wall_timeout(1.0)).outcome is Outcome.TIMEOUT
    assert to_verdict(VerifyResult.infra_error("x")).outcome is Outcome.INFRA
    with pytest.raises(ValueError, match="a correct verdict needs correct and reward"):
        Verdict(None, None, outcome=Outcome.CORRECT)
