"""Turn verifier verdicts and PRM step scores into the tensors credit assignment consumes."""

from __future__ import annotations

import logging
from typing import Sequence

import torch

from pure_rl.core.interfaces import ProcessRewardModel, Verdict
from pure_rl.core.scores import to_pm1

log = logging.getLogger(__name__)


def verifiable_rewards(
    verdicts: Sequence[Verdict], has_ground_truth: Sequence[bool]
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B] rewards, [B] judged mask) from verdicts.

    A row whose problem has no ground truth gets reward 0 and stays judged (its RLOO term vanishes because the
    whole group shares the value); a row whose verdict is not graded (``Outcome.graded`` is False: a grader
    timeout or an infrastructure failure, math grader and Lean alike) is masked out of the loss, never scored 0.
    """
    rewards = torch.zeros(len(verdicts))
    judged = torch.ones(len(verdicts), dtype=torch.bool)
    for i, (v, gt) in enumerate(zip(verdicts, has_ground_truth)):
        if not gt:
            continue
        reward = v.reward_or_none
        if reward is None:
            judged[i] = False
        else:
            rewards[i] = reward
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


def score_step_tokens(
    prm: ProcessRewardModel,
    input_ids: torch.Tensor,  # [B, P+T] left-padded prompt + right-padded response, as the policy produced them
    attention_mask: torch.Tensor,  # [B, P+T]
    prompt_len: int,  # P
    step_end_idx: torch.Tensor,  # [B, S] response-relative step ends, -1 = padding
) -> tuple[torch.Tensor, torch.Tensor]:
    """The token path of a PRM that declares ``supports_token_scoring``: ([B, S] scores in [-1, 1], [B] scored).

    One call over the rollout ids, read at the policy's own step-end tokens (P + response index) and at the
    prompt's last token (P - 1); rows with a non-finite score are masked, as on the text path.
    """
    B, S = step_end_idx.shape
    valid = step_end_idx >= 0  # [B, S]
    ends = torch.where(valid, step_end_idx + prompt_len, -1)  # [B, S] absolute
    prompt_end = torch.full((B,), prompt_len - 1, dtype=torch.long)  # [B]
    try:
        raw = prm.score_step_ends(input_ids, attention_mask, ends, prompt_end)  # [B, S] in prm.score_range
    except Exception as exc:  # as on the text path: mask the batch, keep training
        log.warning("PRM failed on the whole batch (%s: %s); all rows masked", type(exc).__name__, exc)
        return torch.zeros(B, S), torch.zeros(B, dtype=torch.bool)
    mapped = to_pm1(raw.float(), prm.score_range)  # [B, S], the same affine map as the text path
    scored = (torch.isfinite(mapped) | ~valid).all(dim=1)
    scores = torch.where(valid & scored[:, None], mapped.clamp(-1.0, 1.0), torch.zeros(()))
    return scores, scored
