"""The null components: ``reward.verifier=none`` and ``reward.prm=none``."""

from __future__ import annotations

from typing import Sequence

from pure_rl.core.interfaces import Problem, Verdict


class NoVerifier:
    """``reward.verifier=none``: every answer is undecided, so no verifiable reward is used."""

    grades_answers = False  # a run trained with it has no grader another CLI could reuse

    def __call__(self, problem: Problem, completion: str) -> Verdict:
        return Verdict(correct=None, reward=None, info={"reason": "no verifier"})

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        return [self(p, c) for p, c in zip(problems, completions)]


class NoPRM:
    """``reward.prm=none``: every step scores 0, so only the verifiable reward (PURE-VR) drives learning."""

    score_range = (-1.0, 1.0)

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        return [[0.0] * len(row) for row in steps]
