"""The structural protocols every component satisfies; built-ins and plugins alike.

Nothing here imports torch-heavy or optional code, so ``prm``, ``lean_env`` and ``evals`` can depend on it
without pulling in the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable


@dataclass
class Problem:
    """One task item: what the policy is asked and what a verifier checks against."""

    id: str  # stable identifier (dataset index or name), used in logs, caches and reports
    question: str  # the raw question text, without any prompt template
    prompt: str  # the text the policy is conditioned on (template applied; chat template applied by the engine)
    answer: str | None = None  # gold answer; None = no ground truth (the verifiable reward is then neutral)
    meta: dict[str, Any] = field(default_factory=dict)  # task-specific fields (level, subject, header, statement...)


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one completion.

    ``correct`` is None when the verifier could not decide because of infrastructure (a crashed Lean process,
    an unreachable server): the trainer masks such rows instead of scoring them 0.
    """

    correct: bool | None
    reward: float | None
    info: dict[str, Any] = field(default_factory=dict)  # extracted answer, reason, timings, Lean messages


@runtime_checkable
class Verifier(Protocol):
    def __call__(self, problem: Problem, completion: str) -> Verdict: ...

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]: ...


@dataclass
class SamplingParams:
    """How a rollout engine samples."""

    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0  # nucleus sampling mass
    max_new_tokens: int = 256  # hard cap on generated tokens per response
    stop: tuple[str, ...] = ()  # stop strings; the response is cut after the first one
    seed: int | None = None  # per-call seed for reproducible sampling


@runtime_checkable
class Task(Protocol):
    """A dataset plus its prompt format and its grader's conventions."""

    name: str

    def load(self, split: str, limit: int | None = None) -> list[Problem]: ...
