"""Tactic-level environment on REPL proof states, driven through the FAKE REPL (see fake_repl's tactic rules)."""

import sys

import pytest

from lean_env.step_env import LeanStepEnv
from lean_env.testing import fake_repl
from lean_env.types import Status
from lean_env.verifier import LeanVerifier

STATEMENT = "theorem t (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n"


@pytest.fixture
def env():
    verifier = LeanVerifier("repl", argv=[sys.executable, fake_repl.__file__], size=1, header="import Mathlib\n")
    yield LeanStepEnv(verifier.backend.pool, verifier, timeout_s=10)
    verifier.close()


def test_episode_to_a_replayed_proof(env):
    assert env.reset(STATEMENT) == ["⊢ p ∧ q"]
    goals, done, info = env.step("constructor")
    assert goals == ["⊢ p", "⊢ q"] and not done and info.valid and info.steps == 1
    goals, done, info = env.step("exact hp")
    assert goals == ["⊢ q"] and not done
    goals, done, info = env.step("exact hq")
    assert goals == [] and done and info.result.status is Status.PROVED
    assert env.proof_script() == "  constructor\n  exact hp\n  exact hq\n"


def test_invalid_tactic_leaves_state_unchanged(env):
    env.reset(STATEMENT)
    goals, done, info = env.step("FAKE_FAIL")
    assert not info.valid and "Lean error" in info.error and goals == ["⊢ p ∧ q"] and not done
    assert env.step("constructor")[2].valid


def test_tactic_mode_success_is_not_trusted_without_replay(env):
    # The fake's tactic mode "completes" a proof closed by sorry; the command-mode replay rejects it.
    env.reset(STATEMENT)
    goals, done, info = env.step("sorry")
    assert goals == [] and not done
    assert info.result.status is Status.FORBIDDEN


def test_step_limit_and_reset_required(env):
    with pytest.raises(RuntimeError, match="reset"):
        env.step("simp")
    env.max_steps = 1
    env.reset(STATEMENT)
    env.step("constructor")
    _, done, info = env.step("exact hp")
    assert not done and not info.valid and "step limit" in info.error


def test_statement_that_does_not_elaborate(env):
    with pytest.raises(ValueError, match="one open goal"):
        env.reset("theorem bad : FAKE_ERROR := by\n")


def test_reset_from_a_minif2f_problem(env):
    from evals.minif2f import MiniF2FTask

    (problem,) = MiniF2FTask().load("test", limit=1)
    goals = env.reset(problem)
    assert len(goals) == 1 and goals[0].startswith("⊢")
    assert env.header == problem.meta["header"]
