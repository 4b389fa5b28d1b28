"""PURE credit assignment as pure tensor functions.

Shapes: B responses (consecutive groups of ``group_size`` per prompt), S steps, T response tokens.
The pipeline (``rloo_token_advantages``) follows PURE's OpenRLHF implementation, which users report trains
stably (the verl branch hacks into empty answers, CJReinforce/PURE#20); the paper's Eq. 7 baseline over
returns normalised by the max generation length is available as ``baseline="paper"``.

Departures from the reference code (deliberate):
- whitening uses only valid, unmasked tokens for both the mean and the variance; OpenRLHF takes the mean over
  non-zero advantages but the std over every action token (masked step ends included), which shrinks the scale;
- padded steps are excluded exactly (the softmax never sees them) rather than through ``masked_fill(+inf)`` on
  ``-r``, which gives NaN rows when a response has no step at all;
- the min-form softmax is computed on ``(min_r - r) / T``, so tiny temperatures cannot overflow.
"""

from __future__ import annotations

import torch

FORMS = ("min", "hardmin", "sum")
BASELINES = ("token", "paper")


def transform_step_rewards(
    step_rewards: torch.Tensor,  # [B, S] float
    step_mask: torch.Tensor,  # [B, S] bool
    form: str = "min",
    temperature: float = 0.1,
) -> torch.Tensor:
    """Transform raw step rewards so that a plain return sum realises the chosen credit form.

    - ``min`` (PURE Eq. 5): r*_{i,s} = r_{i,s} * exp(-r_{i,s}/T) / sum_{valid j} exp(-r_{i,j}/T). As T -> 0 all
      weight goes to the worst step, so sum_{s' >= s} r*_{i,s'} = min(r_s..r_n) up to the worst step and 0 after it.
    - ``hardmin``: r_{i,s} at the first argmin over valid steps, 0 elsewhere (the T -> 0 limit).
    - ``sum``: r unchanged (the sum-form baseline the paper shows collapsing).
    Invalid positions are 0; a row with no valid step is all zeros.
    """
    _check_finite(step_rewards=step_rewards)
    if step_rewards.shape != step_mask.shape:
        raise ValueError(f"step_rewards {tuple(step_rewards.shape)} and step_mask {tuple(step_mask.shape)} differ")
    mask = step_mask.bool()
    r = step_rewards.float().masked_fill(~mask, 0.0)
    if form == "sum":
        return r
    if form == "min":
        if not temperature > 0:
            raise ValueError(f"credit temperature must be > 0, got {temperature}")
        row_min = r.masked_fill(~mask, float("inf")).amin(dim=1, keepdim=True)  # [B, 1]
        row_min = torch.where(torch.isfinite(row_min), row_min, torch.zeros_like(row_min))
        logits = ((row_min - r) / temperature).masked_fill(~mask, float("-inf"))  # [B, S], max 0 per valid row
        weights = torch.exp(logits)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return (r * weights).masked_fill(~mask, 0.0)
    if form == "hardmin":
        worst = r.masked_fill(~mask, float("inf")).argmin(dim=1, keepdim=True)  # [B, 1], first argmin
        onehot = torch.zeros_like(r).scatter_(1, worst, 1.0) * mask
        return r * onehot
    raise ValueError(f"credit form {form!r} is unknown; valid: {', '.join(FORMS)}")


