"""Rollout decode that computes the chunk kernel's function, one token at a time.

The chunk kernel (``chunk.py``) rounds three operands to the input dtype, R(x): the chunk-start state in the inter
term, the decayed scores in the intra term and the decayed values of the state update. A decode step that keeps an
fp32 state and multiplies in fp32 computes a slightly different function (with bf16 inputs it differs by bf16
rounding of those operands), and that difference is the rollout-vs-learner log-prob gap of an RL update. This step
instead keeps what the chunk kernel keeps: for each (sequence, head)

    S   [K, V] fp32   state at the last chunk boundary (a multiple of C = TUNING["chunk"] tokens from the start)
    Sr  [K, V] DT     R(S), the operand of the inter term (read every step; S is read only at chunk ends)
    kb, vb [C, D] DT  keys and values of the current chunk so far

and for the token at index i of its chunk returns, as the kernel does,

    o   = R(scale * (lam^(i+1) q Sr + sum_{j<=i} R(lam^(i-j) (q . k_j)) v_j))

then, when i = C - 1 closes the chunk, S <- lam^C S + sum_j k_j^T R(lam^(C-1-j) v_j) and Sr <- R(S). The state
traffic per step is Sr (half of an fp32 state) plus the chunk buffers, instead of an fp32 state read and written.
All rows of a batch share one chunk index (rollout prompts are left-padded to one width).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from . import chunk as chunk_mod
from .tl_ops import _mm, _round

__all__ = ["ChunkDecodeState", "chunk_consistent_step"]

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
BLOCK_V = 32  # state columns per program: 4 programs per (sequence, head) at V = 128


@triton.jit
def _consistent_step_kernel(
    q,
    k,
    v,
    o,
    g,
    S,
    Sr,
    kbuf,
    vbuf,
    pos,
    vmask,
    scale,
    stride_q,
    stride_k,
    stride_v,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    NV: tl.constexpr,
    C: tl.constexpr,
    HAS_VMASK: tl.constexpr,
    F32_DOT: tl.constexpr,
):
    i_v, i_nh = tl.program_id(0) % NV, tl.program_id(0) // NV
    i_b, i_h = i_nh // H, i_nh % H
    DT = Sr.dtype.element_ty
    i = tl.load(pos)
    o_a = tl.arange(0, BA)
    o_v = i_v * BV + tl.arange(0, BV)
    o_c = tl.arange(0, C)
    a_mask = o_a < DA
    v_mask = o_v < DC
    gl = tl.load(g + i_h).to(tl.float32)
    row = i_b.to(tl.int64)
    qt = tl.load(q + row * stride_q + i_h * DA + o_a, mask=a_mask, other=0.0).to(tl.float32)  # [BA]
    kt = tl.load(k + row * stride_k + i_h * DA + o_a, mask=a_mask, other=0.0)  # [BA] DT
    vt = tl.load(v + row * stride_v + i_h * DC + o_v, mask=v_mask, other=0.0)  # [BV] DT
    if HAS_VMASK:  # in fp32: the interpreter's bf16 arithmetic is not bf16 arithmetic
        vt = (vt.to(tl.float32) * tl.load(vmask + i_b).to(tl.float32)).to(vt.dtype)
    nh = i_nh.to(tl.int64)
    before = o_c < i  # rows of this chunk already in the buffers
    kb = tl.load(
        kbuf + nh * (C * DA) + o_c[:, None] * DA + o_a[None, :], mask=before[:, None] & a_mask[None, :], other=0.0
    )  # [C, BA]
    vb = tl.load(
        vbuf + nh * (C * DC) + o_c[:, None] * DC + o_v[None, :], mask=before[:, None] & v_mask[None, :], other=0.0
    )  # [C, BV]
    # The current token takes row i (its own score has decay exp(0) = 1, as on the kernel's diagonal).
    here = o_c == i
    kb = tl.where(here[:, None], kt[None, :], kb)
    vb = tl.where(here[:, None], vt[None, :], vb)
    scores = tl.sum(kb.to(tl.float32) * qt[None, :], axis=1)  # [C] fp32, q . k_j
    am = tl.where(o_c <= i, scores * tl.exp(gl * tl.maximum(i - o_c, 0).to(tl.float32)), 0.0)
    am = _round(am, DT).to(tl.float32)
    intra = tl.sum(am[:, None] * vb.to(tl.float32), axis=0)  # [BV]
    s_offs = nh * (DA * DC) + o_a[:, None] * DC + o_v[None, :]
    s_mask = a_mask[:, None] & v_mask[None, :]
    sr = tl.load(Sr + s_offs, mask=s_mask, other=0.0).to(tl.float32)  # [BA, BV]
    inter = tl.sum(qt[:, None] * sr, axis=0) * tl.exp(gl * (i + 1).to(tl.float32))
    tl.store(o + nh * DC + o_v, _round((inter + intra) * scale, DT), mask=v_mask)
    if i_v == 0:
        tl.store(kbuf + nh * (C * DA) + i * DA + o_a, kt, mask=a_mask)
    tl.store(vbuf + nh * (C * DC) + i * DC + o_v, vt, mask=v_mask)
    if i == C - 1:
        # Close the chunk as the kernel's state update does: S <- lam^C S + sum_j k_j^T R(lam^(C-1-j) v_j).
        kdec = tl.exp(gl * (C - 1 - o_c).to(tl.float32))  # [C]
        s = tl.load(S + s_offs, mask=s_mask, other=0.0)
        s = _mm(tl.trans(kb), vb * kdec[:, None], s * tl.exp(gl * (C * 1.0)), F32_DOT, DT)
        tl.store(S + s_offs, s, mask=s_mask)
        tl.store(Sr + s_offs, _round(s, DT), mask=s_mask)


class ChunkDecodeState:
    """The per-layer decode state of :func:`chunk_consistent_step` for N sequences (see the module docstring).

    ``S`` [N, H, K, V] fp32, ``Sr`` [N, H, K, V] dtype, ``kbuf`` [N, H, C, K], ``vbuf`` [N, H, C, V] dtype, and
    ``pos`` [1] int32 on the device: the chunk index of the next token, shared by every row and every layer.
    """

    def __init__(self, N: int, H: int, K: int, V: int, dtype: torch.dtype, device, chunk: int | None = None):
        self.chunk = chunk or chunk_mod.TUNING["chunk"]
        self.S = torch.zeros(N, H, K, V, dtype=torch.float32, device=device)
        self.Sr = torch.zeros(N, H, K, V, dtype=dtype, device=device)
        self.kbuf = torch.zeros(N, H, self.chunk, K, dtype=dtype, device=device)
        self.vbuf = torch.zeros(N, H, self.chunk, V, dtype=dtype, device=device)

    def load(self, state: torch.Tensor) -> None:
        """Start from a state at a chunk boundary (e.g. a prefill's final state), in place."""
        self.S.copy_(state)
        self.Sr.copy_(state)


def chunk_consistent_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    state: ChunkDecodeState,
    pos: torch.Tensor,
    scale: float = 1.0,
    v_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """One decode token per sequence through the chunk kernel's function; updates ``state`` in place.

    q, k [N, H*K] and v [N, H*V] (row-strided views are fine, e.g. slices of one projection), dtype = state.Sr's;
    log_decay [H] <= 0; pos [1] int32 device tensor, the chunk index i of this token (the caller advances it mod
    C after the last layer); v_mask [N] (1 keeps v, 0 zeroes it: padding). Returns o [N, H, V]. No host sync,
    so it can be captured in a CUDA graph.
    """
    N, H, K, V = state.S.shape
    if q.shape != (N, H * K) or k.shape != (N, H * K) or v.shape != (N, H * V):
        raise ValueError(
            f"q, k must be [N, H*K] = [{N}, {H * K}] and v [N, H*V] = [{N}, {H * V}], got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if not (q.dtype == k.dtype == v.dtype == state.Sr.dtype):
        raise TypeError(f"q, k, v must have the state's dtype {state.Sr.dtype}, got {q.dtype}, {k.dtype}, {v.dtype}")
    if any(t.stride(-1) != 1 for t in (q, k, v)):
        raise ValueError("q, k, v rows must be contiguous in their last dimension")
    if log_decay.shape != (H,):
        raise ValueError(f"log_decay must be [H] = [{H}], got {tuple(log_decay.shape)}")
    if pos.dtype != torch.int32 or pos.numel() != 1:
        raise ValueError(f"pos must be a one-element int32 tensor, got {pos.dtype} {tuple(pos.shape)}")
    BA = max(16, triton.next_power_of_2(K))
    BV = max(16, min(triton.next_power_of_2(V), BLOCK_V))
    NV = triton.cdiv(V, BV)
    o = torch.empty(N, H, V, dtype=v.dtype, device=v.device)
    g = log_decay.to(device=q.device, dtype=torch.float32)
    launch = {} if INTERPRET else {"num_warps": 4}
    _consistent_step_kernel[(NV * N * H,)](
        q,
        k,
        v,
        o,
        g,
        state.S,
        state.Sr,
        state.kbuf,
        state.vbuf,
        pos,
        v_mask,
        float(scale),
        q.stride(0),
        k.stride(0),
        v.stride(0),
        H=H,
        DA=K,
        DC=V,
        BA=BA,
        BV=BV,
        NV=NV,
        C=state.chunk,
        HAS_VMASK=v_mask is not None,
        F32_DOT=INTERPRET or v.dtype == torch.float32,
        **launch,
    )
    return o
