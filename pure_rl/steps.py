"""Step segmentation: the only place that knows how a response splits into reasoning steps.

PURE splits the policy's response at every token whose decoded text ends with the separator ("\\n\\n"), which
catches merged tokens such as ".\\n\\n" and "\\n\\n\\n"; the last valid token (EOS, or the final token of a
truncated response) always ends the last step, so s separators give s + 1 steps.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch


def separator_token_ids(tokenizer: Any, separator: str = "\n\n") -> set[int]:
    """Every vocabulary id whose decoded text ends with ``separator``.

    Works with a ``transformers`` tokenizer or a raw ``tokenizers.Tokenizer`` (both have ``decode``).
    """
    if not separator:
        raise ValueError("separator must be a non-empty string, e.g. '\\n\\n'")
    vocab_size = len(tokenizer.get_vocab())
    ids = set()
    for i in range(vocab_size):
        text = tokenizer.decode([i])
        if text.endswith(separator):
            ids.add(i)
    return ids


def step_end_indices(
    response_ids: torch.Tensor,  # [B, T] long
    response_mask: torch.Tensor,  # [B, T] bool
    separator_ids: Iterable[int],
) -> torch.Tensor:
    """Response-relative index of the token that ends each step, padded with -1: [B, S] long.

    A valid token whose id is a separator ends a step; the last valid token always ends the last step (once,
    even when it is itself a separator). A row with no valid token has no steps. S is the largest step count
    in the batch (at least 1, so the result is never a zero-width tensor).
    """
    if response_ids.shape != response_mask.shape:
        raise ValueError(f"response_ids {tuple(response_ids.shape)} and response_mask {tuple(response_mask.shape)} differ")
    mask = response_mask.bool()
    B, T = response_ids.shape
    sep = torch.tensor(sorted({int(i) for i in separator_ids}), dtype=response_ids.dtype, device=response_ids.device)
    is_sep = torch.isin(response_ids, sep) & mask  # [B, T]
    positions = torch.arange(T, device=response_ids.device).expand(B, T)
    last = torch.where(mask, positions, -1).amax(dim=1, keepdim=True) if T > 0 else torch.full((B, 1), -1)
    ends = is_sep | ((positions == last) & mask)  # [B, T]
    counts = ends.sum(dim=1)  # [B]
    S = max(int(counts.max().item()) if B > 0 else 0, 1)
    out = torch.full((B, S), -1, dtype=torch.long, device=response_ids.device)
    rank = ends.long().cumsum(dim=1) - 1  # [B, T] step number of each end token
    rows, cols = ends.nonzero(as_tuple=True)
    out[rows, rank[rows, cols]] = cols
    return out


def split_steps(text_ids: list[int], ends: list[int], decode) -> list[str]:
    """Decode each step's tokens (end token included) to text, for text-level PRMs and logs."""
    steps, start = [], 0
    for e in ends:
        if e < 0:
            break
        steps.append(decode(text_ids[start : e + 1]))
        start = e + 1
    return steps
