"""A PRM behind HTTP: the client (``RemotePRM``, registry name ``remote``) and a server that exposes any PRM.

Wire format, one POST per batch of rows::

    request   {"prompts": [str, ...], "steps": [[str, ...], ...]}
    response  {"scores": [[float, ...] | null, ...]}          (one entry per row, one score per step)

The client splits the rows into batches, sends them concurrently, and retries a failed batch (connection error,
timeout, HTTP 5xx or 429) with exponential backoff. A batch that still fails, or a row whose answer is malformed,
comes back as ``None``: the trainer masks those rows instead of scoring them 0, so an outage never poisons a step.

    python -m prm.remote --prm arith --port 8000            # serve the arithmetic PRM
    python -m prm.remote --prm tvm --kwargs '{"path": "runs/tvm_arith/tvm"}' --port 8000
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prm.runtime import check_rows
from pure_rl.core.interfaces import ProcessRewardModel
from pure_rl.core.scores import PM1

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class RemotePRM:
    """Scores steps by POSTing JSON to ``url``; failures give unscored (None) rows, never zeros."""

    def __init__(self, url: str, timeout: float = 30.0, retries: int = 2, backoff: float = 0.5, batch_size: int = 32,
                 max_concurrency: int = 4, score_range: Sequence[float] = PM1, headers: dict[str, str] | None = None):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"remote PRM url={url!r} must start with http:// or https://")
        if timeout <= 0 or retries < 0 or batch_size < 1 or max_concurrency < 1:
            raise ValueError(f"remote PRM needs timeout > 0, retries >= 0, batch_size >= 1, max_concurrency >= 1; got "
                             f"timeout={timeout}, retries={retries}, batch_size={batch_size}, "
                             f"max_concurrency={max_concurrency}")
        if len(score_range) != 2 or not score_range[1] > score_range[0]:
            raise ValueError(f"remote PRM score_range must be [lo, hi] with hi > lo, got {list(score_range)}")
        self.url, self.timeout, self.retries, self.backoff = url, timeout, retries, backoff
        self.batch_size, self.max_concurrency = batch_size, max_concurrency
        self.score_range = (float(score_range[0]), float(score_range[1]))
        self.headers = {"Content-Type": "application/json", **(headers or {})}

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        check_rows(prompts, steps, "remote PRM")
        starts = range(0, len(prompts), self.batch_size)
        batches = [(list(prompts[s : s + self.batch_size]), [list(r) for r in steps[s : s + self.batch_size]])
                   for s in starts]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(len(batches), 1))) as pool:
            results = list(pool.map(lambda b: self._score_batch(*b), batches))
        return [row for batch in results for row in batch]

    def _score_batch(self, prompts: list[str], steps: list[list[str]]) -> list[list[float] | None]:
        body = json.dumps({"prompts": prompts, "steps": steps}).encode()
        reply = self._post_with_retries(body)
        if reply is None:
            return [None] * len(prompts)
        scores = reply.get("scores") if isinstance(reply, dict) else None
        if not isinstance(scores, list) or len(scores) != len(prompts):
            log.warning("remote PRM %s: reply has no 'scores' list of %d rows; batch left unscored", self.url, len(prompts))
            return [None] * len(prompts)
        return [self._checked_row(row, len(s), i) for i, (row, s) in enumerate(zip(scores, steps))]

    def _checked_row(self, row: Any, n_steps: int, i: int) -> list[float] | None:
        lo, hi = self.score_range
        ok = isinstance(row, list) and len(row) == n_steps and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and lo <= x <= hi for x in row)
        if row is not None and not ok:
            log.warning("remote PRM %s: row %d is not %d finite scores in %s; left unscored", self.url, i, n_steps,
                        list(self.score_range))
        return [float(x) for x in row] if ok else None

    def _post_with_retries(self, body: bytes) -> Any:
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRYABLE_STATUS:
                    log.warning("remote PRM %s: HTTP %d (%s); batch left unscored", self.url, exc.code, exc.reason)
                    return None
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            except json.JSONDecodeError:
                log.warning("remote PRM %s: reply is not JSON; batch left unscored", self.url)
                return None
            log.warning("remote PRM %s: attempt %d/%d failed (%s)", self.url, attempt + 1, self.retries + 1, reason)
        return None


def make_server(prm: ProcessRewardModel, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server answering the wire format above with ``prm``; port 0 picks a free port."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompts, steps = request["prompts"], request["steps"]
                scores = prm.score_steps(prompts, steps)
            except (KeyError, TypeError, ValueError) as exc:
                return self._reply(400, {"error": f"bad request: {exc}; expected {{'prompts': [...], 'steps': [[...]]}}"})
            except Exception as exc:  # the PRM itself failed: the client retries, then masks the rows
                log.exception("PRM failed on a request")
                return self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
            self._reply(200, {"scores": scores})

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    from pure_rl.core.registry import PRMS

    ap = argparse.ArgumentParser(description="Serve a PRM over HTTP for RemotePRM clients.")
    ap.add_argument("--prm", required=True, help="registry name or module:attr of the PRM to serve")
    ap.add_argument("--kwargs", default="{}", help="JSON object of constructor arguments")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    prm = PRMS.build(args.prm, **json.loads(args.kwargs))
    server = make_server(prm, args.host, args.port)
    log.info("serving PRM %s at http://%s:%d; clients set score_range=%s", args.prm, args.host, server.server_port,
             list(prm.score_range))
    server.serve_forever()


if __name__ == "__main__":
    main()
