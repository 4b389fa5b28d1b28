"""The ``repl`` backend: warm leanprover-community REPL processes, one environment per import header."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lean_env.assemble import Assembled
from lean_env.backends.base import run_each
from lean_env.project import lean_version, repl_command, require_executable, resolve_project
from lean_env.repl.pool import ReplPool
from lean_env.repl.process import ReplTimeout
from lean_env.types import VerifyResult

GB = 1 << 30


class ReplBackend:
    """Proofs as ``{"cmd": body, "env": 0}`` on a pool of REPLs started in the Lean project.

    ``argv`` overrides the command (e.g. the FAKE REPL in tests); otherwise the project comes from ``project``
    or ``$LEAN_PROJECT``. Pool size defaults to one REPL per 10 GB of RAM (``import Mathlib`` peaks near 6.5 GB).
    """

    name = "repl"

    def __init__(
        self,
        project: str | os.PathLike | None = None,
        *,
        argv: Sequence[str] | None = None,
        size: int | None = None,
        max_uses: int = 200,
        memory_limit_gb: float | None = 12.0,
        max_rss_gb: float | None = 10.0,
        header_timeout_s: float = 300.0,
        max_output_mb: float = 32.0,
        env: dict[str, str] | None = None,
    ):
        cwd: Path | None = None
        self._version = ""
        if argv is None:
            cwd = resolve_project(project)
            argv = repl_command(cwd)
            self._version = lean_version(cwd)
        require_executable(list(argv), "the REPL command")
        self.project = cwd
        if size is None:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            size = max(1, min(os.cpu_count() or 1, int(total // (10 * GB))))
        self.pool = ReplPool(
            argv,
            size=size,
            cwd=cwd,
            env=env,
            memory_limit_bytes=int(memory_limit_gb * GB) if memory_limit_gb else None,
            max_rss_bytes=int(max_rss_gb * GB) if max_rss_gb else None,
            max_uses=max_uses,
            header_timeout_s=header_timeout_s,
            max_output_bytes=int(max_output_mb * (1 << 20)),
        )

    def version(self) -> str:
        return self._version

    def run(self, items: Sequence[Assembled], timeout_s: float) -> list[dict[str, Any] | VerifyResult]:
        def one(item: Assembled) -> dict[str, Any] | VerifyResult:
            try:
                return self.pool.command(item.header, item.body, timeout_s)
            except ReplTimeout:
                return VerifyResult.wall_timeout(timeout_s, backend=self.name)

        return run_each(items, one, self.pool.size, self.name)

    def close(self) -> None:
        self.pool.close()
