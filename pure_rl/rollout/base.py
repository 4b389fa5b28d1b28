"""The rollout-engine protocol and helpers shared by engines."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.interfaces import Problem, SamplingParams


@runtime_checkable
class RolloutEngine(Protocol):
    """Generates ``n`` responses per problem and returns them as one ``RolloutBatch``.

    Rows are grouped: problem g's responses are rows g*n .. g*n+n-1. ``old_logprobs`` are the sampling
    policy's per-token log-probs (fp32) of the sampled tokens at temperature 1 scaling as sampled.
    """

    def generate(self, problems: Sequence[Problem], n: int, sampling: SamplingParams) -> RolloutBatch: ...

    def sync_weights(self, model: torch.nn.Module) -> None: ...


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
