"""Per-token log-probabilities of response tokens under a causal LM (the learner's recomputation)."""

from __future__ import annotations

import inspect

import torch
from torch.utils.checkpoint import checkpoint

LOGPROB_CHUNK_ELEMENTS = 2**28  # logits elements per fp32 log-softmax slice (1 GiB)


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,  # [B, P+T] prompt (left-padded) + response (right-padded)
    attention_mask: torch.Tensor,  # [B, P+T]
    num_response_tokens: int,  # T
    temperature: float = 1.0,
) -> torch.Tensor:
    """log softmax(logits / temperature)[a_t] for each response token: [B, T] fp32.

    Dividing by the sampling temperature makes these the log-probs of the distribution the tokens were
    sampled from, so PPO ratios start at exactly 1 (TRL and verl do the same).
    """
    T = num_response_tokens
    kwargs = {"logits_to_keep": T + 1} if _accepts_logits_to_keep(model) else {}
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_min(0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False, **kwargs)
    logits = out.logits[:, -(T + 1) : -1]  # [B, T, V] in the model's dtype: position t predicts response token t
    targets = input_ids[:, -T:]  # [B, T]
    divisor = temperature if temperature > 0 else 1.0
    # fp32 log-softmax a slice of positions at a time, recomputed in the backward pass: the fp32 copies of the
    # logits (2 x 4 bytes x B x T x V, 40 GB for 8 x 4096 tokens of a 152K vocabulary) never exist all at once.
    step = max(1, LOGPROB_CHUNK_ELEMENTS // max(1, logits.shape[0] * logits.shape[2]))
    recompute = torch.is_grad_enabled() and logits.requires_grad
    parts = []
    for s in range(0, T, step):
        args = (logits[:, s : s + step], targets[:, s : s + step], divisor)
        parts.append(checkpoint(_chunk_logprobs, *args, use_reentrant=False) if recompute else _chunk_logprobs(*args))
    return torch.cat(parts, dim=1) if parts else logits.new_zeros(logits.shape[:2], dtype=torch.float32)


def _chunk_logprobs(logits: torch.Tensor, targets: torch.Tensor, divisor: float) -> torch.Tensor:
    """log softmax(logits / divisor)[target] = x[target] - logsumexp(x), in fp32: [B, t] from [B, t, V], [B, t]."""
    x = logits.float() / divisor if divisor != 1.0 else logits.float()
    return x.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(x, dim=-1)


@torch.no_grad()
def batched_token_logprobs(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    num_response_tokens: int,
    temperature: float,
    micro_batch_size: int,
) -> torch.Tensor:
    """``token_logprobs`` without gradients, in micro-batches: [B, T] fp32."""
    parts = [
        token_logprobs(model, input_ids[i : i + micro_batch_size], attention_mask[i : i + micro_batch_size],
                       num_response_tokens, temperature)
        for i in range(0, input_ids.shape[0], micro_batch_size)
    ]
    return torch.cat(parts, dim=0)
