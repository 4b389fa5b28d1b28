"""``LeanVerifier``: the project's Verifier for Lean 4 proofs (registered as ``"lean"``).

Per proof: assemble trusted header + statement + model proof (a changed statement is FORBIDDEN), run the
deny-list over the model's text (FORBIDDEN before Lean ever sees it), look up the cache, run the backend,
classify the response with the axioms probe, map message lines to the proof, store cacheable results.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Sequence
from typing import Any

from lean_env.assemble import DEFAULT_HEADER, Assembled, AssemblyError, assemble
from lean_env.cache import ResultCache, cache_key
from lean_env.extract import extract_proof
from lean_env.policy import ALLOWED_AXIOMS, POLICY_VERSION, classify, find_violations, messages_of
from lean_env.project import mathlib_revision
from lean_env.types import LeanMessage, Status, VerifyResult
from pure_rl.core.interfaces import Outcome, Problem, Verdict
from pure_rl.core.registry import LEAN_BACKENDS

CheckItem = tuple[str, str] | tuple[str, str, str]  # (formal_statement, proof[, header])


class LeanVerifier:
    """Checks Lean 4 proofs against trusted statements.

    ``backend`` is a registered name (``repl``, ``kimina``, ``cli``, ``dojo``), a ``module:attr`` import string,
    or a ready backend object; ``backend_kwargs`` go to its constructor (``project`` defaults to
    ``$LEAN_PROJECT``). ``cache`` is a SQLite path or a ``ResultCache``. ``heartbeats`` sets a deterministic
    ``maxHeartbeats`` for every proof, overriding the header's; ``timeout_s`` is the wall-clock limit.
    """

    def __init__(
        self,
        backend: str | Any = "repl",
        *,
        project: str | os.PathLike | None = None,
        header: str = DEFAULT_HEADER,
        timeout_s: float = 60.0,
        heartbeats: int | None = None,
        allowed_axioms: frozenset[str] = ALLOWED_AXIOMS,
        cache: str | os.PathLike | ResultCache | None = None,
        **backend_kwargs: Any,
    ):
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if isinstance(backend, str):
            factory = LEAN_BACKENDS.get(backend)
            # A backend that checks files of a Lean project says so by taking ``project`` (a server backend does not).
            if _takes_project(factory) and "project" not in backend_kwargs and not _has_command(backend_kwargs):
                backend_kwargs["project"] = project
            backend = factory(**backend_kwargs)
        self.backend = backend
        self.header = header
        self.timeout_s = timeout_s
        self.heartbeats = heartbeats
        self.allowed_axioms = frozenset(allowed_axioms)
        self.cache = cache if isinstance(cache, ResultCache) or cache is None else ResultCache(cache)
        # Everything besides the text that changes a verdict: part of every cache key.
        self.rules = f"{POLICY_VERSION}|heartbeats={heartbeats}|axioms={','.join(sorted(self.allowed_axioms))}"
        project_dir = getattr(backend, "project", None) or getattr(backend, "cwd", None)
        self.mathlib_rev = mathlib_revision(project_dir) if project_dir else ""

    majority_vote = False  # proofs are not answers: maj@k over them means nothing

    # The Verifier protocol ---------------------------------------------------------------------------------
    def __call__(self, problem: Problem, completion: str) -> Verdict:
        return self.verify_batch([problem], [completion])[0]

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """One Verdict per (problem, completion); ``problem.meta`` holds ``formal_statement`` and ``header``."""
        if len(problems) != len(completions):
            raise ValueError(f"verify_batch got {len(problems)} problems but {len(completions)} completions")
        items: list[CheckItem] = []
        for problem in problems:
            statement = problem.meta.get("formal_statement")
            if not statement:
                raise ValueError(f"problem {problem.id!r} has no meta['formal_statement'] (a miniF2F-style Problem)")
        for problem, completion in zip(problems, completions):
            proof = extract_proof(completion, continues_prompt=bool(problem.meta.get("prompt_ends_in_proof")))
            items.append((problem.meta["formal_statement"], proof, problem.meta.get("header", self.header)))
        return [to_verdict(r) for r in self.check_batch(items)]

    def describe(self, problem: Problem, completion: str, verdict: Verdict) -> dict[str, Any]:
        """What a prediction record keeps of one checked proof: the proof, Lean's status and its first messages."""
        info = verdict.info or {}
        status = info.get("status", verdict.outcome.value)
        return {
            "extracted": extract_proof(completion, continues_prompt=bool(problem.meta.get("prompt_ends_in_proof"))),
            "answer_key": None,
            "reason": "; ".join([status, *info.get("reasons", [])[:2]])[:300],
            "messages": [m.get("data", "")[:300] for m in info.get("messages", [])[:3]],
        }

    # Direct API -----------------------------------------------------------------------------------------------
    def check(self, formal_statement: str, proof: str, header: str | None = None) -> VerifyResult:
        """Verify one proof of ``formal_statement`` (tactic body or whole file) under ``header``."""
        return self.check_batch([(formal_statement, proof, header if header is not None else self.header)])[0]

    def check_batch(self, items: Sequence[CheckItem]) -> list[VerifyResult]:
        """Verify many proofs; the backend sees them together (the REPL pool runs them in parallel)."""
        results: list[VerifyResult | None] = [None] * len(items)
        pending: list[tuple[int, Assembled, str]] = []
        for i, item in enumerate(items):
            statement, proof = item[0], item[1]
            header = item[2] if len(item) > 2 else self.header  # type: ignore[misc]
            if not all(isinstance(x, str) for x in (statement, proof, header)):
                raise TypeError(f"check item {i}: formal_statement, proof and header must be str, got "
                                f"{type(statement).__name__}, {type(proof).__name__}, {type(header).__name__}")
            try:
                assembled = assemble(statement, proof, header=header, heartbeats=self.heartbeats)
            except AssemblyError as exc:
                results[i] = self._done(Status.FORBIDDEN, [str(exc)])
                continue
            violations = find_violations(assembled.proof)
            if violations:
                results[i] = self._done(Status.FORBIDDEN, violations)
                continue
            key = cache_key(self.backend.version(), self.mathlib_rev, header, statement, assembled.proof, self.rules)
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                results[i] = hit
            else:
                pending.append((i, assembled, key))
        if pending:
            start = time.monotonic()
            try:
                outcomes = list(self.backend.run([a for _, a, _ in pending], self.timeout_s))
            except Exception as exc:  # noqa: BLE001 -- a broken backend fails its items as infrastructure
                reason = f"backend failed: {type(exc).__name__}: {exc}"[:300]
                outcomes = [VerifyResult.infra_error(reason, backend=self.backend.name) for _ in pending]
            if len(outcomes) != len(pending):
                reason = f"backend returned {len(outcomes)} results for {len(pending)} proofs"
                outcomes = [VerifyResult.infra_error(reason, backend=self.backend.name) for _ in pending]
            elapsed = (time.monotonic() - start) / len(pending)
            for (i, assembled, key), outcome in zip(pending, outcomes):
                result = self._finish(assembled, outcome, elapsed)
                if self.cache is not None:
                    self.cache.put(key, result)
                results[i] = result
        return [r for r in results if r is not None]

    def _done(self, status: Status, reasons: list[str]) -> VerifyResult:
        return VerifyResult(status, backend=self.backend.name, reasons=reasons)

    def _finish(self, assembled: Assembled, outcome: dict[str, Any] | VerifyResult, elapsed: float) -> VerifyResult:
        if isinstance(outcome, VerifyResult):
            outcome.time_s = outcome.time_s or elapsed
            outcome.lean_version = self.backend.version()
            return outcome
        if not isinstance(outcome, dict):
            return VerifyResult.infra_error(f"backend returned a {type(outcome).__name__}", backend=self.backend.name)
        status, axioms, reasons = classify(
            outcome, assembled.theorem_name, axioms_line=assembled.axioms_line, allowed_axioms=self.allowed_axioms
        )
        messages = [
            LeanMessage(m.severity, m.data, assembled.proof_line(m.line), m.column)
            for m in messages_of(outcome)
            if m.line != assembled.axioms_line
        ]
        return VerifyResult(
            status, messages=messages, sorries=len(outcome.get("sorries") or []), axioms=axioms,
            time_s=float(outcome.get("time", elapsed)), backend=self.backend.name, lean_version=self.backend.version(), reasons=reasons,
            infra=status is Status.INFRA_ERROR,
        )

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> LeanVerifier:  # noqa: PYI034 -- Python 3.10 has no typing.Self
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _takes_project(factory: Any) -> bool:
    try:
        return "project" in inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature: do not guess
        return False


def _has_command(kwargs: dict[str, Any]) -> bool:
    return any(kwargs.get(k) is not None for k in ("argv", "lean_cmd", "url"))


def lean_outcome(result: VerifyResult) -> Outcome:
    """PROVED -> CORRECT; the wall clock (TIMEOUT flagged ``infra``) -> TIMEOUT; INFRA_ERROR -> INFRA; anything else,
    Lean's own deterministic heartbeat TIMEOUT included (the proof's fault), -> WRONG."""
    if result.status is Status.PROVED:
        return Outcome.CORRECT
    if result.status is Status.INFRA_ERROR:
        return Outcome.INFRA
    if result.infra:
        return Outcome.TIMEOUT if result.status is Status.TIMEOUT else Outcome.INFRA
    return Outcome.WRONG


def to_verdict(result: VerifyResult) -> Verdict:
    """VerifyResult -> the project's Verdict (``correct=None, reward=None`` when infrastructure decided)."""
    reward = result.reward
    correct = None if reward is None else result.status is Status.PROVED
    return Verdict(correct=correct, reward=reward, info=result.to_dict(), outcome=lean_outcome(result))
