"""Triton helpers shared by the lightning kernels: operand rounding, rounded dots, sequence bounds."""

from __future__ import annotations

import os

import triton
import triton.language as tl

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

# Triton's interpreter converts fp32 to bf16 by truncation (the GPU and torch round to nearest even), so on the
# interpreter _round does the nearest-even rounding on the bits.
_EMULATE_RNE = tl.constexpr(INTERPRET)


@triton.jit
def _round(x, DT: tl.constexpr):
    """R(x): x rounded to DT, to nearest even."""
    if _EMULATE_RNE and DT == tl.bfloat16:
        bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return bits.to(tl.float32, bitcast=True).to(DT)
    else:
        return x.to(DT)


@triton.jit
def _mm(a, b, acc, F32_DOT: tl.constexpr, DT: tl.constexpr):
    """acc + R(a) @ R(b), accumulated in fp32; exact fp32 products of the rounded operands on the interpreter."""
    if F32_DOT:
        return tl.dot(_round(a, DT).to(tl.float32), _round(b, DT).to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(_round(a, DT), _round(b, DT), acc)


@triton.jit
def _seq_bounds(cu_seqlens, i_n, T, VARLEN: tl.constexpr):
    if VARLEN:
        bos = tl.load(cu_seqlens + i_n).to(tl.int64)
        eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)
    else:
        bos = i_n.to(tl.int64) * T
        eos = bos + T
    return bos, eos
