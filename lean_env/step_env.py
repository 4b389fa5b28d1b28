"""Tactic-level environment on REPL proof states, for step-wise search and per-tactic RL.

``reset`` elaborates ``statement sorry`` on the warm header environment and takes the sorry's proof state;
``step`` sends ``{"tactic", "proofState"}``. Tactic mode has accepted wrong proofs (repl#44), so a proof that
closes every goal earns ``done=True`` only after the full tactic script is replayed in command mode through
``LeanVerifier.check`` (deny-list, sorry and axiom rules included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lean_env.repl.pool import ReplPool, Worker
from lean_env.repl.process import ReplError
from lean_env.types import Status, VerifyResult


@dataclass
class StepInfo:
    """What ``step`` learned besides the goals."""

    valid: bool  # False: Lean rejected the tactic; the state is unchanged
    error: str = ""
    proof_state: int | None = None  # REPL id of the current state (reuse it to branch a search tree)
    steps: int = 0
    result: VerifyResult | None = None  # the command-mode replay, once all goals are closed
    raw: dict[str, Any] = field(default_factory=dict)


class LeanStepEnv:
    """One episode at a time on a leased REPL; ``verifier`` replays finished proofs (same header)."""

    def __init__(self, pool: ReplPool, verifier: Any, *, timeout_s: float = 30.0, max_steps: int = 64):
        self.pool = pool
        self.verifier = verifier
        self.timeout_s = timeout_s
        self.max_steps = max_steps
        self._lease: Any = None
        self._worker: Worker | None = None
        self.tactics: list[str] = []
        self.state: int | None = None
        self.goals: list[str] = []

    def reset(self, problem: Any, header: str | None = None) -> list[str]:
        """Start proving ``problem`` (a miniF2F ``Problem`` or a statement ending in ``:= by``); returns the goals."""
        if not isinstance(problem, str):
            header = header if header is not None else problem.meta.get("header")
            problem = problem.meta["formal_statement"]
        formal_statement = problem
        self.close()
        self.header = header if header is not None else self.verifier.header
        self.statement = formal_statement
        self._lease = self.pool.lease(self.header)
        self._worker = self._lease.__enter__()
        try:
            response = self._worker.command(formal_statement.rstrip() + " sorry", self.timeout_s)
        except ReplError:
            self._drop(healthy=False)
            raise
        sorries = response.get("sorries") or []
        errors = [m["data"] for m in response.get("messages") or [] if m.get("severity") == "error"]
        if len(sorries) != 1 or errors:
            self.close()
            raise ValueError(f"statement did not elaborate to one open goal: {errors[:1] or response}")
        self.state = int(sorries[0]["proofState"])
        self.goals = [sorries[0]["goal"]]
        self.tactics = []
        return list(self.goals)

    def step(self, tactic: str) -> tuple[list[str], bool, StepInfo]:
        """Apply ``tactic``; returns ``(goals, done, info)``. ``done`` means the replayed proof is PROVED."""
        if self._worker is None or self.state is None:
            raise RuntimeError("call reset() before step()")
        if len(self.tactics) >= self.max_steps:
            return self.goals, False, StepInfo(False, f"step limit {self.max_steps} reached", self.state, len(self.tactics))
        try:
            response = self._worker.process.request({"tactic": tactic, "proofState": self.state}, self.timeout_s)
        except ReplError as exc:
            self._drop(healthy=False)
            return self.goals, False, StepInfo(False, f"REPL failed: {exc}", None, len(self.tactics))
        errors = [m["data"] for m in response.get("messages") or [] if m.get("severity") == "error"]
        if "message" in response or errors or str(response.get("proofStatus", "")).startswith("Error"):
            error = str(response.get("message") or (errors[0] if errors else response.get("proofStatus")))
            return self.goals, False, StepInfo(False, error, self.state, len(self.tactics), raw=response)
        self.state = int(response["proofState"])
        self.goals = list(response.get("goals") or [])
        self.tactics.append(tactic)
        info = StepInfo(True, "", self.state, len(self.tactics), raw=response)
        if self.goals:
            return self.goals, False, info
        self.close()  # the episode is over; free the REPL before the replay needs one from the same pool
        info.result = self.verifier.check(self.statement, self.proof_script(), header=self.header)
        return [], info.result.status is Status.PROVED, info

    def proof_script(self) -> str:
        """The tactics so far as a command-mode proof body (two-space indented)."""
        return "".join("  " + t.strip().replace("\n", "\n  ") + "\n" for t in self.tactics)

    def _drop(self, healthy: bool) -> None:
        if self._lease is not None:
            lease, self._lease, self._worker = self._lease, None, None
            if healthy:
                lease.__exit__(None, None, None)
            else:
                err = ReplError("episode aborted")
                try:
                    lease.__exit__(ReplError, err, None)
                except ReplError:
                    pass
        self.state = None

    def close(self) -> None:
        """Give the REPL back to the pool."""
        self._drop(healthy=True)
