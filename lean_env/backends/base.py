"""What every backend provides: REPL-schema responses (or an infrastructure result) for assembled proofs."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, runtime_checkable

from lean_env.assemble import Assembled
from lean_env.types import VerifyResult


@runtime_checkable
class Backend(Protocol):
    """Runs assembled proofs through Lean.

    ``run`` returns, per item and in order, either a response in the REPL's command schema (``messages`` with
    ``pos.line`` relative to ``Assembled.body``, optional ``sorries``) for ``policy.classify``, or a finished
    ``VerifyResult`` when the infrastructure failed (timeout, crash). It never raises for one bad item.
    """

    name: str

    def run(self, items: Sequence[Assembled], timeout_s: float) -> list[dict[str, Any] | VerifyResult]: ...

    def version(self) -> str: ...

    def close(self) -> None: ...


def shift_lines(response: dict[str, Any], offset: int) -> dict[str, Any]:
    """``response`` with every ``pos``/``endPos`` line moved by ``-offset`` (file lines -> body lines)."""
    out = dict(response)
    for key in ("messages", "sorries"):
        if key in out:
            shifted = []
            for entry in out[key] or []:
                entry = dict(entry)
                for pos_key in ("pos", "endPos"):
                    pos = entry.get(pos_key)
                    if isinstance(pos, dict) and isinstance(pos.get("line"), int):
                        entry[pos_key] = {**pos, "line": pos["line"] - offset}
                shifted.append(entry)
            out[key] = shifted
    return out


def run_each(
    items: Sequence[Assembled],
    one: Callable[[Assembled], dict[str, Any] | VerifyResult],
    workers: int,
    backend: str,
) -> list[dict[str, Any] | VerifyResult]:
    """Apply ``one`` to every item on ``workers`` threads; an exception becomes that item's INFRA_ERROR.

    Each response gets its own wall time under ``"time"`` (the key Kimina uses).
    """

    def guarded(item: Assembled) -> dict[str, Any] | VerifyResult:
        start = time.monotonic()
        try:
            out = one(item)
            return {**out, "time": time.monotonic() - start} if isinstance(out, dict) else out
        except Exception as exc:  # noqa: BLE001 -- one broken item must not lose the batch
            return VerifyResult.infra_error(f"{type(exc).__name__}: {exc}"[:300], backend=backend)

    if workers <= 1 or len(items) <= 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(guarded, items))
