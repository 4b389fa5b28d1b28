"""FAKE Kimina Lean Server -- not Lean. A loopback HTTP server answering ``POST /api/check`` like Kimina does.

It splits each snippet into its import header and body, answers the body with the FAKE REPL's rules
(``fake_repl.FakeRepl``), shifts line numbers back to the full snippet, and reports ``FAKE_SLEEP`` as Kimina's
timeout error. ``busy_first`` answers the first N requests with 429 ("No available REPLs"); ``api_key``
requires ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lean_env.backends.base import shift_lines
from lean_env.testing.fake_repl import FakeRepl


class FakeKimina:
    """``with FakeKimina() as server: KiminaBackend(server.url)``."""

    def __init__(self, *, api_key: str | None = None, busy_first: int = 0):
        self.api_key = api_key
        self.busy_left = busy_first
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, {"detail": "Invalid API key"})
                if fake.busy_left > 0:
                    fake.busy_left -= 1
                    return self._send(429, {"detail": "No available REPLs"})
                if self.path != "/api/check":
                    return self._send(404, {"detail": "Not Found"})
                return self._send(200, {"results": [fake.check(s, body.get("timeout", 30)) for s in body["snippets"]]})

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def check(self, snippet: dict[str, Any], timeout: float) -> dict[str, Any]:
        code = snippet["code"]
        lines = code.split("\n")
        n_header = 0
        while n_header < len(lines) and (lines[n_header].startswith("import") or not lines[n_header].strip()):
            n_header += 1
        if "FAKE_SLEEP" in code:
            return {"id": snippet["id"], "time": timeout, "error": f"Lean REPL command timed out in {timeout} seconds",
                    "response": None}
        if "FAKE_CRASH" in code:
            return {"id": snippet["id"], "time": 0.1, "error": "REPL process died unexpectedly", "response": None}
        repl = FakeRepl()
        repl.respond({"cmd": "\n".join(lines[:n_header])})
        response = repl.respond({"cmd": "\n".join(lines[n_header:]), "env": 0})
        return {"id": snippet["id"], "time": 0.01, "error": None, "response": shift_lines(response, -n_header)}

    def __enter__(self) -> FakeKimina:  # noqa: PYI034 -- Python 3.10 has no typing.Self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
