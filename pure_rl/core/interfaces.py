"""The structural protocols every component satisfies, built-ins and plugins alike, and the data they exchange.

Nothing here imports torch or optional code, so ``prm``, ``lean_env`` and ``evals`` depend on it without pulling in
the trainer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from pure_rl.core.scores import ScoreRange


@dataclass
class Problem:
    """One task item: what the policy is asked and what a verifier checks against."""

    id: str  # stable identifier (dataset index or name), used in logs, caches and reports
    question: str  # the raw question text, without any prompt template
    prompt: str  # the text the policy is conditioned on (template applied; chat template applied by the engine)
    answer: str | None = None  # gold answer; None = no ground truth (the verifiable reward is then neutral)
    meta: dict[str, Any] = field(default_factory=dict)  # task-specific fields (level, subject, header, statement...)


class Outcome(str, enum.Enum):
    """What a verifier concluded about one completion; the verifier decides it, every consumer reads it.

    The one masking rule (``graded``): TIMEOUT and INFRA say the *grader* failed (a killed math worker, Lean's
    wall clock, a crashed process, no gold answer), not that the answer is wrong. The trainer masks such rows
    (no verifiable reward, no loss) and the metrics leave them out of every denominator, counted apart. Scoring
    them 0 would teach the policy that a slow-to-grade answer is a wrong one and bias accuracy by grader load.
    """

    CORRECT = "correct"
    WRONG = "wrong"
    TIMEOUT = "timeout"  # the grader ran out of time (math worker killed, Lean wall clock)
    INFRA = "infra"  # the grader could not decide (crash, unreachable server, no ground truth)

    @property
    def graded(self) -> bool:
        """True when the verdict judges the answer (CORRECT / WRONG); False = masked everywhere."""
        return self in (Outcome.CORRECT, Outcome.WRONG)


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one completion.

    ``outcome`` is the verifier's decision (see ``Outcome``); when omitted it follows ``correct``
    (True -> CORRECT, False -> WRONG, None -> INFRA). ``correct`` / ``reward`` are the raw judgement and are only
    meaningful when ``outcome.graded``: consumers go through ``outcome`` (``reward_or_none``), never ``correct``.
    """

    correct: bool | None
    reward: float | None
    info: dict[str, Any] = field(default_factory=dict)  # extracted answer, reason, timings, Lean messages
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if self.outcome is None:
            derived = Outcome.INFRA if self.correct is None else (Outcome.CORRECT if self.correct else Outcome.WRONG)
            object.__setattr__(self, "outcome", derived)
        elif not isinstance(self.outcome, Outcome):
            object.__setattr__(self, "outcome", Outcome(self.outcome))
        if self.outcome.graded and (self.correct is None or self.reward is None):
            raise ValueError(f"a {self.outcome.value} verdict needs correct and reward, got {self.correct}, {self.reward}")

    @property
    def reward_or_none(self) -> float | None:
        """The verifiable reward, or None when the row is masked (``outcome`` not graded)."""
        return float(self.reward) if self.outcome.graded else None


@runtime_checkable
class Verifier(Protocol):
    """Grades completions. Optional: ``describe(problem, text, verdict) -> dict`` (what a prediction record keeps),
    ``majority_vote: bool`` (whether maj@k over extracted answers means something), ``close()``."""

    def __call__(self, problem: Problem, completion: str) -> Verdict: ...

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]: ...


@runtime_checkable
class ProcessRewardModel(Protocol):
    """Scores each reasoning step of each response; text in so a PRM with its own tokenizer plugs in.

    ``score_steps`` returns one list of floats per response (one per step, in ``score_range``), or ``None`` for
    a response that could not be scored (a remote PRM failed): the trainer masks such rows instead of scoring 0.
    """

    score_range: ScoreRange

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]: ...


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
    """A dataset plus its prompt format and its grader's conventions; the task owns its defaults.

    Attributes every task declares (``evals.base.TaskDefaults`` gives the common values): ``train_split``,
    ``eval_split`` (the trainer's held-out split), ``eval_splits`` (what ``evals.run`` reports by default),
    ``max_new_tokens`` (generation cap), ``stop`` (stop strings of its prompt format), ``verifier`` (registry
    name of its default grader), ``sampling_top_p`` (top-p when sampling several answers). Optional:
    ``demonstrations(n, error_rate, rng, early_stop_rate)`` for a supervised warm start.
    """

    name: str
    train_split: str
    eval_split: str
    max_new_tokens: int
    verifier: str

    def load(self, split: str, limit: int | None = None) -> list[Problem]: ...


@runtime_checkable
class RolloutEngine(Protocol):
    """Generates ``n`` responses per problem and returns them as one ``pure_rl.batch.RolloutBatch``.

    Rows are grouped: problem g's responses are rows g*n .. g*n+n-1. The batch's ``old_logprobs`` are the
    sampling policy's per-token log-probs (fp32) when the engine computes them, else None (the learner does).
    """

    def generate(self, problems: Sequence[Problem], n: int, sampling: SamplingParams) -> Any: ...

    def sync_weights(self, model: Any) -> None: ...
