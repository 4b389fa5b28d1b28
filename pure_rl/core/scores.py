"""Score ranges and the affine map of any PRM's scores onto PURE's [-1, 1]."""

from __future__ import annotations

ScoreRange = tuple[float, float]
PM1: ScoreRange = (-1.0, 1.0)
PROB01: ScoreRange = (0.0, 1.0)


def to_pm1(score: float, score_range: ScoreRange) -> float:
    """Affinely map a score from ``score_range`` to [-1, 1]: r = 2 (s - lo) / (hi - lo) - 1.

    A [0, 1] probability p becomes 2p - 1, exactly PURE's p(good) - p(bad).
    """
    lo, hi = score_range
    if not hi > lo:
        raise ValueError(f"score_range must have hi > lo, got {score_range}")
    return 2.0 * (score - lo) / (hi - lo) - 1.0
