"""The chunk-consistent decode step computes the chunk kernel's function (rollout == learner), token by token.

On the CPU interpreter both kernels round their operands explicitly (the same function the GPU's bf16 tensor cores
compute), so the check is exact up to fp32 summation order on both machines.
"""

from __future__ import annotations

import pytest
import torch

from kernels.lightning_attn import chunk as chunk_mod
from kernels.lightning_attn import chunk_lightning_attn, naive_recurrent_lightning_attn
from kernels.lightning_attn.decode import ChunkDecodeState, chunk_consistent_step
from kernels.testing import rel_rmse

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _inputs(N, T, H, D, dtype, log_decay, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.nn.functional.silu(torch.randn(N, T, H, D, generator=gen)) for _ in range(2))
    v = torch.randn(N, T, H, D, generator=gen)
    h0 = torch.randn(N, H, D, D, generator=gen) * 4
    g = torch.tensor(log_decay, dtype=torch.float32, device=DEVICE)
    return *(t.to(DEVICE, dtype) for t in (q, k, v)), h0.to(DEVICE), g


def _decode(q, k, v, g, h0, scale, v_mask=None):
    """Step every token of q, k, v [N, T, H, D] from the boundary state h0; returns (o [N, T, H, D], state)."""
    N, T, H, D = q.shape
    state = ChunkDecodeState(N, H, D, D, q.dtype, q.device)
    state.load(h0)
    pos = torch.zeros(1, dtype=torch.int32, device=q.device)
    outs = []
    for t in range(T):
        flat = [x[:, t].reshape(N, H * D) for x in (q, k, v)]
        outs.append(chunk_consistent_step(*flat, g, state, pos, scale, v_mask))
        pos.add_(1).remainder_(state.chunk)
    return torch.stack(outs, 1), state


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_step_equals_chunk_kernel_far_below_rounding(dtype):
    """Prefill to a chunk boundary, then decode across two more boundaries: o and S equal the one-pass kernel's."""
    C = chunk_mod.TUNING["chunk"]
    N, H, D, b, T = 2, 2, 32, C, 3 * C  # the decoded part [b, T) closes two chunks
    q, k, v, h0, g = _inputs(N, T, H, D, dtype, [-0.02, -0.9], seed=0)
    scale = D**-0.5
    o_ref, s_ref = chunk_lightning_attn(q, k, v, g, scale, h0, True)
    _, s_b = chunk_lightning_attn(q[:, :b], k[:, :b], v[:, :b], g, scale, h0, True)
    o, state = _decode(q[:, b:], k[:, b:], v[:, b:], g, s_b, scale)
    gap = rel_rmse(o_ref[:, b:], o)
    assert gap < 1e-4, f"step vs chunk kernel: relative RMSE {gap:.2e}"
    assert rel_rmse(s_ref, state.S) < 1e-5
    assert torch.equal(state.Sr, state.S.to(dtype))
    if dtype != torch.float32:
        # The plain fp32 recurrence (the previous decode step) misses the kernel's roundings by far more.
        o_fp32, _ = naive_recurrent_lightning_attn(
            q[:, b:].float(), k[:, b:].float(), v[:, b:].float(), g, scale, s_b, False
        )
        assert rel_rmse(o_ref[:, b:].float(), o_fp32.to(dtype).float()) > 10 * max(gap, 1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_partial_chunk_and_value_mask(dtype):
    """Stop mid-chunk (the rollout's last tokens); masked rows add nothing to the state or the outputs."""
    C = chunk_mod.TUNING["chunk"]
    N, H, D, T = 3, 1, 16, C + 20
    q, k, v, h0, g = _inputs(N, T, H, D, dtype, [-0.3], seed=1)
    keep = torch.tensor([1.0, 0.0, 1.0], device=DEVICE, dtype=dtype)
    o, state = _decode(q, k, v, g, h0, 1.0, v_mask=keep)
    ref, _ = chunk_lightning_attn(q, k, v * keep[:, None, None, None], g, 1.0, h0, True)
    assert rel_rmse(ref, o) < (1e-5 if dtype == torch.float32 else 1e-4)
    # The boundary state after the first chunk, then the open chunk's buffered tokens.
    _, s_c = chunk_lightning_attn(q[:, :C], k[:, :C], (v * keep[:, None, None, None])[:, :C], g, 1.0, h0, True)
    assert rel_rmse(s_c, state.S) < 1e-5
    assert torch.equal(state.vbuf[1, :, :20], torch.zeros_like(state.vbuf[1, :, :20]))
    assert torch.equal(state.kbuf[0, :, :20], k[0, C:].transpose(0, 1))


def test_step_argument_errors():
    state = ChunkDecodeState(2, 2, 16, 16, torch.float32, DEVICE)
    pos = torch.zeros(1, dtype=torch.int32, device=DEVICE)
    x = torch.zeros(2, 32, device=DEVICE)
    g = torch.zeros(2, device=DEVICE)
    with pytest.raises(ValueError, match=r"q, k must be \[N, H\*K\]"):
        chunk_consistent_step(x[:, :16], x, x, g, state, pos)
    with pytest.raises(TypeError, match="state's dtype"):
        chunk_consistent_step(x.half(), x.half(), x.half(), g, state, pos)
    with pytest.raises(ValueError, match="int32"):
        chunk_consistent_step(x, x, x, g, state, pos.long())
    with pytest.raises(ValueError, match=r"log_decay must be \[H\]"):
        chunk_consistent_step(x, x, x, g[:1], state, pos)
