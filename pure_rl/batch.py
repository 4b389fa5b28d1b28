"""``RolloutBatch``: what one training step carries from stage to stage, and the glossary of its tensors.

Shapes: B = responses in the batch (prompts x group_size, grouped in consecutive blocks of ``group_size``),
P = max prompt tokens (left-padded), T = max response tokens (right-padded), S = max steps per response.

| name                | shape  | dtype | filled by  | meaning                                                     |
|---------------------|--------|-------|------------|-------------------------------------------------------------|
| prompt_ids          | [B, P] | long  | rollout    | prompt tokens, left-padded with ``pad_token_id``             |
| prompt_mask         | [B, P] | bool  | rollout    | True on real prompt tokens                                   |
| response_ids        | [B, T] | long  | rollout    | sampled tokens, right-padded                                 |
| response_mask       | [B, T] | bool  | rollout    | True on sampled tokens (EOS included when generated)         |
| old_logprobs        | [B, T] | float | rollout    | log pi_old(a_t) of the sampled token (0 on padding); None =  |
|                     |        |       |            | the engine does not compute them (the learner does)          |
| verifiable_rewards  | [B]    | float | verify     | v_i from the verifier; rows without ground truth get 0       |
| verdict_mask        | [B]    | bool  | verify     | False where the verifier hit an infrastructure failure       |
| step_end_idx        | [B, S] | long  | steps      | response-relative index of each step's last token; -1 = pad  |
| step_mask           | [B, S] | bool  | steps      | step_end_idx >= 0                                            |
| step_scores         | [B, S] | float | score      | PRM score per step mapped to [-1, 1]; 0 where unscored       |
| score_mask          | [B]    | bool  | score      | False where the PRM could not score the row                  |
| step_rewards        | [B, S] | float | credit     | transformed step rewards r* (min / hardmin / sum form)       |
| ref_logprobs        | [B, T] | float | credit     | log pi_ref(a_t), when a KL penalty is used                   |
| advantages          | [B, T] | float | credit     | per-token advantages fed to the PPO loss                     |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from pure_rl.core.interfaces import Problem, Verdict


@dataclass
class RolloutBatch:
    problems: list[Problem]  # [B] the task item behind each row (repeated group_size times)
    prompts: list[str]  # [B] prompt text as fed to the engine (after chat templating)
    responses: list[str]  # [B] decoded response text (special tokens stripped)
    group_size: int  # K responses per prompt, consecutive rows
    prompt_ids: torch.Tensor  # [B, P]
    prompt_mask: torch.Tensor  # [B, P]
    response_ids: torch.Tensor  # [B, T]
    response_mask: torch.Tensor  # [B, T]
    old_logprobs: torch.Tensor | None  # [B, T]; None when the engine leaves them to the learner
    finished: torch.Tensor  # [B] bool: ended on EOS / stop string rather than the length cap
    verdicts: list[Verdict] = field(default_factory=list)
    verifiable_rewards: torch.Tensor | None = None
    verdict_mask: torch.Tensor | None = None
    step_end_idx: torch.Tensor | None = None
    step_mask: torch.Tensor | None = None
    step_texts: list[list[str]] = field(default_factory=list)
    step_scores: torch.Tensor | None = None
    score_mask: torch.Tensor | None = None
    step_rewards: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # per-stage scalars for the log

    @property
    def size(self) -> int:
        return self.response_ids.shape[0]

    @property
    def row_mask(self) -> torch.Tensor:
        """[B] bool: rows every stage could judge; rows with infra failures carry no loss."""
        mask = torch.ones(self.size, dtype=torch.bool)
        for part in (self.verdict_mask, self.score_mask):
            if part is not None:
                mask &= part
        return mask

    def input_ids(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompt + response concatenated: ([B, P+T] ids, [B, P+T] attention mask)."""
        ids = torch.cat([self.prompt_ids, self.response_ids], dim=1)
        mask = torch.cat([self.prompt_mask, self.response_mask], dim=1)
        return ids, mask
