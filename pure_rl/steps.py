"""Step segmentation: the only place that knows how a response splits into reasoning steps.

PURE splits the policy's response at every token whose decoded text ends with the separator ("\\n\\n"), which
catches merged tokens such as ".\\n\\n" and "\\n\\n\\n". Two refinements make that rule hold for tokenizers that
write a blank line as two tokens (SmolLM2 writes "19", "\\n", "\\n", "Then"):

- a separator split across two tokens also ends a step, at its second token: "\\n" after a token ending in "\\n";
- a run of blank-line tokens ends one step, at its last token, so ".\\n\\n" + "\\n" never leaves an empty step.

The last valid token (EOS, or the final token of a truncated response) always ends the last step, so s
separators give s + 1 steps.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SeparatorTokens:
    """The vocabulary ids that can end a step, found once per tokenizer.

    Iterating (or ``in``) gives ``whole``, the single tokens PURE's rule knows, so the object stands in for the
    plain id set the rule uses.
    """

    whole: frozenset[int]  # ids whose text ends with the separator: "\n\n", ".\n\n", "\n\n\n"
    splits: tuple[tuple[frozenset[int], frozenset[int]], ...]  # (head ids, tail ids) per split point of the separator
    blank: frozenset[int]  # ids made only of the separator's whitespace: a run of them ends one step

    def __iter__(self) -> Iterator[int]:
        return iter(self.whole)

    def __contains__(self, token_id: object) -> bool:
        return token_id in self.whole

    def __len__(self) -> int:
        return len(self.whole)


def separator_token_ids(tokenizer: Any, separator: str = "\n\n") -> SeparatorTokens:
    """Classify every vocabulary id against ``separator`` (see ``SeparatorTokens``).

    A split at k pairs a head token ending in ``separator[:k]`` with a tail token whose text is exactly
    ``separator[k:]``; a tail that carries more text ("\\nThen") is not a break, since the step would end inside
    the next step's words. Works with a ``transformers`` tokenizer or a raw ``tokenizers.Tokenizer``.
    """
    if not separator:
        raise ValueError("separator must be a non-empty string, e.g. '\\n\\n'")
    texts = [tokenizer.decode([i]) for i in range(len(tokenizer.get_vocab()))]
    whole = frozenset(i for i, t in enumerate(texts) if t.endswith(separator))
    splits = []
    for k in range(1, len(separator)):
        head = frozenset(i for i, t in enumerate(texts) if t.endswith(separator[:k]))
        tail = frozenset(i for i, t in enumerate(texts) if t == separator[k:])
        if head and tail:
            splits.append((head, tail))
    blank_chars = {c for c in separator if c.isspace()}
    blank = frozenset(i for i, t in enumerate(texts) if t and blank_chars and set(t) <= blank_chars)
    return SeparatorTokens(whole, tuple(splits), blank)


def _isin(ids: torch.Tensor, members: Iterable[int]) -> torch.Tensor:
    return torch.isin(ids, torch.tensor(sorted(members), dtype=ids.dtype, device=ids.device))


def step_end_indices(
    response_ids: torch.Tensor,  # [B, T] long, valid tokens first
    response_mask: torch.Tensor,  # [B, T] bool
    separator_ids: SeparatorTokens | Iterable[int],
) -> torch.Tensor:
    """Response-relative index of the token that ends each step, padded with -1: [B, S] long.

    A valid token in ``separator_ids`` ends a step, and so does the tail of a two-token separator and the last
    token of a blank-line run (``SeparatorTokens``; a plain id set gives PURE's single-token rule). The last
    valid token always ends the last step (once, even when it is itself a separator). A row with no valid
    token has no steps. S is the largest step count in the batch (at least 1, never a zero-width tensor).
    """
    if response_ids.shape != response_mask.shape:
        raise ValueError(f"response_ids {tuple(response_ids.shape)} and response_mask {tuple(response_mask.shape)} differ")
    if not isinstance(separator_ids, SeparatorTokens):
        separator_ids = SeparatorTokens(frozenset(int(i) for i in separator_ids), (), frozenset())
    mask = response_mask.bool()
    B, T = response_ids.shape
    is_sep = _isin(response_ids, separator_ids.whole) & mask  # [B, T]
    prev_ids = F.pad(response_ids[:, :-1], (1, 0), value=-1)  # [B, T] the token before each position
    prev_mask = F.pad(mask[:, :-1], (1, 0), value=False)
    for head, tail in separator_ids.splits:
        is_sep |= _isin(response_ids, tail) & _isin(prev_ids, head) & prev_mask & mask
    continued = is_sep & _isin(response_ids, separator_ids.blank)  # [B, T] a break that extends the one before it
    is_sep &= ~F.pad(continued[:, 1:], (0, 1), value=False)
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