def min_form(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Registry entry for ``credit.form=min``."""
    return transform_step_rewards(step_rewards, step_mask, "min", temperature)


def hardmin_form(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Registry entry for ``credit.form=hardmin``."""
    return transform_step_rewards(step_rewards, step_mask, "hardmin", temperature)


def sum_form(step_rewards: torch.Tensor, step_mask: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Registry entry for ``credit.form=sum``."""
    return transform_step_rewards(step_rewards, step_mask, "sum", temperature)


def place_at_tokens(
    step_values: torch.Tensor,  # [B, S]
    step_end_idx: torch.Tensor,  # [B, S] long, -1 = pad
    num_tokens: int,
) -> torch.Tensor:
    """Token tensor [B, T] holding ``step_values[b, s]`` at ``step_end_idx[b, s]`` and 0 elsewhere."""
    if step_values.shape != step_end_idx.shape:
        raise ValueError(f"step_values {tuple(step_values.shape)} and step_end_idx {tuple(step_end_idx.shape)} differ")
    valid = step_end_idx >= 0
    if bool((step_end_idx[valid] >= num_tokens).any()):
        raise ValueError(f"step_end_idx has an index >= num_tokens={num_tokens}")
    out = torch.zeros(step_values.shape[0], num_tokens, dtype=step_values.dtype, device=step_values.device)
    return out.scatter_add_(1, step_end_idx.clamp_min(0), step_values * valid)


def reverse_cumsum(x: torch.Tensor) -> torch.Tensor:
    """G_t = sum_{t' >= t} x_{t'} along the last dim (gamma = 1 returns)."""
    return x.flip(-1).cumsum(-1).flip(-1)


def leave_one_out_mean(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """[B] -> [B]: mean over the other K-1 members of each row's group, (sum_g - x_i) / (K - 1)."""
    grouped = x.view(-1, group_size)
    return ((grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)).reshape(-1)


def step_lengths(step_end_idx: torch.Tensor) -> torch.Tensor:
    """l_{i,s} = end_s - end_{s-1} - 1 (tokens of step s without its end token), end_{-1} = -1; 0 on pads. [B, S]"""
    valid = step_end_idx >= 0
    prev = torch.cat([torch.full_like(step_end_idx[:, :1], -1), step_end_idx[:, :-1]], dim=1)
    return torch.where(valid, step_end_idx - prev - 1, torch.zeros_like(step_end_idx))


def last_token_index(response_mask: torch.Tensor) -> torch.Tensor:
    """[B] index of the last valid token, -1 for an empty row."""
    T = response_mask.shape[1]
    pos = torch.arange(T, device=response_mask.device).expand_as(response_mask)
    return torch.where(response_mask.bool(), pos, -1).amax(dim=1) if T > 0 else torch.full_like(response_mask[:, 0], -1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(A - mean_M) / sqrt(var_M + eps) over the positions in ``mask`` (population variance); 0 outside M."""
    m = mask.bool()
    n = int(m.sum().item())
    if n == 0:
        return torch.zeros_like(values)
    mean = values[m].mean()
    var = ((values[m] - mean) ** 2).mean()
    return torch.where(m, (values - mean) / torch.sqrt(var + eps), torch.zeros_like(values))


def rloo_token_advantages(
    step_rewards: torch.Tensor,  # [B, S] already transformed (r*)
    step_end_idx: torch.Tensor,  # [B, S] long, -1 = pad
    response_mask: torch.Tensor,  # [B, T] bool
    group_size: int,
    verifiable_rewards: torch.Tensor | None = None,  # [B]
    vr_coef: float = 1.0,
    kl: torch.Tensor | None = None,  # [B, T] log pi_old - log pi_ref
    kl_coef: float = 0.0,
    mask_step_ends: bool = True,
    whiten: bool = True,
    baseline: str = "token",
    max_length: int | None = None,
) -> torch.Tensor:
    """Per-token advantages [B, T] for PURE with an RLOO token-level baseline.

    ``baseline="token"`` (default; PURE's OpenRLHF code):
      L_i = valid tokens of row i, R_i = sum_s r*_{i,s},
      b_i = sum_{k != i} R_k / sum_{k != i} L_k over row i's group (0 if that denominator is 0),
      l_{i,s} = end_s - end_{s-1} - 1,
      u_{i,t} = sum_s [t = end_{i,s}] (r*_{i,s} - b_i * l_{i,s})
              + [t = last_i] * vr_coef * (v_i - mean_{k != i} v_k)
              - kl_coef * kl_{i,t},
      A_{i,t} = sum_{valid t' >= t} u_{i,t'}   (gamma = 1, no critic).
    ``baseline="paper"`` (PURE Eq. 7 as in the verl code): u holds r* at step ends, vr_coef * v_i at the last token
      and -kl_coef * kl; G = reverse cumsum of u; b_i = sum_{k != i} sum_t G_{k,t} / ((K - 1) N) with N =
      ``max_length`` (default T, the padded length); A = (G - b_i) on valid tokens.
    Then, if ``mask_step_ends``: A = 0 at every step-end token (separators and the last token), so they carry no
    loss. If ``whiten``: A <- (A - mean_M) / sqrt(var_M + 1e-8) over M = valid tokens that are not masked step ends
    (population variance), 0 outside M. The reference code whitens with statistics that include masked zeros and
    padding; this project uses the clean definition.
    Rows without ground truth should get equal verifiable rewards across their group (e.g. 0): their term vanishes.

    The token baseline charges each step b_i per token, so it favours length by the sign of the rewards: when a
    whole group scores -1, the longest response gets a positive advantage (and the shortest when all score +1).
    A policy whose steps are mostly judged wrong then learns to ramble until truncated; the paper baseline does
    not depend on the row's own length and is the safer choice there (tests/pure_rl/test_credit.py pins both).
    Likewise ``mask_step_ends`` masks the EOS: under mostly negative advantages every sampled token but the EOS is
    pushed down, so stopping early gains probability and answers shrink (the "empty outputs" of PURE's issue #20).
    """
    B, T = response_mask.shape
    _validate(step_rewards, step_end_idx, response_mask, group_size, verifiable_rewards, kl)
    if baseline not in BASELINES:
        raise ValueError(f"baseline {baseline!r} is unknown; valid: {', '.join(BASELINES)}")
    mask = response_mask.bool()
    step_valid = step_end_idx >= 0
    # float64 inside: whitening divides by the spread of returns, which magnifies float32 rounding of the cumsums.
    r_star = step_rewards.double().masked_fill(~step_valid, 0.0)  # [B, S]
    last = last_token_index(mask)  # [B]
    has_token = last >= 0
    u = torch.zeros(B, T, dtype=torch.float64, device=response_mask.device)  # [B, T] per-token reward
    if baseline == "token":
        lengths = mask.sum(dim=1).double()  # [B] L_i
        returns = r_star.sum(dim=1)  # [B] R_i
        others_r = _group_sum(returns, group_size) - returns
        others_l = _group_sum(lengths, group_size) - lengths
        b = torch.where(others_l > 0, others_r / others_l.clamp_min(1.0), torch.zeros_like(others_r))  # [B]
        step_values = r_star - b[:, None] * step_lengths(step_end_idx).double()
        u += place_at_tokens(step_values * step_valid, step_end_idx, T)
    else:
        u += place_at_tokens(r_star, step_end_idx, T)
    if verifiable_rewards is not None:
        v = verifiable_rewards.double()
        vr_term = vr_coef * (v - leave_one_out_mean(v, group_size)) if baseline == "token" else vr_coef * v
        u[has_token, last[has_token]] += vr_term[has_token]
    if kl is not None and kl_coef != 0.0:
        u -= kl_coef * kl.double() * mask
    u = u * mask
    adv = reverse_cumsum(u) * mask  # [B, T]
    if baseline == "paper":
        n = float(max_length if max_length is not None else T)
        row_total = adv.sum(dim=1)  # [B] sum_t G_{i,t}
        b = (_group_sum(row_total, group_size) - row_total) / ((group_size - 1) * n)
        adv = (adv - b[:, None]) * mask
    keep = mask.clone()
    if mask_step_ends:
        ends = place_at_tokens(step_valid.float(), step_end_idx, T) > 0
        keep &= ~ends
        adv = adv * keep
    if whiten:
        adv = masked_whiten(adv, keep)
    return adv.float()


def _group_sum(x: torch.Tensor, group_size: int) -> torch.Tensor:
    """[B] -> [B]: each row's group total, broadcast back to the rows."""
    return x.view(-1, group_size).sum(dim=1, keepdim=True).expand(-1, group_size).reshape(-1)


def _check_finite(**tensors: torch.Tensor | None) -> None:
    for name, t in tensors.items():
        if t is not None and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")


def _validate(step_rewards, step_end_idx, response_mask, group_size, verifiable_rewards, kl) -> None:
    B, T = response_mask.shape
    if not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an int >= 2 for a leave-one-out baseline, got {group_size!r}")
    if B % group_size != 0:
        raise ValueError(f"batch of {B} rows is not divisible by group_size={group_size}")
    if step_rewards.shape != step_end_idx.shape or step_rewards.shape[0] != B:
        raise ValueError(
            f"shapes disagree: step_rewards {tuple(step_rewards.shape)}, step_end_idx {tuple(step_end_idx.shape)}, "
            f"response_mask {tuple(response_mask.shape)}"
        )
    if verifiable_rewards is not None and tuple(verifiable_rewards.shape) != (B,):
        raise ValueError(f"verifiable_rewards must have shape ({B},), got {tuple(verifiable_rewards.shape)}")
    if kl is not None and kl.shape != response_mask.shape:
        raise ValueError(f"kl {tuple(kl.shape)} must match response_mask {tuple(response_mask.shape)}")
    if bool((step_end_idx >= T).any()):
        raise ValueError(f"step_end_idx holds an index >= T={T}")
    _check_finite(step_rewards=step_rewards, verifiable_rewards=verifiable_rewards, kl=kl)
