"""Held-out evaluation inside training: greedy answers graded by the same verifier as the RL reward."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from pure_rl.core.interfaces import Outcome, Problem, RolloutEngine, SamplingParams, Verifier


@dataclass
class HeldOutResult:
    accuracy: float  # correct / graded (infrastructure failures excluded from the denominator)
    correct: int
    graded: int
    infra_failures: int  # undecided verdicts and grader timeouts / crashes: counted apart, never as wrong


def evaluate_heldout(engine: RolloutEngine, verifier: Verifier, problems: Sequence[Problem], max_new_tokens: int,
                     chunk: int = 256) -> HeldOutResult:
    """Greedy decode one answer per problem and grade it."""
    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    correct = graded = infra = 0
    for i in range(0, len(problems), chunk):
        part = list(problems[i : i + chunk])
        batch = engine.generate(part, 1, sampling)
        for verdict in verifier.verify_batch(part, batch.responses):
            if not verdict.outcome.graded:  # the rule the metrics and the reward masking share
                infra += 1
            else:
                graded += 1
                correct += verdict.outcome is Outcome.CORRECT
    return HeldOutResult(correct / graded if graded else 0.0, correct, graded, infra)
