"""Warm REPL processes keyed by import header: the header is elaborated once (environment 0), proofs reuse it.

A process that times out, crashes or garbles its answer is killed and its item alone fails; the next request
for that header starts a fresh one. Processes are recycled after ``max_uses`` requests or when their resident
memory passes ``max_rss_bytes`` (every command leaves an environment behind in the REPL).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lean_env.repl.process import ReplError, ReplProcess, ReplProtocolError, ReplTimeout


@dataclass
class Worker:
    """A REPL process with its header loaded."""

    process: ReplProcess
    header: str
    env: int | None  # environment id of the loaded header; None for an empty header (commands start fresh)

    def command(self, cmd: str, timeout_s: float, **extra: Any) -> dict[str, Any]:
        """Run ``cmd`` on top of the header's environment."""
        payload: dict[str, Any] = {"cmd": cmd, **extra}
        if self.env is not None:
            payload["env"] = self.env
        return self.process.request(payload, timeout_s)


class HeaderError(ReplError):
    """The trusted header itself did not load (a wrong import, a missing Mathlib build)."""


class ReplPool:
    """At most ``size`` REPL processes, shared by threads, each warm for one header."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        size: int = 1,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        memory_limit_bytes: int | None = 12 << 30,
        max_rss_bytes: int | None = 10 << 30,
        max_uses: int = 200,
        header_timeout_s: float = 300.0,
        max_output_bytes: int = 32 << 20,
        spawn: Callable[[], ReplProcess] | None = None,
    ):
        if size < 1:
            raise ValueError(f"pool size must be >= 1, got {size}")
        self.argv = list(argv)
        self.size = size
        self.max_rss_bytes = max_rss_bytes
        self.max_uses = max_uses
        self.header_timeout_s = header_timeout_s
        self._spawn = spawn or (
            lambda: ReplProcess(
                self.argv, cwd=cwd, env=env, memory_limit_bytes=memory_limit_bytes, max_output_bytes=max_output_bytes
            )
        )
        self._idle: list[Worker] = []  # least recently used first
        self._busy = 0
        self._cond = threading.Condition()
        self._closed = False
        self.stats: Counter[str] = Counter()  # started, recycled, killed (after an error), header_failed

    def _start(self, header: str) -> Worker:
        process = self._spawn()
        self.stats["started"] += 1
        if not header.strip():
            return Worker(process, header, None)
        try:
            response = process.request({"cmd": header}, self.header_timeout_s)
        except ReplError:
            self.stats["header_failed"] += 1
            raise
        errors = [m.get("data", "") for m in response.get("messages") or [] if m.get("severity") == "error"]
        if "env" not in response or errors:
            process.kill()
            self.stats["header_failed"] += 1
            detail = errors[0][:200] if errors else str(response)[:200]
            raise HeaderError(f"the header did not load in the REPL: {detail}")
        return Worker(process, header, int(response["env"]))

    def _acquire(self, header: str) -> Worker | None:
        """An idle warm worker for ``header``, or None once a slot is reserved for starting one."""
        with self._cond:
            while True:
                if self._closed:
                    raise ReplError("the REPL pool is closed")
                for i, worker in enumerate(self._idle):
                    if worker.header == header:
                        self._busy += 1
                        return self._idle.pop(i)
                if self._busy + len(self._idle) < self.size:
                    self._busy += 1
                    return None
                if self._idle:  # all slots taken, some by other headers' idle workers: evict the oldest
                    self._idle.pop(0).process.kill()
                    self.stats["evicted"] += 1
                    continue
                self._cond.wait()

    def _release(self, worker: Worker | None, healthy: bool) -> None:
        with self._cond:
            self._busy -= 1
            if worker is not None:
                if healthy and not self._closed and not self._worn_out(worker):
                    self._idle.append(worker)
                else:
                    worker.process.kill()
                    self.stats["recycled" if healthy else "killed"] += 1
            self._cond.notify()

    def _worn_out(self, worker: Worker) -> bool:
        if not worker.process.alive or worker.process.uses >= self.max_uses:
            return True
        return bool(self.max_rss_bytes) and worker.process.rss_bytes() > self.max_rss_bytes

    @contextmanager
    def lease(self, header: str) -> Iterator[Worker]:
        """A warm worker for ``header`` for the duration of the block; killed if the block raises ``ReplError``."""
        worker = self._acquire(header)
        healthy = False
        try:
            if worker is None:
                worker = self._start(header)
            yield worker
            healthy = True
        finally:
            self._release(worker, healthy)

    def command(self, header: str, cmd: str, timeout_s: float, **extra: Any) -> dict[str, Any]:
        """Run ``cmd`` on ``header``'s warm environment; raises ``ReplTimeout``/``ReplError`` after killing the process."""
        with self.lease(header) as worker:
            return worker.command(cmd, timeout_s, **extra)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for worker in self._idle:
                worker.process.kill()
            self._idle.clear()
            self._cond.notify_all()


__all__ = ["HeaderError", "ReplPool", "ReplProtocolError", "ReplTimeout", "Worker"]
