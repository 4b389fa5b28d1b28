"""Chunked lightning attention in Triton (training and prefill): one pass over q, k, v; the state stays on chip.

Each program walks the chunks of one sequence segment serially, carrying its state in registers, so q, k, v are
read once and o written once (no per-chunk state goes to HBM, unlike fla's two-pass form). The state is held
transposed, St = S^T [BV, K], so that every product reads its large operand straight from the loaded tiles and the
state itself is the register operand of its own product: out^T = St q^T needs no staging of St in shared memory.
When the (sequence, head, V-block) programs cannot fill the GPU, each sequence is cut into segments: a first kernel
sums the decayed k^T v of every segment but the last (all V columns per program, so k is read once), and each
segment's program starts from the decayed sum of the segments before it.

Within a chunk of n tokens (0-based rows i, j), with R(x) the rounding to the input dtype that the tensor-core
operands get (the identity for fp32 inputs), the kernel computes exactly

    o_i   = R(scale * (lam^(i+1) q_i R(S) + sum_{j<=i} R(lam^(i-j) (q_i . k_j)) v_j))
    S_new = lam^n S + sum_j k_j^T R(lam^(n-1-j) v_j)                       (S in fp32)

`chunk_consistent_step` in ``decode.py`` reproduces this function one token at a time for rollouts.

Over 400 lines: the per-chunk Triton helper takes every layout constant explicitly, and its three call sites
(a partial chunk first in reverse, the full chunks, a partial chunk last) are spelled out.

Over 400 lines on purpose: the chunk body, the kernel, its launch plan and the autograd-facing wrapper are one op
(fla's layout: one file per op form); the shared Triton helpers and the segment sums are already split out.
"""

from __future__ import annotations

import os
from functools import partial

import torch
import triton
import triton.language as tl

from ..testing import new_output
from .autograd import LightningAttnFunction
from .inputs import check_inputs
from .segments import launch_segment_sums
from .tl_ops import _mm, _round, _seq_bounds

__all__ = ["TUNING", "chunk_lightning_attn", "launch_chunk"]

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

# Block shapes and launch settings for the GPU (H200 sweep in kernels/BENCHMARKS.md, `python -m kernels.bench
# lightning_attn --sweep`). "chunk" also fixes the rounding points of the function above, so the rollout decode
# (decode.py) reads it too.
TUNING: dict[str, int] = {
    "chunk": 32,  # tokens per chunk (C)
    "block_v": 64,  # state columns per program (BV)
    "num_warps": 4,
    "num_stages": 3,
    "programs_per_sm": 2,  # resident programs per SM (ptxas: ~240 registers, so 2 programs of 4 warps)
    "sum_warps": 8,  # warps of the segment-sum kernel (one program per segment and head, all V columns)
    "maxnreg": 0,  # register cap per thread for the chunk kernel (0: the compiler's choice)
}


@triton.jit
def _chunk(
    q_seg,
    k_seg,
    v_seg,
    o_seg,
    cs,
    n,
    St,
    gl,
    scale,
    off,
    offs_a,
    offs_v,
    o_c,
    o_a,
    o_v,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    C: tl.constexpr,
    REVERSE: tl.constexpr,
    F32_DOT: tl.constexpr,
    MASKED: tl.constexpr,
):
    """Write the outputs of the n-token chunk at row cs and return the state after it (St = S^T [BV, BA])."""
    DT = v_seg.dtype.element_ty
    if MASKED:
        valid = o_c < n
        mask_a = valid[:, None] & (o_a[None, :] < DA)
        mask_v = valid[:, None] & (o_v[None, :] < DC)
        qc = tl.load(q_seg + cs * (H * DA) + offs_a, mask=mask_a, other=0.0)  # [C, BA]
        kc = tl.load(k_seg + cs * (H * DA) + offs_a, mask=mask_a, other=0.0)  # [C, BA]
        vc = tl.load(v_seg + cs * (H * DC) + offs_v, mask=mask_v, other=0.0)  # [C, BV]
    else:
        qc = tl.load(q_seg + cs * (H * DA) + offs_a)
        kc = tl.load(k_seg + cs * (H * DA) + offs_a)
        vc = tl.load(v_seg + cs * (H * DC) + offs_v)
    # Row and column indices clamped to the chunk length: equal to o_c on valid rows, and loop-variant, so the
    # [C, C] decay mask is recomputed per chunk instead of being hoisted into 64 live registers per thread.
    r = tl.minimum(o_c, n - 1)
    if REVERSE:
        qexp = (n - r - off).to(tl.float32)
        kexp = r
        dist = r[:, None] - r[None, :]  # [C_j, C_i]: j - i
    else:
        qexp = (r + 1 - off).to(tl.float32)
        kexp = n - 1 - r
        dist = r[None, :] - r[:, None]  # [C_j, C_i]: i - j
    qdec = tl.exp(gl * tl.maximum(qexp, 0.0))  # [C]
    kdec = tl.exp(gl * kexp.to(tl.float32))  # [C]
    if MASKED:
        kdec = tl.where(o_c < n, kdec, 0.0)
    # Inter term first, so the rounded copy of St is dead before the [C, C] scores are live.
    outT = _mm(St, tl.trans(qc), tl.zeros([BV, C], dtype=tl.float32), F32_DOT, DT) * qdec[None, :]  # [BV, C_i]
    # scores^T [C_j, C_i] = k q^T, masked and decayed in fp32
    At = _mm(kc, tl.trans(qc), tl.zeros([C, C], dtype=tl.float32), F32_DOT, DT)
    At = tl.where(dist >= 0, At * tl.exp(gl * tl.maximum(dist, 0).to(tl.float32)), 0.0)
    outT = _mm(tl.trans(vc), At, outT, F32_DOT, DT)  # inter and intra in one accumulator
    out = _round(tl.trans(outT * scale), DT)
    if MASKED:
        tl.store(o_seg + cs * (H * DC) + offs_v, out, mask=mask_v)
    else:
        tl.store(o_seg + cs * (H * DC) + offs_v, out)
    return _mm(tl.trans(vc * kdec[:, None]), kc, St * tl.exp(gl * (n - off)), F32_DOT, DT)


