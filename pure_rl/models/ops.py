"""Pure tensor functions of the lightning policy, and the dispatch to ``kernels.lightning_attn``.

Lightning attention with a per-head decay lambda_h = exp(log_decay_h) (no softmax, no 1/sqrt(d) scale):
    S_t = lambda * S_{t-1} + k_t^T v_t          S: [K, V] per (sequence, head), fp32
    o_t = q_t S_t
Training and prefill use the chunked form (block-local exponents only); decode applies the recurrence one token at
a time on the carried fp32 state. On CUDA both go through the Triton kernels; elsewhere through the pure-torch
chunked reference of the same kernels package, so CPU runs compute the same function.
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def _kernel(name: str):
    """A Triton entry point of ``kernels.lightning_attn``, or None where it cannot load (no triton, not built yet)."""
    import kernels.lightning_attn as la

    try:
        return getattr(la, name)
    except (ImportError, AttributeError):
        return None


def _use_triton(t: torch.Tensor) -> bool:
    """Whether the Triton kernels take this tensor: CUDA ones (tests also send CPU tensors, under TRITON_INTERPRET=1)."""
    return t.is_cuda


def layer_log_decay(num_heads: int, layer_idx: int, num_layers: int) -> torch.Tensor:
    """log lambda_h <= 0 of one layer, [H] fp32: the kernels package's ALiBi-slope schedule -s_h (1 - l/(L-1) + 1e-5)."""
    from kernels.lightning_attn import lightning_slopes

    return lightning_slopes(num_heads, layer_idx, num_layers).to(torch.float32).reshape(num_heads)


