"""Turn verifier verdicts and PRM step scores into the tensors credit assignment consumes."""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from prm.base import ProcessRewardModel, to_pm1
from pure_rl.interfaces import Problem, Verdict

log = logging.getLogger(__name__)


class NoVerifier:
    """``reward.verifier=none``: every answer is undecided, so no verifiable reward is used."""

    def __call__(self, problem: Problem, completion: str) -> Verdict:
        return Verdict(correct=None, reward=None, info={"reason": "no verifier"})

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        return [self(p, c) for p, c in zip(problems, completions)]


class NoPRM:
    """``reward.prm=none``: every step scores 0, so only the verifiable reward (PURE-VR) drives learning."""

    score_range = (-1.0, 1.0)

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        return [[0.0] * len(row) for row in steps]


def verifiable_rewards(
    verdicts: Sequence[Verdict], has_ground_truth: Sequence[bool]
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B] rewards, [B] judged mask) from verdicts.

    A row whose problem has no ground truth gets reward 0 and stays judged (its RLOO term vanishes because the
    whole group shares the value); a row the verifier could not decide (``correct is None`` with ground truth:
    a crashed grader or Lean process) is masked out of the loss instead of being scored 0.
    """
    rewards = torch.zeros(len(verdicts))
    judged = torch.ones(len(verdicts), dtype=torch.bool)
    for i, (v, gt) in enumerate(zip(verdicts, has_ground_truth)):
        if not gt:
            continue
        if v.correct is None or v.reward is None:
            judged[i] = False
        else:
            rewards[i] = float(v.reward)
    return rewards, judged


def strip_separator(step: str, separator: str) -> str:
    return step.removesuffix(separator)


def score_steps(
    prm: ProcessRewardModel,
    prompts: Sequence[str],
    step_texts: Sequence[Sequence[str]],
    num_steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, S] step scores mapped to [-1, 1], [B] scored mask).

    A row the PRM returns as None, or with the wrong number of scores, is masked (never scored 0); so is a row
    with a non-finite score.
    """
    B = len(step_texts)
    scores = torch.zeros(B, num_steps)
    scored = torch.ones(B, dtype=torch.bool)
    try:
        raw = prm.score_steps(list(prompts), [list(s) for s in step_texts])
    except Exception as exc:  # one failing PRM call must not lose the batch: mask it and keep training
        log.warning("PRM failed on the whole batch (%s: %s); all rows masked", type(exc).__name__, exc)
        return scores, torch.zeros(B, dtype=torch.bool)
    if len(raw) != B:
        raise ValueError(f"PRM returned {len(raw)} rows for {B} responses")
    for i, (row, steps) in enumerate(zip(raw, step_texts)):
        if row is None or len(row) != len(steps):
            scored[i] = False
            continue
        mapped = torch.tensor([to_pm1(float(x), prm.score_range) for x in row])
        if not bool(torch.isfinite(mapped).all()):
            scored[i] = False
            continue
        scores[i, : len(row)] = mapped.clamp(-1.0, 1.0)
    return scores, scored
