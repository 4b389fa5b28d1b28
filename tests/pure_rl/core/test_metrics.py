"""Metrics: sample outcomes (timeouts and infrastructure never wrong), unbiased pass@k, maj@k, bootstrap CIs, summaries."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lean_env.minif2f
from evals.verifier import math_verdict
from lean_env.types import Status, VerifyResult
from lean_env.verifier import to_verdict
from pure_rl.core.interfaces import Verdict
from pure_rl.core.metrics import (
    bootstrap_ci,
    majority_correct,
    metric_with_ci,
    pass_at_k,
    problem_counts,
    sample_outcome,
    summarize,
    wilson_ci,
)


def _math(correct, reason):
    """A verdict as the math grader builds it (the grader, not the metrics, decides its outcome)."""
    if correct is None:
        return Verdict(None, None, {"reason": reason, "extracted": "1"})
    return math_verdict({"correct": correct, "extracted": "1", "reason": reason}, "1", 0.0, cached=False)


@pytest.mark.parametrize(
    ("verdict", "outcome"),
    [
        (_math(True, "equal"), "correct"),
        (_math(False, "not_equal"), "wrong"),
        (_math(False, "no_answer"), "wrong"),
        (_math(False, "timeout"), "timeout"),  # the grader's worker was killed: not the answer's fault
        (_math(False, "crash"), "timeout"),
        (_math(None, "no_gold"), "infra"),
        (to_verdict(VerifyResult(Status.PROVED)), "correct"),
        (to_verdict(VerifyResult(Status.LEAN_ERROR)), "wrong"),
        (to_verdict(VerifyResult(Status.FORBIDDEN)), "wrong"),
        (to_verdict(VerifyResult(Status.TIMEOUT)), "wrong"),  # Lean's deterministic heartbeat limit: the proof's fault
        (to_verdict(VerifyResult.wall_timeout(60.0)), "timeout"),
        (to_verdict(VerifyResult.infra_error("REPL crashed")), "infra"),
    ],
)
def test_sample_outcome(verdict, outcome):
    assert sample_outcome(verdict) == outcome


def test_one_pass_at_k_implementation():
    assert pass_at_k is lean_env.minif2f.pass_at_k


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 9).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_is_the_fraction_of_k_subsets_with_a_success(ncs):
    n, c, k = ncs
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    brute = sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)
    assert pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12)


def _s(outcome, key=None):
    return {"outcome": outcome, "answer_key": key}


def test_majority_vote():
    assert majority_correct([_s("wrong", "3"), _s("correct", "4"), _s("correct", "4")], 3) is True
    assert majority_correct([_s("wrong", "3"), _s("correct", "4"), _s("correct", "4")], 1) is False
    # a tie goes to the answer seen first
    assert majority_correct([_s("correct", "4"), _s("wrong", "3"), _s("wrong", "3"), _s("correct", "4")], 4) is True
    # silent samples cast no vote; all silent is wrong
    assert majority_correct([_s("wrong"), _s("wrong"), _s("correct", "4")], 3) is True
    assert majority_correct([_s("wrong"), _s("wrong")], 2) is False
    # timeouts and infra failures are skipped; too few graded samples -> undefined
    assert majority_correct([_s("timeout", "3"), _s("correct", "4"), _s("infra", "3"), _s("wrong", "5")], 2) is True
    assert majority_correct([_s("timeout", "3"), _s("correct", "4")], 2) is None


def test_bootstrap_ci():
    assert bootstrap_ci([0.5] * 40) == (0.5, 0.5)
    assert bootstrap_ci([1.0, 0.0, 1.0], seed=3) == bootstrap_ci([1.0, 0.0, 1.0], seed=3)
    assert all(math.isnan(x) for x in bootstrap_ci([]))
    with pytest.raises(ValueError, match="confidence must be in"):
        bootstrap_ci([1.0], confidence=95)
    rng = np.random.default_rng(1)
    values = (rng.random(2000) < 0.3).astype(float)
    low, high = bootstrap_ci(values, resamples=1000)
    mean, half = values.mean(), 1.96 * values.std() / math.sqrt(values.size)  # the normal approximation
    assert low < mean < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.15)


def _record(split, outcomes, keys=None, subject=None):
    keys = keys or [None] * len(outcomes)
    meta = {"split": split, **({"subject": subject} if subject else {})}
    return {"id": f"{split}-{len(outcomes)}", "meta": meta, "samples": [_s(o, k) for o, k in zip(outcomes, keys)]}


def test_summary_excludes_timeouts_and_infra_from_denominators():
    records = [
        _record("a", ["correct", "wrong", "timeout", "correct"], ["1", "2", None, "1"], subject="Algebra"),
        _record("a", ["wrong", "infra", "wrong", "wrong"], ["5", None, "5", "6"], subject="Geometry"),
        _record("b", ["timeout", "timeout", "infra", "infra"]),  # judged nowhere: no denominator counts it
        _record("b", ["correct", "correct", "wrong", "wrong"], ["7", "7", "8", "9"]),
    ]
    assert problem_counts(records[0]["samples"]) == (3, 2)
    m = summarize(records, ks=[1, 2, 4], group_keys=("split", "subject"))
    assert (m["problems"], m["problems_judged"], m["samples"], m["samples_graded"]) == (4, 3, 16, 10)
    assert (m["timeouts"], m["infra_failures"], m["solved_any"]) == (3, 3, 2)
    assert m["accuracy"]["value"] == pytest.approx((2 / 3 + 0 + 2 / 4) / 3)
    assert m["pass@2"]["value"] == pytest.approx((pass_at_k(3, 2, 2) + 0 + pass_at_k(4, 2, 2)) / 3)
    assert m["pass@4"]["problems"] == 1 and m["pass@4"]["value"] == 1.0  # only the problem with 4 graded samples
    assert m["maj@2"]["value"] == pytest.approx(2 / 3)  # [1 vs 2, tie -> 1: correct], [5, 5: wrong], [7, 7: correct]
    assert m["maj@2"]["problems"] == 3
    low, high = m["accuracy"]["ci95"]
    assert 0 <= low <= m["accuracy"]["value"] <= high <= 1
    assert set(m["by_split"]) == {"a", "b"} and m["by_split"]["b"]["problems_judged"] == 1
    assert set(m["by_subject"]) == {"Algebra", "Geometry"}
    assert m["by_subject"]["Geometry"]["accuracy"]["value"] == 0.0
    assert "maj@2" not in summarize(records, ks=[2], majority=False)
    empty = summarize([_record("a", ["infra"])], ks=[1])
    assert empty["accuracy"] == {"value": None, "ci95": None, "problems": 0}


def test_a_proportion_gets_a_wilson_interval_never_zero_width():
    low, high = wilson_ci(0, 5)
    assert low == 0.0 and high == pytest.approx(0.43448, abs=1e-5)  # 0/5 is not "certainly 0%"
    assert wilson_ci(5, 5) == (pytest.approx(0.56552, abs=1e-5), 1.0)
    assert wilson_ci(50, 100) == (pytest.approx(0.40383, abs=1e-5), pytest.approx(0.59617, abs=1e-5))
    zero = metric_with_ci([0.0] * 5)
    assert zero["value"] == 0.0 and zero["ci95"] == [0.0, high] and zero["ci_method"] == "wilson"
    fractional = metric_with_ci([0.5, 0.25, 1.0])
    assert fractional["ci_method"] == "bootstrap" and fractional["ci95"] == list(bootstrap_ci([0.5, 0.25, 1.0]))
    m = summarize([_record("a", ["wrong"]) for _ in range(5)], ks=[1])
    assert m["accuracy"]["ci95"] == m["pass@1"]["ci95"] == [0.0, high]
    with pytest.raises(ValueError, match="0 <= successes <= n"):
        wilson_ci(3, 2)
