"""Optional LeanDojo backend: tactic-level interaction with a theorem of a traced Lean repository.

``lean-dojo`` (the ``pure_rl[lean]`` extra) is imported only when an episode starts; it needs git, elan, a Lean
toolchain and network access for tracing (see lean.md section 3), none of which exists on CI. Same ``reset`` /
``step`` contract as ``LeanStepEnv``; a finished proof is reported with LeanDojo's own verdict plus the script,
which callers can replay through ``LeanVerifier`` when the repository's header is available.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from lean_env.types import LeanSetupError


def import_lean_dojo() -> Any:
    """``lean_dojo``, or a LeanSetupError saying how to install it."""
    try:
        return importlib.import_module("lean_dojo")
    except ImportError as exc:
        raise LeanSetupError(
            "the dojo backend needs LeanDojo: pip install 'lean-dojo>=4.0' (pure_rl[lean]), plus git and elan; "
            f"import failed: {exc}"
        ) from exc


@dataclass
class DojoStepInfo:
    valid: bool
    error: str = ""
    steps: int = 0
    finished: bool = False  # LeanDojo reported ProofFinished


class DojoStepEnv:
    """``reset(file_path, full_name) -> goals``, ``step(tactic) -> (goals, done, info)`` through ``lean_dojo.Dojo``."""

    def __init__(self, repo_url: str, commit: str, *, timeout_s: int = 600, max_steps: int = 64):
        self.dojo_mod = import_lean_dojo()
        self.repo = self.dojo_mod.LeanGitRepo(repo_url, commit)
        self.timeout_s = timeout_s
        self.max_steps = max_steps
        self._ctx: Any = None
        self.dojo: Any = None
        self.state: Any = None
        self.tactics: list[str] = []

    def reset(self, file_path: str, full_name: str) -> list[str]:
        self.close()
        theorem = self.dojo_mod.Theorem(self.repo, file_path, full_name)
        self._ctx = self.dojo_mod.Dojo(theorem, timeout=self.timeout_s)
        self.dojo, self.state = self._ctx.__enter__()
        self.tactics = []
        return _goals(self.state.pp)

    def step(self, tactic: str) -> tuple[list[str], bool, DojoStepInfo]:
        if self.dojo is None:
            raise RuntimeError("call reset() before step()")
        if len(self.tactics) >= self.max_steps:
            return _goals(self.state.pp), False, DojoStepInfo(False, f"step limit {self.max_steps} reached", len(self.tactics))
        result = self.dojo.run_tac(self.state, tactic)
        kind = type(result).__name__
        if kind == "TacticState":
            self.state = result
            self.tactics.append(tactic)
            return _goals(result.pp), False, DojoStepInfo(True, "", len(self.tactics))
        if kind == "ProofFinished":
            self.tactics.append(tactic)
            return [], True, DojoStepInfo(True, "", len(self.tactics), finished=True)
        error = getattr(result, "error", "") or kind  # LeanError(error) or ProofGivenUp()
        return _goals(self.state.pp), False, DojoStepInfo(False, str(error), len(self.tactics))

    def close(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx, self.dojo = self._ctx, None, None
            ctx.__exit__(None, None, None)


def _goals(pp: str) -> list[str]:
    """LeanDojo prints several goals separated by blank lines ("case ..." blocks)."""
    return [g.strip() for g in pp.split("\n\n") if g.strip()]
