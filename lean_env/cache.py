"""SQLite cache of verification results, safe to share between processes.

Key: sha256 of (Lean version, Mathlib revision, header, statement, proof, policy version), so a toolchain bump or
a policy change never serves a stale verdict. Timeouts and infrastructure errors are never stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path

from lean_env.types import VerifyResult


def cache_key(lean_version: str, mathlib_rev: str, header: str, statement: str, proof: str, policy_version: str) -> str:
    """sha256 hex of the six fields, JSON-encoded so no field boundary is ambiguous."""
    blob = json.dumps([lean_version, mathlib_rev, header, statement, proof, policy_version], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResultCache:
    """``get``/``put`` of ``VerifyResult`` by key in a WAL-mode SQLite file; one connection per call."""

    def __init__(self, path: str | os.PathLike, timeout_s: float = 30.0):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, status TEXT NOT NULL, "
                "payload TEXT NOT NULL, created REAL NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        return conn

    def get(self, key: str) -> VerifyResult | None:
        """The stored result, marked ``cached=True``, or None."""
        conn = self._connect()
        try:
            row = conn.execute("SELECT payload FROM results WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
        if row is None:
            return None
        result = VerifyResult.from_dict(json.loads(row[0]))
        result.cached = True
        return result

    def put(self, key: str, result: VerifyResult) -> bool:
        """Store ``result`` unless it is a timeout or infrastructure error; returns whether it was stored."""
        if not result.cacheable:
            return False
        payload = json.dumps(result.to_dict(), ensure_ascii=False)
        conn = self._connect()
        try:
            conn.execute(
                "INSERT OR REPLACE INTO results (key, status, payload, created) VALUES (?, ?, ?, ?)",
                (key, result.status.value, payload, time.time()),
            )
        finally:
            conn.close()
        return True

    def __len__(self) -> int:
        conn = self._connect()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        finally:
            conn.close()
