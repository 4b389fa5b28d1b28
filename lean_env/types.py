"""Result types shared by every Lean backend: statuses, messages and the verification result."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Outcome of checking one proof.

    Only PROVED earns reward. INFRA_ERROR (and a TIMEOUT flagged ``infra``) says nothing about the proof and is
    masked by the trainer instead of being scored 0.
    """

    PROVED = "PROVED"
    SORRY = "SORRY"  # a sorry / admit reached Lean (sorries list, "declaration uses sorry", or sorryAx axiom)
    LEAN_ERROR = "LEAN_ERROR"  # Lean reported an error: the proof does not check
    FORBIDDEN = "FORBIDDEN"  # the hygiene policy rejected the text, an axiom outside the whitelist, or a changed statement
    TIMEOUT = "TIMEOUT"  # Lean's deterministic heartbeat limit, or the wall clock (then ``infra`` is True)
    INFRA_ERROR = "INFRA_ERROR"  # crashed or garbled process, protocol error, unreachable server


class LeanSetupError(RuntimeError):
    """The Lean project, toolchain or optional dependency a backend needs is missing; the message says what to install."""


@dataclass(frozen=True)
class LeanMessage:
    """One Lean message, with positions relative to the model-written proof (line 1 = first proof line).

    ``line`` is None when Lean gave no position; it is <= 0 when the message points into the trusted statement.
    """

    severity: str  # "error" | "warning" | "info" | "trace"
    data: str
    line: int | None = None
    column: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerifyResult:
    """Everything a backend learned about one proof."""

    status: Status
    messages: list[LeanMessage] = field(default_factory=list)
    sorries: int = 0  # entries in the REPL's ``sorries`` list
    axioms: list[str] | None = None  # from ``#print axioms``; None when Lean never got that far
    time_s: float = 0.0  # wall time of this proof's check (a batch average where the backend gives none)
    backend: str = ""
    lean_version: str = ""
    cached: bool = False
    infra: bool = False  # the status comes from the infrastructure (wall-clock kill, crash), not from the proof
    reasons: list[str] = field(default_factory=list)  # why the status was chosen, one short line each

    @property
    def reward(self) -> float | None:
        """1.0 for PROVED, 0.0 for a failed proof, None (masked) when infrastructure decided the status."""
        if self.status is Status.INFRA_ERROR or self.infra:
            return None
        return 1.0 if self.status is Status.PROVED else 0.0

    @property
    def cacheable(self) -> bool:
        """Timeouts and infrastructure errors are never cached: a retry may succeed."""
        return self.status not in (Status.TIMEOUT, Status.INFRA_ERROR) and not self.infra

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["status"] = self.status.value
        out["reward"] = self.reward
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VerifyResult:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["status"] = Status(fields["status"])
        fields["messages"] = [LeanMessage(**m) for m in fields.get("messages", [])]
        return cls(**fields)

    @classmethod
    def infra_error(cls, reason: str, *, backend: str = "", time_s: float = 0.0) -> VerifyResult:
        return cls(Status.INFRA_ERROR, backend=backend, time_s=time_s, infra=True, reasons=[reason])

    @classmethod
    def wall_timeout(cls, timeout_s: float, *, backend: str = "", time_s: float = 0.0) -> VerifyResult:
        return cls(
            Status.TIMEOUT, backend=backend, time_s=time_s, infra=True,
            reasons=[f"wall-clock limit of {timeout_s:g} s reached; the process was killed"],
        )
