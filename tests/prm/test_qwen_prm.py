"""``QwenPRM`` on a tiny random Qwen2 token classifier (2 labels) with a Qwen-style chat template, offline."""

import pytest
import torch

from prm.qwen_prm import QwenPRM
from pure_rl.core.registry import PRMS

STEPS = [["3 + 4 = 7", "7 - 1 = 6", "\\boxed{6}"], ["5 - 2 = 3", "\\boxed{3}"], ["\\boxed{9}"]]


@pytest.fixture
def prm(qwen2_token_classifier, arith_tokenizer):
    return QwenPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu", batch_size=2)


def test_input_layout_follows_the_model_card(prm):
    text = prm.render("Compute 3 + 4.", ["3 + 4 = 7", "\\boxed{7}"])
    assert text == ("<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
                    "<|im_start|>user\nCompute 3 + 4.<|im_end|>\n"
                    "<|im_start|>assistant\n3 + 4 = 7<extra_0>\\boxed{7}<extra_0><|im_end|>\n")


def test_probabilities_read_at_each_step_token(prm, qwen2_token_classifier, arith_tokenizer, arith_problems):
    prompts = [p.prompt for p in arith_problems[:3]]
    scores = prm.score_steps(prompts, STEPS)
    assert [len(s) for s in scores] == [3, 2, 1]
    for prompt, steps, row in zip(prompts, STEPS, scores):
        ids = arith_tokenizer(prm.render(prompt, steps), add_special_tokens=False)["input_ids"]
        positions = [j for j, t in enumerate(ids) if arith_tokenizer.decode([t]) == "<extra_0>"]
        with torch.no_grad():
            logits = qwen2_token_classifier(input_ids=torch.tensor([ids])).logits[0, positions]
        assert row == pytest.approx(torch.softmax(logits, -1)[:, 1].tolist(), abs=1e-5)
        assert all(0 <= s <= 1 for s in row)
    assert prm.score_range == (0.0, 1.0)


def test_batching_invariance(qwen2_token_classifier, arith_tokenizer, arith_problems):
    prompts = [p.prompt for p in arith_problems[:3]]
    batched = QwenPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu",
                      batch_size=3).score_steps(prompts, STEPS)
    single = QwenPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu", batch_size=1)
    assert single.score_steps(prompts, STEPS) == [pytest.approx(r, abs=1e-5) for r in batched]
    assert single.score_steps(prompts[1:2], STEPS[1:2])[0] == pytest.approx(batched[1], abs=1e-5)


def test_a_step_containing_the_step_token_leaves_only_its_row_unscored(prm, arith_problems):
    prompts = [p.prompt for p in arith_problems[:2]]
    with pytest.warns(UserWarning, match="row 0 has 1 steps but 2"):
        scores = prm.score_steps(prompts, [["a<extra_0>b"], ["\\boxed{3}"]])
    assert scores[0] is None and len(scores[1]) == 1


def test_registry_and_bad_construction(qwen2_token_classifier, arith_tokenizer):
    assert isinstance(PRMS.build("qwen_prm", model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu"),
                      QwenPRM)
    with pytest.raises(ValueError, match="must be one token"):
        QwenPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, step_token="<not a token>")
    with pytest.raises(ValueError, match="needs path="):
        QwenPRM()
