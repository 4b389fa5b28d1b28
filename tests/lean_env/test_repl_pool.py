"""The REPL process pool against the FAKE REPL (lean_env/testing/fake_repl.py), which speaks the real protocol.

Timeouts, crashes, garbage, floods, restarts, recycling, process-group kills, scrubbed environments, memory
limits, and that no item of a batch is ever lost.
"""

import os
import sys
import time

import pytest

from lean_env.repl.pool import HeaderError, ReplPool
from lean_env.repl.process import ReplCrashed, ReplProcess, ReplProtocolError, ReplTimeout
from lean_env.testing import fake_repl
from lean_env.types import Status
from lean_env.verifier import LeanVerifier

FAKE = [sys.executable, fake_repl.__file__]
HEADER = "import Mathlib\n"
STATEMENT = "theorem t (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := by\n"


@pytest.fixture
def pool():
    p = ReplPool(FAKE, size=2, header_timeout_s=30)
    yield p
    p.close()


def test_process_speaks_blank_line_protocol():
    proc = ReplProcess(FAKE)
    try:
        assert proc.request({"cmd": HEADER}, 10) == {"env": 0}
        response = proc.request({"cmd": STATEMENT + "  sorry", "env": 0}, 10)
        assert response["sorries"][0]["proofState"] == 0
        assert proc.request({"cmd": "x", "env": 7}, 10) == {"message": "Unknown environment."}
        assert proc.uses == 3
    finally:
        proc.kill()


def test_header_loaded_once_and_reused(pool):
    for _ in range(3):
        assert pool.command(HEADER, STATEMENT + "  simp", 10)["env"] >= 1
    assert pool.stats["started"] == 1


def test_timeout_kills_and_next_request_gets_a_fresh_process(pool):
    start = time.monotonic()
    with pytest.raises(ReplTimeout):
        pool.command(HEADER, "FAKE_SLEEP", 0.5)
    assert time.monotonic() - start < 5
    assert "messages" not in pool.command(HEADER, STATEMENT + "  simp", 10)
    assert pool.stats["killed"] == 1 and pool.stats["started"] == 2


@pytest.mark.parametrize(
    ("cmd", "error"),
    [("FAKE_CRASH", ReplCrashed), ("FAKE_GARBAGE", ReplProtocolError)],
)
def test_crash_and_garbage_raise_and_restart(pool, cmd, error):
    with pytest.raises(error):
        pool.command(HEADER, cmd, 10)
    assert pool.command(HEADER, "  simp", 10)["env"] >= 1
    assert pool.stats["killed"] == 1


def test_output_flood_is_capped():
    p = ReplPool(FAKE, size=1, max_output_bytes=1 << 20)
    try:
        with pytest.raises(ReplProtocolError, match="exceeded"):
            p.command(HEADER, "FAKE_FLOOD", 30)
    finally:
        p.close()


def test_recycled_after_max_uses():
    p = ReplPool(FAKE, size=1, max_uses=3)  # the header request counts as a use
    try:
        for _ in range(4):
            p.command(HEADER, "  simp", 10)
        assert p.stats["recycled"] == 2 and p.stats["started"] == 2  # header + 2 proofs per process
    finally:
        p.close()


def test_recycled_when_resident_memory_passes_the_limit():
    p = ReplPool(FAKE, size=1, max_rss_bytes=150 << 20)
    try:
        p.command(HEADER, "  simp", 10)
        assert p.stats["recycled"] == 0
        p.command(HEADER, "FAKE_ALLOC:200", 10)
        assert p.stats["recycled"] == 1
    finally:
        p.close()


def test_address_space_limit_applies():
    p = ReplPool(FAKE, size=1, memory_limit_bytes=400 << 20)
    try:
        with pytest.raises(ReplCrashed, match="MemoryError"):
            p.command(HEADER, "FAKE_ALLOC:1000", 10)
    finally:
        p.close()