def lightning_attention(
    q: torch.Tensor,  # [B, T, H, K]
    k: torch.Tensor,  # [B, T, H, K]
    v: torch.Tensor,  # [B, T, H, V]
    log_decay: torch.Tensor,  # [H] fp32, log lambda <= 0
    initial_state: torch.Tensor | None = None,  # [B, H, K, V] fp32
    output_final_state: bool = False,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked lightning attention over a block of tokens, optionally continuing from ``initial_state``.

    o_t = q_t (lambda^(t+1) S_0 + sum_{s<=t} lambda^{t-s} k_s^T v_s); returns (o [B, T, H, V], S_T or None).
    CUDA runs the Triton kernel; elsewhere ``batched_chunk_lightning_attn`` computes the same chunked form.
    """
    chunk = _kernel("chunk_lightning_attn") if _use_triton(q) else None
    if chunk is None:
        return batched_chunk_lightning_attn(q, k, v, log_decay, initial_state, output_final_state, chunk_size)
    o, state = chunk(q, k, v, log_decay, scale=1.0, initial_state=initial_state, output_final_state=output_final_state)
    return o, (state.float() if state is not None else None)


def batched_chunk_lightning_attn(
    q: torch.Tensor,  # [B, T, H, K]
    k: torch.Tensor,  # [B, T, H, K]
    v: torch.Tensor,  # [B, T, H, V]
    log_decay: torch.Tensor,  # [H]
    initial_state: torch.Tensor | None = None,  # [B, H, K, V]
    output_final_state: bool = False,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pure-torch chunked lightning attention, batched over sequences and heads (the CPU path; autograd-able).

    Per chunk of n tokens with 0-based rows i, j and carried state S (fp32), block-local exponents only:
        o_i   = sum_{j<=i} lambda^(i-j) (q_i . k_j) v_j + lambda^(i+1) q_i S
        S_new = lambda^n S + sum_j lambda^(n-1-j) k_j^T v_j
    The same form as ``kernels.lightning_attn.naive_chunk_lightning_attn``, without its per-sequence Python loop.
    """
    B, T, H, K = q.shape
    g = log_decay.detach().to(device=q.device, dtype=torch.float32)  # [H]
    qf, kf, vf = (t.float().transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
    state = (
        initial_state.float() if initial_state is not None else q.new_zeros(B, H, K, v.shape[-1], dtype=torch.float32)
    )
    outs = []
    for start in range(0, T, chunk_size):
        qc, kc, vc = (t[:, :, start : start + chunk_size] for t in (qf, kf, vf))  # [B, H, n, D]
        n = qc.shape[2]
        idx = torch.arange(n, device=q.device, dtype=torch.float32)
        diff = idx[:, None] - idx[None, :]  # [n, n]
        mask = torch.where(diff >= 0, torch.exp(g[:, None, None] * diff.clamp(min=0)), 0.0)  # [H, n, n]
        q_decay = torch.exp(g[:, None] * (idx + 1))[..., None]  # [H, n, 1]
        k_decay = torch.exp(g[:, None] * (n - 1 - idx))[..., None]  # [H, n, 1]
        intra = ((qc @ kc.transpose(-1, -2)) * mask) @ vc  # [B, H, n, V]
        outs.append(intra + (qc * q_decay) @ state)
        state = torch.exp(g * n)[:, None, None] * state + (kc * k_decay).transpose(-1, -2) @ vc
    o = torch.cat(outs, dim=2).transpose(1, 2) if outs else v.float().clone()  # [B, T, H, V]
    return o.to(q.dtype), (state if output_final_state else None)


def lightning_decode_step(
    q: torch.Tensor,  # [B, 1, H, K]
    k: torch.Tensor,  # [B, 1, H, K]
    v: torch.Tensor,  # [B, 1, H, V]
    log_decay: torch.Tensor,  # [H] fp32
    state: torch.Tensor,  # [B, H, K, V] fp32, updated in place
) -> torch.Tensor:
    """One decode token: S <- lambda S + k^T v (in place, fp32), o = q S; returns o [B, 1, H, V] in v's dtype.

    In place so that the state keeps its address across CUDA-graph replays.
    """
    step = _kernel("fused_recurrent_lightning_attn_step") if _use_triton(q) else None
    if step is not None:
        return step(q[:, 0], k[:, 0], v[:, 0], log_decay, state, scale=1.0).unsqueeze(1)
    decay = log_decay.exp().to(state.device)[None, :, None, None]  # [1, H, 1, 1]
    kf, vf, qf = k[:, 0].float(), v[:, 0].float(), q[:, 0].float()  # [B, H, K] / [B, H, V]
    state.mul_(decay).add_(kf.unsqueeze(-1) * vf.unsqueeze(-2))
    o = torch.einsum("bhk,bhkv->bhv", qf, state)  # [B, H, V]
    return o.unsqueeze(1).to(v.dtype)


def decay_grad_carrier(
    q: torch.Tensor,  # [B, T, H, K]
    k: torch.Tensor,  # [B, T, H, K]
    log_decay: torch.Tensor,  # [H] fp32, requires grad
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Route d loss / d log_decay through q and k, for kernels that treat the decay as a constant.

    With delta = g - stop_grad(g) (exactly 0): q_t <- q_t e^{(t+1) delta}, k_s <- k_s e^{-(s+1) delta} and the final
    state S_T <- S_T e^{T delta}. Values are unchanged (multiplied by exactly 1), while the derivatives equal those of
    lambda = e^g in o_t = q_t (lambda^(t+1) S_0 + sum_{s<=t} lambda^(t-s) k_s^T v_s) and in S_T, so every path
    (chunked CPU, Triton, recurrence) learns the decay without a decay gradient of its own. No absolute-position
    exponent is ever evaluated away from 0, so nothing over- or underflows. Returns (q, k, state_factor [H]).
    """
    T = q.shape[1]
    delta = log_decay.float() - log_decay.detach().float()  # [H], all zeros
    steps = torch.arange(1, T + 1, device=q.device, dtype=torch.float32)[:, None]  # [T, 1]
    q = q * torch.exp(steps * delta)[None, :, :, None].to(q.dtype)
    k = k * torch.exp(-steps * delta)[None, :, :, None].to(k.dtype)
    return q, k, torch.exp(T * delta)


def causal_depthwise_conv(
    x: torch.Tensor,  # [B, T, C]
    weight: torch.Tensor,  # [C, W]
    past: torch.Tensor | None = None,  # [B, W-1, C]: the W-1 inputs before x (zeros at the start)
) -> tuple[torch.Tensor, torch.Tensor]:
    """Short causal depthwise convolution (token shift): y_t[c] = sum_{i<W} weight[c, W-1-i] x_{t-i}[c].

    Returns (y [B, T, C], the last W-1 inputs [B, W-1, C]): carrying them makes chunked prefill and one-token
    decode compute the same y as one pass over the whole sequence, at O(W C) per token.
    """
    B, T, C = x.shape
    W = weight.shape[-1]
    if past is None:
        past = x.new_zeros(B, W - 1, C)
    xp = torch.cat([past.to(x.dtype), x], dim=1)  # [B, T+W-1, C]
    y = torch.nn.functional.conv1d(xp.transpose(1, 2), weight.to(x.dtype)[:, None, :], groups=C)  # [B, C, T]
    return y.transpose(1, 2), xp[:, T:]


def lrpe_features(
    x: torch.Tensor,  # [B, T, H, D]
    positions: torch.Tensor,  # [T] (any common offset per row gives the same scores)
    theta: torch.Tensor,  # [H, D] angular frequencies
) -> torch.Tensor:
    """TransNormerLLM's LRPE: [x cos(t theta), x sin(t theta)] -> [B, T, H, 2D].

    For a query at t and key at s: q'_t . k'_s = sum_i q_i k_i cos((t - s) theta_i), a relative-position score that
    linear attention can still carry in its state (the key dimension doubles).
    """
    angles = positions.float()[:, None, None] * theta.float()[None]  # [T, H, D]
    xf = x.float()
    return torch.cat([xf * angles.cos(), xf * angles.sin()], dim=-1).to(x.dtype)


def srms_norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """SRMSNorm(x) = x / sqrt(mean(x^2) + eps), no learnable gain, computed in fp32 (TNL-ICML Eq. 14)."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def rope_cos_sin(
    position_ids: torch.Tensor,  # [B, T] long
    head_dim: int,
    theta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE tables in fp32: angle[b, t, i] = pos[b, t] * theta^(-2i/D), duplicated to D; returns cos, sin [B, T, D]."""
    inv_freq = theta ** (-torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim)
    angles = position_ids.float()[..., None] * inv_freq  # [B, T, D/2]
    emb = torch.cat([angles, angles], dim=-1)  # [B, T, D]
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin with x [B, T, H, D] and cos/sin [B, T, D]; rotate_half(a, b) = (-b, a)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    xf = x.float() * cos[:, :, None] + rotated.float() * sin[:, :, None]
    return xf.to(x.dtype)


def positions_from_mask(attention_mask: torch.Tensor, query_length: int) -> torch.Tensor:
    """Position of each of the last ``query_length`` tokens = number of real tokens before it (left padding)."""
    pos = attention_mask.long().cumsum(-1) - 1  # [B, S]
    return pos.clamp(min=0)[:, -query_length:]
