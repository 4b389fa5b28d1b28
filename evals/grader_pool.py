"""The math grader's process pool: stateless Python workers, per-item deadlines, pipelined dispatch.

Each worker is a fresh ``python -c`` interpreter (the caller's ``__main__`` is never re-imported) that takes its items
one at a time, in order, from a short pipeline (a few small items queued, so it never idles for a round trip). The
parent waits on the workers' pipes with a deadline for the item each worker is on (it starts when the previous answer
arrives) and, when that item overruns ``timeout`` seconds, kills the worker (SIGTERM, then SIGKILL), answers
"timeout", sends the items queued behind it to other workers and starts a replacement. A worker that dies mid-item
has the item retried once on a fresh worker; a second death gives "crash". Each worker caps its address space with
``RLIMIT_AS`` (``memory_mb``), so a blow-up in sympy ends as ``MemoryError`` in that worker, not as swapping on the host.

Why this is not ``lean_env.repl.pool``: a Lean REPL process is stateful (it holds an elaborated import header,
reused by every proof under that header, so processes are keyed and recycled per header) and speaks the REPL's JSON
protocol over stdio to a foreign binary; these workers are interchangeable and stateless, so any item goes to any
worker and items are pipelined. What they share (kill on a wall-clock deadline, replace a dead process, fail only
the item it was on) is a few lines each, not worth a common base that would couple ``lean_env`` to ``evals``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

_KILL_GRACE_S = 0.2
_START_TIMEOUT_S = 60.0
_MAX_START_FAILURES = 3
# Up to this many items wait in a worker's pipe, so a worker never idles for a round trip between fast items; an item
# larger than the budget is sent only to an idle worker, so a send can never block the parent past a deadline.
_PIPELINE_DEPTH = 8
_PIPELINE_BYTES = 32 * 1024
_WORKER_CMD = "import sys; from evals.grader_pool import _worker_entry; _worker_entry(*sys.argv[1:])"

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
def _worker_main(
    inbox: Connection, outbox: Connection, memory_mb: int, style: str, timeout: float, warm_up: bool = True
) -> None:
    """Worker loop: cap memory, warm the imports, then answer ``(key, completion, gold)`` requests until ``None``/EOF."""
    if memory_mb > 0:
        import resource

        limit = memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from evals.verifier import WARM_UP_ANSWERS, _warm_up, grade_one

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


class GraderPool:
    """``workers`` grader processes; ``run(payload)`` grades every item under the per-item ``timeout``.

    Iterating the pool yields its live ``_Worker`` records. ``stats`` counts timeouts, crashes and restarts.
    """

    def __init__(self, workers: int, timeout: float, style: str, memory_mb: int, max_tasks_per_worker: int,
                 warm_up: bool, stats: dict[str, int]):
        self.workers = workers
        self.timeout = timeout
        self.style = style
        self.memory_mb = memory_mb
        self.max_tasks_per_worker = max_tasks_per_worker
        self.warm_up = warm_up
        self.stats = stats
        self._workers: list[_Worker] = []
        self._start_failures = 0
        self._crashed: set[tuple] = set()  # items whose worker died once; a second death is the item's own doing

    def __iter__(self):
        return iter(self._workers)

    def start(self) -> None:
        """Start every worker and wait until each is warm; without this the first batch starts them (and is slower)."""
        self._fill_pool()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not all(w.ready for w in self._workers):
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"math verifier workers did not start within {_START_TIMEOUT_S:.0f} s")
            for conn in wait([w.conn for w in self._workers if not w.ready], timeout=1.0):
                worker = next(w for w in self._workers if w.conn is conn)
                self._receive(worker, {}, deque(), {})

    def close(self) -> None:
        """Stop every worker (politely, then by force); the verifier restarts them on the next call."""
        for worker in self._workers:
            self._stop(worker)
        self._workers = []

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (for monitoring and leak tests)."""
        return [w.process.pid for w in self._workers if w.process.poll() is None]

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
        self._workers[self._workers.index(worker)] = self._start()
        self.stats["restarts"] += 1

    def run(self, payload: dict[tuple, tuple[str, str]]) -> dict[tuple, tuple[dict[str, Any], float]]:
        """Grade every payload item on the pool; returns key -> (result, seconds from the item's start to its result)."""
        self._fill_pool()
        queue = deque(payload)
        done: dict[tuple, tuple[dict[str, Any], float]] = {}
        start_deadline = time.monotonic() + _START_TIMEOUT_S
        while len(done) < len(payload):
            for worker in list(self._workers):
                self._dispatch(worker, queue, payload)
            now = time.monotonic()
            if not any(w.ready for w in self._workers) and now > start_deadline:
                self.close()
                raise RuntimeError(f"math verifier workers did not start within {_START_TIMEOUT_S:.0f} s")
            deadlines = [w.head_started + self.timeout for w in self._workers if w.jobs]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 1.0
            ready = wait([w.conn for w in self._workers], timeout=wait_s)
            for worker in list(self._workers):
                if worker.conn in ready:
                    self._receive(worker, done, queue, payload)
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.jobs and now - worker.head_started >= self.timeout:
                    self._lost(worker, done, "timeout", queue)
        return done

    def _fill_pool(self) -> None:
        self._workers = [w for w in self._workers if w.process.poll() is None]
        self._workers += [self._start() for _ in range(self.workers - len(self._workers))]

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
