"""The ``repl`` backend on a real Lean 4 + Mathlib + REPL project (``LEAN_PROJECT``); skipped without one.

See lean_env/README.md for setting the project up. Runs miniF2F smoke problems, the ordinary-proof suite (all
must be PROVED), the exploit suite (none may be), the second layer alone (cheats sent to Lean without the
deny-list must still fail on sorry / axiom rules), and a tactic-level episode.
"""

import dataclasses

import pytest

from lean_env.assemble import DEFAULT_HEADER, assemble
from lean_env.minif2f import load_minif2f
from lean_env.policy import classify
from lean_env.step_env import LeanStepEnv
from lean_env.testing.suites import EXPLOITS, MINIF2F_SMOKE, ORDINARY, TARGET
from lean_env.types import Status
from lean_env.verifier import LeanVerifier

pytestmark = pytest.mark.lean_real


@pytest.fixture(scope="module")
def verifier():
    v = LeanVerifier("repl", timeout_s=120, size=1)
    yield v
    v.close()


def test_minif2f_smoke(verifier):
    records = {r["name"]: r for r in load_minif2f() if r["name"] in MINIF2F_SMOKE}
    items = [(r["formal_statement"], MINIF2F_SMOKE[name], r["header"]) for name, r in records.items()]
    wrong = [(r["formal_statement"], "  exact trivial\n", r["header"]) for r in records.values()]
    results = verifier.check_batch(items + wrong)
    assert [r.status for r in results[: len(items)]] == [Status.PROVED] * len(items), results
    assert all(r.status is Status.LEAN_ERROR for r in results[len(items):])
    assert all(set(r.axioms) <= {"propext", "Classical.choice", "Quot.sound"} for r in results[: len(items)])


def test_ordinary_suite_is_proved(verifier):
    results = verifier.check_batch([(c.statement, c.proof) for c in ORDINARY])
    failed = [(c.name, r.status, r.reasons) for c, r in zip(ORDINARY, results) if r.status is not Status.PROVED]
    assert not failed


def test_exploit_suite_is_rejected(verifier):
    results = verifier.check_batch([(c.statement, c.proof) for c in EXPLOITS])
    assert not [c.name for c, r in zip(EXPLOITS, results) if r.status is Status.PROVED or r.reward != 0.0]


RAW_CHEATS = [
    (TARGET, "  sorry\n", Status.SORRY),
    (TARGET, "  exact sorryAx _ false\n", Status.SORRY),
    (TARGET, "  stop\n  nlinarith [sq_nonneg (a - b)]\n", Status.SORRY),
    ("theorem nd : 2 ^ 10 = 1024 := by\n", "  native_decide\n", Status.FORBIDDEN),
    ("theorem nd2 : 2 ^ 10 = 1024 := by\n", "  decide +native\n", Status.FORBIDDEN),
]


@pytest.mark.parametrize(("statement", "proof", "expected"), RAW_CHEATS)
def test_second_layer_without_the_deny_list(verifier, statement, proof, expected):
    item = assemble(statement, proof, header=DEFAULT_HEADER)
    (response,) = verifier.backend.run([item], 120)
    assert classify(response, item.theorem_name, axioms_line=item.axioms_line)[0] is expected


def test_custom_axiom_in_the_environment_is_caught(verifier):
    item = assemble(TARGET, "  exact cheat a b\n", header=DEFAULT_HEADER)
    axiom = "axiom cheat (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2\n"
    item = dataclasses.replace(item, body=axiom + item.body, axioms_line=item.axioms_line + 1)
    (response,) = verifier.backend.run([item], 120)
    status, axioms, _ = classify(response, item.theorem_name, axioms_line=item.axioms_line)
    assert status is Status.FORBIDDEN and "cheat" in axioms


def test_step_env_episode(verifier):
    env = LeanStepEnv(verifier.backend.pool, verifier, timeout_s=60)
    goals = env.reset("theorem s (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n")
    assert len(goals) == 1 and "p ∧ q" in goals[0]
    assert not env.step("exact hq")[2].valid
    goals, done, _ = env.step("constructor")
    assert len(goals) == 2 and not done
    env.step("exact hp")
    goals, done, info = env.step("exact hq")
    assert goals == [] and done and info.result.status is Status.PROVED