@triton.jit
def _chunk_attn_kernel(
    q,
    k,
    v,
    o,
    g,
    h0,
    ht,
    contrib,
    cu_seqlens,
    scale,
    T,
    seg_len,
    NSEG,
    h0_shift,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    NV: tl.constexpr,
    C: tl.constexpr,
    REVERSE: tl.constexpr,
    HAS_H0: tl.constexpr,
    STORE_HT: tl.constexpr,
    VARLEN: tl.constexpr,
    F32_DOT: tl.constexpr,
    SEGMENTED: tl.constexpr,
    PAD: tl.constexpr,
):
    """o = scale * decayed causal (or anti-causal, REVERSE) linear attention of one segment and one V-block."""
    # V-blocks of one (sequence, head) are adjacent programs, so their shared q, k loads meet in L2.
    i_v, i_nh, i_s = tl.program_id(0) % NV, tl.program_id(0) // NV, tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = _seq_bounds(cu_seqlens, i_n, T, VARLEN)
    seg_start = bos + i_s * seg_len
    # Segment 0 always runs, so that an empty sequence still passes its initial state through.
    if (i_s == 0) | (seg_start < eos):
        seg_end = tl.minimum(seg_start + seg_len, eos)
        n_seg = tl.cdiv(eos - bos, seg_len)
        gl = tl.load(g + i_h).to(tl.float32)
        o_c = tl.arange(0, C)
        o_a = tl.arange(0, BA)
        o_v = i_v * BV + tl.arange(0, BV)
        state_mask = (o_v[:, None] < DC) & (o_a[None, :] < DA)  # [BV, BA]
        St = tl.zeros([BV, BA], dtype=tl.float32)  # S^T
        if HAS_H0:
            St = tl.load(
                h0 + i_nh.to(tl.int64) * (DA * DC) + o_a[None, :] * DC + o_v[:, None], mask=state_mask, other=0.0
            ).to(tl.float32)
        # off = 1 for a state that enters at the first token without a decay step (reverse passes).
        off = h0_shift * 1.0
        # Start from the decayed sums of the segments this one depends on.
        if SEGMENTED:
            if REVERSE:
                n_prev = n_seg - 1 - i_s
            else:
                n_prev = i_s
            for p in range(n_prev):
                if REVERSE:
                    s_p = n_seg - 1 - p
                else:
                    s_p = p
                len_p = tl.minimum(seg_len, eos - (bos + s_p * seg_len))
                part = tl.load(
                    contrib
                    + ((i_n.to(tl.int64) * NSEG + s_p) * H + i_h) * (DA * DC)
                    + o_v[:, None] * DA
                    + o_a[None, :],
                    mask=state_mask,
                    other=0.0,
                )
                St = St * tl.exp(gl * (len_p - off)) + part
                off = off * 0.0
        # Addresses are a 64-bit segment base plus 32-bit offsets inside the segment's [tokens, D] slab of head i_h.
        seg_rows = (seg_end - seg_start).to(tl.int32)
        q_seg = q + (seg_start * H + i_h) * DA
        k_seg = k + (seg_start * H + i_h) * DA
        v_seg = v + (seg_start * H + i_h) * DC + i_v * BV
        o_seg = o + (seg_start * H + i_h) * DC + i_v * BV
        offs_a = o_c[:, None] * (H * DA) + o_a[None, :]  # [C, BA]
        offs_v = o_c[:, None] * (H * DC) + tl.arange(0, BV)[None, :]  # [C, BV]
        # Full chunks run without masks; a partial last chunk (the first one in reverse) takes the masked path.
        n_full = seg_rows // C
        rem = seg_rows - n_full * C
        if REVERSE:  # noqa: SIM102 - a constexpr branch, pruned at compile time, around a run-time one
            if rem > 0:
                cs = n_full * C
                St = _chunk(
                    q_seg,
                    k_seg,
                    v_seg,
                    o_seg,
                    cs,
                    rem,
                    St,
                    gl,
                    scale,
                    off,
                    offs_a,
                    offs_v,
                    o_c,
                    o_a,
                    o_v,
                    H,
                    DA,
                    DC,
                    BA,
                    BV,
                    C,
                    REVERSE,
                    F32_DOT,
                    True,
                )
                off = off * 0.0
        for ic in range(n_full):
            if REVERSE:
                cs = (n_full - 1 - ic) * C
            else:
                cs = ic * C
            # n == C here, but as a run-time value it keeps the decay mask from being hoisted out of the loop.
            n = tl.minimum(seg_rows - cs, C)
            St = _chunk(
                q_seg,
                k_seg,
                v_seg,
                o_seg,
                cs,
                n,
                St,
                gl,
                scale,
                off,
                offs_a,
                offs_v,
                o_c,
                o_a,
                o_v,
                H,
                DA,
                DC,
                BA,
                BV,
                C,
                REVERSE,
                F32_DOT,
                PAD,
            )
            off = off * 0.0
        if not REVERSE:  # noqa: SIM102 - as above
            if rem > 0:
                St = _chunk(
                    q_seg,
                    k_seg,
                    v_seg,
                    o_seg,
                    n_full * C,
                    rem,
                    St,
                    gl,
                    scale,
                    off,
                    offs_a,
                    offs_v,
                    o_c,
                    o_a,
                    o_v,
                    H,
                    DA,
                    DC,
                    BA,
                    BV,
                    C,
                    REVERSE,
                    F32_DOT,
                    True,
                )
        if STORE_HT:
            if REVERSE:
                writer = i_s == 0
            else:
                writer = i_s == tl.maximum(n_seg, 1) - 1
            if writer:
                tl.store(ht + i_nh.to(tl.int64) * (DA * DC) + o_a[None, :] * DC + o_v[:, None], St, mask=state_mask)


