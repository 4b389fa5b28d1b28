"""``token_logprobs`` log-softmaxes slices of positions in fp32: the same values and gradients as the whole-tensor form."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pure_rl import logprobs


def whole_tensor_logprobs(model, ids, mask, T, temperature):
    """The reference: fp32 logits of every response position at once, log-softmax, gather."""
    position_ids = (mask.cumsum(-1) - 1).clamp_min(0)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits[:, -(T + 1) : -1].float()
    return torch.log_softmax(logits / temperature, dim=-1).gather(-1, ids[:, -T:, None]).squeeze(-1)


@pytest.mark.parametrize("positions_per_slice", [1, 3, 64])
def test_sliced_logprobs_match_values_and_gradients(positions_per_slice, monkeypatch):
    torch.manual_seed(0)
    V = 257
    model = LlamaForCausalLM(LlamaConfig(vocab_size=V, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=4))
    ids = torch.randint(0, V, (3, 20))
    mask = torch.ones_like(ids)
    mask[0, :4] = 0  # a left-padded prompt
    monkeypatch.setattr(logprobs, "LOGPROB_CHUNK_ELEMENTS", 3 * V * positions_per_slice)
    got = logprobs.token_logprobs(model, ids, mask, 10, temperature=0.7)
    want = whole_tensor_logprobs(model, ids, mask, 10, 0.7)
    assert got.shape == (3, 10) and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-5)
    weights = torch.randn(3, 10)
    grads = []
    for value in (got, want):
        model.zero_grad()
        (value * weights).sum().backward(retain_graph=True)
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*grads))
    with torch.no_grad():
        assert torch.allclose(logprobs.token_logprobs(model, ids, mask, 10, temperature=0.7), want, atol=1e-5)
