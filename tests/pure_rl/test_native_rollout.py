"""The native rollout engine: grouping, rollout-vs-learner log-prob agreement, sampling rules, stop conditions,
weight sync, and (GPU) CUDA-graph decode against eager decode."""

from __future__ import annotations

import pytest
import torch

from pure_rl.core.interfaces import Problem, RolloutEngine, SamplingParams
from pure_rl.core.registry import ROLLOUT_ENGINES
from pure_rl.rollout.native import NativeRolloutEngine, left_pad, sample_tokens
from tests.pure_rl.models.tiny import HYBRID, tiny_model, tiny_tokenizer

PROBLEMS = [
    Problem(id="p0", question="q0", prompt="What is 12 + 35?"),
    Problem(id="p1", question="q1", prompt="Let x = 9; then"),
    Problem(id="p2", question="q2", prompt="Compute 3 * 4 ="),
]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


def make_engine(tokenizer, layer_types=None, seed=0, **kwargs):
    model = tiny_model(
        seed=seed, vocab_size=len(tokenizer), layer_types=layer_types, eos_token_id=tokenizer.eos_token_id
    )
    return NativeRolloutEngine(model, tokenizer, device="cpu", **kwargs)


def learner_logprobs(model, batch, temperature):
    """What the learner recomputes: log softmax(logits / T) of each response token, from one full forward."""
    ids, mask = batch.input_ids()
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float().cpu()
    P = batch.prompt_ids.shape[1]
    logp = torch.log_softmax(logits[:, P - 1 : -1] / (temperature or 1.0), dim=-1)
    return logp.gather(-1, batch.response_ids[..., None]).squeeze(-1) * batch.response_mask


def test_is_the_registered_native_engine(tokenizer):
    engine = make_engine(tokenizer)
    assert ROLLOUT_ENGINES.get("native") is NativeRolloutEngine
    assert isinstance(engine, RolloutEngine)


@pytest.mark.parametrize("layer_types", [None, HYBRID], ids=["lightning", "hybrid"])
def test_rows_grouped_and_logprobs_agree_with_the_learner(tokenizer, layer_types):
    engine = make_engine(tokenizer, layer_types=layer_types, prefill_chunk_size=5)  # prompts span several chunks
    sampling = SamplingParams(temperature=0.8, top_p=0.95, max_new_tokens=24, seed=7)
    batch = engine.generate(PROBLEMS, 2, sampling)
    assert batch.group_size == 2 and batch.size == 6
    assert [p.id for p in batch.problems] == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert batch.prompts[0] == batch.prompts[1] == PROBLEMS[0].prompt
    assert batch.old_logprobs.dtype == torch.float32
    assert batch.response_ids.shape == batch.old_logprobs.shape == batch.response_mask.shape
    assert batch.response_mask.sum() > 0 and (batch.old_logprobs[batch.response_mask] < 0).all()
    assert (batch.old_logprobs[~batch.response_mask] == 0).all()
    gap = (learner_logprobs(engine.model, batch, sampling.temperature) - batch.old_logprobs).abs().max()
    assert gap <= 1e-4, f"rollout vs learner log-prob gap {gap:.2e} > 1e-4"


def test_greedy_matches_hf_generate(tokenizer):
    engine = make_engine(tokenizer)
    batch = engine.generate(PROBLEMS[:1], 1, SamplingParams(temperature=0.0, max_new_tokens=12))
    prompt = batch.prompt_ids[:1]
    ref = engine.model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    n = int(batch.response_mask[0].sum())
    assert torch.equal(batch.response_ids[0, :n], ref[0, prompt.shape[1] : prompt.shape[1] + n])


def test_seed_reproduces_and_rows_sample_independently(tokenizer):
    engine = make_engine(tokenizer)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=10, seed=3)
    a, b = engine.generate(PROBLEMS, 4, sampling), engine.generate(PROBLEMS, 4, sampling)
    assert torch.equal(a.response_ids, b.response_ids)
    assert not torch.equal(a.response_ids[0], a.response_ids[1])  # same prompt, different samples


def test_sequences_finish_independently_on_eos(tokenizer):
    engine = make_engine(tokenizer)
    greedy = SamplingParams(temperature=0.0, max_new_tokens=8)
    first = engine.generate(PROBLEMS, 1, greedy).response_ids[:, 0]
    assert first[0] != first[1], "test needs rows whose first greedy token differs"
    engine.eos_ids = first[:1].clone()  # row 0's first token now counts as EOS
    batch = engine.generate(PROBLEMS, 1, greedy)
    assert batch.response_mask[0].sum() == 1 and batch.finished[0]
    assert batch.response_mask[1].sum() > 1
    assert not batch.finished[1] or batch.response_ids[1, int(batch.response_mask[1].sum()) - 1] == first[0]


