"""Policy loss: PPO clipped surrogate and per-token KL estimators (pure functions)."""

from __future__ import annotations

import torch

AGGREGATIONS = ("token-mean", "seq-mean-token-mean")
KL_KINDS = ("k1", "k2", "k3")


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str = "k1") -> torch.Tensor:
    """Per-token estimate of KL(pi || pi_ref) from samples of pi, with log-ratio d = logp - ref_logp.

    - k1 = d                       (unbiased, high variance; PURE's default in the reward)
    - k2 = d^2 / 2                 (biased, low variance)
    - k3 = exp(-d) - 1 + d         (unbiased, non-negative; "low_var_kl" in verl, which clamps it)
    """
    d = logp.float() - ref_logp.float()
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d * d
    if kind == "k3":
        return torch.expm1(-d) + d
    raise ValueError(f"kl estimator {kind!r} is unknown; valid: {', '.join(KL_KINDS)}")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over ``mask``; 0 where the mask is empty."""
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp_min(1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def ppo_clip_loss(
    logprobs: torch.Tensor,  # [B, T] log pi_theta(a_t), differentiable
    old_logprobs: torch.Tensor,  # [B, T] log pi_old(a_t)
    advantages: torch.Tensor,  # [B, T]
    mask: torch.Tensor,  # [B, T] bool, tokens that carry loss
    clip_eps: float = 0.2,
    aggregation: str = "token-mean",
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO clipped surrogate: loss_t = -min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t), rho_t = exp(logp - old).

    ``token-mean`` averages over all valid tokens of the batch (verl); ``seq-mean-token-mean`` averages per
    sequence, then over sequences with at least one valid token (OpenRLHF). Returns (loss, stats) where stats
    hold the clip fraction, the approximate KL(pi_old || pi) (k3 on the ratio), and the ratio's mean and max.
    """
    if not (logprobs.shape == old_logprobs.shape == advantages.shape == mask.shape):
        raise ValueError(
            f"shapes disagree: logprobs {tuple(logprobs.shape)}, old_logprobs {tuple(old_logprobs.shape)}, "
            f"advantages {tuple(advantages.shape)}, mask {tuple(mask.shape)}"
        )
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"loss aggregation {aggregation!r} is unknown; valid: {', '.join(AGGREGATIONS)}")
    m = mask.bool()
    log_ratio = (logprobs - old_logprobs.detach()).masked_fill(~m, 0.0)
    ratio = torch.exp(log_ratio)
    adv = advantages.detach()
    surr = ratio * adv
    surr_clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
    per_token = -torch.minimum(surr, surr_clipped)  # [B, T]
    if aggregation == "token-mean":
        loss = masked_mean(per_token, m)
    else:
        has_tokens = m.any(dim=1)
        per_seq = masked_mean(per_token, m, dim=1)
        loss = per_seq[has_tokens].mean() if bool(has_tokens.any()) else per_token.sum() * 0.0
    with torch.no_grad():
        clipped = (surr_clipped < surr) & m
        n = m.sum().clamp_min(1)
        valid_ratio = ratio[m]
        stats = {
            "clip_frac": float(clipped.sum() / n),
            "approx_kl": float(masked_mean(torch.expm1(log_ratio) - log_ratio, m)),
            "ratio_mean": float(valid_ratio.mean()) if valid_ratio.numel() else 1.0,
            "ratio_max": float(valid_ratio.max()) if valid_ratio.numel() else 1.0,
        }
    return loss, stats
