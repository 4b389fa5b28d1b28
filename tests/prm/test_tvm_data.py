"""TVM data generation with the real HF engine on a tiny random policy: grouping, labels, dropped infra failures."""

import pytest
import torch

from evals.arith import ArithTask
from prm.tvm.data import load_paths, sample_and_label, save_paths
from prm.tvm.labels import token_value_labels
from pure_rl.core.interfaces import SamplingParams, Verdict


class FlakyVerifier:
    """A FAKE verifier: "correct" when the response has an even token count, and an infrastructure failure (None)
    on every third call, so both outcomes and the dropping rule are exercised without a grader process."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, 0

    def __call__(self, problem, completion):
        self.calls += 1
        if self.calls % 3 == 0:
            return Verdict(None, None, {"reason": "crash"})
        ok = len(self.tokenizer(completion, add_special_tokens=False)["input_ids"]) % 2 == 0
        return Verdict(ok, float(ok), {})

    def verify_batch(self, problems, completions):
        return [self(p, c) for p, c in zip(problems, completions)]


def test_paths_are_labelled_per_problem_and_failures_dropped(arith_tokenizer, tmp_path):
    from transformers import LlamaForCausalLM

    from pure_rl.rollout.hf import HFRolloutEngine
    from tests.prm.conftest import tiny_llama_config

    torch.manual_seed(0)
    engine = HFRolloutEngine(LlamaForCausalLM(tiny_llama_config(arith_tokenizer)).eval(), arith_tokenizer, "cpu")
    problems = ArithTask().load("train", limit=3)
    paths, stats = sample_and_label(engine, FlakyVerifier(arith_tokenizer), problems, n=6,
                                    sampling=SamplingParams(temperature=1.0, max_new_tokens=8, seed=0),
                                    problems_per_call=2)
    assert stats["verifier_failures"] == 6 and stats["paths"] == 12 and len(paths) == 12
    for problem in problems:
        group = [p for p in paths if p.problem_id == problem.id]
        assert len(group) == 4
        want = token_value_labels([p.response_ids for p in group], [p.correct for p in group])
        assert [p.labels for p in group] == want
        prompt_ids = arith_tokenizer(problem.prompt, add_special_tokens=False)["input_ids"]
        assert all(p.prompt_ids == prompt_ids for p in group)
        assert all(len(p.labels) == len(p.response_ids) > 0 for p in group)
    save_paths(paths, tmp_path / "d.jsonl")
    assert load_paths(tmp_path / "d.jsonl") == paths
    (tmp_path / "bad.jsonl").write_text('{"problem_id": 1}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1 is not a TVM labelled path"):
        load_paths(tmp_path / "bad.jsonl")
