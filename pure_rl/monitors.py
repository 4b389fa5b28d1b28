"""Monitors for the failure modes the PURE paper documents: reward hacking into empty or one-step answers,
repetition, length collapse, PRM-vs-verifier disagreement, and runaway policy updates."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from pure_rl.batch import RolloutBatch

WATCHED = ("empty_frac", "one_step_frac", "mean_steps", "response_length", "repetition", "clip_frac",
           "prm_verifier_disagreement")


def repetition_score(ids: list[int], n: int = 4) -> float:
    """Share of repeated n-grams in a token sequence: 1 - unique / total (0 for short sequences)."""
    grams = [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def batch_monitors(batch: RolloutBatch) -> dict[str, float]:
    """Per-batch health metrics computed from a scored rollout batch."""
    lengths = batch.response_mask.sum(dim=1).float()  # [B]
    steps = (batch.step_end_idx >= 0).sum(dim=1).float()  # [B]
    empty = torch.tensor([not r.strip() for r in batch.responses], dtype=torch.float)
    reps = [repetition_score(batch.response_ids[i, : int(lengths[i])].tolist()) for i in range(batch.size)]
    stats = {
        "empty_frac": float(empty.mean()),
        "one_step_frac": float((steps <= 1).float().mean()),
        "mean_steps": float(steps.mean()),
        "response_length": float(lengths.mean()),
        "truncated_frac": float((~batch.finished).float().mean()),
        "repetition": sum(reps) / max(len(reps), 1),
    }
    stats["prm_verifier_disagreement"] = prm_verifier_disagreement(batch)
    return stats


def prm_verifier_disagreement(batch: RolloutBatch) -> float:
    """Share of rows where the PRM's verdict (all steps positive) differs from the verifier's (correct)."""
    if batch.step_scores is None or not batch.verdicts:
        return float("nan")
    rows = [
        i for i, v in enumerate(batch.verdicts)
        if v.outcome.graded and (batch.score_mask is None or bool(batch.score_mask[i]))
    ]
    if not rows:
        return float("nan")
    disagree = 0
    for i in rows:
        valid = batch.step_end_idx[i] >= 0
        prm_ok = bool(valid.any()) and bool((batch.step_scores[i][valid] > 0).all())
        disagree += prm_ok != bool(batch.verdicts[i].correct)
    return disagree / len(rows)


@dataclass
class JumpDetector:
    """Flags a metric that moves more than ``factor`` running standard deviations from its running mean."""

    factor: float = 3.0
    warmup: int = 5
    min_delta: float = 0.05  # moves smaller than this (absolute) or than 10% of the mean never warn
    decay: float = 0.9
    _mean: dict[str, float] = field(default_factory=dict)
    _var: dict[str, float] = field(default_factory=dict)
    _count: dict[str, int] = field(default_factory=dict)

    def update(self, metrics: dict[str, float]) -> list[str]:
        warnings = []
        for key in WATCHED:
            x = metrics.get(key)
            if x is None or not math.isfinite(x):
                continue
            n = self._count.get(key, 0)
            mean, var = self._mean.get(key, x), self._var.get(key, 0.0)
            std = math.sqrt(var)
            if n >= self.warmup and abs(x - mean) > max(self.factor * std, 0.1 * abs(mean), self.min_delta):
                warnings.append(f"{key} jumped to {x:.3g} (running mean {mean:.3g}, std {std:.3g})")
            delta = x - mean
            mean = mean + (1 - self.decay) * delta
            var = self.decay * (var + (1 - self.decay) * delta * delta)
            self._mean[key], self._var[key], self._count[key] = mean, var, n + 1
        return warnings

    def state_dict(self) -> dict:
        return {"mean": dict(self._mean), "var": dict(self._var), "count": dict(self._count)}

    def load_state_dict(self, state: dict) -> None:
        self._mean, self._var, self._count = dict(state["mean"]), dict(state["var"]), dict(state["count"])
