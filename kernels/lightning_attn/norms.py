"""Fused SRMSNorm kernels of the lightning policy's decode step (one program per row, rows of a few thousand).

They compute what the model's torch ops compute, rounding where those ops round:

    add_srms_norm(h, d):  h' = R(h + d);  n = R(h' / sqrt(mean(h'^2) + eps))        (d optional: n of h itself)
    srms_norm_gate(o, u): y = R(R(o / sqrt(mean(o^2) + eps)) * u)                   (o in any float dtype)

with R the rounding to the activation dtype and all arithmetic in fp32.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from .tl_ops import _round

__all__ = ["add_srms_norm", "srms_norm_gate"]

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


@triton.jit
def _add_srms_kernel(h, d, h_out, n_out, eps, D: tl.constexpr, BD: tl.constexpr, HAS_D: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    DT = h.dtype.element_ty
    cols = tl.arange(0, BD)
    mask = cols < D
    x = tl.load(h + row * D + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_D:
        x = _round(x + tl.load(d + row * D + cols, mask=mask, other=0.0).to(tl.float32), DT)
        tl.store(h_out + row * D + cols, x, mask=mask)
        x = x.to(tl.float32)
    ms = tl.sum(x * x, axis=0) / D
    tl.store(n_out + row * D + cols, _round(x * tl.math.rsqrt(ms + eps), DT), mask=mask)


@triton.jit
def _srms_gate_kernel(o, u, y, eps, stride_u, D: tl.constexpr, BD: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    DT = u.dtype.element_ty
    cols = tl.arange(0, BD)
    mask = cols < D
    x = tl.load(o + row * D + cols, mask=mask, other=0.0).to(tl.float32)
    ms = tl.sum(x * x, axis=0) / D
    n = _round(x * tl.math.rsqrt(ms + eps), DT).to(tl.float32)
    g = tl.load(u + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(y + row * D + cols, _round(n * g, DT), mask=mask)


def _rows(x: torch.Tensor, name: str) -> tuple[int, int]:
    if x.dim() != 2 or x.stride(1) != 1 or x.stride(0) != x.shape[1]:
        raise ValueError(f"{name} must be a contiguous [rows, D] tensor, got {tuple(x.shape)} strides {x.stride()}")
    return x.shape


def add_srms_norm(h: torch.Tensor, delta: torch.Tensor | None, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(R(h + delta), SRMSNorm of it) for [rows, D] activations; with delta None, (h, SRMSNorm(h))."""
    N, D = _rows(h, "h")
    if delta is not None and (delta.shape != h.shape or delta.dtype != h.dtype):
        raise ValueError(f"delta must match h {tuple(h.shape)} {h.dtype}, got {tuple(delta.shape)} {delta.dtype}")
    h_out = torch.empty_like(h) if delta is not None else h
    n_out = torch.empty_like(h)
    launch = {} if INTERPRET else {"num_warps": 4}
    _add_srms_kernel[(N,)](
        h,
        delta.contiguous() if delta is not None else None,
        h_out,
        n_out,
        float(eps),
        D=D,
        BD=triton.next_power_of_2(D),
        HAS_D=delta is not None,
        **launch,
    )
    return h_out, n_out


def srms_norm_gate(o: torch.Tensor, u: torch.Tensor, eps: float) -> torch.Tensor:
    """R(R(SRMSNorm(o)) * u) for [rows, D] tensors (u may be a row-strided view; o contiguous, any float dtype)."""
    N, D = o.shape
    _rows(o, "o")
    if u.shape != (N, D) or u.stride(1) != 1:
        raise ValueError(f"u must be [rows, D] = [{N}, {D}] with contiguous rows, got {tuple(u.shape)}")
    y = torch.empty(N, D, dtype=u.dtype, device=u.device)
    launch = {} if INTERPRET else {"num_warps": 4}
    _srms_gate_kernel[(N,)](o, u, y, float(eps), u.stride(0), D=D, BD=triton.next_power_of_2(D), **launch)
    return y
