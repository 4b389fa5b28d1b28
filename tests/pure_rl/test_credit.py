"""Credit assignment against hand-computed cases, an independent loop reference, and properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pure_rl.credit import (
    place_at_tokens,
    reverse_cumsum,
    rloo_token_advantages,
    step_lengths,
    transform_step_rewards,
)

# --------------------------------------------------------------------------- transform


def test_paper_worked_example():
    r = torch.tensor([[0.9, 0.8, 0.95, -0.6, 0.7]])
    mask = torch.ones_like(r, dtype=torch.bool)
    r_star = transform_step_rewards(r, mask, "min", 0.1)
    assert torch.allclose(r_star, torch.tensor([[0.0, 0.0, 0.0, -0.6, 0.0]]), atol=1e-3)
    assert torch.allclose(reverse_cumsum(r_star), torch.tensor([[-0.6, -0.6, -0.6, -0.6, 0.0]]), atol=1e-3)


def test_min_form_formula_by_hand():
    r = torch.tensor([[0.5, -0.5]])
    mask = torch.ones_like(r, dtype=torch.bool)
    T = 1.0
    w = torch.softmax(-r / T, dim=1)
    assert torch.allclose(transform_step_rewards(r, mask, "min", T), r * w, atol=1e-7)


def test_hardmin_is_the_zero_temperature_limit():
    torch.manual_seed(0)
    r = torch.rand(8, 6) * 2 - 1
    mask = torch.rand(8, 6) > 0.3
    mask[:, 0] = True
    hard = transform_step_rewards(r, mask, "hardmin")
    for T in (1e-3, 1e-6, 1e-30):
        assert torch.allclose(transform_step_rewards(r, mask, "min", T), hard, atol=1e-6)


def test_hardmin_takes_first_argmin():
    r = torch.tensor([[0.2, -0.3, -0.3, 0.1]])
    out = transform_step_rewards(r, torch.ones_like(r, dtype=torch.bool), "hardmin")
    assert out.tolist() == [[0.0, pytest.approx(-0.3), 0.0, 0.0]]


def test_sum_form_returns_are_reverse_cumsums():
    r = torch.tensor([[0.1, 0.2, 0.3]])
    out = transform_step_rewards(r, torch.ones_like(r, dtype=torch.bool), "sum")
    assert torch.allclose(reverse_cumsum(out), torch.tensor([[0.6, 0.5, 0.3]]))


def test_invalid_steps_and_empty_rows_are_zero():
    r = torch.tensor([[0.3, 9.0], [5.0, -5.0]])
    mask = torch.tensor([[True, False], [False, False]])
    for form in ("min", "hardmin", "sum"):
        out = transform_step_rewards(r, mask, form)
        assert out[0, 1] == 0 and out[1].abs().sum() == 0
        assert torch.isfinite(out).all()
    assert transform_step_rewards(r, mask, "min")[0, 0] == pytest.approx(0.3)


def test_transform_rejects_bad_input():
    r = torch.zeros(1, 2)
    m = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="form"):
        transform_step_rewards(r, m, "max")
    with pytest.raises(ValueError, match="temperature"):
        transform_step_rewards(r, m, "min", 0.0)
    with pytest.raises(ValueError, match="NaN"):
        transform_step_rewards(torch.tensor([[float("nan"), 0.0]]), m)


# --------------------------------------------------------------------------- placement


def test_place_at_tokens_and_step_lengths():
    vals = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    ends = torch.tensor([[1, 4, 6], [3, -1, -1]])
    out = place_at_tokens(vals, ends, 7)
    assert out.tolist() == [[0, 1, 0, 0, 2, 0, 3], [0, 0, 0, 4, 0, 0, 0]]
    assert step_lengths(ends).tolist() == [[1, 2, 1], [3, 0, 0]]


# --------------------------------------------------------------------------- advantages, one term at a time

# Two responses to one prompt. Row 0: 5 tokens, steps end at 1 and 4. Row 1: 3 tokens, one step ending at 2.
ENDS = torch.tensor([[1, 4], [2, -1]])
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)
R_STAR = torch.tensor([[0.0, -0.5], [0.3, 0.0]])


def _adv(**kw):
    base = dict(group_size=2, mask_step_ends=False, whiten=False)
    base.update(kw)
    return rloo_token_advantages(R_STAR, ENDS, MASK, **base)


def test_token_baseline_by_hand():
    # R = [-0.5, 0.3], L = [5, 3]; b_0 = 0.3 / 3 = 0.1, b_1 = -0.5 / 5 = -0.1
    # row 0: step lengths [1, 2] -> u[1] = 0 - 0.1 * 1 = -0.1, u[4] = -0.5 - 0.1 * 2 = -0.7
    # row 1: step length [2]     -> u[2] = 0.3 + 0.1 * 2 = 0.5
    a = _adv()
    expected = torch.tensor([[-0.8, -0.8, -0.7, -0.7, -0.7], [0.5, 0.5, 0.5, 0.0, 0.0]])
    assert torch.allclose(a, expected, atol=1e-6)


def test_vr_term_by_hand():
    zero = torch.zeros_like(R_STAR)
    a = rloo_token_advantages(zero, ENDS, MASK, 2, verifiable_rewards=torch.tensor([1.0, 0.0]), vr_coef=2.0,
                              mask_step_ends=False, whiten=False)
    # VR at the last valid token: row 0 gets 2 * (1 - 0) = 2, row 1 gets 2 * (0 - 1) = -2; returns spread it back.
    expected = torch.tensor([[2.0] * 5, [-2.0, -2.0, -2.0, 0.0, 0.0]])
    assert torch.allclose(a, expected)


def test_vr_without_ground_truth_vanishes():
    zero = torch.zeros_like(R_STAR)
    a = rloo_token_advantages(zero, ENDS, MASK, 2, verifiable_rewards=torch.tensor([0.0, 0.0]),
                              mask_step_ends=False, whiten=False)
    assert a.abs().sum() == 0


def test_kl_term_by_hand():
    zero = torch.zeros_like(R_STAR)
    kl = torch.tensor([[1.0, 0.0, 0.0, 0.0, 2.0], [0.5, 0.5, 0.5, 9.0, 9.0]])
    a = rloo_token_advantages(zero, ENDS, MASK, 2, kl=kl, kl_coef=0.1, mask_step_ends=False, whiten=False)
    expected = torch.tensor([[-0.3, -0.2, -0.2, -0.2, -0.2], [-0.15, -0.1, -0.05, 0.0, 0.0]])
    assert torch.allclose(a, expected, atol=1e-6)


def test_step_end_masking_by_hand():
    a = _adv(mask_step_ends=True)
    expected = torch.tensor([[-0.8, 0.0, -0.7, -0.7, 0.0], [0.5, 0.5, 0.0, 0.0, 0.0]])
    assert torch.allclose(a, expected, atol=1e-6)


def test_whitening_by_hand():
    a = _adv(mask_step_ends=True, whiten=True)
    kept = torch.tensor([-0.8, -0.7, -0.7, 0.5, 0.5])
    mean, std = kept.mean(), torch.sqrt(((kept - kept.mean()) ** 2).mean() + 1e-8)
    keep = torch.tensor([[1, 0, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.bool)
    expected = torch.where(keep, (_adv(mask_step_ends=True) - mean) / std, torch.zeros(()))
    assert torch.allclose(a, expected, atol=1e-5)
    assert a[keep].mean().abs() < 1e-6 and (a[keep].std(unbiased=False) - 1).abs() < 1e-4


def test_whitening_empty_set_is_zero():
    mask = torch.tensor([[1, 0], [1, 0]], dtype=torch.bool)
    ends = torch.tensor([[0], [0]])
    a = rloo_token_advantages(torch.tensor([[0.5], [-0.5]]), ends, mask, 2)
    assert a.abs().sum() == 0


def test_paper_baseline_by_hand():
    # u: row 0 = [0, 0, 0, 0, -0.5], row 1 = [0, 0, 0.3, 0, 0]; G row sums: row 0 = -2.5, row 1 = 0.9. N = 5, K = 2.
    a = _adv(baseline="paper")
    g = torch.tensor([[-0.5] * 5, [0.3, 0.3, 0.3, 0.0, 0.0]])
    b = torch.tensor([0.9 / 5, -2.5 / 5])
    assert torch.allclose(a, (g - b[:, None]) * MASK, atol=1e-6)
    a_n = _adv(baseline="paper", max_length=10)
    assert torch.allclose(a_n, (g - b[:, None] / 2) * MASK, atol=1e-6)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="group_size"):
        rloo_token_advantages(R_STAR, ENDS, MASK, 1)
    with pytest.raises(ValueError, match="divisible"):
        rloo_token_advantages(R_STAR, ENDS, MASK, 3)
    with pytest.raises(ValueError, match="shapes"):
        rloo_token_advantages(R_STAR[:, :1], ENDS, MASK, 2)
    with pytest.raises(ValueError, match="NaN"):
        rloo_token_advantages(R_STAR, ENDS, MASK, 2, kl=torch.full((2, 5), float("inf")), kl_coef=0.1)
    with pytest.raises(ValueError, match="baseline"):
        rloo_token_advantages(R_STAR, ENDS, MASK, 2, baseline="step")


# --------------------------------------------------------------------------- independent loop reference + properties


def loop_reference(r_star, ends, mask, K, v, vr_coef, kl, kl_coef, mask_ends, whiten):
    """Plain-Python transcription of the token-baseline definition, one token at a time."""
    B, T = mask.shape
    L = [int(mask[i].sum()) for i in range(B)]
    R = [sum(float(r_star[i, s]) for s in range(ends.shape[1]) if ends[i, s] >= 0) for i in range(B)]
    adv = [[0.0] * T for _ in range(B)]
    end_sets = []
    for i in range(B):
        g = i // K
        others = [k for k in range(g * K, g * K + K) if k != i]
        den = sum(L[k] for k in others)
        b = sum(R[k] for k in others) / den if den > 0 else 0.0
        u = [0.0] * T
        prev = -1
        ends_i = set()
        for s in range(ends.shape[1]):
            e = int(ends[i, s])
            if e < 0:
                continue
            u[e] += float(r_star[i, s]) - b * (e - prev - 1)
            prev = e
            ends_i.add(e)
        valid = [t for t in range(T) if mask[i, t]]
        if v is not None and valid:
            u[valid[-1]] += vr_coef * (float(v[i]) - sum(float(v[k]) for k in others) / (K - 1))
        for t in valid:
            u[t] -= kl_coef * (float(kl[i, t]) if kl is not None else 0.0)
        for t in valid:
            adv[i][t] = sum(u[t2] for t2 in valid if t2 >= t)
        end_sets.append(ends_i)
    keep = [[bool(mask[i, t]) and not (mask_ends and t in end_sets[i]) for t in range(T)] for i in range(B)]
    out = [[adv[i][t] if keep[i][t] else 0.0 for t in range(T)] for i in range(B)]
    if whiten:
        vals = [out[i][t] for i in range(B) for t in range(T) if keep[i][t]]
        if not vals:
            return torch.zeros(B, T)
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((x - mean) ** 2 for x in vals) / len(vals) + 1e-8)
        out = [[(out[i][t] - mean) / std if keep[i][t] else 0.0 for t in range(T)] for i in range(B)]
    return torch.tensor(out)


@st.composite
def rollout_batches(draw):
    K = draw(st.integers(2, 4))
    G = draw(st.integers(1, 3))
    T = draw(st.integers(1, 12))
    B = K * G
    seed = draw(st.integers(0, 10_000))
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, T + 1, (B,), generator=gen)
    mask = torch.arange(T)[None, :] < lengths[:, None]
    is_end = (torch.rand(B, T, generator=gen) < 0.3) & mask
    for i in range(B):
        if lengths[i] > 0:
            is_end[i, lengths[i] - 1] = True
    S = max(int(is_end.sum(1).max()), 1)
    ends = torch.full((B, S), -1)
    for i in range(B):
        idx = is_end[i].nonzero().flatten()
        ends[i, : len(idx)] = idx
    scores = torch.rand(B, S, generator=gen) * 2 - 1
    v = torch.randint(0, 2, (B,), generator=gen).float()
    kl = torch.randn(B, T, generator=gen) * 0.1
    return K, mask, ends, scores, v, kl


@settings(max_examples=60, deadline=None)
@given(rollout_batches(), st.booleans(), st.booleans(), st.sampled_from(["min", "hardmin", "sum"]))
def test_matches_loop_reference(batch, mask_ends, whiten, form):
    K, mask, ends, scores, v, kl = batch
    r_star = transform_step_rewards(scores, ends >= 0, form)
    got = rloo_token_advantages(r_star, ends, mask, K, v, 0.5, kl, 0.01, mask_ends, whiten)
    want = loop_reference(r_star, ends, mask, K, v, 0.5, kl, 0.01, mask_ends, whiten)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, want, atol=1e-4), (got, want)


@settings(max_examples=60, deadline=None)
@given(rollout_batches())
def test_min_return_le_sum_return_for_nonnegative_rewards(batch):
    _, mask, ends, scores, _, _ = batch
    step_mask = ends >= 0
    r = scores.abs()
    for form in ("min", "hardmin"):
        g_min = reverse_cumsum(transform_step_rewards(r, step_mask, form))
        g_sum = reverse_cumsum(transform_step_rewards(r, step_mask, "sum"))
        assert (g_min <= g_sum + 1e-6).all()


@settings(max_examples=40, deadline=None)
@given(rollout_batches(), st.integers(0, 1000))
def test_permuting_rows_in_a_group_permutes_output(batch, seed):
    K, mask, ends, scores, v, kl = batch
    B = mask.shape[0]
    gen = torch.Generator().manual_seed(seed)
    perm = torch.cat([g * K + torch.randperm(K, generator=gen) for g in range(B // K)])
    r_star = transform_step_rewards(scores, ends >= 0, "min")
    a = rloo_token_advantages(r_star, ends, mask, K, v, 1.0, kl, 0.01)
    b = rloo_token_advantages(r_star[perm], ends[perm], mask[perm], K, v[perm], 1.0, kl[perm], 0.01)
    assert torch.allclose(a[perm], b, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(rollout_batches(), st.integers(1, 5), st.integers(1, 3))
def test_padding_never_changes_valid_outputs(batch, extra_t, extra_s):
    K, mask, ends, scores, v, kl = batch
    B, T = mask.shape
    r_star = transform_step_rewards(scores, ends >= 0, "min")
    a = rloo_token_advantages(r_star, ends, mask, K, v, 1.0, kl, 0.01)
    mask_p = torch.cat([mask, torch.zeros(B, extra_t, dtype=torch.bool)], 1)
    kl_p = torch.cat([kl, torch.randn(B, extra_t)], 1)
    ends_p = torch.cat([ends, torch.full((B, extra_s), -1)], 1)
    scores_p = torch.cat([scores, torch.rand(B, extra_s)], 1)
    r_star_p = transform_step_rewards(scores_p, ends_p >= 0, "min")
    b = rloo_token_advantages(r_star_p, ends_p, mask_p, K, v, 1.0, kl_p, 0.01)
    assert torch.allclose(a, b[:, :T], atol=1e-5)
    assert b[:, T:].abs().sum() == 0


def test_whitening_two_close_returns_stays_precise():
    """Regression (found by hypothesis): only two whitened tokens whose returns differ by a KL term of ~5e-4."""
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    ends = torch.tensor([[2, -1], [0, -1]])
    r_star = torch.tensor([[-0.3161, 0.0], [0.2, 0.0]])
    kl = torch.tensor([[0.0499, 0.0197, 0.0023], [0.03, 0.0, 0.0]])
    got = rloo_token_advantages(r_star, ends, mask, 2, torch.tensor([1.0, 1.0]), 0.5, kl, 0.01)
    want = loop_reference(r_star, ends, mask, 2, torch.tensor([1.0, 1.0]), 0.5, kl, 0.01, True, True)
    assert torch.allclose(got, want, atol=1e-5)
    half_gap = 0.01 * 0.0499 / 2  # the two returns differ by the first token's KL term
    expected = half_gap / (half_gap**2 + 1e-8) ** 0.5  # population std of two values is half their gap
    assert got[0, :2].tolist() == pytest.approx([-expected, expected], abs=1e-4)


def test_token_baseline_favours_length_by_the_sign_of_the_rewards():
    """Equal step rewards across a group: the token baseline turns length into advantage (longest wins when all
    score -1, shortest when all score +1); the paper baseline never rewards the longest row for a shared -1."""
    lengths, T = [10, 20, 40, 80], 80
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]  # [4, T]
    ends = torch.tensor(lengths)[:, None] - 1  # [4, 1]
    for sign in (-1.0, 1.0):
        rewards = torch.full((4, 1), sign)
        adv = rloo_token_advantages(rewards, ends, mask, 4, mask_step_ends=False, whiten=False, baseline="token")
        first = adv[:, 0]  # [4] advantage of each row's first token = its whole return minus its baseline
        assert (first.diff() * sign < 0).all(), first
        paper = rloo_token_advantages(rewards, ends, mask, 4, mask_step_ends=False, whiten=False, baseline="paper",
                                      max_length=T)
        assert sign > 0 or (paper[:, 0] < 0).all(), paper[:, 0]
