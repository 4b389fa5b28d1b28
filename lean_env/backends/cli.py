"""The ``cli`` backend: one ``lean --json`` (or ``lake env lean --json``) process per proof, on a temp file.

Slow for Mathlib (every proof re-imports it) but needs no REPL build; also the backend the real-Lean test tier
drives. Lean prints one JSON message per line: ``{"severity": "information"|"warning"|"error", "pos", "endPos",
"data", "fileName", "kind", ...}``; they are turned into the REPL's command schema.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lean_env.assemble import Assembled
from lean_env.backends.base import run_each, shift_lines
from lean_env.project import lean_command, require_executable, resolve_project
from lean_env.repl.process import _limit_address_space, scrubbed_env
from lean_env.types import VerifyResult

_SEVERITY = {"information": "info", "warning": "warning", "error": "error", "trace": "trace"}


def parse_json_messages(stdout: str) -> tuple[list[dict[str, Any]], list[str]]:
    """``lean --json`` output -> (REPL-schema messages, lines that were not JSON messages)."""
    messages, other = [], []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            other.append(line)
            continue
        if not isinstance(raw, dict) or "data" not in raw:
            other.append(line)
            continue
        messages.append({
            "severity": _SEVERITY.get(str(raw.get("severity")), str(raw.get("severity"))),
            "pos": raw.get("pos"),
            "endPos": raw.get("endPos"),
            "data": raw["data"],
        })
    return messages, other


class CliBackend:
    """``lean_cmd + [file.lean]`` per proof; ``lean_cmd`` defaults to ``lake env lean --json`` in the project."""

    name = "cli"

    def __init__(
        self,
        project: str | os.PathLike | None = None,
        *,
        lean_cmd: Sequence[str] | None = None,
        workers: int = 1,
        memory_limit_gb: float | None = 12.0,
        max_output_mb: float = 32.0,
        extra_args: Sequence[str] = (),
    ):
        self.cwd: Path | None = None
        if lean_cmd is None:
            self.cwd = resolve_project(project)
            lean_cmd = lean_command(self.cwd)
        require_executable(list(lean_cmd), "the lean command")
        self.lean_cmd = list(lean_cmd) + list(extra_args)
        if "--json" not in self.lean_cmd:
            self.lean_cmd.append("--json")
        self.workers = workers
        self.memory_limit = int(memory_limit_gb * (1 << 30)) if memory_limit_gb else None
        self.max_output = int(max_output_mb * (1 << 20))
        self._version: str | None = None

    def version(self) -> str:
        if self._version is None:
            argv = [a for a in self.lean_cmd if a != "--json" and not a.startswith("-D")] + ["--version"]
            try:
                out = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60, cwd=self.cwd, env=scrubbed_env())
                self._version = out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""
            except (OSError, subprocess.TimeoutExpired):
                self._version = ""
        return self._version

    def run(self, items: Sequence[Assembled], timeout_s: float) -> list[dict[str, Any] | VerifyResult]:
        return run_each(items, lambda item: self._one(item, timeout_s), self.workers, self.name)

    def _one(self, item: Assembled, timeout_s: float) -> dict[str, Any] | VerifyResult:
        with tempfile.TemporaryDirectory(prefix="lean_env_") as tmp:
            path = Path(tmp) / "Proof.lean"
            path.write_text(item.text, encoding="utf-8")
            start = time.monotonic()
            proc = subprocess.Popen(
                [*self.lean_cmd, str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd or tmp,
                env=scrubbed_env(),
                start_new_session=True,
                preexec_fn=_limit_address_space(self.memory_limit),  # noqa: PLW1509 -- setrlimit only, no locks
            )
            try:
                stdout, stderr = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.communicate()
                return VerifyResult.wall_timeout(timeout_s, backend=self.name, time_s=time.monotonic() - start)
        if len(stdout) > self.max_output:
            return VerifyResult.infra_error(f"lean printed more than {self.max_output} bytes", backend=self.name)
        messages, other = parse_json_messages(stdout.decode("utf-8", errors="replace"))
        if proc.returncode not in (0, 1) or (proc.returncode != 0 and not messages):
            detail = (stderr.decode("utf-8", errors="replace") or "\n".join(other)).strip()[-300:]
            return VerifyResult.infra_error(f"lean exited with code {proc.returncode}: {detail}", backend=self.name)
        return shift_lines({"messages": messages}, item.header_lines)
