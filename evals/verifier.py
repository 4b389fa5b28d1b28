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

How it stays bounded: each item is graded in a worker process (a fresh ``python -c`` interpreter, so the caller's
``__main__`` is never re-imported). Each worker takes its items one at a time, in order, from a short pipeline (a few
small items queued, so it never idles for a round trip). The parent waits on the workers' pipes with a deadline for
the item each worker is on (it starts when the previous answer arrives) and, when that item overruns ``timeout``
seconds, kills the worker (SIGTERM, then SIGKILL), answers "wrong, timed out" (reward 0), sends the items queued
behind it to other workers and starts a replacement. A worker that dies mid-item has the item retried once on a fresh
worker; a second death gives "wrong, crash". Each worker caps its address space with ``RLIMIT_AS`` (``memory_mb``),
so a blow-up in sympy ends as ``MemoryError`` in that worker, not as swapping on the host. Verdicts that do not depend
on the clock (all but timeout and crash) are cached in an LRU keyed by (completion digest, gold, style, timeout).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from evals.answer import STYLES, extract_answer
from pure_rl.interfaces import Problem, Verdict

_KILL_GRACE_S = 0.2
_START_TIMEOUT_S = 60.0
_MAX_START_FAILURES = 3
# Up to this many items wait in a worker's pipe, so a worker never idles for a round trip between fast items; an item
# larger than the budget is sent only to an idle worker, so a send can never block the parent past a deadline.
_PIPELINE_DEPTH = 8
_PIPELINE_BYTES = 32 * 1024
_WORKER_CMD = "import sys; from evals.verifier import _worker_entry; _worker_entry(*sys.argv[1:])"


def grade_one(completion: str, gold: str, style: str = "auto", timeout: float = 5.0) -> dict[str, Any]:
    """Extract the answer from ``completion`` and compare it with ``gold``: ``{"correct", "extracted", "reason"}``."""
    from evals.equivalence import is_equivalent

    extracted = extract_answer(completion, style)
    if extracted is None:
        return {"correct": False, "extracted": None, "reason": "no_answer"}
    correct = is_equivalent(extracted, gold, timeout=timeout)
    return {"correct": correct, "extracted": extracted, "reason": "equal" if correct else "not_equal"}


def _worker_entry(read_fd: str, write_fd: str, memory_mb: str, style: str, timeout: str, warm_up: str = "1") -> None:
    """``python -c`` entry of a worker process: wrap the inherited pipe ends and serve requests."""
    try:  # die with the parent (Linux): a worker stuck in sympy must not outlive the trainer
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _worker_main(
        Connection(int(read_fd), writable=False),
        Connection(int(write_fd), readable=False),
        int(memory_mb),
        style,
        float(timeout),
        warm_up == "1",
    )


# Typical answer shapes. Parsing them once fills the ANTLR parser's shared prediction (DFA) cache, which roughly
# halves the parse time of later LaTeX answers; every worker pays this once, before it takes timed items.
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


def _worker_main(
    inbox: Connection, outbox: Connection, memory_mb: int, style: str, timeout: float, warm_up: bool = True
) -> None:
    """Worker loop: cap memory, warm the imports, then answer ``(key, completion, gold)`` requests until ``None``/EOF."""
    if memory_mb > 0:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    _warm_up(timeout, WARM_UP_ANSWERS if warm_up else WARM_UP_ANSWERS[:1])
    outbox.send(("ready", os.getpid()))
    while True:
        try:
            request = inbox.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        key, completion, gold = request
        try:
            result = grade_one(completion, gold, style, timeout)
        except MemoryError:
            outbox.send(
                (key, {"correct": False, "extracted": None, "reason": "error: MemoryError (worker memory cap)"})
            )
            return
        except Exception as exc:  # noqa: BLE001  (one bad item must not take the worker, and the batch, down)
            msg = f"error: {type(exc).__name__}: {str(exc)[:200]}"
            result = {"correct": False, "extracted": None, "reason": msg}
        outbox.send((key, result))


def _early_info(reason: str) -> dict[str, Any]:
    """``Verdict.info`` for items decided before any worker sees them (bad input, no gold)."""
    return {"extracted": None, "gold": None, "reason": reason, "time_s": 0.0, "cached": False}