def test_stop_strings_cut_the_text_and_finish_the_row(tokenizer):
    engine = make_engine(tokenizer)
    free = engine.generate(PROBLEMS, 1, SamplingParams(temperature=0.0, max_new_tokens=16))
    stop = free.responses[1][2:4]
    assert len(stop) == 2
    batch = engine.generate(PROBLEMS, 1, SamplingParams(temperature=0.0, max_new_tokens=16, stop=(stop,)))
    assert batch.finished[1]
    assert batch.responses[1].endswith(stop) and batch.responses[1].count(stop) == 1
    assert batch.response_mask[1].sum() < free.response_mask[1].sum()


def test_chat_template_is_applied_to_prompts():
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}<bos>U: {{ m['content'] }}\n{% endfor %}A:"
    engine = make_engine(tokenizer, use_chat_template=True)
    batch = engine.generate(PROBLEMS[:1], 1, SamplingParams(temperature=0.0, max_new_tokens=3))
    assert batch.prompts == [f"<bos>U: {PROBLEMS[0].prompt}\nA:"]
    assert batch.prompt_ids[0, 0] == tokenizer.bos_token_id


def test_max_new_tokens_caps_every_row(tokenizer):
    engine = make_engine(tokenizer)
    batch = engine.generate(PROBLEMS, 2, SamplingParams(temperature=1.0, max_new_tokens=5, seed=0))
    assert batch.response_ids.shape[1] <= 5
    assert (batch.response_mask.sum(1) <= 5).all()


def test_top_p_draws_only_from_the_nucleus_and_records_full_logprobs():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    gen = torch.Generator().manual_seed(0)
    tokens, logp = sample_tokens(logits, temperature=1.0, top_p=0.75, generator=gen)
    assert set(tokens.tolist()) == {0, 1}
    torch.testing.assert_close(logp, torch.log_softmax(logits, -1).gather(-1, tokens[:, None]).squeeze(-1))
    tokens, logp = sample_tokens(logits[:3] * 2, temperature=0.5, top_p=1.0, generator=gen)
    torch.testing.assert_close(logp, torch.log_softmax(logits[:3] * 4, -1).gather(-1, tokens[:, None]).squeeze(-1))
    greedy, _ = sample_tokens(logits[:3], temperature=0.0, top_p=0.1)
    assert (greedy == 0).all()


def test_left_pad():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[True, True, True], [False, False, True]]


def test_sync_weights_copies_in_place_and_refuses_foreign_models(tokenizer):
    engine = make_engine(tokenizer, seed=0)
    learner = tiny_model(seed=1, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id)
    ptr = engine.model.lm_head.weight.data_ptr()
    engine.sync_weights(learner)
    assert engine.model.lm_head.weight.data_ptr() == ptr
    for a, b in zip(engine.model.state_dict().values(), learner.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(KeyError, match="lacks"):
        engine.sync_weights(torch.nn.Linear(2, 2))


def test_bad_arguments_fail_clearly(tokenizer):
    engine = make_engine(tokenizer)
    with pytest.raises(ValueError, match="n \\(responses per problem\\)"):
        engine.generate(PROBLEMS, 0, SamplingParams())
    with pytest.raises(ValueError, match="top_p"):
        engine.generate(PROBLEMS, 1, SamplingParams(top_p=0.0))
    with pytest.raises(ValueError, match="empty prompt"):
        engine.generate([Problem(id="e", question="", prompt="")], 1, SamplingParams())
    with pytest.raises(TypeError, match="lightning policy"):
        NativeRolloutEngine(torch.nn.Linear(2, 2), tokenizer)
    with pytest.raises(ValueError, match="cuda_graphs=True"):
        make_engine(tokenizer, cuda_graphs=True)


def test_peft_wrapped_policy_generates(tokenizer):
    from peft import LoraConfig, get_peft_model

    model = tiny_model(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["qkvu_proj"]))
    engine = NativeRolloutEngine(peft_model, tokenizer, device="cpu")
    batch = engine.generate(PROBLEMS[:1], 2, SamplingParams(temperature=1.0, max_new_tokens=6, seed=0))
    assert batch.size == 2 and peft_model.training  # the engine restores the training flag
    gap = (learner_logprobs(peft_model, batch, 1.0) - batch.old_logprobs).abs().max()
    assert gap <= 1e-4


@pytest.mark.gpu
def test_cuda_graph_decode_matches_eager_decode(tokenizer):
    model = tiny_model(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id).cuda()
    sampling = SamplingParams(temperature=0.0, max_new_tokens=32)
    graphed = NativeRolloutEngine(model, tokenizer, device="cuda").generate(PROBLEMS, 2, sampling)
    eager = NativeRolloutEngine(model, tokenizer, device="cuda", cuda_graphs=False).generate(PROBLEMS, 2, sampling)
    assert graphed.stats["rollout/cuda_graphs"] == 1.0
    assert torch.equal(graphed.response_ids, eager.response_ids)
    torch.testing.assert_close(graphed.old_logprobs, eager.old_logprobs, rtol=0, atol=1e-5)
    assert (learner_logprobs(model, graphed, None) - graphed.old_logprobs).abs().max() <= 1e-4
