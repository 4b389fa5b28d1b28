"""The exploit suite is rejected and the ordinary proofs pass, by the policy layer alone (no Lean needed)."""

import sys

import pytest

from lean_env.assemble import AssemblyError, assemble
from lean_env.policy import find_violations
from lean_env.testing import fake_repl
from lean_env.testing.suites import EXPLOITS, ORDINARY
from lean_env.types import Status
from lean_env.verifier import LeanVerifier


def policy_rejections(case):
    try:
        assembled = assemble(case.statement, case.proof)
    except AssemblyError as exc:
        return [str(exc)]
    return find_violations(assembled.proof)


def test_suite_sizes_meet_the_bar():
    assert len({c.name for c in EXPLOITS}) == len(EXPLOITS) >= 25
    assert len({c.name for c in ORDINARY}) == len(ORDINARY) >= 25
    used = " ".join(c.proof for c in ORDINARY)
    for tactic in ["nlinarith", "norm_num", "simp", "omega", "decide", "linarith [sq_nonneg (a - b)]", "field_simp",
                   "ring_nf", "positivity"]:
        assert tactic in used, tactic


@pytest.mark.parametrize("case", EXPLOITS, ids=lambda c: c.name)
def test_exploit_is_rejected_by_policy(case):
    assert policy_rejections(case), f"{case.name} slipped through the policy layer"


@pytest.mark.parametrize("case", ORDINARY, ids=lambda c: c.name)
def test_ordinary_proof_passes_policy(case):
    assert policy_rejections(case) == []


def test_verifier_rejects_every_exploit_even_when_the_backend_would_accept():
    # The FAKE REPL accepts anything without the sorry word; every exploit must still come back FORBIDDEN/SORRY.
    with LeanVerifier("repl", argv=[sys.executable, fake_repl.__file__], size=2) as v:
        results = v.check_batch([(c.statement, c.proof) for c in EXPLOITS + ORDINARY])
    for case, result in zip(EXPLOITS, results):
        assert result.status in (Status.FORBIDDEN, Status.SORRY), (case.name, result)
        assert result.reward == 0.0
    for case, result in zip(ORDINARY, results[len(EXPLOITS):]):
        assert result.status is Status.PROVED, (case.name, result)
