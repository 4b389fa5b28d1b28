"""Decode step, decay schedule, argument errors and test helpers of kernels.lightning_attn."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from kernels.lightning_attn import (
    alibi_slopes,
    chunk_lightning_attn,
    fused_recurrent_lightning_attn_step,
    lightning_slopes,
    naive_recurrent_lightning_attn,
)
from kernels.testing import assert_close, new_output, poisoned_outputs, rel_rmse

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def test_step_updates_states_in_place_and_matches_recurrence():
    """Three decode steps through a slot table equal the token recurrence; padded (-1) slots are untouched."""
    gen = torch.Generator().manual_seed(0)
    N, H, K, V, steps = 3, 2, 32, 48, 3
    q, k = (torch.randn(N, steps, H, K, generator=gen).to(DEVICE) for _ in range(2))
    v = torch.randn(N, steps, H, V, generator=gen).to(DEVICE)
    g = torch.tensor([-0.1, -2.0], device=DEVICE)
    h0 = torch.randn(N, H, K, V, generator=gen).to(DEVICE)
    cache = torch.randn(5, H, K, V, generator=gen).to(DEVICE)
    slots = torch.tensor([4, -1, 1], device=DEVICE)
    cache[4], cache[1] = h0[0], h0[2]
    untouched = cache[[0, 2, 3]].clone()
    outs = []
    for t in range(steps):
        with poisoned_outputs():
            outs.append(fused_recurrent_lightning_attn_step(q[:, t], k[:, t], v[:, t], g, cache, 0.5, slots))
    ref_o, ref_s = naive_recurrent_lightning_attn(q, k, v, g, 0.5, h0, True)
    o = torch.stack(outs, 1)
    assert_close("o[seq 0]", ref_o[0], o[0], 1e-5)
    assert_close("o[seq 2]", ref_o[2], o[2], 1e-5)
    assert torch.equal(o[1], torch.zeros_like(o[1]))
    assert_close("state slot 4", ref_s[0], cache[4], 1e-5)
    assert_close("state slot 1", ref_s[2], cache[1], 1e-5)
    assert torch.equal(cache[[0, 2, 3]], untouched)


def test_step_without_slot_table_uses_slot_i_and_keeps_dtype():
    gen = torch.Generator().manual_seed(1)
    q, k = (torch.randn(2, 2, 16, generator=gen).to(DEVICE, torch.float16) for _ in range(2))
    v = torch.randn(2, 2, 16, generator=gen).to(DEVICE, torch.float16)
    state = torch.zeros(2, 2, 16, 16, device=DEVICE)
    o = fused_recurrent_lightning_attn_step(q, k, v, torch.zeros(2, device=DEVICE), state)
    expected = torch.einsum("nhk,nhk->nh", q.float(), k.float())[..., None] * v.float()
    assert o.dtype == torch.float16
    assert_close("o", expected, o, 1e-3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"state": torch.zeros(2, 2, 16, 16, dtype=torch.float16)}, "float32"),
        ({"state": torch.zeros(1, 2, 16, 16)}, "slots"),
        ({"log_decay": torch.zeros(3)}, r"\[H\] = \[2\]"),
        ({"state_indices": torch.zeros(2)}, "state_indices"),
        ({"v": torch.zeros(2, 3, 16)}, "step expects"),
    ],
)
def test_step_rejects_bad_arguments(kwargs, match):
    args = {
        "q": torch.zeros(2, 2, 16),
        "k": torch.zeros(2, 2, 16),
        "v": torch.zeros(2, 2, 16),
        "log_decay": torch.zeros(2),
        "state": torch.zeros(2, 2, 16, 16),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        fused_recurrent_lightning_attn_step(**args)


def _qkv(B=1, T=8, H=2, K=16, V=16):
    return torch.zeros(B, T, H, K), torch.zeros(B, T, H, K), torch.zeros(B, T, H, V)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"log_decay": torch.tensor([0.1, -0.1])}, "<= 0"),
        ({"log_decay": torch.tensor([float("nan"), -0.1])}, "finite"),
        ({"log_decay": torch.zeros(3)}, r"log_decay must be a tensor \[H\]"),
        ({"k": torch.zeros(1, 8, 2, 8)}, "k must have q's shape"),
        ({"v": torch.zeros(1, 7, 2, 16)}, "v must be"),
        ({"q": torch.zeros(8, 2, 16)}, "4-D"),
        ({"scale": 0.0}, "scale"),
        ({"initial_state": torch.zeros(2, 2, 16, 16)}, r"initial_state must be \[N, H, K, V\]"),
        ({"cu_seqlens": torch.tensor([0, 3, 7])}, "rise from 0 to T = 8"),
        ({"cu_seqlens": torch.tensor([0.0, 8.0])}, "int32/int64"),
    ],
)
def test_bad_arguments_fail_with_one_clear_line(change, match):
    q, k, v = _qkv()
    args = {"q": q, "k": k, "v": v, "log_decay": torch.zeros(2), "scale": 1.0}
    args.update(change)
    with pytest.raises((ValueError, TypeError), match=match) as info:
        naive_recurrent_lightning_attn(**args)
    assert "\n" not in str(info.value)
    with pytest.raises((ValueError, TypeError), match=match):
        chunk_lightning_attn(**args)


def test_varlen_needs_flat_batch_and_dtype_must_match():
    q, k, v = _qkv(B=2)
    with pytest.raises(ValueError, match="B = 1"):
        chunk_lightning_attn(q, k, v, torch.zeros(2), cu_seqlens=torch.tensor([0, 8]))
    with pytest.raises(TypeError, match="share one dtype"):
        chunk_lightning_attn(q, k, v.half(), torch.zeros(2))


def test_alibi_slopes_power_of_two_and_interleaved():
    assert alibi_slopes(8) == pytest.approx([2.0 ** (-(h + 1)) for h in range(8)])
    # 6 heads: the 4-head slopes, then every other slope of the 8-head schedule.
    assert alibi_slopes(6) == pytest.approx([2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3])


def test_lightning_slopes_layer_schedule():
    H, L = 64, 4
    first, last = lightning_slopes(H, 0, L), lightning_slopes(H, L - 1, L)
    assert first.dtype == torch.float32 and first.shape == (H,)
    # kernels.md 1.4: H = 64, layer 0 gives lambda from 0.40 (head 0) to 0.996 (head 63).
    assert math.exp(first[0]) == pytest.approx(0.40, abs=0.01)
    assert math.exp(first[-1]) == pytest.approx(0.996, abs=0.001)
    assert torch.all(last < 0) and torch.all(last > -1e-4)  # the last layer almost does not decay
    mid = lightning_slopes(H, 1, L)
    assert torch.allclose(mid, first * (1 - 1 / 3 + 1e-5) / (1 + 1e-5))
    assert torch.allclose(lightning_slopes(4, 0, 1), lightning_slopes(4, 0, 2))
    with pytest.raises(ValueError, match="layer_idx"):
        lightning_slopes(8, 4, 4)
    with pytest.raises(ValueError, match="num_heads"):
        lightning_slopes(0, 0, 4)


def test_assert_close_fails_on_nan_error_and_shape():
    ref = torch.ones(4, 4)
    assert_close("same", ref, ref.clone(), 1e-6)
    bad = ref.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(AssertionError, match="NaN"):
        assert_close("nan", ref, bad, 1.0)
    with pytest.raises(AssertionError, match="relative RMSE"):
        assert_close("off", ref, ref * 1.01, 1e-3)
    with pytest.raises(AssertionError, match="shape"):
        assert_close("shape", ref, ref[0], 1.0)
    assert rel_rmse(ref, ref * 1.01) == pytest.approx(0.01)


def test_poisoned_outputs_fill_nan_only_inside_the_block():
    like = torch.zeros(1)
    with poisoned_outputs():
        assert torch.isnan(new_output((3,), like)).all()
    assert new_output((2,), like, torch.float32).dtype == torch.float32


def test_importing_kernels_does_not_import_triton():
    code = "import sys, kernels, kernels.lightning_attn; assert 'triton' not in sys.modules, 'triton imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.gpu
def test_cuda_log_decay_checked_once_per_version_without_losing_the_check():
    """A CUDA log_decay is validated once (no host sync per launch) but again after an in-place change."""
    q = torch.randn(1, 8, 2, 16, device="cuda")
    g = torch.tensor([-0.1, -1.0], device="cuda")
    chunk_lightning_attn(q, q, q, g)
    chunk_lightning_attn(q, q, q, g)  # cached: no sync
    g.fill_(0.5)
    with pytest.raises(ValueError, match="log_decay must be finite and <= 0"):
        chunk_lightning_attn(q, q, q, g)
    with pytest.raises(ValueError, match="log_decay must be finite and <= 0"):
        chunk_lightning_attn(q, q, q, torch.tensor([float("nan"), -1.0], device="cuda"))
