"""Chunked lightning attention in Triton (training and prefill): one pass over q, k, v; the state stays on chip.

Each program walks the chunks of one sequence segment serially, carrying its [K, BV] fp32 state in registers, so
q, k, v are read once and o written once (no per-chunk state goes to HBM, unlike fla's two-pass form). When the
(sequence, head, V-block) programs cannot fill the GPU, each sequence is cut into segments: a first kernel sums the
decayed k^T v of every segment but the last, and each segment's program starts from the decayed sum of the
segments before it. Within a chunk of n tokens (0-based rows i, j) the exponents are block-local only:

    o_i   = scale * (sum_{j<=i} lam^(i-j) (q_i . k_j) v_j + lam^(i+1) q_i S)
    S_new = lam^n S + sum_j lam^(n-1-j) k_j^T v_j
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

__all__ = ["TUNING", "chunk_lightning_attn", "launch_chunk"]

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

# Block shapes and launch settings for the GPU: the best max-over-T forward time of the H100 sweep in
# kernels/BENCHMARKS.md (`python -m kernels.bench lightning_attn --sweep`).
TUNING: dict[str, int] = {
    "chunk": 32,  # tokens per chunk (C)
    "block_v": 64,  # columns of the state per program (BV)
    "num_warps": 4,
    "num_stages": 3,
    "programs_per_sm": 4,  # segments are added until the grid has about this many programs per SM
}


@triton.jit
def _mm(a, b, F32_DOT: tl.constexpr, DT: tl.constexpr):
    """a @ b with fp32 accumulation; operands in DT, or exact fp32 (interpreter, fp32 inputs)."""
    if F32_DOT:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a.to(DT), b.to(DT))


@triton.jit
def _mma(a, b, acc, F32_DOT: tl.constexpr, DT: tl.constexpr):
    """acc + a @ b, accumulated in place in fp32."""
    if F32_DOT:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a.to(DT), b.to(DT), acc)


@triton.jit
def _seq_bounds(cu_seqlens, i_n, T, VARLEN: tl.constexpr):
    if VARLEN:
        bos = tl.load(cu_seqlens + i_n).to(tl.int64)
        eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)
    else:
        bos = i_n.to(tl.int64) * T
        eos = bos + T
    return bos, eos


@triton.jit
def _segment_sum_kernel(
    k,
    v,
    g,
    contrib,
    cu_seqlens,
    T,
    seg_len,
    NSEG,
    H: tl.constexpr,
    DA: tl.constexpr,
    DC: tl.constexpr,
    BA: tl.constexpr,
    BV: tl.constexpr,
    NV: tl.constexpr,
    C: tl.constexpr,
    REVERSE: tl.constexpr,
    VARLEN: tl.constexpr,
    F32_DOT: tl.constexpr,
):
    """contrib[n, s, h] = sum_{j in segment s} lam^(end-1-j) k_j^T v_j   (reverse: lam^(j-start))   # [DA, BV]"""
    # V-blocks of one (sequence, head) are adjacent programs, so their shared q, k loads meet in L2.
    i_v, i_nh, i_s = tl.program_id(0) % NV, tl.program_id(0) // NV, tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = _seq_bounds(cu_seqlens, i_n, T, VARLEN)
    n_seg = tl.cdiv(eos - bos, seg_len)
    if REVERSE:
        needed = (i_s >= 1) & (i_s < n_seg)
    else:
        needed = i_s < n_seg - 1
    if needed:
        DT = k.dtype.element_ty
        seg_start = bos + i_s * seg_len
        seg_end = tl.minimum(seg_start + seg_len, eos)
        gl = tl.load(g + i_h).to(tl.float32)
        o_c = tl.arange(0, C)
        o_a = tl.arange(0, BA)
        o_v = i_v * BV + tl.arange(0, BV)
        acc = tl.zeros([BA, BV], dtype=tl.float32)
        n_chunks = tl.cdiv(seg_end - seg_start, C)
        for ic in range(n_chunks):
            if REVERSE:
                cs = seg_start + (n_chunks - 1 - ic) * C
            else:
                cs = seg_start + ic * C
            n = tl.minimum(seg_end - cs, C)
            rows = cs + o_c
            valid = o_c < n
            kc = tl.load(
                k + i_h * DA + rows[:, None] * (H * DA) + o_a[None, :],
                mask=valid[:, None] & (o_a[None, :] < DA),
                other=0.0,
            )  # [C, BA]
            vc = tl.load(
                v + i_h * DC + rows[:, None] * (H * DC) + o_v[None, :],
                mask=valid[:, None] & (o_v[None, :] < DC),
                other=0.0,
            )  # [C, BV]
            if REVERSE:
                kexp = o_c
            else:
                kexp = n - 1 - o_c
            kdec = tl.where(valid, tl.exp(gl * tl.maximum(kexp, 0).to(tl.float32)), 0.0)
            acc = acc * tl.exp(gl * n.to(tl.float32)) + _mm(tl.trans(kc * kdec[:, None]), vc, F32_DOT, DT)
        base = contrib + ((i_n.to(tl.int64) * NSEG + i_s) * H + i_h) * (DA * DC)
        tl.store(base + o_a[:, None] * DC + o_v[None, :], acc, mask=(o_a[:, None] < DA) & (o_v[None, :] < DC))


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
):
    """o = scale * decayed causal (or anti-causal, REVERSE) linear attention of one segment and one V-block."""
    # V-blocks of one (sequence, head) are adjacent programs, so their shared q, k loads meet in L2.
    i_v, i_nh, i_s = tl.program_id(0) % NV, tl.program_id(0) // NV, tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = _seq_bounds(cu_seqlens, i_n, T, VARLEN)
    seg_start = bos + i_s * seg_len
    # Segment 0 always runs, so that an empty sequence still passes its initial state through.
    if (i_s == 0) | (seg_start < eos):
        DT = v.dtype.element_ty
        seg_end = tl.minimum(seg_start + seg_len, eos)
        n_seg = tl.cdiv(eos - bos, seg_len)
        gl = tl.load(g + i_h).to(tl.float32)
        o_c = tl.arange(0, C)
        o_a = tl.arange(0, BA)
        o_v = i_v * BV + tl.arange(0, BV)
        state_mask = (o_a[:, None] < DA) & (o_v[None, :] < DC)
        state_offs = o_a[:, None] * DC + o_v[None, :]
        S = tl.zeros([BA, BV], dtype=tl.float32)
        if HAS_H0:
            S = tl.load(h0 + i_nh.to(tl.int64) * (DA * DC) + state_offs, mask=state_mask, other=0.0).to(tl.float32)
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
                    contrib + ((i_n.to(tl.int64) * NSEG + s_p) * H + i_h) * (DA * DC) + state_offs,
                    mask=state_mask,
                    other=0.0,
                )
                S = S * tl.exp(gl * (len_p - off)) + part
                off = off * 0.0
        # Addresses are a 64-bit segment base plus 32-bit offsets inside the segment's [tokens, D] slab of head i_h.
        seg_rows = (seg_end - seg_start).to(tl.int32)
        n_chunks = tl.cdiv(seg_rows, C)
        q_seg = q + (seg_start * H + i_h) * DA
        k_seg = k + (seg_start * H + i_h) * DA
        v_seg = v + (seg_start * H + i_h) * DC + i_v * BV
        o_seg = o + (seg_start * H + i_h) * DC + i_v * BV
        offs_a = o_c[:, None] * (H * DA) + o_a[None, :]  # [C, BA]
        offs_v = o_c[:, None] * (H * DC) + tl.arange(0, BV)[None, :]  # [C, BV]
        for ic in range(n_chunks):
            if REVERSE:
                cs = (n_chunks - 1 - ic) * C
            else:
                cs = ic * C
            n = tl.minimum(seg_rows - cs, C)
            valid = o_c < n
            mask_a = valid[:, None]
            mask_v = valid[:, None]
            if BA != DA:
                mask_a = mask_a & (o_a[None, :] < DA)
            if DC % BV != 0:
                mask_v = mask_v & (o_v[None, :] < DC)
            qc = tl.load(q_seg + cs * (H * DA) + offs_a, mask=mask_a, other=0.0)  # [C, BA]
            kc = tl.load(k_seg + cs * (H * DA) + offs_a, mask=mask_a, other=0.0)  # [C, BA]
            vc = tl.load(v_seg + cs * (H * DC) + offs_v, mask=mask_v, other=0.0)  # [C, BV]
            if REVERSE:
                dist = o_c[None, :] - o_c[:, None]  # j - i
                qexp = n - o_c - off
                kexp = o_c
            else:
                dist = o_c[:, None] - o_c[None, :]  # i - j
                qexp = o_c + 1 - off
                kexp = n - 1 - o_c
            # Decays scale fp32 results (rows of q S) or the smaller operand (v), so q and k feed the dots as loaded.
            qdec = tl.where(valid, tl.exp(gl * tl.maximum(qexp, 0.0)), 0.0)  # [C]
            kdec = tl.where(valid, tl.exp(gl * tl.maximum(kexp, 0).to(tl.float32)), 0.0)  # [C]
            scores = _mm(qc, tl.trans(kc), F32_DOT, DT)  # [C, C]
            scores = tl.where(dist >= 0, scores * tl.exp(gl * tl.maximum(dist, 0).to(tl.float32)), 0.0)
            out = _mm(qc, S, F32_DOT, DT) * qdec[:, None]  # [C, BV]
            out = _mma(scores, vc, out, F32_DOT, DT)  # one accumulator for the inter and intra terms
            tl.store(o_seg + cs * (H * DC) + offs_v, (out * scale).to(DT), mask=mask_v)
            S = S * tl.exp(gl * (n - off))
            S = _mma(tl.trans(kc), vc * kdec[:, None], S, F32_DOT, DT)
            off = off * 0.0
        if STORE_HT:
            if REVERSE:
                writer = i_s == 0
            else:
                writer = i_s == tl.maximum(n_seg, 1) - 1
            if writer:
                tl.store(ht + i_nh.to(tl.int64) * (DA * DC) + state_offs, S, mask=state_mask)


