"""Best-of-N and step beam search with the deterministic arithmetic PRM, through a real HF engine and a scripted one."""

import pytest
import torch

from evals.arith import ArithTask, Expression, parse_question, solution_text
from prm.arith import ArithPRM
from prm.search import aggregate_scores, best_of_n, split_response, step_beam
from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import SamplingParams


def test_aggregates_map_to_pm1_first():
    assert aggregate_scores([0.2, 0.9, 0.6], (0.0, 1.0), "last") == pytest.approx(0.2)
    assert aggregate_scores([0.2, 0.9, 0.6], (0.0, 1.0), "min") == pytest.approx(-0.6)
    assert aggregate_scores([0.5, 1.0], (-1.0, 1.0), "mean") == pytest.approx(0.75)
    assert aggregate_scores(None, (-1.0, 1.0), "min") == float("-inf")
    with pytest.raises(ValueError, match="aggregate='max'"):
        aggregate_scores([1.0], (-1.0, 1.0), "max")


def test_split_response_drops_the_trailing_separator():
    assert split_response("a\n\nb\n\n") == ["a", "b"]
    assert split_response("") == [""]


def test_best_of_n_picks_the_only_correct_candidate():
    task = ArithTask(min_operands=3, max_operands=3)
    problems = task.load("test", limit=2)
    prompts, candidates = [], []
    for p in problems:
        expr = parse_question(p.question)
        good = split_response(solution_text(expr))
        slipped = split_response(solution_text(expr, slip_step=1, slip=1))
        prompts.append(p.prompt)
        candidates.append([slipped, good, slipped[:1]])
    best, scores = best_of_n(ArithPRM(), prompts, candidates, aggregate="min")
    assert best == [1, 1]
    assert [len(r) for r in scores] == [3, 3] and scores[0][1] == 1.0 and scores[0][0] == -1.0
    with pytest.raises(ValueError, match="2 prompts but 1 candidate"):
        best_of_n(ArithPRM(), prompts, candidates[:1])


class ScriptedEngine:
    """A FAKE rollout engine for beam mechanics: the next step of a prefix is read from a script, so which beams
    survive is known in advance. (The real HF engine is exercised in ``test_step_beam_runs_with_a_real_policy``.)"""

    def __init__(self, script):
        self.script, self.calls = script, []

    def generate(self, problems, n, sampling):
        self.calls.append((len(problems), n, sampling.stop))
        responses = []
        for p in problems:
            done = p.prompt.count("\n\n") - 1  # the prompt itself ends with one separator
            options = self.script[done]
            responses += [options[j % len(options)] for j in range(n)]
        B = len(responses)
        z = torch.zeros(B, 1)
        return RolloutBatch(problems=[p for p in problems for _ in range(n)], prompts=[""] * B, responses=responses,
                            group_size=n, prompt_ids=z.long(), prompt_mask=z.bool(), response_ids=z.long(),
                            response_mask=z.bool(), old_logprobs=z, finished=z.bool()[:, 0])


def test_step_beam_keeps_the_steps_the_prm_likes():
    problem = ArithTask().problem(Expression((3, 4, 1), ("+", "-")), "t")
    script = {0: ["3 + 4 = 8\n\n", "3 + 4 = 7\n\n"], 1: ["7 - 1 = 6\n\n", "8 - 1 = 7\n\n", "7 - 1 = 5\n\n"],
              2: ["\\boxed{6}", "\\boxed{7}"]}
    engine = ScriptedEngine(script)
    out = step_beam(engine, ArithPRM(), [problem], beam_width=2, samples_per_step=6, max_steps=5, aggregate="min",
                    sampling=SamplingParams(temperature=0.7, max_new_tokens=20))
    assert out == ["3 + 4 = 7\n\n7 - 1 = 6\n\n\\boxed{6}"]
    assert all(stop == ("\n\n",) for _, _, stop in engine.calls) and engine.calls[0] == (1, 3, ("\n\n",))
    with pytest.raises(ValueError, match="samples_per_step >= beam_width"):
        step_beam(engine, ArithPRM(), [problem], beam_width=4, samples_per_step=2)


def test_step_beam_runs_with_a_real_policy(arith_tokenizer):
    from transformers import LlamaForCausalLM

    from pure_rl.rollout.hf import HFRolloutEngine
    from tests.prm.conftest import tiny_llama_config

    torch.manual_seed(0)
    policy = LlamaForCausalLM(tiny_llama_config(arith_tokenizer)).eval()
    engine = HFRolloutEngine(policy, arith_tokenizer, device="cpu")
    problems = ArithTask().load("test", limit=2)
    out = step_beam(engine, ArithPRM(), problems, beam_width=2, samples_per_step=4, max_steps=3,
                    sampling=SamplingParams(temperature=1.0, max_new_tokens=6, seed=0))
    assert len(out) == 2 and all(isinstance(o, str) for o in out)
    assert all(len(split_response(o)) <= 3 for o in out)
