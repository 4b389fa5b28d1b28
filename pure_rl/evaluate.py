"""Held-out evaluation inside training: greedy answers graded by the same verifier as the RL reward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pure_rl.interfaces import Problem, SamplingParams, Verifier
from pure_rl.rollout.base import RolloutEngine


@dataclass
class HeldOutResult:
    accuracy: float  # correct / graded (infrastructure failures excluded from the denominator)
    correct: int
    graded: int
    infra_failures: int  # undecided verdicts and grader timeouts / crashes: counted apart, never as wrong


def evaluate_heldout(engine: RolloutEngine, verifier: Verifier, problems: Sequence[Problem], max_new_tokens: int,
                     chunk: int = 256) -> HeldOutResult:
    """Greedy decode one answer per problem and grade it."""
    from evals.metrics import sample_outcome  # one rule for what counts as graded, shared with evals.run

    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    correct = graded = infra = 0
    for i in range(0, len(problems), chunk):
        part = list(problems[i : i + chunk])
        batch = engine.generate(part, 1, sampling)
        for verdict in verifier.verify_batch(part, batch.responses):
            outcome = sample_outcome(verdict)
            if outcome in ("timeout", "infra"):
                infra += 1
            else:
                graded += 1
                correct += outcome == "correct"
    return HeldOutResult(correct / graded if graded else 0.0, correct, graded, infra)
