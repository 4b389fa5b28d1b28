"""The SQLite result cache: keys, what is never cached, concurrent writers, and use by the verifier."""

import multiprocessing as mp
import sys

from lean_env.cache import ResultCache, cache_key
from lean_env.testing import fake_repl
from lean_env.types import LeanMessage, Status, VerifyResult
from lean_env.verifier import LeanVerifier

FIELDS = ("4.26.0", "abc123", "import Mathlib\n", "theorem t : True := by\n", "  trivial", "p1")


def test_key_changes_with_every_field():
    base = cache_key(*FIELDS)
    for i in range(len(FIELDS)):
        changed = list(FIELDS)
        changed[i] += "x"
        assert cache_key(*changed) != base
    assert cache_key("a", "bc", "", "", "", "") != cache_key("ab", "c", "", "", "", "")


def test_round_trip_and_never_cached_statuses(tmp_path):
    cache = ResultCache(tmp_path / "c.sqlite")
    proved = VerifyResult(Status.PROVED, messages=[LeanMessage("info", "ok", 1, 0)], axioms=["propext"], time_s=1.5)
    assert cache.put("k1", proved)
    hit = cache.get("k1")
    assert hit.cached and hit.status is Status.PROVED and hit.axioms == ["propext"] and hit.messages == proved.messages
    assert not cache.put("k2", VerifyResult.wall_timeout(5.0))
    assert not cache.put("k3", VerifyResult.infra_error("crash"))
    assert not cache.put("k4", VerifyResult(Status.TIMEOUT))  # deterministic timeouts too
    assert cache.get("k2") is None and len(cache) == 1


def _writer(path, start):
    cache = ResultCache(path)
    for i in range(start, start + 50):
        cache.put(f"k{i}", VerifyResult(Status.LEAN_ERROR, reasons=[str(i)]))


def test_concurrent_processes(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResultCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, 100 * i)) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = ResultCache(path)
    assert len(cache) == 150 and cache.get("k205").reasons == ["205"]


def test_verifier_serves_repeats_from_cache(tmp_path):
    statement = "theorem t (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := by\n"
    argv = [sys.executable, fake_repl.__file__]
    with LeanVerifier("repl", argv=argv, size=1, cache=tmp_path / "c.sqlite", timeout_s=2) as v:
        first = v.check_batch([(statement, "  simp"), (statement, "  FAKE_SLEEP")])
        second = v.check_batch([(statement, "  simp"), (statement, "  FAKE_SLEEP")])
        started = v.backend.pool.stats["started"]
    assert not first[0].cached and second[0].cached and second[0].status is Status.PROVED
    assert second[1].status is Status.TIMEOUT and not second[1].cached  # re-run, never cached
    assert started == 2  # one process per hang (each killed); the cached proof needed none


def test_verifier_rules_are_part_of_the_key(tmp_path):
    argv = [sys.executable, fake_repl.__file__]
    statement, proof = "theorem t : True := by\n", "  trivial"
    db = tmp_path / "c.sqlite"
    with LeanVerifier("repl", argv=argv, size=1, cache=db) as v:
        assert not v.check(statement, proof).cached and v.check(statement, proof).cached
    with LeanVerifier("repl", argv=argv, size=1, cache=db, heartbeats=1000) as v:
        assert not v.check(statement, proof).cached  # a heartbeat limit can change the verdict
    with LeanVerifier("repl", argv=argv, size=1, cache=db, allowed_axioms=frozenset({"propext"})) as v:
        assert not v.check(statement, proof).cached
