"""``TVMScorer`` on a tiny random Llama value model: read positions, ranges, modes, batching, the token fast path."""

import pytest
import torch

from prm.tvm.model import TokenValueModel
from prm.tvm.scorer import TVMScorer
from pure_rl.core.registry import PRMS
from tests.prm.conftest import tiny_llama_config

STEPS = [["3 + 4 = 7", "7 - 1 = 6", "\\boxed{6}"], ["5 - 2 = 3", "\\boxed{3}"], ["\\boxed{9}"]]


@pytest.fixture
def tvm(arith_tokenizer):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    model = TokenValueModel(LlamaForCausalLM(tiny_llama_config(arith_tokenizer)))
    torch.nn.init.normal_(model.value_head.weight, std=0.5)
    return model.eval()


def scorer(tvm, tok, **kw):
    return TVMScorer(model=tvm, tokenizer=tok, device="cpu", **kw)


def test_reads_at_the_prompt_end_each_separator_and_eos(tvm, arith_tokenizer):
    s = scorer(tvm, arith_tokenizer)
    prompt = "Compute 3 + 4 - 1.\n\n"
    ids, positions = s.encode(prompt, STEPS[0])
    assert len(positions) == 4 and positions[-1] == len(ids) - 1 and ids[-1] == arith_tokenizer.eos_token_id
    assert arith_tokenizer.decode(ids[: positions[0] + 1]) == prompt
    for k in range(2):
        # the token that ends step k holds the last character of the separator after it
        text = arith_tokenizer.decode(ids[: positions[k + 1] + 1])
        assert text == prompt + "\n\n".join(STEPS[0][: k + 1]) + "\n\n"
    no_eos = scorer(tvm, arith_tokenizer, append_eos=False)
    ids2, pos2 = no_eos.encode(prompt, STEPS[0])
    assert pos2[-1] == len(ids2) - 1 and arith_tokenizer.decode(ids2) == prompt + "\n\n".join(STEPS[0])


def test_level_and_progress_scores_come_from_the_values_there(tvm, arith_tokenizer, arith_problems):
    prompts = [p.prompt for p in arith_problems[:3]]
    level, progress = scorer(tvm, arith_tokenizer), scorer(tvm, arith_tokenizer, mode="progress")
    assert level.score_range == (0.0, 1.0) and progress.score_range == (-1.0, 1.0)
    lv, pv = level.score_steps(prompts, STEPS), progress.score_steps(prompts, STEPS)
    for prompt, steps, lrow, prow in zip(prompts, STEPS, lv, pv):
        ids, positions = level.encode(prompt, steps)
        with torch.no_grad():
            v = tvm.values(torch.tensor([ids]), torch.ones(1, len(ids), dtype=torch.long))[0, positions]
        assert len(lrow) == len(steps) and lrow == pytest.approx(v[1:].tolist(), abs=1e-5)
        assert prow == pytest.approx((v[1:] - v[:-1]).tolist(), abs=1e-5)
        assert all(0 <= x <= 1 for x in lrow) and all(-1 <= x <= 1 for x in prow)


def test_batching_invariance(tvm, arith_tokenizer, arith_problems):
    prompts = [p.prompt for p in arith_problems[:3]]
    batched = scorer(tvm, arith_tokenizer, batch_size=3).score_steps(prompts, STEPS)
    single = scorer(tvm, arith_tokenizer, batch_size=1)
    for i in range(3):
        assert single.score_steps(prompts[i : i + 1], STEPS[i : i + 1])[0] == pytest.approx(batched[i], abs=1e-5)


def test_token_fast_path_equals_the_text_path_on_left_padded_policy_rows(tvm, arith_tokenizer, arith_problems):
    """The policy's layout: prompts left-padded, responses right-padded; step ends are the separator tokens and EOS."""
    s = scorer(tvm, arith_tokenizer, mode="progress")
    prompts = [p.prompt for p in arith_problems[:3]]
    rows = [s.encode(p, st) for p, st in zip(prompts, STEPS)]
    prompt_lens = [len(arith_tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    P, T = max(prompt_lens), max(len(ids) - n for (ids, _), n in zip(rows, prompt_lens))
    pad = arith_tokenizer.pad_token_id
    input_ids = torch.full((3, P + T), pad)
    mask = torch.zeros(3, P + T, dtype=torch.long)
    ends = torch.full((3, 3), -1)
    prompt_end = torch.zeros(3, dtype=torch.long)
    for i, ((ids, pos), n) in enumerate(zip(rows, prompt_lens)):
        input_ids[i, P - n : P] = torch.tensor(ids[:n])
        input_ids[i, P : P + len(ids) - n] = torch.tensor(ids[n:])
        mask[i, P - n : P + len(ids) - n] = 1
        shift = P - n
        prompt_end[i] = pos[0] + shift
        ends[i, : len(pos) - 1] = torch.tensor(pos[1:]) + shift
    fast = s.score_step_ends(input_ids, mask, ends, prompt_end)  # [3, 3]
    text = s.score_steps(prompts, STEPS)
    for i, row in enumerate(text):
        assert fast[i, : len(row)].tolist() == pytest.approx(row, abs=1e-5)
        assert not fast[i, len(row):].any()
    with pytest.raises(ValueError, match="padding position"):
        s.score_step_ends(input_ids, mask, torch.zeros(3, 1, dtype=torch.long), prompt_end)


def test_registry_build_and_bad_arguments(tvm, arith_tokenizer, tmp_path):
    assert isinstance(PRMS.build("tvm", model=tvm, tokenizer=arith_tokenizer, device="cpu"), TVMScorer)
    with pytest.raises(ValueError, match="mode='delta'"):
        TVMScorer(model=tvm, tokenizer=arith_tokenizer, mode="delta")
    with pytest.raises(ValueError, match="needs path="):
        TVMScorer()
    tvm.save_pretrained(tmp_path)
    arith_tokenizer.save_pretrained(tmp_path)
    loaded = PRMS.build("tvm", path=str(tmp_path), device="cpu")
    prompt = ["Compute 1 + 2.\n\n"]
    want = scorer(tvm, arith_tokenizer).score_steps(prompt, [["1 + 2 = 3", "\\boxed{3}"]])[0]
    assert loaded.score_steps(prompt, [["1 + 2 = 3", "\\boxed{3}"]])[0] == pytest.approx(want, abs=1e-5)
