"""The process-reward-model protocol and the score-range mapping to PURE's [-1, 1]."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

ScoreRange = tuple[float, float]
PM1: ScoreRange = (-1.0, 1.0)
PROB01: ScoreRange = (0.0, 1.0)


@runtime_checkable
class ProcessRewardModel(Protocol):
    """Scores each reasoning step of each response; text in so a PRM with its own tokenizer plugs in.

    ``score_steps`` returns one list of floats per response (one per step, in ``score_range``), or ``None`` for
    a response that could not be scored (a remote PRM failed): the trainer masks such rows instead of scoring 0.
    """

    score_range: ScoreRange

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]: ...


def to_pm1(score: float, score_range: ScoreRange) -> float:
    """Affinely map a score from ``score_range`` to [-1, 1]: r = 2 (s - lo) / (hi - lo) - 1.

    A [0, 1] probability p becomes 2p - 1, exactly PURE's p(good) - p(bad).
    """
    lo, hi = score_range
    if not hi > lo:
        raise ValueError(f"score_range must have hi > lo, got {score_range}")
    return 2.0 * (score - lo) / (hi - lo) - 1.0