def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # interpreter: a small grid still exercises the segment path on long inputs


def pick_segment_len(total_tokens: int, num_seqs: int, heads: int, v_blocks: int, chunk: int, sms: int) -> int:
    """Tokens per segment, whole chunks each: the most segments whose programs still fit one wave.

    A wave is TUNING['programs_per_sm'] programs per SM (what registers and shared memory let reside). Rounding
    the segment count up instead would start a second, mostly idle wave that takes as long as the first.
    """
    avg = max(1, total_tokens // max(num_seqs, 1))
    base = max(1, num_seqs * heads * v_blocks)
    n_seg = max(1, min(TUNING["programs_per_sm"] * sms // base, triton.cdiv(avg, chunk)))
    return triton.cdiv(triton.cdiv(avg, n_seg), chunk) * chunk


def block_shapes(DA: int, DC: int) -> tuple[int, int, int, int]:
    """(C, BA, BV, NV) for head sizes DA (q, k) and DC (v) under the current TUNING."""
    BA = max(16, triton.next_power_of_2(DA))
    BV = max(16, min(triton.next_power_of_2(DC), TUNING["block_v"]))
    return TUNING["chunk"], BA, BV, triton.cdiv(DC, BV)


def forward_plan(q: torch.Tensor, v: torch.Tensor) -> dict[str, int]:
    """The launch a dense forward of q [B, T, H, K], v [B, T, H, V] gets: chunk, blocks, segment length, segments."""
    B, T, H, DA = q.shape
    C, _, BV, NV = block_shapes(DA, v.shape[-1])
    seg_len = pick_segment_len(B * T, B, H, NV, C, _num_sms(q.device))
    return {"chunk": C, "block_v": BV, "v_blocks": NV, "segment_len": seg_len, "segments": triton.cdiv(T, seg_len)}


def segment_sums(k: torch.Tensor, v: torch.Tensor, log_decay: torch.Tensor, segment_len: int) -> torch.Tensor:
    """The first kernel of a segmented dense forward on its own (for timing): contrib [B, NSEG, H, V, K] fp32."""
    B, T, H, DA = k.shape
    NSEG = triton.cdiv(T, segment_len)
    g = log_decay.to(device=k.device, dtype=torch.float32).contiguous()
    meta = {
        "H": H,
        "DA": DA,
        "DC": v.shape[-1],
        "BA": max(16, triton.next_power_of_2(DA)),
        "C": TUNING["chunk"],
        "REVERSE": False,
        "VARLEN": False,
        "F32_DOT": INTERPRET or k.dtype == torch.float32,
    }
    return launch_segment_sums(k, v, g, None, segment_len, NSEG, B, meta, TUNING)


def launch_chunk(
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
    segment_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the chunk kernel on validated, contiguous inputs; see the module docstring for the recurrence."""
    B, T, H, DA = q.shape
    DC = v.shape[-1]
    C, BA, BV, NV = block_shapes(DA, DC)
    total = B * T
    seg_len = segment_len or pick_segment_len(total, num_seqs, H, NV, C, _num_sms(q.device))
    if seg_len % C:
        raise ValueError(f"segment_len must be a multiple of the chunk size {C}, got {seg_len}")
    span = T if cu_seqlens is None else total
    NSEG = max(1, triton.cdiv(span, seg_len))
    o = new_output(v.shape, v)
    ht = new_output((num_seqs, H, DA, DC), q, torch.float32) if store_final_state else None
    g = log_decay.to(device=q.device, dtype=torch.float32).contiguous()
    h0 = initial_state.to(torch.float32).contiguous() if initial_state is not None else None
    meta = {
        "H": H,
        "DA": DA,
        "DC": DC,
        "BA": BA,
        "C": C,
        "REVERSE": reverse,
        "VARLEN": cu_seqlens is not None,
        "F32_DOT": INTERPRET or q.dtype == torch.float32,
    }
    contrib = launch_segment_sums(k, v, g, cu_seqlens, seg_len, NSEG, num_seqs, meta, TUNING) if NSEG > 1 else None
    launch = {} if INTERPRET else {"num_warps": TUNING["num_warps"], "num_stages": TUNING["num_stages"]}
    if TUNING["maxnreg"] and not INTERPRET:
        launch["maxnreg"] = TUNING["maxnreg"]
    _chunk_attn_kernel[(NV * num_seqs * H, NSEG)](
        q,
        k,
        v,
        o,
        g,
        h0,
        ht,
        contrib,
        cu_seqlens,
        float(scale),
        T,
        seg_len,
        NSEG,
        float(h0_shift),
        BV=BV,
        NV=NV,
        HAS_H0=h0 is not None,
        STORE_HT=store_final_state,
        SEGMENTED=NSEG > 1,
        PAD=BA != DA or DC % BV != 0,
        **meta,
        **launch,
    )
    return o, ht


def chunk_lightning_attn(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float = 1.0,
    initial_state: torch.Tensor | None = None,
    output_final_state: bool = False,
    cu_seqlens: torch.Tensor | None = None,
    *,
    segment_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Lightning attention for training and prefill: o_t = scale * q_t kv_t, kv_t = exp(log_decay) kv_{t-1} + k_t^T v_t.

    q, k [B, T, H, K]; v [B, T, H, V] (fp16 / bf16 / fp32, fp32 accumulation); log_decay [H] fp32 <= 0;
    initial_state [N, H, K, V]; varlen: B = 1 and cu_seqlens [N + 1] (FlashAttention convention).
    Returns o [B, T, H, V] in v's dtype and the final states [N, H, K, V] fp32 (None unless output_final_state).
    Differentiable in q, k, v and initial_state (Triton forward and backward). segment_len (a multiple of
    TUNING["chunk"]) sets the tokens each parallel program walks; by default it is picked to fill the GPU.
    """
    N = check_inputs(q, k, v, log_decay, scale, initial_state, cu_seqlens)
    q, k, v = (t.contiguous() for t in (q, k, v))
    g = log_decay.detach().to(device=q.device, dtype=torch.float32).contiguous()
    launch = partial(launch_chunk, segment_len=segment_len) if segment_len else launch_chunk
    return LightningAttnFunction.apply(
        launch, q, k, v, g, float(scale), initial_state, output_final_state, cu_seqlens, N
    )
