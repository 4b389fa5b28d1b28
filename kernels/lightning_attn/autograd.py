"""The autograd rule shared by the chunked and the recurrent kernels.

Every gradient of lightning attention is itself a decayed linear attention, so one kernel ("launch") computes the
forward and all three backward passes. With o_t = scale * q_t kv_t and kv_t = lam kv_{t-1} + k_t^T v_t:

    dq = attn(do, v, k, h0^T)                        forward in time,   state [V, K]
    dk = attn_rev(v, do, q, dht^T / scale)           backward in time,  state [V, K]
    dv = attn_rev(k, q, do, dht / scale)             backward in time,  state [K, V]
    dh0 = scale * lam * (final state of the dv pass)

where attn_rev runs the recurrence from the end (kv_t = lam kv_{t+1} + k_t^T v_t) and its initial state sits at the
last token (h0_shift = 1: no decay before the first step), which is where dL/d(final state) enters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch


class Launch(Protocol):
    def __call__(
        self,
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
    ) -> tuple[torch.Tensor, torch.Tensor | None]: ...


class LightningAttnFunction(torch.autograd.Function):
    """o, final_state = launch(q, k, v, ...), differentiable in q, k, v and initial_state."""

    @staticmethod
    def forward(
        ctx, launch: Launch, q, k, v, log_decay, scale, initial_state, output_final_state, cu_seqlens, num_seqs
    ):
        o, ht = launch(q, k, v, log_decay, scale, initial_state, output_final_state, False, 0, cu_seqlens, num_seqs)
        ctx.save_for_backward(q, k, v, log_decay, initial_state, cu_seqlens)
        ctx.launch, ctx.scale, ctx.num_seqs = launch, scale, num_seqs
        return o, ht

    @staticmethod
    def backward(ctx, do, dht):
        q, k, v, log_decay, h0, cu_seqlens = ctx.saved_tensors
        launch: Callable = ctx.launch
        scale, N = ctx.scale, ctx.num_seqs
        do = do.contiguous()
        h0_t = h0.transpose(-1, -2).contiguous() if h0 is not None else None
        dht_scaled = dht.float() / scale if dht is not None else None
        dht_t = dht_scaled.transpose(-1, -2).contiguous() if dht_scaled is not None else None
        dq, _ = launch(do, v, k, log_decay, scale, h0_t, False, False, 0, cu_seqlens, N)
        dk, _ = launch(v, do, q, log_decay, scale, dht_t, False, True, 1, cu_seqlens, N)
        need_dh0 = h0 is not None and ctx.needs_input_grad[6]
        dv, s0 = launch(k, q, do, log_decay, scale, dht_scaled, need_dh0, True, 1, cu_seqlens, N)
        dh0 = None
        if need_dh0:
            dh0 = s0 * (scale * log_decay.float().exp())[None, :, None, None]
            # An empty sequence passes h0 straight through: its gradient is dht, with no decay step.
            lengths = cu_seqlens.diff() if cu_seqlens is not None else torch.full((N,), q.shape[1], device=q.device)
            empty = (lengths == 0)[:, None, None, None]
            dh0 = torch.where(empty, dht.float() if dht is not None else 0.0, dh0).to(h0.dtype)
        return None, dq, dk, dv, None, None, dh0, None, None, None
