"""Float32 torch references of lightning attention: a token-by-token recurrence and a chunked form.

Both compute, per sequence and head h with lam = exp(log_decay[h]):

    kv_t = lam * kv_{t-1} + k_t^T v_t        kv_{-1} = initial_state   # [K, V]
    o_t  = scale * q_t kv_t                                            # [V]

They run on any device, are differentiable through autograd, and return (o in q's dtype, final state fp32 or None).
"""

from __future__ import annotations

import torch

from .inputs import check_inputs, sequence_bounds

__all__ = ["naive_chunk_lightning_attn", "naive_recurrent_lightning_attn"]


def naive_recurrent_lightning_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float = 1.0,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token-by-token fp32 recurrence kv_t = exp(log_decay) kv_{t-1} + k_t^T v_t, o_t = scale q_t kv_t.

    q, k [B, T, H, K]; v [B, T, H, V]; log_decay [H] <= 0; initial_state [N, H, K, V]; varlen with B = 1 and
    cu_seqlens [N + 1]. Returns o [B, T, H, V] in q's dtype and the final states [N, H, K, V] fp32 (or None).
    """
    check_inputs(q, k, v, log_decay, scale, initial_state, cu_seqlens)
    B, T, H, K = q.shape
    V = v.shape[-1]
    lam = log_decay.detach().to(device=q.device, dtype=torch.float32).exp()[:, None, None]  # [H, 1, 1]
    qf, kf, vf = (t.float() for t in (q, k, v))
    rows: list[list[torch.Tensor]] = [[] for _ in range(B)]
    finals = []
    for n, (b, start, end) in enumerate(sequence_bounds(T, B, cu_seqlens)):
        state = (
            initial_state[n].float() if initial_state is not None else q.new_zeros(H, K, V, dtype=torch.float32)
        )  # [H, K, V]
        for t in range(start, end):
            state = lam * state + kf[b, t, :, :, None] * vf[b, t, :, None, :]
            rows[b].append(scale * torch.einsum("hk,hkv->hv", qf[b, t], state))
        finals.append(state)
    o = torch.stack([torch.stack(r) if r else q.new_zeros(0, H, V, dtype=torch.float32) for r in rows])
    return o.to(q.dtype), (torch.stack(finals) if output_final_state else None)


def _chunk_sequence(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor, scale: float, state: torch.Tensor, C: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One sequence in chunks of C tokens with block-local exponents only.

    q, k [L, H, K]; v [L, H, V]; g [H] log-decay; state [H, K, V]. For a chunk of length n and 0-based rows i, j:
        o_i   = scale * (sum_{j<=i} exp(g (i - j)) (q_i . k_j) v_j + exp(g (i + 1)) q_i S)
        S_new = exp(g n) S + sum_j exp(g (n - 1 - j)) k_j^T v_j
    """
    outs = []
    for s in range(0, q.shape[0], C):
        qc, kc, vc = q[s : s + C], k[s : s + C], v[s : s + C]
        n = qc.shape[0]
        idx = torch.arange(n, device=q.device, dtype=torch.float32)
        diff = idx[:, None] - idx[None, :]  # [n, n]
        mask = torch.where(diff >= 0, torch.exp(g[:, None, None] * diff.clamp(min=0)), 0.0)  # [H, n, n]
        scores = torch.einsum("ihk,jhk->hij", qc, kc) * mask  # [H, n, n]
        q_decay = torch.exp(g[None, :] * (idx[:, None] + 1))  # [n, H]
        k_decay = torch.exp(g[None, :] * (n - 1 - idx[:, None]))  # [n, H]
        intra = torch.einsum("hij,jhv->ihv", scores, vc)
        inter = torch.einsum("ihk,hkv->ihv", qc * q_decay[..., None], state)
        outs.append(scale * (intra + inter))
        state = torch.exp(g * n)[:, None, None] * state + torch.einsum("jhk,jhv->hkv", kc * k_decay[..., None], vc)
    return torch.cat(outs) if outs else v.new_zeros(0, *v.shape[1:]), state


def naive_chunk_lightning_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float = 1.0,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    chunk_size: int = 64,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Chunked fp32 torch form of :func:`naive_recurrent_lightning_attn` (same arguments, same results).

    Intra-chunk terms are a masked left product (q k^T * M) v, inter-chunk terms a right product with the carried
    state, as in Lightning Attention-2; every exponent is local to one chunk. Differentiable in q, k, v and
    initial_state; suitable as a CPU fallback for the policy. chunk_size must be >= 1.
    """
    check_inputs(q, k, v, log_decay, scale, initial_state, cu_seqlens)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    g = log_decay.detach().to(device=q.device, dtype=torch.float32)
    qf, kf, vf = (t.float() for t in (q, k, v))
    pieces: list[list[torch.Tensor]] = [[] for _ in range(B)]
    finals = []
    for n, (b, start, end) in enumerate(sequence_bounds(T, B, cu_seqlens)):
        state = initial_state[n].float() if initial_state is not None else q.new_zeros(H, K, V, dtype=torch.float32)
        o_seq, state = _chunk_sequence(
            qf[b, start:end], kf[b, start:end], vf[b, start:end], g, scale, state, chunk_size
        )
        pieces[b].append(o_seq)
        finals.append(state)
    o = torch.stack([torch.cat(p) for p in pieces])
    return o.to(q.dtype), (torch.stack(finals) if output_final_state else None)
