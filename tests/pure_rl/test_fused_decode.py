"""The fused decode path of the native engine: the learner's function, on-device sampling and stop bookkeeping.

On a CPU-only machine its Triton kernels run under the interpreter (tests/conftest.py), without CUDA graphs.
"""

from __future__ import annotations

import pytest
import torch

import pure_rl.models.modeling_lightning as modeling
from kernels.lightning_attn import chunk_lightning_attn
from pure_rl.core.interfaces import Problem, SamplingParams
from pure_rl.rollout.fused_decode import gumbel_sample
from pure_rl.rollout.native import NativeRolloutEngine
from tests.pure_rl.models.tiny import HYBRID, tiny_model, tiny_tokenizer
from tests.pure_rl.test_native_rollout import PROBLEMS, learner_logprobs

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Longer than two kernel chunks, so the prefill stops at a chunk boundary and the decoder feeds the rest.
LONG = Problem(id="long", question="q", prompt="Compute 3 * 4 = 12. Then 12 - 5 = 7. " * 9 + "So 7 + 1 =")


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def engine_for(tokenizer, dtype=torch.float32, **kwargs):
    model = tiny_model(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id).to(DEVICE, dtype)
    return NativeRolloutEngine(model, tokenizer, device=DEVICE, fused_decode=True, **kwargs)


def test_fused_logprobs_agree_with_the_learner_across_a_chunk_boundary(tokenizer):
    engine = engine_for(tokenizer, prefill_chunk_size=100)  # rounded down to a multiple of the kernel chunk
    sampling = SamplingParams(temperature=0.8, top_p=0.9, max_new_tokens=12, seed=5)
    batch = engine.generate([LONG, PROBLEMS[0]], 2, sampling)
    assert batch.prompt_ids.shape[1] > 64 and batch.stats["rollout/fused_decode"] == 1.0
    assert batch.response_mask.sum() > 0 and (batch.old_logprobs[batch.response_mask] < 0).all()
    assert (batch.old_logprobs[~batch.response_mask] == 0).all()
    gap = (learner_logprobs(engine.model, batch, sampling.temperature) - batch.old_logprobs).abs().max()
    assert gap <= 1e-4, f"rollout vs learner log-prob gap {gap:.2e}"
    again = engine.generate([LONG, PROBLEMS[0]], 2, sampling)
    assert torch.equal(batch.response_ids, again.response_ids)
    assert not torch.equal(batch.response_ids[0], batch.response_ids[1])


def test_fused_greedy_equals_the_eager_engine(tokenizer):
    fused = engine_for(tokenizer)
    eager = NativeRolloutEngine(fused.model, tokenizer, device=DEVICE, fused_decode=False, cuda_graphs=False)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=10)
    a, b = fused.generate(PROBLEMS, 1, greedy), eager.generate(PROBLEMS, 1, greedy)
    assert torch.equal(a.response_ids, b.response_ids)
    torch.testing.assert_close(a.old_logprobs, b.old_logprobs, rtol=0, atol=1e-5)


def test_fused_eos_and_stop_strings_finish_rows(tokenizer):
    engine = engine_for(tokenizer)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=16)
    free = engine.generate(PROBLEMS, 1, greedy)
    stop = free.responses[1][2:4]
    cut = engine.generate(PROBLEMS, 1, SamplingParams(temperature=0.0, max_new_tokens=16, stop=(stop,)))
    assert cut.finished[1] and cut.responses[1].endswith(stop) and cut.responses[1].count(stop) == 1
    assert cut.response_mask[1].sum() < free.response_mask[1].sum()
    assert (cut.old_logprobs[~cut.response_mask] == 0).all()
    engine.eos_ids = free.response_ids[:1, 0].clone()  # row 0's first token now counts as EOS
    eos = engine.generate(PROBLEMS, 1, greedy)
    assert eos.response_mask[0].sum() == 1 and eos.finished[0]
    assert eos.response_mask[1].sum() > 1


def test_bf16_fused_decode_matches_the_bf16_learner_kernel(tokenizer, monkeypatch):
    """With the learner on the chunk kernel (as on CUDA), bf16 rollout log-probs match it; the fp32-state decode
    of the eager engine does not."""

    def kernel_attention(q, k, v, log_decay, initial_state=None, output_final_state=False, chunk_size=64):
        o, s = chunk_lightning_attn(q, k, v, log_decay, 1.0, initial_state, output_final_state)
        return o, s

    monkeypatch.setattr(modeling, "lightning_attention", kernel_attention)
    engine = engine_for(tokenizer, torch.bfloat16)
    eager = NativeRolloutEngine(engine.model, tokenizer, device=DEVICE, fused_decode=False, cuda_graphs=False)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=8, seed=2)
    problems = [LONG, PROBLEMS[1]]
    fused_batch, eager_batch = engine.generate(problems, 1, sampling), eager.generate(problems, 1, sampling)
    fused_gap = (learner_logprobs(engine.model, fused_batch, 1.0) - fused_batch.old_logprobs).abs().max()
    eager_gap = (learner_logprobs(engine.model, eager_batch, 1.0) - eager_batch.old_logprobs).abs().max()
    assert fused_gap <= 2e-3, f"fused bf16 gap {fused_gap:.2e}"
    assert eager_gap > 3 * fused_gap, f"eager {eager_gap:.2e} vs fused {fused_gap:.2e}"


def test_gumbel_sample_draws_the_distribution_and_records_full_logprobs():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().repeat(20000, 1)
    gen = torch.Generator().manual_seed(0)
    tokens, logp = gumbel_sample(logits, torch.tensor([1.0]), None, gen)
    freq = torch.bincount(tokens, minlength=4).float() / tokens.numel()
    assert (freq - probs).abs().max() < 0.015, freq
    torch.testing.assert_close(logp, probs.log()[tokens])
    tokens, logp = gumbel_sample(logits[:2000], torch.tensor([1.0]), torch.tensor([0.75]), gen)
    assert set(tokens.tolist()) == {0, 1}
    torch.testing.assert_close(logp, probs.log()[tokens])
    tokens, logp = gumbel_sample(logits[:5] * 2, torch.tensor([0.0]), None, gen)
    assert (tokens == 0).all()
    torch.testing.assert_close(logp, torch.log_softmax(logits[:5] * 2, -1)[:, 0])


def test_fused_decode_runs_the_adapters_of_a_peft_policy(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = tiny_model(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id).to(DEVICE)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["qkvu_proj", "out_proj"]))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.5)  # adapters that change the outputs
    engine = NativeRolloutEngine(peft_model, tokenizer, device=DEVICE, fused_decode=True)
    batch = engine.generate(PROBLEMS[:1], 2, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0))
    gap = (learner_logprobs(peft_model, batch, 1.0) - batch.old_logprobs).abs().max()
    assert gap <= 1e-4, f"rollout vs learner log-prob gap {gap:.2e}"


def test_fused_decode_needs_a_pure_lightning_model(tokenizer):
    model = tiny_model(vocab_size=len(tokenizer), layer_types=HYBRID, eos_token_id=tokenizer.eos_token_id)
    with pytest.raises(ValueError, match="fused_decode=True"):
        NativeRolloutEngine(model, tokenizer, device="cpu", fused_decode=True)
