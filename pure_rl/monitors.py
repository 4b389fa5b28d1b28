"""Monitors for the failure modes the PURE paper documents: reward hacking into empty or one-step answers,
repetition, length collapse, PRM-vs-verifier disagreement, runaway policy updates, and a learned PRM being fooled
(its reward rising while the verifier's accuracy on the same rollouts falls)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import Outcome

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
    stats.update(prm_reward_stats(batch))
    return stats


def prm_returns(batch: RolloutBatch) -> torch.Tensor:
    """[B] the PRM part of each row's return under the run's credit form: sum_s r*_s (NaN for unscored rows)."""
    if batch.step_rewards is None:
        return torch.full((batch.size,), float("nan"))
    ret = batch.step_rewards.sum(dim=1).float()  # [B]
    return ret if batch.score_mask is None else ret.masked_fill(~batch.score_mask, float("nan"))


def prm_reward_stats(batch: RolloutBatch, quantile: float = 0.9) -> dict[str, float]:
    """PRM reward (mean PRM return), the mean raw step score, and ``prm_top_decile_wrong``: among the answers whose
    PRM return is above the batch's own ``quantile`` (90th percentile), the share the verifier grades wrong."""
    ret = prm_returns(batch)  # [B]
    graded = torch.tensor([v.outcome.graded for v in batch.verdicts], dtype=torch.bool) if batch.verdicts else None
    ok = torch.isfinite(ret) if graded is None else torch.isfinite(ret) & graded
    out = {"prm_reward": float(ret[ok].mean()) if ok.any() else float("nan")}
    if batch.step_scores is not None:
        valid = batch.step_mask & (batch.score_mask[:, None] if batch.score_mask is not None else True)
        out["prm_step_score"] = float(batch.step_scores[valid].mean()) if valid.any() else float("nan")
    if graded is None or not ok.any():
        return out
    cut = torch.quantile(ret[ok], quantile)
    top = ok & (ret >= cut)
    wrong = torch.tensor([v.outcome is Outcome.WRONG for v in batch.verdicts], dtype=torch.bool)
    out["prm_top_decile_wrong"] = float((top & wrong).sum() / top.sum().clamp_min(1))
    return out


def top_prm_wrong(batch: RolloutBatch, k: int) -> list[int]:
    """Rows the verifier grades wrong, highest PRM return first (at most ``k``): how the policy fools the PRM."""
    ret = prm_returns(batch)
    rows = [i for i, v in enumerate(batch.verdicts) if v.outcome is Outcome.WRONG and bool(torch.isfinite(ret[i]))]
    return sorted(rows, key=lambda i: -float(ret[i]))[:k]


def slope(xs: list[float]) -> float:
    """Least-squares slope of xs against 0..n-1 (per step)."""
    n = len(xs)
    mx, my = (n - 1) / 2, sum(xs) / n
    den = sum((i - mx) ** 2 for i in range(n))
    return sum((i - mx) * (x - my) for i, x in enumerate(xs)) / den if den else 0.0


@dataclass
class HackingDetector:
    """Warns once per episode when, over the last ``window`` steps, the PRM reward trends up while the verifier's
    accuracy on the same rollouts trends down, each by more than ``min_change`` (the least-squares line's change over the window)."""

    window: int = 10
    min_change: float = 0.05
    _prm: list[float] = field(default_factory=list)
    _acc: list[float] = field(default_factory=list)
    _active: bool = False

    def update(self, metrics: dict[str, float]) -> list[str]:
        prm, acc = metrics.get("prm_reward"), metrics.get("accuracy")
        if prm is None or acc is None or not (math.isfinite(prm) and math.isfinite(acc)):
            return []
        self._prm, self._acc = (self._prm + [prm])[-self.window :], (self._acc + [acc])[-self.window :]
        if len(self._prm) < self.window:
            return []
        d_prm, d_acc = slope(self._prm) * (self.window - 1), slope(self._acc) * (self.window - 1)  # fitted change
        hacking = d_prm > self.min_change and d_acc < -self.min_change
        fire, self._active = hacking and not self._active, hacking
        if not fire:
            return []
        return [f"reward hacking suspected: PRM reward rose {d_prm:+.3f} while verifier accuracy fell {d_acc:+.3f} "
                f"over the last {self.window} steps (now {prm:.3f} / {acc:.3f}); read the top_prm_wrong rows of "
                f"samples.jsonl to see how"]


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
