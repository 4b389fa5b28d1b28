"""One REPL process: JSON request + blank line in, JSON response + blank line out, under OS limits.

Lean meta-code can run arbitrary IO, so the process starts in its own session (killable as a group), with a
capped address space, a scrubbed environment (no inherited tokens or keys) and a cap on how much it may print.
The REPL has no timeout of its own: on the wall-clock limit the whole group is killed.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Variables a Lean toolchain needs; everything else (HF_TOKEN, WANDB_API_KEY, AWS_*, ...) stays behind.
SAFE_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "ELAN_HOME", "LEAN_PATH", "LEAN_SYSROOT", "LEAN_SRC_PATH")


class ReplError(RuntimeError):
    """The process failed in a way that says nothing about the proof."""


class ReplTimeout(ReplError):
    """No complete response within the wall-clock limit; the process group was killed."""


class ReplCrashed(ReplError):
    """The process exited (or closed stdout) before answering."""


class ReplProtocolError(ReplError):
    """The process answered something that is not one JSON object, or too much of it."""


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a Lean child process: ``SAFE_ENV_KEYS`` from ours plus ``extra``."""
    env = {k: os.environ[k] for k in SAFE_ENV_KEYS if k in os.environ}
    env.update(extra or {})
    return env


def _limit_address_space(limit_bytes: int | None):
    def apply() -> None:
        if limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


class ReplProcess:
    """A running REPL (real or fake); ``request`` sends one command and returns its parsed response."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
        memory_limit_bytes: int | None = None,
        max_output_bytes: int = 32 << 20,
    ):
        self.argv = list(argv)
        self.max_output_bytes = max_output_bytes
        self.uses = 0
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the process
        self._buffer = b""
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=str(cwd) if cwd else None,
            env=scrubbed_env() if env is None else env,
            start_new_session=True,
            preexec_fn=_limit_address_space(memory_limit_bytes),  # noqa: PLW1509 -- setrlimit only, no locks
        )
        self.pid = self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send ``payload`` and wait for one response; any failure kills the process and raises ``ReplError``."""
        deadline = time.monotonic() + timeout_s
        self._write(json.dumps(payload, ensure_ascii=False).encode() + b"\n\n", deadline, timeout_s)
        raw = self._read_response(deadline, timeout_s)
        self.uses += 1
        try:
            response = json.loads(raw)
        except json.JSONDecodeError as exc:
            self.kill()
            raise ReplProtocolError(f"REPL answered non-JSON: {raw[:120]!r}") from exc
        if not isinstance(response, dict):
            self.kill()
            raise ReplProtocolError(f"REPL answered a JSON {type(response).__name__}, expected an object")
        return response

    def _write(self, data: bytes, deadline: float, timeout_s: float) -> None:
        """Write within the deadline: a hung REPL stops reading, and a blocking write would outlive the timeout."""
        assert self.proc.stdin is not None
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(data)
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_WRITE)
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise ReplTimeout(f"REPL did not read its input within {timeout_s:g} s; process group killed")
                if not sel.select(timeout=left):
                    continue
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    continue
                except OSError as exc:
                    note = self._exit_note()
                    self.kill()
                    raise ReplCrashed(f"REPL stdin closed ({exc}); {note}") from exc

    def _read_response(self, deadline: float, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                head, sep, rest = self._buffer.lstrip(b"\r\n").partition(b"\n\n")
                if sep:
                    self._buffer = rest
                    return head.decode("utf-8", errors="replace")
                if len(self._buffer) > self.max_output_bytes:
                    self.kill()
                    raise ReplProtocolError(f"REPL output exceeded {self.max_output_bytes} bytes without a blank line")
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise ReplTimeout(f"no REPL response within {timeout_s:g} s; process group killed")
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                    note = self._exit_note()
                    self.kill()
                    raise ReplCrashed(f"REPL closed stdout before answering; {note}")
                self._buffer += chunk.replace(b"\r\n", b"\n")

    def _exit_note(self) -> str:
        code = self.proc.poll()
        self._stderr.seek(0)
        tail = self._stderr.read()[-300:].decode("utf-8", errors="replace").strip()
        return f"exit code {code}" + (f", stderr: {tail}" if tail else "")

    def rss_bytes(self) -> int:
        """Resident memory of the process and its children (``lake env`` runs the REPL as a child)."""
        try:
            import psutil

            root = psutil.Process(self.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except Exception:  # noqa: BLE001 -- the process is gone or psutil is missing: no reading, no recycling on memory
            return 0

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        try:
            os.killpg(self.pid, signal.SIGKILL)  # also after the leader exited: its children may live on
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass

    def close(self) -> None:
        self.kill()
