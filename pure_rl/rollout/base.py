"""Helpers shared by rollout engines (the ``RolloutEngine`` protocol: ``pure_rl.core.interfaces``)."""

from __future__ import annotations

from typing import Sequence

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import Problem


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` right after the earliest stop string; returns (text, stopped)."""
    best = -1
    best_len = 0
    for s in stop:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best, best_len = i, len(s)
    if best < 0:
        return text, False
    return text[: best + best_len], True


def pack_rollout(
    problems: Sequence[Problem],
    prompts: Sequence[str],
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    logprobs: Sequence[Sequence[float]],
    finished: Sequence[bool],
    tokenizer,
    group_size: int,
) -> RolloutBatch:
    """Pad token lists into a ``RolloutBatch``: prompts left-padded, responses right-padded, log-probs in fp32."""
    B = len(completion_ids)
    if not (len(problems) == len(prompts) == len(prompt_ids) == len(logprobs) == len(finished) == B):
        raise ValueError(f"rollout lists disagree in length: {len(problems)} problems for {B} completions")
    pad = tokenizer.pad_token_id
    P = max((len(p) for p in prompt_ids), default=0)
    T = max(max((len(c) for c in completion_ids), default=0), 1)
    p_ids = torch.full((B, P), pad, dtype=torch.long)
    p_mask = torch.zeros(B, P, dtype=torch.bool)
    r_ids = torch.full((B, T), pad, dtype=torch.long)
    r_mask = torch.zeros(B, T, dtype=torch.bool)
    lp = torch.zeros(B, T, dtype=torch.float32)
    for i, (p, c, l) in enumerate(zip(prompt_ids, completion_ids, logprobs)):
        if len(l) != len(c):
            raise ValueError(f"row {i}: {len(l)} log-probs for {len(c)} tokens")
        if p:
            p_ids[i, P - len(p) :] = torch.tensor(p, dtype=torch.long)
            p_mask[i, P - len(p) :] = True
        if c:
            r_ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            r_mask[i, : len(c)] = True
            lp[i, : len(c)] = torch.tensor(l, dtype=torch.float32)
    texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completion_ids]
    return RolloutBatch(problems=list(problems), prompts=list(prompts), responses=texts, group_size=group_size,
                        prompt_ids=p_ids, prompt_mask=p_mask, response_ids=r_ids, response_mask=r_mask,
                        old_logprobs=lp, finished=torch.tensor(list(finished), dtype=torch.bool))
