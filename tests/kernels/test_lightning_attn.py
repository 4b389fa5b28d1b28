"""Lightning attention: Triton kernels against the fp32 token-by-token reference.

On a CPU-only machine the kernels run under Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET=1); on a
CUDA machine the same cases compile and run on the GPU.
"""

from __future__ import annotations

import pytest
import torch

from kernels.lightning_attn import (
    chunk_lightning_attn,
    fused_recurrent_lightning_attn,
    naive_chunk_lightning_attn,
    naive_recurrent_lightning_attn,
)
from kernels.testing import assert_close, poisoned_outputs

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
RATIO = {torch.float32: 1e-4, torch.float16: 5e-3, torch.bfloat16: 1e-2}
NAMES = ("o", "final_state", "dq", "dk", "dv", "dh0")


def _inputs(B, T, H, K, V, dtype, log_decay, h0=True, N=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    q, k = (torch.randn(B, T, H, K, generator=gen) * 0.5 for _ in range(2))
    v = torch.randn(B, T, H, V, generator=gen)
    state = torch.randn(N or B, H, K, V, generator=gen) if h0 else None
    g = torch.tensor(log_decay, dtype=torch.float32)
    move = lambda t: t.to(DEVICE, dtype) if t is not None else None
    return move(q), move(k), move(v), g.to(DEVICE), (state.to(DEVICE) if state is not None else None)


def _run(fn, q, k, v, g, scale, h0, cu_seqlens=None, upcast=False, **kw):
    """Forward with the final state, backward with random do and dht; returns (o, ht, dq, dk, dv, dh0)."""
    leaves = [t.detach().clone().float() if upcast else t.detach().clone() for t in (q, k, v)]
    for t in leaves:
        t.requires_grad_()
    h0 = h0.detach().clone().requires_grad_() if h0 is not None else None
    o, ht = fn(*leaves, g, scale, h0, True, cu_seqlens=cu_seqlens, **kw)
    gen = torch.Generator().manual_seed(123)
    do = torch.randn(o.shape, generator=gen).to(o.device)
    dht = torch.randn(ht.shape, generator=gen).to(ht.device)
    ((o.float() * do).sum() + (ht * dht).sum()).backward()
    return o, ht, leaves[0].grad, leaves[1].grad, leaves[2].grad, (h0.grad if h0 is not None else None)


def _check(kernel_out, ref_out, dtype):
    for name, ref, out in zip(NAMES, ref_out, kernel_out):
        if ref is None:
            assert out is None, f"{name}: expected None"
            continue
        assert_close(name, ref, out, RATIO[dtype])


CASES = [
    # B, T, H, K, V, log_decay per head, dtype
    pytest.param(2, 100, 2, 32, 32, [-0.05, -1.0], torch.float32, id="T100-not-multiple-of-chunk-fp32"),
    pytest.param(2, 100, 2, 32, 32, [-0.05, -1.0], torch.float16, id="T100-fp16"),
    pytest.param(1, 150, 2, 32, 32, [-0.01, -0.2], torch.bfloat16, id="T150-bf16"),
    pytest.param(3, 1, 2, 32, 16, [-0.3, -0.7], torch.float32, id="T1"),
    pytest.param(1, 130, 2, 16, 64, [0.0, 0.0], torch.float32, id="no-decay-K<V"),
    pytest.param(1, 130, 2, 64, 16, [-6.0, -12.0], torch.float16, id="strong-decay-K>V-fp16"),
    pytest.param(1, 70, 1, 24, 40, [-0.1], torch.float32, id="K,V-not-powers-of-two"),
]


# The interpreter runs the recurrent kernel one token at a time, so its cases are shorter.
RECURRENT_CASES = [
    pytest.param(2, 23, 2, 16, 32, [-0.05, -1.0], torch.float32, id="T23-K<V-fp32"),
    pytest.param(1, 17, 2, 32, 16, [0.0, -9.0], torch.float16, id="no-and-strong-decay-K>V-fp16"),
    pytest.param(3, 1, 1, 24, 40, [-0.3], torch.float32, id="T1-not-powers-of-two"),
]


@pytest.mark.parametrize(
    "impl,B,T,H,K,V,log_decay,dtype",
    [pytest.param("chunk", *c.values, id=f"chunk-{c.id}") for c in CASES]
    + [pytest.param("fused_recurrent", *c.values, id=f"recurrent-{c.id}") for c in RECURRENT_CASES],
)
def test_kernel_matches_recurrent_reference(impl, B, T, H, K, V, log_decay, dtype):
    q, k, v, g, h0 = _inputs(B, T, H, K, V, dtype, log_decay)
    fn = chunk_lightning_attn if impl == "chunk" else fused_recurrent_lightning_attn
    with poisoned_outputs():
        out = _run(fn, q, k, v, g, K**-0.5, h0)
    ref = _run(naive_recurrent_lightning_attn, q, k, v, g, K**-0.5, h0, upcast=True)
    _check(out, ref, dtype)
    assert out[0].dtype == dtype and out[1].dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_chunk_sequence_segments(dtype):
    """Several segments per sequence (forced by segment_len) give the same results as one serial pass."""
    q, k, v, g, h0 = _inputs(1, 200, 2, 32, 32, dtype, [-0.02, -0.5], seed=3)
    with poisoned_outputs():
        out = _run(chunk_lightning_attn, q, k, v, g, 1.0, h0, segment_len=64)
    ref = _run(naive_recurrent_lightning_attn, q, k, v, g, 1.0, h0, upcast=True)
    _check(out, ref, dtype)


@pytest.mark.parametrize("impl", ["chunk", "chunk-segmented", "fused_recurrent"])
def test_varlen_matches_per_sequence_reference(impl):
    """cu_seqlens packing, with an empty sequence and lengths that straddle chunk boundaries."""
    cu = torch.tensor([0, 0, 37, 37 + 64, 180], device=DEVICE)
    if impl == "fused_recurrent":
        cu = torch.tensor([0, 0, 5, 9, 30], device=DEVICE)
    T = int(cu[-1])
    q, k, v, g, h0 = _inputs(1, T, 2, 32, 32, torch.float32, [-0.05, -0.9], N=4, seed=5)
    fn = fused_recurrent_lightning_attn if impl == "fused_recurrent" else chunk_lightning_attn
    kw = {"segment_len": 64} if impl == "chunk-segmented" else {}
    with poisoned_outputs():
        out = _run(fn, q, k, v, g, 0.7, h0, cu_seqlens=cu, **kw)
    ref = _run(naive_recurrent_lightning_attn, q, k, v, g, 0.7, h0, cu_seqlens=cu, upcast=True)
    _check(out, ref, torch.float32)
    # The empty sequence passes its state and its state gradient straight through.
    assert torch.equal(out[1][0], h0[0])


def test_without_initial_state_and_without_final_state():
    q, k, v, g, _ = _inputs(2, 90, 2, 32, 32, torch.float32, [-0.1, -0.4], h0=False, seed=7)
    o, ht = chunk_lightning_attn(q, k, v, g, scale=0.5)
    ref, _ = naive_recurrent_lightning_attn(q, k, v, g, scale=0.5)
    assert ht is None
    assert_close("o", ref, o, 1e-4)


@pytest.mark.parametrize("chunk_size", [1, 16, 64, 100])
def test_naive_chunk_equals_naive_recurrent(chunk_size):
    q, k, v, g, h0 = _inputs(2, 75, 3, 8, 12, torch.float32, [0.0, -0.3, -4.0], seed=11)
    out = _run(naive_chunk_lightning_attn, q, k, v, g, 0.3, h0, chunk_size=chunk_size)
    ref = _run(naive_recurrent_lightning_attn, q, k, v, g, 0.3, h0)
    for name, a, b in zip(NAMES, out, ref):
        assert_close(name, b, a, 1e-5)


def test_chunked_prefill_then_recurrent_continuation_matches_one_pass():
    """Carrying the final state across calls equals one pass over the whole sequence (the rollout pattern)."""
    q, k, v, g, h0 = _inputs(2, 120, 2, 32, 32, torch.float32, [-0.05, -0.6], seed=13)
    o_full, s_full = naive_recurrent_lightning_attn(q, k, v, g, 1.0, h0, True)
    o1, s1 = chunk_lightning_attn(q[:, :77], k[:, :77], v[:, :77], g, 1.0, h0, True)
    o2, s2 = fused_recurrent_lightning_attn(q[:, 77:], k[:, 77:], v[:, 77:], g, 1.0, s1, True)
    assert_close("o", o_full, torch.cat([o1, o2], 1), 1e-4)
    assert_close("final_state", s_full, s2, 1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("segment_len", [None, 512])
def test_chunk_bf16_at_model_head_size_on_gpu(segment_len):
    """bf16 tensor-core path at D = 128 (the interpreter runs fp32 dots), forward and backward, with segments."""
    q, k, v, g, h0 = _inputs(2, 1500, 4, 128, 128, torch.bfloat16, [0.0, -0.01, -0.1, -1.0], seed=17)
    with poisoned_outputs():
        out = _run(chunk_lightning_attn, q, k, v, g, 128**-0.5, h0, segment_len=segment_len)
    ref = _run(naive_chunk_lightning_attn, q, k, v, g, 128**-0.5, h0, upcast=True)
    for name, r, o in zip(NAMES, ref, out):
        assert_close(name, r, o, 1e-2)


@pytest.mark.parametrize(
    "fn",
    [naive_recurrent_lightning_attn, naive_chunk_lightning_attn, chunk_lightning_attn, fused_recurrent_lightning_attn],
)
def test_empty_sequence_batch_passes_state_through(fn):
    q, k, v, g, h0 = _inputs(2, 0, 2, 16, 32, torch.float32, [-0.1, -1.0])
    o, ht = fn(q, k, v, g, 1.0, h0, True)
    assert o.shape == (2, 0, 2, 32)
    assert torch.equal(ht, h0)


def test_non_contiguous_inputs():
    q, k, v, g, _ = _inputs(2, 40, 2, 16, 32, torch.float32, [-0.1, -1.0], h0=False, seed=19)
    qt, kt, vt = (t.transpose(0, 1).contiguous().transpose(0, 1) for t in (q, k, v))
    assert not qt.is_contiguous()
    o, _ = chunk_lightning_attn(qt, kt, vt, g)
    assert_close("o", naive_recurrent_lightning_attn(q, k, v, g)[0], o, 1e-4)
