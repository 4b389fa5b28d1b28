"""``HFTokenClassifierPRM`` on tiny random Qwen2 / Llama token classifiers built offline from configs."""

import pytest
import torch

from prm.hf_classifier import HFTokenClassifierPRM, stepwise_input
from pure_rl.core.registry import PRMS
from pure_rl.core.scores import to_pm1

STEPS = [["3 + 4 = 7", "7 - 1 = 6", "\\boxed{6}"], ["5 - 2 = 3", "\\boxed{3}"], ["\\boxed{9}"]]


def prompts_of(problems, n):
    return [p.prompt for p in problems[:n]]


def test_read_position_is_the_separator_after_each_step(arith_tokenizer):
    prompt = "Compute 3 + 4 - 1.\n\n"
    ids, positions = stepwise_input(arith_tokenizer, prompt, STEPS[0])
    assert len(positions) == 3 and positions[-1] == len(ids) - 1
    for k, pos in enumerate(positions):
        # everything up to the read token is the prompt plus the first k+1 steps, each closed by "\n"
        text = arith_tokenizer.decode(ids[: pos + 1], skip_special_tokens=True)
        assert text == prompt + "".join(s + "\n" for s in STEPS[0][: k + 1])


@pytest.mark.parametrize("arch", ["qwen2_token_classifier", "llama_token_classifier"])
def test_scores_match_a_hand_forward_at_the_separators(arch, request, arith_tokenizer, arith_problems):
    model = request.getfixturevalue(arch)
    prm = HFTokenClassifierPRM(model=model, tokenizer=arith_tokenizer, device="cpu", batch_size=2)
    prompts = prompts_of(arith_problems, 3)
    scores = prm.score_steps(prompts, STEPS)
    assert [len(s) for s in scores] == [len(s) for s in STEPS]
    for prompt, steps, row in zip(prompts, STEPS, scores):
        ids, positions = stepwise_input(arith_tokenizer, prompt, steps)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, positions]  # [n_steps, 2]
        p = torch.softmax(logits, -1)[:, 1]
        assert row == pytest.approx((2 * p - 1).tolist(), abs=1e-5)
        assert all(-1 <= s <= 1 for s in row)
        assert [to_pm1(s, prm.score_range) for s in row] == pytest.approx(row)


def test_batching_invariance(qwen2_token_classifier, arith_tokenizer, arith_problems):
    prompts = prompts_of(arith_problems, 3)
    batched = HFTokenClassifierPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu",
                                   batch_size=3).score_steps(prompts, STEPS)
    single = HFTokenClassifierPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu", batch_size=1)
    for i in range(3):
        assert single.score_steps(prompts[i : i + 1], STEPS[i : i + 1])[0] == pytest.approx(batched[i], abs=1e-5)
    # a row's scores do not depend on which other rows share its batch
    reordered = single.score_steps(prompts[::-1], STEPS[::-1])
    assert reordered[::-1] == [pytest.approx(r, abs=1e-5) for r in batched]


def test_left_truncation_warns_and_keeps_the_late_steps(qwen2_token_classifier, arith_tokenizer, arith_problems):
    prompt = arith_problems[0].prompt
    full = HFTokenClassifierPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu")
    ids, positions = stepwise_input(arith_tokenizer, prompt, STEPS[0])
    keep = len(ids) - positions[0] - 1  # cut everything up to and including the first step's separator
    short = HFTokenClassifierPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu", max_length=keep)
    with pytest.warns(UserWarning, match="truncated from the left"):
        cut = short.score_steps([prompt], [STEPS[0]])[0]
    assert len(cut) == 3 and all(-1 <= s <= 1 for s in cut)
    with torch.no_grad():
        window = torch.tensor([ids[-keep:]])
        logits = qwen2_token_classifier(input_ids=window).logits[0]
    p = torch.softmax(logits, -1)[:, 1]
    # the lost first step reads the window's first token; the others sit where they were, shifted by the cut
    assert cut == pytest.approx((2 * p[[0, positions[1] - (len(ids) - keep), keep - 1]] - 1).tolist(), abs=1e-5)
    assert full.score_steps([prompt], [STEPS[0]])[0] != pytest.approx(cut, abs=1e-6)


def test_registry_builds_it_and_bad_input_is_named(qwen2_token_classifier, arith_tokenizer):
    prm = PRMS.build("hf_token_classifier", model=qwen2_token_classifier, tokenizer=arith_tokenizer, device="cpu")
    assert isinstance(prm, HFTokenClassifierPRM)
    with pytest.raises(ValueError, match="2 prompts but 1 step lists"):
        prm.score_steps(["a", "b"], [["x"]])
    with pytest.raises(TypeError, match="steps\\[0\\] is a string"):
        prm.score_steps(["a"], ["x"])
    with pytest.raises(ValueError, match="needs path="):
        HFTokenClassifierPRM()
    with pytest.raises(ValueError, match="positive_label=2"):
        HFTokenClassifierPRM(model=qwen2_token_classifier, tokenizer=arith_tokenizer, positive_label=2)


def test_offline_hub_error_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from prm.runtime import PRMLoadError

    with pytest.raises(PRMLoadError, match="set path=/local/folder"):
        HFTokenClassifierPRM(path="jinachris/PURE-PRM-7B", device="cpu")
    with pytest.raises(PRMLoadError, match="does not exist"):
        HFTokenClassifierPRM(path="/nonexistent/prm", device="cpu")