def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4  # interpreter: a small grid still exercises the segment path on long inputs


def pick_segment_len(total_tokens: int, num_seqs: int, heads: int, v_blocks: int, chunk: int, sms: int) -> int:
    """Tokens per segment: enough segments for about TUNING['programs_per_sm'] programs per SM, whole chunks each."""
    avg = max(1, total_tokens // max(num_seqs, 1))
    base = max(1, num_seqs * heads * v_blocks)
    n_seg = max(1, min(triton.cdiv(TUNING["programs_per_sm"] * sms, base), triton.cdiv(avg, chunk)))
    return triton.cdiv(triton.cdiv(avg, n_seg), chunk) * chunk


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
    C = TUNING["chunk"]
    BA = max(16, triton.next_power_of_2(DA))
    BV = max(16, min(triton.next_power_of_2(DC), TUNING["block_v"]))
    NV = triton.cdiv(DC, BV)
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
    f32 = INTERPRET or q.dtype == torch.float32
    meta = {
        "H": H,
        "DA": DA,
        "DC": DC,
        "BA": BA,
        "BV": BV,
        "NV": NV,
        "C": C,
        "REVERSE": reverse,
        "VARLEN": cu_seqlens is not None,
        "F32_DOT": f32,
    }
    launch = {} if INTERPRET else {"num_warps": TUNING["num_warps"], "num_stages": TUNING["num_stages"]}
    grid = (NV * num_seqs * H, NSEG)
    contrib = None
    if NSEG > 1:
        contrib = new_output((num_seqs, NSEG, H, DA, DC), q, torch.float32)
        _segment_sum_kernel[grid](k, v, g, contrib, cu_seqlens, T, seg_len, NSEG, **meta, **launch)
    _chunk_attn_kernel[grid](
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
        HAS_H0=h0 is not None,
        STORE_HT=store_final_state,
        SEGMENTED=NSEG > 1,
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
