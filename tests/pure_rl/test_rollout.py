"""Rollout engines: the hf engine on a tiny model, and the vllm engine's packing and weight naming."""

import pytest
import torch

from pure_rl.core.interfaces import Problem, SamplingParams
from pure_rl.logprobs import token_logprobs
from pure_rl.models.config import TinyModelConfig
from pure_rl.models.tiny import build_tiny_model, build_tokenizer
from pure_rl.rollout.base import cut_at_stop, pack_rollout
from pure_rl.rollout.hf import HFRolloutEngine
from pure_rl.rollout.vllm import merged_weights

CORPUS = [f"Compute {a} + {b}.\n\n{a} + {b} = {a + b}\n\n\\boxed{{{a + b}}}" for a in range(10) for b in range(10)]


@pytest.fixture(scope="module")
def policy():
    tokenizer = build_tokenizer(CORPUS, 320)
    torch.manual_seed(0)
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64), tokenizer)
    return model.eval(), tokenizer


def problems(n):
    return [Problem(id=str(i), question=f"Compute {i} + 1.", prompt=f"Compute {i} + 1.\n\n", answer=str(i + 1))
            for i in range(n)]


def test_hf_engine_groups_rows_and_masks_after_eos(policy):
    model, tok = policy
    engine = HFRolloutEngine(model, tok)
    batch = engine.generate(problems(3), 4, SamplingParams(temperature=1.0, max_new_tokens=12, seed=0))
    assert batch.size == 12 and batch.group_size == 4
    assert [p.id for p in batch.problems] == [str(i // 4) for i in range(12)]
    for i in range(batch.size):
        ids = batch.response_ids[i][batch.response_mask[i]].tolist()
        assert tok.eos_token_id not in ids[:-1]  # nothing kept after an EOS
        assert bool(batch.finished[i]) == (bool(ids) and ids[-1] == tok.eos_token_id)
        assert (batch.response_ids[i][~batch.response_mask[i]] == tok.pad_token_id).all()
    assert batch.response_mask.sum(1).max() <= 12


def test_hf_engine_greedy_is_deterministic_and_matches_learner_logprobs(policy):
    model, tok = policy
    engine = HFRolloutEngine(model, tok)
    a = engine.generate(problems(2), 2, SamplingParams(temperature=0.0, max_new_tokens=8))
    b = engine.generate(problems(2), 2, SamplingParams(temperature=0.0, max_new_tokens=8))
    assert a.responses == b.responses and a.responses[0] == a.responses[1]
    ids, mask = a.input_ids()
    with torch.no_grad():
        lp = token_logprobs(model, ids, mask, a.response_ids.shape[1])
        position_ids = (mask.long().cumsum(-1) - 1).clamp_min(0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
    T = a.response_ids.shape[1]
    best = torch.log_softmax(logits[:, -T - 1 : -1].float(), -1).amax(-1)  # greedy picked the argmax everywhere
    assert torch.allclose(lp[a.response_mask], best[a.response_mask], atol=1e-5)


def test_stop_strings_cut_the_response(policy):
    model, tok = policy
    engine = HFRolloutEngine(model, tok)
    batch = engine.generate(problems(2), 3, SamplingParams(temperature=1.0, max_new_tokens=16, stop=("+",), seed=1))
    for text, fin in zip(batch.responses, batch.finished):
        if "+" in text:
            assert text.endswith("+") and text.count("+") == 1 and fin


def test_cut_at_stop_picks_the_earliest():
    assert cut_at_stop("a1b2c", ["2", "1"]) == ("a1", True)
    assert cut_at_stop("abc", ["x"]) == ("abc", False)


def test_pack_rollout_pads_and_validates(policy):
    _, tok = policy
    probs = problems(1) * 2
    batch = pack_rollout(probs, ["p", "p"], [[5, 6], [5, 6]], [[7, 8, 9], [7]], [[-0.1, -0.2, -0.3], [-0.5]],
                         [True, False], tok, 2)
    assert batch.response_ids.shape == (2, 3) and batch.response_mask.sum().item() == 4
    assert batch.old_logprobs[1].tolist() == [-0.5, 0.0, 0.0]
    with pytest.raises(ValueError, match="log-probs for"):
        pack_rollout(probs, ["p", "p"], [[5], [5]], [[7, 8], [7]], [[-0.1], [-0.5]], [True, True], tok, 2)


def test_lora_weights_are_merged_under_base_names(policy):
    from peft import LoraConfig, get_peft_model

    model, _ = policy
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    base_names = {n for n, _ in model.named_parameters() if "lora_" not in n}
    with merged_weights(peft_model) as named:
        names = {n for n, _ in named}
        q = dict(named)["model.layers.0.self_attn.q_proj.weight"].clone()
    assert names == {n.removeprefix("base_model.model.").replace(".base_layer", "") for n in base_names}
    unmerged = dict(peft_model.named_parameters())["base_model.model.model.layers.0.self_attn.q_proj.base_layer.weight"]
    assert not torch.equal(q, unmerged)  # the adapter delta was merged while syncing, and removed after