@dataclass
class _Worker:
    process: subprocess.Popen
    inbox: Connection  # parent -> worker
    conn: Connection  # worker -> parent; EOF here means the worker died
    ready: bool = False
    tasks: int = 0
    jobs: deque = field(default_factory=deque)  # keys sent and not answered yet, in the order the worker takes them
    pending_bytes: int = 0
    head_started: float = 0.0  # when the worker began jobs[0]: its dispatch, or the arrival of the previous answer


class MathVerifier:
    """Grades math answers in a process pool with hard per-item timeouts; see the module docstring."""

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
        self._pool: list[_Worker] = []
        self._cache: OrderedDict[tuple, dict[str, Any]] = OrderedDict()
        self._start_failures = 0
        # One batch (or start / close) at a time: the pool and the cache are not shared between threads.
        self._lock = threading.RLock()
        self._crashed: set[tuple] = set()  # items whose worker died once; a second death is the item's own doing
        self.stats = {"timeouts": 0, "crashes": 0, "cache_hits": 0, "restarts": 0}

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
                verdicts[i] = self._verdict(cached, gold, 0.0, cached=True)
                continue
            todo.setdefault(key, []).append(i)
            payload[key] = (text, gold)
        if todo:
            for key, (result, elapsed) in self._run(payload).items():
                for i in todo[key]:
                    verdicts[i] = self._verdict(result, payload[key][1], elapsed, cached=False)
        return verdicts  # type: ignore[return-value]

    def start(self) -> None:
        """Start every worker and wait until each is warm; without this the first batch starts them (and is slower)."""
        with self._lock:
            self._fill_pool()
            deadline = time.monotonic() + _START_TIMEOUT_S
            while not all(w.ready for w in self._pool):
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"math verifier workers did not start within {_START_TIMEOUT_S:.0f} s")
                for conn in wait([w.conn for w in self._pool if not w.ready], timeout=1.0):
                    worker = next(w for w in self._pool if w.conn is conn)
                    self._receive(worker, {}, deque(), {})

    def close(self) -> None:
        """Stop every worker (politely, then by force); the verifier restarts them on the next call."""
        with self._lock:
            for worker in self._pool:
                self._stop(worker)
            self._pool = []

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for monitoring and leak tests)."""
        return [w.process.pid for w in self._pool if w.process.poll() is None]

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

    @staticmethod
    def _verdict(result: dict[str, Any], gold: str, elapsed: float, cached: bool) -> Verdict:
        correct = bool(result["correct"])
        info = {
            "extracted": result["extracted"],
            "gold": gold,
            "reason": result["reason"],
            "time_s": elapsed,
            "cached": cached,
        }
        return Verdict(correct, 1.0 if correct else 0.0, info)

    def _remember(self, key: tuple, result: dict[str, Any]) -> None:
        if result["reason"] in ("timeout", "crash") or self.cache_size <= 0:
            return
        self._cache[key] = result
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    # -- pool -------------------------------------------------------------------------------------------------------

    def _start(self) -> _Worker:
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        args = [str(to_worker_r), str(from_worker_w), str(self.memory_mb), self.style, repr(self.timeout)]
        args.append("1" if self.warm_up else "0")
        process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CMD, *args],
            pass_fds=(to_worker_r, from_worker_w),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        os.close(to_worker_r)
        os.close(from_worker_w)
        return _Worker(process, Connection(to_worker_w, readable=False), Connection(from_worker_r, writable=False))

    def _stop(self, worker: _Worker, force: bool = False) -> None:
        if not force and worker.process.poll() is None:
            try:
                worker.inbox.send(None)
                worker.process.wait(_KILL_GRACE_S)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        if worker.process.poll() is None:
            worker.process.terminate()
            try:
                worker.process.wait(_KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        worker.inbox.close()
        worker.conn.close()

    def _replace(self, worker: _Worker) -> None:
        if not worker.ready:
            self._start_failures += 1
            if self._start_failures >= _MAX_START_FAILURES:
                self.close()
                raise RuntimeError(
                    f"math verifier workers died {self._start_failures} times before starting "
                    f"(exit code {worker.process.poll()}); see the worker's stderr above"
                )
        self._stop(worker, force=True)
        self._pool[self._pool.index(worker)] = self._start()
        self.stats["restarts"] += 1

    def _run(self, payload: dict[tuple, tuple[str, str]]) -> dict[tuple, tuple[dict[str, Any], float]]:
        """Grade every payload item on the pool; returns key -> (result, seconds from the item's start to its result)."""
        self._fill_pool()
        queue = deque(payload)
        done: dict[tuple, tuple[dict[str, Any], float]] = {}
        start_deadline = time.monotonic() + _START_TIMEOUT_S
        while len(done) < len(payload):
            for worker in list(self._pool):
                self._dispatch(worker, queue, payload)
            now = time.monotonic()
            if not any(w.ready for w in self._pool) and now > start_deadline:
                self.close()
                raise RuntimeError(f"math verifier workers did not start within {_START_TIMEOUT_S:.0f} s")
            deadlines = [w.head_started + self.timeout for w in self._pool if w.jobs]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
            ready = wait([w.conn for w in self._pool], timeout=wait_s)
            for worker in list(self._pool):
                if worker.conn in ready:
                    self._receive(worker, done, queue, payload)
            now = time.monotonic()
            for worker in list(self._pool):
                if worker.jobs and now - worker.head_started >= self.timeout:
                    self._lost(worker, done, "timeout", queue)
        return done

    def _fill_pool(self) -> None:
        self._pool = [w for w in self._pool if w.process.poll() is None]
        self._pool += [self._start() for _ in range(self.workers - len(self._pool))]

    def _dispatch(self, worker: _Worker, queue: deque, payload: dict[tuple, tuple[str, str]]) -> None:
        """Fill the worker's pipe up to the depth and byte budgets (one item of any size when it is idle)."""
        while worker.ready and queue and len(worker.jobs) < _PIPELINE_DEPTH:
            if worker.tasks + len(worker.jobs) >= self.max_tasks_per_worker:
                return
            key = queue[0]
            size = len(payload[key][0]) + len(payload[key][1])
            if worker.jobs and worker.pending_bytes + size > _PIPELINE_BYTES:
                return
            queue.popleft()
            try:
                worker.inbox.send((key, *payload[key]))
            except (OSError, ValueError):
                queue.appendleft(key)
                self._requeue(worker, queue)
                self._replace(worker)
                return
            if not worker.jobs:
                worker.head_started = time.monotonic()
            worker.jobs.append((key, size))
            worker.pending_bytes += size

    def _receive(self, worker: _Worker, done: dict, queue: deque, payload: dict) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker, done, "crash", queue)
            return
        if message[0] == "ready":
            worker.ready = True
            self._start_failures = 0
            return
        key, result = message
        if not worker.jobs or worker.jobs[0][0] != key:
            return
        now = time.monotonic()
        _, size = worker.jobs.popleft()
        worker.pending_bytes -= size
        done[key] = (result, now - worker.head_started)
        worker.head_started = now  # the worker takes its next item as soon as it has answered this one
        self._remember(key, result)
        worker.tasks += 1
        if worker.tasks >= self.max_tasks_per_worker and not worker.jobs:
            self._replace(worker)

    def _requeue(self, worker: _Worker, queue: deque) -> None:
        """Items waiting behind a lost worker's current one go back to the front of the queue, in order."""
        for key, _ in reversed(worker.jobs):
            queue.appendleft(key)
        worker.jobs.clear()
        worker.pending_bytes = 0

    def _lost(self, worker: _Worker, done: dict, reason: str, queue: deque) -> None:
        """A worker overran its deadline or died: its current item is wrong (reason recorded; a death is retried once on
        a fresh worker first), the items queued behind it are re-dispatched, and the worker is replaced."""
        if worker.jobs and reason == "crash" and worker.jobs[0][0] not in self._crashed:
            # A worker may die of something else (the OOM killer, a signal): requeue its item for one retry.
            self._crashed.add(worker.jobs[0][0])
        elif worker.jobs:
            key, _ = worker.jobs.popleft()
            self._crashed.discard(key)
            if key not in done:
                done[key] = (
                    {"correct": False, "extracted": None, "reason": reason},
                    time.monotonic() - worker.head_started,
                )
                self.stats["timeouts" if reason == "timeout" else "crashes"] += 1
        self._requeue(worker, queue)
        self._replace(worker)
