"""Turn verifier verdicts and PRM step scores into the tensors credit assignment consumes."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch

from pure_rl.core.interfaces import ProcessRewardModel, Verdict
from pure_rl.core.scores import to_pm1
from pure_rl.validate import check_prm_rows

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
    stats: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, S] step scores mapped to [-1, 1], [B] scored mask).

    The PRM's output is checked at the boundary (``pure_rl.validate.check_prm_rows``): a row it returns as None,
    with the wrong number of scores, with a non-finite or non-numeric score, or with a score outside its
    ``score_range`` is masked (never clamped, never scored 0); ``stats`` gets ``prm_malformed_rows`` and
    ``prm_out_of_range_rows``. A wrong row count raises ``PluginOutputError``.
    """
    B = len(step_texts)
    scores = torch.zeros(B, num_steps)
    scored = torch.ones(B, dtype=torch.bool)
    try:
        raw = prm.score_steps(list(prompts), [list(s) for s in step_texts])
    except Exception as exc:  # one failing PRM call must not lose the batch: mask it and keep training
        log.warning("PRM failed on the whole batch (%s: %s); all rows masked", type(exc).__name__, exc)
        return scores, torch.zeros(B, dtype=torch.bool)
    rows, counts = check_prm_rows(raw, [len(s) for s in step_texts], prm.score_range)
    if stats is not None:
        stats["prm_malformed_rows"], stats["prm_out_of_range_rows"] = counts["malformed"], counts["out_of_range"]
    for i, row in enumerate(rows):
        if row is None:
            scored[i] = False
            continue
        # in range up to round-off (checked above), so the clamp only trims that round-off
        scores[i, : len(row)] = torch.tensor([to_pm1(x, prm.score_range) for x in row]).clamp(-1.0, 1.0)
    return scores, scored


def score_step_tokens(
    prm: ProcessRewardModel,
    input_ids: torch.Tensor,  # [B, P+T] left-padded prompt + right-padded response, as the policy produced them
    attention_mask: torch.Tensor,  # [B, P+T]
    prompt_len: int,  # P
    step_end_idx: torch.Tensor,  # [B, S] response-relative step ends, -1 = padding
    stats: dict[str, Any] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The token path of a PRM that declares ``supports_token_scoring``: ([B, S] scores in [-1, 1], [B] scored).

    One call over the rollout ids, read at the policy's own step-end tokens (P + response index) and at the
    prompt's last token (P - 1). The same boundary rule as the text path: a row with a non-finite score is
    malformed, a row with a score outside ``score_range`` is out of range; both are masked and counted in ``stats``.
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
    raw = raw.float()
    lo, hi = prm.score_range
    slack = 1e-6 * (hi - lo)
    finite = (torch.isfinite(raw) | ~valid).all(dim=1)  # [B]
    in_range = (((raw >= lo - slack) & (raw <= hi + slack)) | ~valid).all(dim=1)  # [B]
    if stats is not None:
        stats["prm_malformed_rows"] = int((~finite).sum())
        stats["prm_out_of_range_rows"] = int((finite & ~in_range).sum())
    mapped = to_pm1(raw, prm.score_range)  # [B, S], the same affine map as the text path
    scored = finite & in_range
    scores = torch.where(valid & scored[:, None], mapped.clamp(-1.0, 1.0), torch.zeros(()))
    return scores, scored
