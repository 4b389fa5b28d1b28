"""The trainer's two score paths for a TVM: text (decode, re-encode, ``score_steps``) and token (the policy's own
rollout ids, ``score_step_tokens``) give the same [-1, 1] step scores on the same left/right-padded batch."""

import pytest
import torch

from prm.tvm.model import TokenValueModel
from prm.tvm.scorer import TVMScorer
from pure_rl.rewards import score_step_tokens, score_steps, strip_separator
from pure_rl.steps import separator_token_ids, split_steps, step_end_indices
from tests.prm.conftest import tiny_llama_config

RESPONSES = ["3 + 4 = 7\n\n7 - 1 = 6\n\n\\boxed{6}", "5 - 2 = 3\n\n\\boxed{3}", "\\boxed{9}", "2 * 3 = 6\n\n\\boxed{6}"]


@pytest.fixture
def tvm(arith_tokenizer):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = TokenValueModel(LlamaForCausalLM(tiny_llama_config(arith_tokenizer)))
    torch.nn.init.normal_(model.value_head.weight, std=0.5)
    return model.eval()


def policy_batch(tok, prompts, responses):
    """The rollout layout: prompts left-padded, responses right-padded, each response ending in EOS."""
    p_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    r_ids = [tok(r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for r in responses]
    P, T, pad = max(map(len, p_ids)), max(map(len, r_ids)), tok.pad_token_id
    prompt_ids, prompt_mask = torch.full((len(prompts), P), pad), torch.zeros(len(prompts), P, dtype=torch.long)
    resp_ids, resp_mask = torch.full((len(prompts), T), pad), torch.zeros(len(prompts), T, dtype=torch.bool)
    for i, (p, r) in enumerate(zip(p_ids, r_ids)):
        prompt_ids[i, P - len(p):], prompt_mask[i, P - len(p):] = torch.tensor(p), 1
        resp_ids[i, : len(r)], resp_mask[i, : len(r)] = torch.tensor(r), True
    return prompt_ids, prompt_mask, resp_ids, resp_mask


@pytest.mark.parametrize("mode", ["level", "progress"])
def test_token_path_and_text_path_give_the_same_step_scores(tvm, arith_tokenizer, arith_problems, mode):
    tok = arith_tokenizer
    prm = TVMScorer(model=tvm, tokenizer=tok, device="cpu", mode=mode, batch_size=3)
    assert prm.supports_token_scoring(tok)
    prompts = [p.prompt for p in arith_problems[: len(RESPONSES)]]
    prompt_ids, prompt_mask, resp_ids, resp_mask = policy_batch(tok, prompts, RESPONSES)
    ends = step_end_indices(resp_ids, resp_mask, separator_token_ids(tok, "\n\n"))  # [B, S]
    texts = [[strip_separator(s, "\n\n") for s in split_steps(resp_ids[i].tolist(), ends[i].tolist(),
                                                                lambda t: tok.decode(t, skip_special_tokens=True))]
             for i in range(len(RESPONSES))]
    assert [len(t) for t in texts] == [3, 2, 1, 2]
    text_scores, text_ok = score_steps(prm, prompts, texts, ends.shape[1])
    ids = torch.cat([prompt_ids, resp_ids], dim=1)
    mask = torch.cat([prompt_mask, resp_mask.long()], dim=1)
    token_scores, token_ok = score_step_tokens(prm, ids, mask, prompt_ids.shape[1], ends)
    assert text_ok.all() and token_ok.all()
    assert torch.allclose(token_scores, text_scores, atol=1e-5), (token_scores, text_scores)
    assert text_scores[ends >= 0].abs().sum() > 0.1  # the scores are not all zero


def test_a_tokenizer_that_differs_declines_the_token_path(tvm, arith_tokenizer):
    prm = TVMScorer(model=tvm, tokenizer=arith_tokenizer, device="cpu")
    smaller = type("Tok", (), {"get_vocab": lambda self: {"a": 0}, "eos_token_id": arith_tokenizer.eos_token_id})()
    assert not prm.supports_token_scoring(smaller)


def test_non_finite_rows_are_masked_on_the_token_path(tvm, arith_tokenizer):
    prm = TVMScorer(model=tvm, tokenizer=arith_tokenizer, device="cpu")
    prm.score_step_ends = lambda *a: torch.tensor([[0.5, float("nan")], [0.25, 0.0]])  # a fake broken PRM output
    ids, mask = torch.ones(2, 6, dtype=torch.long), torch.ones(2, 6, dtype=torch.long)
    scores, ok = score_step_tokens(prm, ids, mask, 3, torch.tensor([[0, 2], [1, -1]]))
    assert ok.tolist() == [False, True]
    assert scores.tolist() == [[0.0, 0.0], [-0.5, 0.0]]


def test_missing_tvm_folder_is_one_line_saying_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="not a trained TVM folder.*python -m prm.train recipe=tvm_arith"):
        TVMScorer(path=str(tmp_path / "nope"), device="cpu")
