"""DojoStepEnv's mapping of LeanDojo results, against a FAKE ``lean_dojo`` module (LeanDojo needs elan, git and
network tracing, which CI lacks; the fake mimics only the documented classes the adapter touches)."""

import sys
import types
from dataclasses import dataclass

import pytest

from lean_env.backends.dojo import DojoStepEnv


@dataclass
class TacticState:
    pp: str
    id: int = 0


@dataclass
class ProofFinished:
    tactic_state_id: int = 0


@dataclass
class LeanError:
    error: str


class FakeDojo:
    def __init__(self, theorem, timeout):
        self.theorem, self.exited = theorem, False

    def __enter__(self):
        return self, TacticState("p q : Prop\nhp : p\nhq : q\n⊢ p ∧ q")

    def __exit__(self, *exc):
        self.exited = True

    def run_tac(self, state, tactic):
        if tactic == "constructor":
            return TacticState("case left\n⊢ p\n\ncase right\n⊢ q", 1)
        if tactic == "exact ⟨hp, hq⟩":
            return ProofFinished(2)
        return LeanError(f"unknown tactic {tactic}")


@pytest.fixture
def fake_lean_dojo(monkeypatch):
    mod = types.ModuleType("lean_dojo")
    mod.LeanGitRepo = lambda url, commit: (url, commit)
    mod.Theorem = lambda repo, path, name: (repo, path, name)
    mod.Dojo = FakeDojo
    monkeypatch.setitem(sys.modules, "lean_dojo", mod)
    return mod


def test_episode(fake_lean_dojo):
    env = DojoStepEnv("https://github.com/x/y", "abc")
    assert env.reset("Y/Basic.lean", "Y.thm") == ["p q : Prop\nhp : p\nhq : q\n⊢ p ∧ q"]
    goals, done, info = env.step("constructor")
    assert goals == ["case left\n⊢ p", "case right\n⊢ q"] and not done and info.valid
    goals, done, info = env.step("bogus")
    assert not info.valid and "unknown tactic" in info.error and len(goals) == 2
    goals, done, info = env.step("exact ⟨hp, hq⟩")
    assert goals == [] and done and info.finished and info.steps == 2
    ctx = env._ctx
    env.close()
    assert ctx.exited
