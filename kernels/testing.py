"""Test helpers for kernels: a relative-RMSE check that fails (never warns) and NaN-poisoned output buffers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["assert_close", "new_output", "poisoned_outputs", "rel_rmse"]

_POISON = False


def rel_rmse(ref: torch.Tensor, out: torch.Tensor) -> float:
    """RMS(ref - out) / RMS(ref), in float64; 0 when both are exactly equal (including empty tensors)."""
    ref64, out64 = ref.detach().double(), out.detach().double().to(ref.device)
    diff = (ref64 - out64).pow(2).mean().sqrt()
    if diff == 0:
        return 0.0
    return float(diff / ref64.pow(2).mean().sqrt().clamp_min(torch.finfo(torch.float64).tiny))


def assert_close(name: str, ref: torch.Tensor, out: torch.Tensor | None, ratio: float) -> None:
    """Fail unless out has ref's shape, holds no NaN/Inf, and rel_rmse(ref, out) < ratio."""
    if out is None:
        raise AssertionError(f"{name}: output is None, expected a tensor of shape {tuple(ref.shape)}")
    if out.shape != ref.shape:
        raise AssertionError(f"{name}: shape {tuple(out.shape)} != reference {tuple(ref.shape)}")
    bad = (~torch.isfinite(out.detach())).sum().item()
    if bad:
        raise AssertionError(f"{name}: {bad} of {out.numel()} elements are NaN/Inf (unwritten or overflowed)")
    err = rel_rmse(ref, out)
    if not err < ratio:
        raise AssertionError(f"{name}: relative RMSE {err:.3e} >= {ratio:.1e}")


def new_output(
    shape: tuple[int, ...] | torch.Size, like: torch.Tensor, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """An uninitialised kernel output buffer; NaN-filled inside :func:`poisoned_outputs` so unwritten elements show."""
    out = torch.empty(shape, device=like.device, dtype=dtype or like.dtype)
    if _POISON:
        out.fill_(float("nan"))
    return out


@contextmanager
def poisoned_outputs() -> Iterator[None]:
    """Within the block, every buffer the kernels allocate through :func:`new_output` starts as NaN."""
    global _POISON
    previous, _POISON = _POISON, True
    try:
        yield
    finally:
        _POISON = previous
