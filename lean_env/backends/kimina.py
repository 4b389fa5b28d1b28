"""The ``kimina`` backend: HTTP client for Kimina Lean Server's ``POST /api/check``.

The server keeps REPLs warm per import header itself; it returns REPL command responses with line numbers of
the full snippet, which are shifted back to the body here, and the same ``policy.classify`` runs on top (the
server's own "valid" ignores warnings and axioms).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from lean_env.assemble import Assembled
from lean_env.backends.base import shift_lines
from lean_env.types import VerifyResult


class KiminaBackend:
    """Batches of snippets to ``{url}/api/check``; ``api_key`` defaults to ``$LEAN_SERVER_API_KEY``."""

    name = "kimina"

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        batch_size: int = 8,
        retries: int = 3,
        backoff_s: float = 1.0,
        lean_version: str = "",
        project: Any = None,
    ):
        url = url or os.environ.get("KIMINA_URL")
        if not url:
            raise ValueError("kimina backend needs url= (or $KIMINA_URL), e.g. 'http://127.0.0.1:8000'")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.url = url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("LEAN_SERVER_API_KEY")
        self.batch_size = batch_size
        self.retries = retries
        self.backoff_s = backoff_s
        self._version = lean_version or f"kimina@{self.url}"

    def version(self) -> str:
        return self._version

    def run(self, items: Sequence[Assembled], timeout_s: float) -> list[dict[str, Any] | VerifyResult]:
        out: list[dict[str, Any] | VerifyResult] = []
        for start in range(0, len(items), self.batch_size):
            out.extend(self._batch(items[start:start + self.batch_size], timeout_s))
        return out

    def _batch(self, items: Sequence[Assembled], timeout_s: float) -> list[dict[str, Any] | VerifyResult]:
        body = {
            "snippets": [{"id": str(i), "code": item.text} for i, item in enumerate(items)],
            "timeout": timeout_s, "debug": False, "reuse": True, "infotree": None,
        }
        try:
            reply = self._post("/api/check", body, timeout_s * len(items) + 30)
        except Exception as exc:  # noqa: BLE001 -- a dead server fails this batch as infrastructure, never as wrong proofs
            return [VerifyResult.infra_error(f"kimina request failed: {exc}"[:300], backend=self.name) for _ in items]
        by_id = {str(r.get("id")): r for r in reply.get("results", []) if isinstance(r, dict)}
        outcomes: list[dict[str, Any] | VerifyResult] = []
        for i, item in enumerate(items):
            result = by_id.get(str(i))
            if result is None:
                outcomes.append(VerifyResult.infra_error(f"kimina returned no result for snippet {i}", backend=self.name))
            elif result.get("error"):
                error = str(result["error"])
                if "timed out" in error:
                    outcomes.append(VerifyResult.wall_timeout(timeout_s, backend=self.name, time_s=result.get("time") or 0.0))
                else:
                    outcomes.append(VerifyResult.infra_error(f"kimina: {error[:200]}", backend=self.name))
            elif isinstance(result.get("response"), dict):
                response = shift_lines(result["response"], item.header_lines)
                outcomes.append({**response, "time": result.get("time") or 0.0})
            else:
                outcomes.append(VerifyResult.infra_error("kimina result has neither error nor response", backend=self.name))
        return outcomes

    def _post(self, path: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                if exc.code != 429 or attempt == self.retries:  # 429 = no free REPL: wait and retry
                    raise RuntimeError(f"HTTP {exc.code} from {self.url + path}: {exc.read()[:200]!r}") from exc
            time.sleep(self.backoff_s * (2 ** attempt))
        raise RuntimeError("unreachable")

    def close(self) -> None:
        """Nothing to release: every batch is its own HTTP request."""
