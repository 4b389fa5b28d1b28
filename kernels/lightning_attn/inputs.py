"""Argument checks shared by every lightning-attention entry point: one clear line per bad field."""

from __future__ import annotations

import math
import weakref

import torch

__all__ = ["check_inputs", "sequence_bounds"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


# CUDA log_decay tensors already checked, as id -> (weak reference, version): reading a CUDA tensor's values syncs
# the host with the device, which would stall every launch, so each live tensor is checked once per modification.
_CHECKED: dict[int, tuple[weakref.ref, int]] = {}


def _checked(t: torch.Tensor) -> bool:
    entry = _CHECKED.get(id(t))
    return entry is not None and entry[0]() is t and entry[1] == t._version


def _mark_checked(t: torch.Tensor) -> None:
    for key in [k for k, (ref, _) in _CHECKED.items() if ref() is None]:
        del _CHECKED[key]
    _CHECKED[id(t)] = (weakref.ref(t), t._version)


def _capturing() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()


def check_inputs(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    log_decay: torch.Tensor,
    scale: float,
    initial_state: torch.Tensor | None,
    cu_seqlens: torch.Tensor | None,
) -> int:
    """Validate the common lightning-attention arguments and return N, the number of sequences.

    Shapes: q, k [B, T, H, K]; v [B, T, H, V]; log_decay [H] (<= 0, finite); initial_state [N, H, K, V];
    cu_seqlens [N + 1] (B must be 1). Value checks that need a device sync are skipped during CUDA-graph capture.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or t.dim() != 4:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a 4-D tensor [B, T, H, D], got {shape}")
        if t.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{name}.dtype must be one of float16, bfloat16, float32, got {t.dtype}")
    if k.shape != q.shape:
        raise ValueError(f"k must have q's shape {tuple(q.shape)} [B, T, H, K], got {tuple(k.shape)}")
    if v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be [B, T, H, V] with B, T, H = {tuple(q.shape[:3])} as in q, got {tuple(v.shape)}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    B, T, H, K = q.shape
    V = v.shape[-1]
    if not isinstance(log_decay, torch.Tensor) or log_decay.shape != (H,):
        shape = tuple(log_decay.shape) if isinstance(log_decay, torch.Tensor) else type(log_decay).__name__
        raise ValueError(f"log_decay must be a tensor [H] = [{H}] (natural-log decay per head), got {shape}")
    if not log_decay.is_floating_point():
        raise TypeError(f"log_decay must be a float tensor (float32 preferred), got {log_decay.dtype}")
    if not _capturing() and not _checked(log_decay):
        bad = ~torch.isfinite(log_decay) | (log_decay > 0)
        if bool(bad.any()):
            raise ValueError(f"log_decay must be finite and <= 0 (log of a decay in (0, 1]), got {log_decay.tolist()}")
        if log_decay.is_cuda:
            _mark_checked(log_decay)
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale == 0:
        raise ValueError(f"scale must be a finite non-zero number, got {scale!r}")
    if cu_seqlens is not None:
        if B != 1:
            raise ValueError(f"with cu_seqlens the batch must be flattened to B = 1, got B = {B}")
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.dtype not in (torch.int32, torch.int64):
            raise ValueError(
                f"cu_seqlens must be a 1-D int32/int64 tensor [N + 1], got {cu_seqlens.dtype} {tuple(cu_seqlens.shape)}"
            )
        if not _capturing():
            cpu = cu_seqlens.detach().cpu()
            if int(cpu[0]) != 0 or int(cpu[-1]) != T or bool((cpu[1:] < cpu[:-1]).any()):
                raise ValueError(f"cu_seqlens must rise from 0 to T = {T} without decreasing, got {cpu.tolist()}")
        N = cu_seqlens.numel() - 1
    else:
        N = B
    if initial_state is not None:
        if not isinstance(initial_state, torch.Tensor) or tuple(initial_state.shape) != (N, H, K, V):
            shape = (
                tuple(initial_state.shape) if isinstance(initial_state, torch.Tensor) else type(initial_state).__name__
            )
            raise ValueError(f"initial_state must be [N, H, K, V] = {(N, H, K, V)}, got {shape}")
        if not initial_state.is_floating_point():
            raise TypeError(f"initial_state must be a float tensor (float32 preferred), got {initial_state.dtype}")
    return N


def sequence_bounds(T: int, B: int, cu_seqlens: torch.Tensor | None) -> list[tuple[int, int, int]]:
    """(batch row, start, end) of each sequence: the B rows, or the cu_seqlens spans of the single row."""
    if cu_seqlens is None:
        return [(b, 0, T) for b in range(B)]
    edges = cu_seqlens.detach().cpu().tolist()
    return [(0, int(edges[i]), int(edges[i + 1])) for i in range(len(edges) - 1)]
