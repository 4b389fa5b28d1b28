"""Token-by-token lightning attention in Triton: short sequences, decoding, and the in-place decode step.

One program per (sequence, head, V-block) keeps its [K, BV] fp32 state in registers and walks the tokens:

    kv_t = lam kv_{t-1} + k_t^T v_t,    o_t = scale * q_t kv_t       (REVERSE walks from the last token)
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from ..testing import new_output
from .autograd import LightningAttnFunction
from .inputs import check_inputs

__all__ = ["fused_recurrent_lightning_attn", "fused_recurrent_lightning_attn_step", "launch_recurrent"]

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
BLOCK_V = 32  # state columns per program: a [128, 32] fp32 tile is 16 KB, plenty of programs for the step kernel


@triton.jit
def _recurrent_kernel(
    q,
    k,
    v,
    o,
    g,
    h0,
    ht,
    cu_seqlens,
    scale,
    T,
    h0_shift,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    NV: tl.constexpr,
    REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr,
    STORE_HT: tl.constexpr,
    VARLEN: tl.constexpr,
):
    i_v, i_nh = tl.program_id(0) % NV, tl.program_id(0) // NV
    i_n, i_h = i_nh // H, i_nh % H
    if VARLEN:
        bos = tl.load(cu_seqlens + i_n).to(tl.int64)
        eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)
    else:
        bos = i_n.to(tl.int64) * T
        eos = bos + T
    o_a = tl.arange(0, BA)
    o_v = i_v * BV + tl.arange(0, BV)
    a_mask = o_a < DA
    v_mask = o_v < DC
    state_mask = a_mask[:, None] & v_mask[None, :]
    state_offs = o_a[:, None] * DC + o_v[None, :]
    gl = tl.load(g + i_h).to(tl.float32)
    S = tl.zeros([BA, BV], dtype=tl.float32)
    if HAS_H0:
        S = tl.load(h0 + i_nh.to(tl.int64) * (DA * DC) + state_offs, mask=state_mask, other=0.0).to(tl.float32)
    # off = 1: the state enters at the first token without a decay step (reverse passes of the backward).
    off = h0_shift * 1.0
    for i in range(eos - bos):
        if REVERSE:
            t = eos - 1 - i
        else:
            t = bos + i
        qt = tl.load(q + (t * H + i_h) * DA + o_a, mask=a_mask, other=0.0).to(tl.float32)
        kt = tl.load(k + (t * H + i_h) * DA + o_a, mask=a_mask, other=0.0).to(tl.float32)
        vt = tl.load(v + (t * H + i_h) * DC + o_v, mask=v_mask, other=0.0).to(tl.float32)
        S = S * tl.exp(gl * (1.0 - off)) + kt[:, None] * vt[None, :]
        ot = tl.sum(qt[:, None] * S, axis=0) * scale
        tl.store(o + (t * H + i_h) * DC + o_v, ot.to(o.dtype.element_ty), mask=v_mask)
        off = off * 0.0
    if STORE_HT:
        tl.store(ht + i_nh.to(tl.int64) * (DA * DC) + state_offs, S, mask=state_mask)


@triton.jit
def _step_kernel(
    q,
    k,
    v,
    o,
    g,
    state,
    slots,
    scale,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    NV: tl.constexpr,
    HAS_SLOTS: tl.constexpr,
):
    """state[slot] <- lam * state[slot] + k^T v in place; o = scale * q state[slot]. A negative slot is skipped."""
    i_v, i_nh = tl.program_id(0) % NV, tl.program_id(0) // NV
    i_b, i_h = i_nh // H, i_nh % H
    o_a = tl.arange(0, BA)
    o_v = i_v * BV + tl.arange(0, BV)
    a_mask = o_a < DA
    v_mask = o_v < DC
    if HAS_SLOTS:
        slot = tl.load(slots + i_b).to(tl.int64)
    else:
        slot = i_b.to(tl.int64)
    row = i_b.to(tl.int64) * H + i_h
    if slot >= 0:
        ptrs = state + (slot * H + i_h) * (DA * DC) + o_a[:, None] * DC + o_v[None, :]
        smask = a_mask[:, None] & v_mask[None, :]
        S = tl.load(ptrs, mask=smask, other=0.0)
        qt = tl.load(q + row * DA + o_a, mask=a_mask, other=0.0).to(tl.float32)
        kt = tl.load(k + row * DA + o_a, mask=a_mask, other=0.0).to(tl.float32)
        vt = tl.load(v + row * DC + o_v, mask=v_mask, other=0.0).to(tl.float32)
        S = S * tl.exp(tl.load(g + i_h).to(tl.float32)) + kt[:, None] * vt[None, :]
        tl.store(ptrs, S, mask=smask)
        ot = tl.sum(qt[:, None] * S, axis=0) * scale
    else:
        ot = tl.zeros([BV], dtype=tl.float32)
    tl.store(o + row * DC + o_v, ot.to(o.dtype.element_ty), mask=v_mask)


def _blocks(DA: int, DC: int) -> tuple[int, int, int]:
    BA = max(16, triton.next_power_of_2(DA))
    BV = max(16, min(triton.next_power_of_2(DC), BLOCK_V))
    return BA, BV, triton.cdiv(DC, BV)


def launch_recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None,
    store_final_state: bool,
    reverse: bool,
    h0_shift: int,
    cu_seqlens: torch.Tensor | None,
    num_seqs: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the token-by-token kernel on validated, contiguous inputs."""
    _, T, H, DA = q.shape
    DC = v.shape[-1]
    BA, BV, NV = _blocks(DA, DC)
    o = new_output(v.shape, v)
    ht = new_output((num_seqs, H, DA, DC), q, torch.float32) if store_final_state else None
    h0 = initial_state.to(torch.float32).contiguous() if initial_state is not None else None
    g = log_decay.to(device=q.device, dtype=torch.float32).contiguous()
    _recurrent_kernel[(NV * num_seqs * H,)](
        q,
        k,
        v,
        o,
        g,
        h0,
        ht,
        cu_seqlens,
        float(scale),
        T,
        float(h0_shift),
        H=H,
        DA=DA,
        DC=DC,
        BA=BA,
        BV=BV,
        NV=NV,
        REVERSE=reverse,
        HAS_H0=h0 is not None,
        STORE_HT=store_final_state,
        VARLEN=cu_seqlens is not None,
    )
    return o, ht


