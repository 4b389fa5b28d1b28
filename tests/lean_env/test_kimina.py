"""The Kimina HTTP client against a loopback FAKE server (lean_env/testing/fake_kimina.py)."""

import pytest

from lean_env.backends.kimina import KiminaBackend
from lean_env.testing.fake_kimina import FakeKimina
from lean_env.types import Status
from lean_env.verifier import LeanVerifier

STATEMENT = "theorem t (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := by\n"


def test_statuses_and_line_mapping_through_http():
    with FakeKimina() as server, LeanVerifier("kimina", url=server.url, batch_size=2) as v:
        results = v.check_batch([(STATEMENT, p) for p in
                                 ["  nlinarith [sq_nonneg (a - b)]", "  simp\n  FAKE_ERROR", "  FAKE_SLEEP",
                                  "  FAKE_CRASH", "  exact FAKE_AXIOM:cheat"]])
        assert [r.status for r in results] == [Status.PROVED, Status.LEAN_ERROR, Status.TIMEOUT, Status.INFRA_ERROR,
                                               Status.FORBIDDEN]
        error = results[1].messages[0]
        assert error.severity == "error" and error.line == 2 and error.column == 2  # proof-relative
        assert results[2].reward is None and results[3].reward is None
        assert len(server.requests) == 3  # batches of 2
        snippet = server.requests[0]["snippets"][0]
        assert snippet["code"].startswith(v.header) and snippet["code"].rstrip().endswith("#print axioms _root_.t")


def test_busy_server_is_retried():
    with FakeKimina(busy_first=2) as server:
        backend = KiminaBackend(server.url, backoff_s=0.01)
        v = LeanVerifier(backend)
        assert v.check(STATEMENT, "  simp").status is Status.PROVED
        assert len(server.requests) == 3


def test_api_key_is_sent(monkeypatch):
    with FakeKimina(api_key="k3y") as server:
        monkeypatch.setenv("LEAN_SERVER_API_KEY", "k3y")
        assert LeanVerifier("kimina", url=server.url).check(STATEMENT, "  simp").status is Status.PROVED
        monkeypatch.setenv("LEAN_SERVER_API_KEY", "wrong")
        result = LeanVerifier("kimina", url=server.url).check(STATEMENT, "  simp")
        assert result.status is Status.INFRA_ERROR and "HTTP 401" in result.reasons[0]


def test_unreachable_server_is_infra_error_for_the_whole_batch():
    v = LeanVerifier("kimina", url="http://127.0.0.1:9", retries=0)
    results = v.check_batch([(STATEMENT, "  simp"), (STATEMENT, "  ring")])
    assert [r.status for r in results] == [Status.INFRA_ERROR] * 2
    assert all(r.reward is None for r in results)


def test_missing_url_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("KIMINA_URL", raising=False)
    with pytest.raises(ValueError, match="url="):
        KiminaBackend()
