"""``MathVerifier``: the math-answer grader behind the RL reward and the GSM8K / MATH evals (registry name ``"math"``).

Public API (stable):

- ``MathVerifier(timeout=5.0, workers=2, style="auto", memory_mb=2048, cache_size=100_000, max_tasks_per_worker=20_000,
  warm_up=True)``; ``warm_up`` parses ``WARM_UP_ANSWERS`` in each new worker before it takes items (1-4 s per worker
  start, in the background; about halves the parse time of the first few hundred LaTeX answers).
  - ``verifier(problem, completion) -> Verdict``; ``verifier.verify_batch(problems, completions) -> list[Verdict]``
    (exactly one verdict per input, in input order; calls from several threads are serialised);
    ``verifier.start()`` (optional: start and warm every worker now), ``verifier.close()`` (also a context manager).
    ``problem`` may also be the gold answer string itself.
  - Gold is ``problem.answer``; ``None`` gives ``Verdict(None, None)`` (no ground truth: neutral, masked by the trainer).
  - ``Verdict.info``: ``extracted`` (the answer found, or None), ``gold``, ``reason`` (``equal``, ``not_equal``, ``no_answer``,
    ``timeout``, ``crash``, ``error: ...``, ``invalid_input: ...``, ``no_gold``), ``time_s`` (wall time from the worker taking the item to its verdict),
    ``cached``.
- ``grade_one(completion, gold, style, timeout) -> dict``: the work one worker does for one item, usable in-process.

How it stays bounded (``evals.grader_pool``): each item is graded in a worker process (a fresh ``python -c`` interpreter, so the caller's
``__main__`` is never re-imported). Each worker takes its items one at a time, in order, from a short pipeline (a few
small items queued, so it never idles for a round trip). The parent waits on the workers' pipes with a deadline for
the item each worker is on (it starts when the previous answer arrives) and, when that item overruns ``timeout``
seconds, kills the worker (SIGTERM, then SIGKILL), answers "timed out", sends the items queued behind it to other
workers and starts a replacement. A worker that dies mid-item has the item retried once on a fresh worker; a second
death gives "crash". Both are ``Outcome.TIMEOUT`` (the grader could not finish this item, the answer is not judged:
masked by the trainer, left out of the metrics); ``correct``/``reward`` keep the raw ``False``/``0.0``. Each worker caps its address space with ``RLIMIT_AS`` (``memory_mb``),
so a blow-up in sympy ends as ``MemoryError`` in that worker, not as swapping on the host. Verdicts that do not depend
on the clock (all but timeout and crash) are cached in an LRU keyed by (completion digest, gold, style, timeout).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from evals.answer import STYLES, extract_answer
from evals.grader_pool import GraderPool
from pure_rl.core.interfaces import Outcome, Problem, Verdict

# Reasons the pool gives when the grader, not the answer, failed: the clock ran out, or the worker died twice.
GRADER_FAILURES = ("timeout", "crash")


def grade_one(completion: str, gold: str, style: str = "auto", timeout: float = 5.0) -> dict[str, Any]:
    """Extract the answer from ``completion`` and compare it with ``gold``: ``{"correct", "extracted", "reason"}``."""
    from evals.equivalence import is_equivalent

    extracted = extract_answer(completion, style)
    if extracted is None:
        return {"correct": False, "extracted": None, "reason": "no_answer"}
    correct = is_equivalent(extracted, gold, timeout=timeout)
    return {"correct": correct, "extracted": extracted, "reason": "equal" if correct else "not_equal"}


WARM_UP_ANSWERS = (
    ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
    ("-\\frac{3}{4}x^2+2x-1", "\\dfrac{-3x^{2}}{4}+2x-1"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\pi/2)"),
    ("[-2, 7)", "(-\\infty, 3] \\cup [5, \\infty)"),
    ("\\{1, 2, 3\\}", "1, 2, 3"),
    ("\\begin{pmatrix} 1 & -2 \\\\ 0 & 3 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("y = -\\frac{1}{2}x + 3", "2x + 4y - 12 = 0"),
    ("2\\sqrt[3]{5} + 3i", "\\sin^2 x + \\cos(2\\theta)"),
    ("\\log_2 8 - e^{i\\pi}", "\\binom{5}{2} + 4!"),
    ("x \\in [1, 4]", "1 \\le x < 4"),
    ("a^2 + b^2 = c^2", "\\text{(B)}"),
    ("\\frac{a+b}{2ab}", "\\sqrt{x^2+1}-|x|"),
)


def _warm_up(timeout: float, answers: tuple[tuple[str, str], ...]) -> None:
    """Import and exercise sympy, math-verify and its LaTeX parser (one answer at least: the imports take a second)."""
    for pred, gold in answers:
        grade_one(f"\\boxed{{{pred}}}", gold, "boxed", timeout)


def _early_info(reason: str) -> dict[str, Any]:
    """``Verdict.info`` for items decided before any worker sees them (bad input, no gold)."""
    return {"extracted": None, "gold": None, "reason": reason, "time_s": 0.0, "cached": False}



class MathVerifier:
    """Grades math answers in a process pool with hard per-item timeouts; see the module docstring."""

    math_conventions = True  # its answers can be cross-graded by lm-eval's and plain math-verify's conventions

    def __init__(
        self,
        timeout: float = 5.0,
        workers: int = 2,
        style: str = "auto",
        memory_mb: int = 2048,
        cache_size: int = 100_000,
        max_tasks_per_worker: int = 20_000,
        warm_up: bool = True,
    ):
        if not timeout > 0:
            raise ValueError(f"timeout={timeout!r} must be > 0 seconds")
        if workers < 1:
            raise ValueError(f"workers={workers!r} must be >= 1")
        if style not in STYLES:
            raise ValueError(f"style={style!r} is not an extraction style; valid: {', '.join(STYLES)}")
        if memory_mb < 0:
            raise ValueError(f"memory_mb={memory_mb!r} must be >= 0 (0 = no cap)")
        self.timeout = float(timeout)
        self.workers = workers
        self.style = style
        self.memory_mb = memory_mb
        self.cache_size = cache_size
        self.max_tasks_per_worker = max_tasks_per_worker
        self.warm_up = warm_up
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        # One batch (or start / close) at a time: the pool and the cache are not shared between threads.
        self._lock = threading.RLock()
        self.stats = {"timeouts": 0, "crashes": 0, "cache_hits": 0, "restarts": 0}
        self._pool = GraderPool(workers, self.timeout, style, memory_mb, max_tasks_per_worker, warm_up, self.stats)

    # -- public API -------------------------------------------------------------------------------------------------

    def __call__(self, problem: Problem, completion: str) -> Verdict:
        return self.verify_batch([problem], [completion])[0]

    def verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        """One verdict per (problem, completion), in order; never raises for a bad item."""
        if len(problems) != len(completions):
            raise ValueError(
                f"problems ({len(problems)}) and completions ({len(completions)}) must have the same length"
            )
        with self._lock:
            return self._verify_batch(problems, completions)

    def _verify_batch(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Verdict]:
        verdicts: list[Verdict | None] = [None] * len(problems)
        todo: dict[tuple, list[int]] = {}
        payload: dict[tuple, tuple[str, str]] = {}
        for i, (problem, completion) in enumerate(zip(problems, completions)):
            gold, text, problem_error = self._check_item(problem, completion)
            if problem_error is not None:
                verdicts[i] = problem_error
                continue
            key = self._key(text, gold)
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self.stats["cache_hits"] += 1
                verdicts[i] = math_verdict(cached, gold, 0.0, cached=True)
                continue
            todo.setdefault(key, []).append(i)
            payload[key] = (text, gold)
        if todo:
            for key, (result, elapsed) in self._pool.run(payload).items():
                self._remember(key, result)
                for i in todo[key]:
                    verdicts[i] = math_verdict(result, payload[key][1], elapsed, cached=False)
        return verdicts  # type: ignore[return-value]

    def start(self) -> None:
        """Start every worker and wait until each is warm; without this the first batch starts them (and is slower)."""
        with self._lock:
            self._pool.start()

    def close(self) -> None:
        """Stop every worker (politely, then by force); the verifier restarts them on the next call."""
        with self._lock:
            self._pool.close()

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for monitoring and leak tests)."""
        return self._pool.worker_pids()

    def __enter__(self) -> MathVerifier:  # noqa: PYI034  (py3.10 target: no typing.Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110  (interpreter shutdown: modules may already be gone)
            pass

    # -- items ------------------------------------------------------------------------------------------------------

    def _check_item(self, problem: Any, completion: Any) -> tuple[str, str, Verdict | None]:
        """Validate one input; returns (gold, text, None) or a ready verdict for bad / gold-less input."""
        if isinstance(completion, (bytes, bytearray)):
            completion = bytes(completion).decode("utf-8", errors="replace")
        if not isinstance(completion, str):
            reason = f"invalid_input: completion must be str, got {type(completion).__name__}"
            return "", "", Verdict(False, 0.0, _early_info(reason))
        gold = getattr(problem, "answer", None) if not isinstance(problem, str) else problem
        if gold is None:
            if not hasattr(problem, "answer") and not isinstance(problem, str):
                reason = f"invalid_input: problem must be a Problem with .answer, got {type(problem).__name__}"
                return "", "", Verdict(False, 0.0, _early_info(reason))
            return "", "", Verdict(None, None, _early_info("no_gold"))
        return str(gold), completion, None

    def _key(self, text: str, gold: str) -> tuple:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        return (digest, gold, self.style, self.timeout)

    def _remember(self, key: tuple, result: dict[str, Any]) -> None:
        if result["reason"] in GRADER_FAILURES or self.cache_size <= 0:
            return
        self._cache[key] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


def math_verdict(result: dict[str, Any], gold: str, elapsed: float, cached: bool) -> Verdict:
    """A grading result as a Verdict; the grader's own failures (timeout, crash) are ``Outcome.TIMEOUT``."""
    correct = bool(result["correct"])
    info = {"extracted": result["extracted"], "gold": gold, "reason": result["reason"], "time_s": elapsed,
            "cached": cached}
    outcome = Outcome.TIMEOUT if result["reason"] in GRADER_FAILURES else None
    return Verdict(correct, 1.0 if correct else 0.0, info, outcome=outcome)