def test_timeout_kills_the_whole_process_group():
    p = ReplPool(FAKE, size=1)
    try:
        reply = p.command(HEADER, "FAKE_CHILD", 10)
        child = int(reply["messages"][0]["data"].split()[1])
        os.kill(child, 0)  # alive
        with pytest.raises(ReplTimeout):
            p.command(HEADER, "  simp", 0.5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child)
    finally:
        p.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a killed child not yet reaped by its (dead) parent is a zombie
        return f.read().split()[2] != "Z"


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    p = ReplPool(FAKE, size=1)
    try:
        names = p.command(HEADER, "FAKE_ENV", 10)["messages"][0]["data"].split()[1:]
        assert "PATH" in names and "HF_TOKEN" not in names and "AWS_SECRET_ACCESS_KEY" not in names
    finally:
        p.close()


def test_bad_header_is_a_header_error(pool):
    with pytest.raises(HeaderError, match="FAKE_BAD_IMPORT"):
        pool.command("import FAKE_BAD_IMPORT\n", "  simp", 10)


def test_headers_get_separate_warm_processes_and_evict_when_full():
    p = ReplPool(FAKE, size=1)
    try:
        p.command("import A\n", "  simp", 10)
        p.command("import B\n", "  simp", 10)
        assert p.stats["evicted"] == 1 and p.stats["started"] == 2
    finally:
        p.close()


def test_batch_loses_no_item_and_isolates_failures():
    proofs = ["  simp", "  FAKE_CRASH", "  simp", "  FAKE_SLEEP", "  FAKE_GARBAGE", "  FAKE_ERROR", "  simp",
              "  sorry_free_marker", "  FAKE_AXIOM:cheat", "  simp"] * 2
    with LeanVerifier("repl", argv=FAKE, size=3, header=HEADER, timeout_s=2.0) as v:
        start = time.monotonic()
        results = v.check_batch([(STATEMENT, p) for p in proofs])
        elapsed = time.monotonic() - start
        stats = v.backend.pool.stats
    assert len(results) == len(proofs)
    expected = {"  simp": Status.PROVED, "  FAKE_CRASH": Status.INFRA_ERROR, "  FAKE_SLEEP": Status.TIMEOUT,
                "  FAKE_GARBAGE": Status.INFRA_ERROR, "  FAKE_ERROR": Status.LEAN_ERROR,
                "  sorry_free_marker": Status.PROVED, "  FAKE_AXIOM:cheat": Status.FORBIDDEN}
    for proof, result in zip(proofs, results):
        assert result.status is expected[proof], (proof, result)
    infra = [r for r in results if r.status in (Status.INFRA_ERROR, Status.TIMEOUT)]
    assert all(r.reward is None and r.infra for r in infra)
    assert stats["killed"] == 6  # two crashes, two garbles, two timeouts: each replaced
    assert elapsed < 15


def test_write_to_a_hung_repl_times_out_instead_of_blocking():
    proc = ReplProcess(FAKE)
    try:
        proc.request({"cmd": HEADER}, 10)
        proc.proc.stdin.write(b'{"cmd": "FAKE_SLEEP", "env": 0}\n\n')  # the fake now sleeps, reading nothing
        proc.proc.stdin.flush()
        start = time.monotonic()
        with pytest.raises(ReplTimeout, match="did not read its input"):
            proc.request({"cmd": "x" * (4 << 20), "env": 0}, 0.5)  # far more than a pipe buffer holds
        assert time.monotonic() - start < 5 and not proc.alive
    finally:
        proc.kill()


def test_each_result_carries_its_own_time():
    with LeanVerifier("repl", argv=FAKE, size=2, header=HEADER, timeout_s=10) as v:
        fast, slow = v.check_batch([(STATEMENT, "  simp"), (STATEMENT, "  simp -- FAKE_SLOW:0.6")])
    assert fast.status is slow.status is Status.PROVED
    assert slow.time_s >= 0.6 > fast.time_s
