"""The first kernel of a segmented chunk forward: the decayed k^T v sum of each sequence segment.

Long sequences are cut into segments so that their programs fill the GPU; a segment's program then starts from the
decayed sums of the segments before it (after it, for the reverse passes of the backward). One program covers all
V columns of a (segment, head), so k is read once.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..testing import new_output
from .tl_ops import INTERPRET, _mm, _seq_bounds

__all__ = ["launch_segment_sums"]


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
    """contrib[n, s, h] = (sum_{j in segment s} k_j^T R(lam^(end-1-j) v_j))^T   (reverse: lam^(j-start))   # [DC, DA]"""
    i_v, i_nh, i_s = tl.program_id(0) % NV, tl.program_id(0) // NV, tl.program_id(1)
    i_n, i_h = i_nh // H, i_nh % H
    bos, eos = _seq_bounds(cu_seqlens, i_n, T, VARLEN)
    n_seg = tl.cdiv(eos - bos, seg_len)
    if REVERSE:
        needed = (i_s >= 1) & (i_s < n_seg)
    else:
        needed = i_s < n_seg - 1
    if needed:
        DT = v.dtype.element_ty
        seg_start = bos + i_s * seg_len
        seg_rows = (tl.minimum(seg_start + seg_len, eos) - seg_start).to(tl.int32)
        gl = tl.load(g + i_h).to(tl.float32)
        o_c = tl.arange(0, C)
        o_a = tl.arange(0, BA)
        o_v = i_v * BV + tl.arange(0, BV)
        k_seg = k + (seg_start * H + i_h) * DA
        v_seg = v + (seg_start * H + i_h) * DC
        acc = tl.zeros([BV, BA], dtype=tl.float32)
        n_chunks = tl.cdiv(seg_rows, C)
        for ic in range(n_chunks):
            if REVERSE:
                cs = (n_chunks - 1 - ic) * C
            else:
                cs = ic * C
            n = tl.minimum(seg_rows - cs, C)
            valid = o_c < n
            kc = tl.load(
                k_seg + (cs + o_c[:, None]) * (H * DA) + o_a[None, :],
                mask=valid[:, None] & (o_a[None, :] < DA),
                other=0.0,
            )  # [C, BA]
            vc = tl.load(
                v_seg + (cs + o_c[:, None]) * (H * DC) + o_v[None, :],
                mask=valid[:, None] & (o_v[None, :] < DC),
                other=0.0,
            )  # [C, BV]
            if REVERSE:
                kexp = o_c
            else:
                kexp = n - 1 - o_c
            kdec = tl.where(valid, tl.exp(gl * tl.maximum(kexp, 0).to(tl.float32)), 0.0)  # [C]
            acc = _mm(tl.trans(vc * kdec[:, None]), kc, acc * tl.exp(gl * n.to(tl.float32)), F32_DOT, DT)
        base = contrib + ((i_n.to(tl.int64) * NSEG + i_s) * H + i_h) * (DA * DC)
        tl.store(base + o_v[:, None] * DA + o_a[None, :], acc, mask=(o_v[:, None] < DC) & (o_a[None, :] < DA))


def launch_segment_sums(
    k, v, g, cu_seqlens, seg_len: int, NSEG: int, num_seqs: int, meta: dict, tuning: dict
) -> torch.Tensor:
    """contrib [N, NSEG, H, V, K] fp32: the decayed k^T v sum of every segment that a later one depends on."""
    H, DA, DC = meta["H"], meta["DA"], meta["DC"]
    contrib = new_output((num_seqs, NSEG, H, DC, DA), k, torch.float32)
    BVS = max(16, min(triton.next_power_of_2(DC), 128))
    NVS = triton.cdiv(DC, BVS)
    launch = {} if INTERPRET else {"num_warps": tuning["sum_warps"], "num_stages": tuning["num_stages"]}
    _segment_sum_kernel[(NVS * num_seqs * H, NSEG)](
        k, v, g, contrib, cu_seqlens, k.shape[1], seg_len, NSEG, BV=BVS, NV=NVS, **meta, **launch
    )
    return contrib
