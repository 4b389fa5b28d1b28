"""``evals.run``'s records: one ``predictions.jsonl`` line per problem, its samples' outcomes and what the verifier
kept, and the other grading conventions on its first sample."""

from __future__ import annotations

import logging
from typing import Any

from evals.base import task_attr
from evals.plan import Plan
from pure_rl.core.interfaces import Problem, Verdict
from pure_rl.core.metrics import sample_outcome

log = logging.getLogger("evals.run")


def answer_key(extracted: str | None) -> str | None:
    """What maj@k votes on: the exact value of a plain number, else the normalised answer text."""
    if extracted is None:
        return None
    from evals.equivalence import normalize, number_value

    try:
        text = normalize(extracted).text
        value = number_value(text)
    except Exception:  # noqa: BLE001  (a pathological answer still gets a vote, as its raw text)
        return extracted.strip()
    return str(value) if value is not None else text


def verify_safely(verifier: Any, problems: list[Problem], texts: list[str]) -> list[Verdict]:
    """Verdicts for a chunk; a verifier that fails as a whole marks the chunk as infrastructure failures."""
    try:
        verdicts = verifier.verify_batch(problems, texts)
    except Exception as exc:  # noqa: BLE001  (keep the generations: they are written, masked, and resumable)
        log.warning("verifier failed on a chunk of %d samples (%s: %s)", len(texts), type(exc).__name__, exc)
        reason = f"verifier error: {type(exc).__name__}: {exc}"[:300]
        return [Verdict(None, None, {"reason": reason}) for _ in texts]
    if len(verdicts) != len(texts):
        reason = f"verifier returned {len(verdicts)} verdicts for {len(texts)} samples"
        return [Verdict(None, None, {"reason": reason}) for _ in texts]
    return verdicts


def sample_record(problem: Problem, text: str, finished: bool, verdict: Verdict, verifier: Any) -> dict[str, Any]:
    """One sample of a prediction record: its text, outcome and what the verifier says about it.

    A verifier with ``describe(problem, text, verdict)`` (Lean: the checked proof and Lean's messages) says what is
    kept; otherwise the extracted answer, its vote key for maj@k and the grader's reason.
    """
    info = verdict.info or {}
    record: dict[str, Any] = {"text": text, "finished": finished, "outcome": sample_outcome(verdict),
                              "time_s": info.get("time_s")}
    describe = getattr(verifier, "describe", None)
    if describe is not None:
        record.update(describe(problem, text, verdict))
    else:
        record["extracted"] = info.get("extracted")
        record["answer_key"] = answer_key(info.get("extracted"))
        record["reason"] = info.get("reason")
    return record


def convention_verdicts(task: Any, text: str, gold: str | None) -> dict[str, bool | None]:
    """Other graders on one sample: lm-eval strict / flexible (tasks with ``lm_eval_conventions``) and plain
    math-verify."""
    from evals.grade import lm_eval_verdicts, math_verify_verdict

    if gold is None:
        return {}
    out: dict[str, bool | None] = {}
    if task_attr(task, "lm_eval_conventions"):
        out["lm_eval_strict"], out["lm_eval_flexible"] = lm_eval_verdicts(text, gold)
    try:
        out["math_verify"] = math_verify_verdict(text, gold)
    except Exception:  # noqa: BLE001  (math-verify's own timeout or parse failure: no verdict, not a wrong one)
        out["math_verify"] = None
    return out


def problem_record(plan: Plan, split: str, problem: Problem, texts: list[str], finished: list[bool],
                   verdicts: list[Verdict], verifier: Any, task: Any) -> dict[str, Any]:
    meta = {k: problem.meta[k] for k in ("subject", "level", "unique_id", "name", "formal_statement") if k in problem.meta}
    meta["split"] = split
    record = {"id": problem.id, "split": split, "prompt": problem.prompt, "gold": problem.answer, "meta": meta,
              "samples": [sample_record(problem, t, f, v, verifier) for t, f, v in zip(texts, finished, verdicts)]}
    if plan.conventions and getattr(verifier, "math_conventions", False) and texts:
        record["conventions"] = convention_verdicts(task, texts[0], problem.answer)
    return record
