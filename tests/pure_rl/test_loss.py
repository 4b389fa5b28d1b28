import pytest
import torch

from pure_rl.loss import kl_estimate, ppo_clip_loss


def test_unclipped_loss_is_negative_advantage_weighted_ratio():
    logp = torch.tensor([[0.0, -1.0]], requires_grad=True)
    old = torch.tensor([[0.0, -1.0]])
    adv = torch.tensor([[2.0, -1.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    loss, stats = ppo_clip_loss(logp, old, adv, mask)
    assert loss.item() == pytest.approx(-(2.0 - 1.0) / 2)
    loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1.0, 0.5]]))
    assert stats["clip_frac"] == 0 and stats["ratio_mean"] == pytest.approx(1.0)


def test_clipping_by_hand():
    old = torch.zeros(1, 3)
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.5]])).requires_grad_()
    adv = torch.tensor([[1.0, -1.0, -1.0]])
    loss, stats = ppo_clip_loss(logp, old, adv, torch.ones(1, 3, dtype=torch.bool), clip_eps=0.2)
    # token 0: min(1.5, 1.2) = 1.2 (clipped); token 1: min(-0.5, -0.8) = -0.8 (clipped); token 2: min(-1.5, -1.2) = -1.5
    assert loss.item() == pytest.approx(-(1.2 - 0.8 - 1.5) / 3)
    assert stats["clip_frac"] == pytest.approx(2 / 3)
    assert stats["ratio_max"] == pytest.approx(1.5)
    loss.backward()
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] == 0 and logp.grad[0, 2] != 0


def test_aggregations_differ_on_unequal_lengths():
    logp = torch.zeros(2, 3, requires_grad=True)
    adv = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    tok, _ = ppo_clip_loss(logp, torch.zeros(2, 3), adv, mask, aggregation="token-mean")
    seq, _ = ppo_clip_loss(logp, torch.zeros(2, 3), adv, mask, aggregation="seq-mean-token-mean")
    assert tok.item() == pytest.approx(-7 / 4)
    assert seq.item() == pytest.approx(-(1 + 4) / 2)


def test_padding_is_ignored_and_bad_input_raises():
    logp = torch.zeros(1, 2, requires_grad=True)
    mask = torch.tensor([[True, False]])
    loss, _ = ppo_clip_loss(logp, torch.tensor([[0.0, 50.0]]), torch.tensor([[1.0, 1e9]]), mask)
    assert loss.item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="aggregation"):
        ppo_clip_loss(logp, logp.detach(), logp.detach(), mask, aggregation="sum")
    with pytest.raises(ValueError, match="shapes"):
        ppo_clip_loss(logp, torch.zeros(1, 3), torch.zeros(1, 2), mask)


def test_kl_estimators():
    logp = torch.tensor([-1.0, -2.0])
    ref = torch.tensor([-1.5, -1.0])
    d = logp - ref
    assert torch.allclose(kl_estimate(logp, ref, "k1"), d)
    assert torch.allclose(kl_estimate(logp, ref, "k2"), d * d / 2)
    assert torch.allclose(kl_estimate(logp, ref, "k3"), torch.exp(-d) - 1 + d)
    assert (kl_estimate(logp, ref, "k3") >= 0).all()
    # k1 and k3 are unbiased for KL(p || q) under samples from p
    p = torch.tensor([0.7, 0.3])
    q = torch.tensor([0.4, 0.6])
    true_kl = (p * (p / q).log()).sum()
    for kind in ("k1", "k3"):
        est = (p * kl_estimate(p.log(), q.log(), kind)).sum()
        assert est.item() == pytest.approx(true_kl.item(), rel=1e-5)
    with pytest.raises(ValueError, match="k4"):
        kl_estimate(logp, ref, "k4")