def fused_recurrent_lightning_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float = 1.0,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token-by-token lightning attention, same arguments and results as ``chunk_lightning_attn``.

    Best for decoding a few tokens on top of a state and for short sequences; differentiable in q, k, v and
    initial_state (its backward runs the same kernel forward and in reverse).
    """
    N = check_inputs(q, k, v, log_decay, scale, initial_state, cu_seqlens)
    q, k, v = (t.contiguous() for t in (q, k, v))
    g = log_decay.detach().to(device=q.device, dtype=torch.float32).contiguous()
    return LightningAttnFunction.apply(
        launch_recurrent, q, k, v, g, float(scale), initial_state, output_final_state, cu_seqlens, N
    )


def fused_recurrent_lightning_attn_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    state: torch.Tensor,
    scale: float = 1.0,
    state_indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """One decode step for a batch of sequences, updating their fp32 states in place.

    q, k [N, H, K]; v [N, H, V]; log_decay [H] <= 0; state [S, H, K, V] float32, contiguous (the state cache);
    state_indices [N] int: the cache slot of each sequence (default: slot i for sequence i; a negative slot skips
    the sequence and gives a zero output, as vLLM's PAD_SLOT_ID does). For each sequence b with slot s:

        state[s] <- exp(log_decay) * state[s] + k_b^T v_b;   o_b = scale * q_b state[s]

    Returns o [N, H, V] in v's dtype. No host sync, so it can be captured in a CUDA graph. Not differentiable.
    """
    if q.dim() != 3 or k.shape != q.shape or v.dim() != 3 or v.shape[:2] != q.shape[:2]:
        raise ValueError(
            f"step expects q, k [N, H, K] and v [N, H, V], got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    N, H, DA = q.shape
    DC = v.shape[-1]
    if state.dtype != torch.float32 or state.dim() != 4 or tuple(state.shape[1:]) != (H, DA, DC):
        raise ValueError(
            f"state must be a float32 tensor [S, H, K, V] = [S, {H}, {DA}, {DC}], got "
            f"{state.dtype} {tuple(state.shape)}"
        )
    if not state.is_contiguous():
        raise ValueError("state must be contiguous: it is updated in place")
    if log_decay.shape != (H,):
        raise ValueError(f"log_decay must be [H] = [{H}], got {tuple(log_decay.shape)}")
    if state_indices is not None and (state_indices.shape != (N,) or state_indices.is_floating_point()):
        raise ValueError(
            f"state_indices must be an int tensor [N] = [{N}], got {state_indices.dtype} {tuple(state_indices.shape)}"
        )
    if state_indices is None and state.shape[0] < N:
        raise ValueError(f"state has {state.shape[0]} slots for {N} sequences; pass state_indices or more slots")
    BA, BV, NV = _blocks(DA, DC)
    q, k, v = (t.contiguous() for t in (q, k, v))
    o = new_output(v.shape, v)
    g = log_decay.to(device=q.device, dtype=torch.float32)
    _step_kernel[(NV * N * H,)](
        q,
        k,
        v,
        o,
        g,
        state,
        state_indices,
        float(scale),
        H=H,
        DA=DA,
        DC=DC,
        BA=BA,
        BV=BV,
        NV=NV,
        HAS_SLOTS=state_indices is not None,
    )
    return o
