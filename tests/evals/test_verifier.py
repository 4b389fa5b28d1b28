"""MathVerifier: verdicts, the worker pool, hard timeouts, fuzzing with hostile inputs, no leaked workers, order kept."""

import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.verifier import MathVerifier, grade_one
from pure_rl.core.interfaces import Problem, Verdict, Verifier
from pure_rl.core.registry import VERIFIERS

TIMEOUT = 1.5
# A 200,000-digit answer keeps math-verify's parser busy for minutes in C code that its signal.alarm does not
# interrupt (measured > 300 s in-process): a real stuck worker, not a fake.
STUCK = "\\boxed{" + "1" * 200_000 + "}"

ADVERSARIAL = [
    "\\boxed{9^{9^{9^9}}}",
    "$9^{9^{9^{9^{9}}}}$",
    "\\boxed{2^{2^{2^{2^{2}}}}}",
    "\\boxed{\\frac{1}{0}}",
    "\\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
    "{" * 10_000,
    "x" * 1_000_000,
    "\\boxed{" + "1" * 1_000_000 + "}",
    "The answer is " + "9" * 1_000_000,
    b"\\boxed{\xff\xfe\xfa 1}",
    "\\boxed{\udcff}",
    "\\boxed{1\x002}",
    "\x00" * 1000,
    "\\def\\a{\\a\\a}\\a \\boxed{\\a}",
    "\\newcommand{\\x}{\\x\\x}\\boxed{\\x}",
    STUCK,
    "\\boxed{(99)!!!}",
    "\\boxed{1000000!}",
    "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "\\boxed{" + "\\sqrt{" * 2000 + "2" + "}" * 2000 + "}",
    "$" * 100_000,
    "\\boxed{x^{x^{x^{x^{x^{x}}}}}}",
    "\\boxed{\\sum_{k=1}^{10^{100}} k}",
]


def problem(answer, pid="p"):
    return Problem(id=pid, question="q", prompt="p", answer=answer)


def worker_children() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "_worker_entry" in " ".join(child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture(scope="module")
def verifier():
    with MathVerifier(timeout=TIMEOUT, workers=2) as v:
        yield v
    assert not worker_children()


def test_registry_and_protocol():
    assert VERIFIERS.get("math") is MathVerifier
    v = VERIFIERS.build("math", timeout=2.0, workers=1, warm_up=False)
    assert isinstance(v, Verifier)
    v.close()


def test_verdicts_and_info(verifier):
    problems = [problem("18"), problem("\\frac{1}{2}"), problem("3"), problem(None), problem("x=2")]
    completions = ["Janet makes $2 * 9 = 18.\n#### 18", "so \\boxed{0.5}", "The answer is 4.", "anything", "no answer"]
    v = verifier.verify_batch(problems, completions)
    assert [x.correct for x in v] == [True, True, False, None, False]
    assert [x.reward for x in v] == [1.0, 1.0, 0.0, None, 0.0]
    assert v[0].info["extracted"] == "18" and v[0].info["gold"] == "18" and v[0].info["reason"] == "equal"
    assert v[2].info["reason"] == "not_equal" and v[3].info["reason"] == "no_gold"
    assert v[4].info["reason"] == "no_answer" and v[4].info["extracted"] is None
    single = verifier(problem("7"), "\\boxed{7}")
    assert isinstance(single, Verdict) and single.correct


def test_cache_hits(verifier):
    first = verifier(problem("123456"), "\\boxed{123,456}")
    hits = verifier.stats["cache_hits"]
    second = verifier(problem("123456"), "\\boxed{123,456}")
    assert first.correct and second.correct and not first.info["cached"] and second.info["cached"]
    assert verifier.stats["cache_hits"] == hits + 1


def test_bad_inputs_do_not_lose_the_batch(verifier):
    v = verifier.verify_batch([problem("1"), "2", object(), problem("4")], [None, "\\boxed{2}", "1", b"\\boxed{4}"])
    assert len(v) == 4
    assert v[0].correct is False and "completion must be str, got NoneType" in v[0].info["reason"]
    assert v[1].correct is True  # a bare gold string is accepted as the problem
    assert v[2].correct is False and "problem must be a Problem" in v[2].info["reason"]
    assert v[3].correct is True  # bytes decoded as UTF-8
    with pytest.raises(ValueError, match="same length"):
        verifier.verify_batch([problem("1")], [])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"timeout": 0}, "timeout=0"),
        ({"workers": 0}, "workers=0"),
        ({"style": "latex"}, "style='latex'"),
        ({"memory_mb": -1}, "memory_mb=-1"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MathVerifier(**kwargs)


def test_items_queued_behind_a_stuck_one_are_regraded(verifier):
    verifier.start()
    texts = [STUCK + " "] + [f"\\boxed{{{i}}}" for i in range(1, 40)]
    v = verifier.verify_batch([problem(str(i), str(i)) for i in range(40)], texts)
    assert v[0].info["reason"] == "timeout"
    assert all(x.correct for x in v[1:])  # pipelined behind the stuck item or not, none is lost
    assert [x.info["gold"] for x in v] == [str(i) for i in range(40)]


def test_stuck_worker_is_killed_and_replaced(verifier):
    before = set(verifier.worker_pids())
    start = time.monotonic()
    v = verifier.verify_batch(
        [problem("1", "a"), problem("2", "b"), problem("3", "c")], [STUCK, "\\boxed{2}", "\\boxed{3}"]
    )
    wall = time.monotonic() - start
    assert v[0].correct is False and v[0].reward == 0.0 and v[0].info["reason"] == "timeout"
    assert TIMEOUT <= v[0].info["time_s"] <= TIMEOUT + 1.0
    assert v[1].correct and v[2].correct  # the other worker kept grading
    assert wall < TIMEOUT + 5.0
    after = set(verifier.worker_pids())
    assert len(after) == 2 and before - after  # the stuck worker is gone, a fresh one took its place
    for pid in before - after:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert verifier(problem("5"), "\\boxed{5}").correct  # the pool still works
    assert verifier(problem("1"), STUCK).info["cached"] is False  # timeouts are not cached


def test_adversarial_list(verifier):
    golds = [str(i) for i in range(len(ADVERSARIAL))]
    start = time.monotonic()
    v = verifier.verify_batch([problem(g, g) for g in golds], ADVERSARIAL)
    wall = time.monotonic() - start
    assert len(v) == len(ADVERSARIAL)
    assert [x.info["gold"] for x in v] == golds  # one verdict per input, in order
    for text, verdict in zip(ADVERSARIAL, v):
        assert verdict.correct is False, repr(text[:60])
        assert verdict.info["time_s"] <= TIMEOUT + 1.0, (repr(text[:60]), verdict.info)
    assert wall < len(ADVERSARIAL) * (TIMEOUT + 1.0) / 2 + 10
    assert len(worker_children()) == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.one_of(st.text(max_size=200), st.from_regex(r"\\boxed\{[-0-9a-z\\^{}()+*/., ]{0,40}\}", fullmatch=True)),
            st.one_of(st.text(min_size=1, max_size=30), st.integers(-(10**6), 10**6).map(str)),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_fuzz_one_verdict_per_input_in_order(verifier, items):
    problems = [problem(gold, str(i)) for i, (_, gold) in enumerate(items)]
    v = verifier.verify_batch(problems, [c for c, _ in items])
    assert len(v) == len(items)
    assert [x.info["gold"] for x in v] == [gold for _, gold in items]
    for verdict in v:
        assert verdict.correct in (True, False) and verdict.reward in (0.0, 1.0)
        assert verdict.info["time_s"] <= TIMEOUT + 1.0
        assert isinstance(verdict.info["reason"], str)


def test_memory_cap_is_applied():
    with MathVerifier(timeout=5.0, workers=1, memory_mb=1536, warm_up=False) as v:
        assert v(problem("2"), "\\boxed{\\sqrt{4}}").correct
        (pid,) = v.worker_pids()
        soft, hard = psutil.Process(pid).rlimit(psutil.RLIMIT_AS)
        assert soft == hard == 1536 * 2**20
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_close_leaves_no_workers():
    v = MathVerifier(timeout=2.0, workers=2, warm_up=False)
    v.start()
    pids = v.worker_pids()
    assert len(pids) == 2 and all(w.ready for w in v._pool)
    v.verify_batch([problem("1"), problem("2")], ["\\boxed{1}", "\\boxed{2}"])
    assert v.worker_pids() == pids
    v.close()
    assert v.worker_pids() == []
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_grade_one_in_process():
    assert grade_one("so \\boxed{\\dfrac{1}{2}}", "0.5") == {
        "correct": True,
        "extracted": "\\dfrac{1}{2}",
        "reason": "equal",
    }
    assert grade_one("nothing", "1")["reason"] == "no_answer"


def test_concurrent_batches_are_serialised(verifier):
    from concurrent.futures import ThreadPoolExecutor

    def batch(offset):
        problems = [problem(str(offset + i)) for i in range(20)]
        return verifier.verify_batch(problems, [f"\\boxed{{{offset + i}}}" for i in range(20)])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(batch, [0, 100, 200, 300]))
    for offset, verdicts in zip([0, 100, 200, 300], results):
        assert [v.info["gold"] for v in verdicts] == [str(offset + i) for i in range(20)]
        assert all(v.correct for v in verdicts)
    assert set(verifier(problem(None), "x").info) == {"extracted", "gold", "reason", "time_s", "cached"}


def test_worker_killed_from_outside_is_retried_once():
    import os
    import signal
    import threading

    with MathVerifier(timeout=2.0, workers=1, warm_up=False) as v:
        v.start()
        (pid,) = v.worker_pids()
        threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
        (verdict,) = v.verify_batch([problem("1")], [STUCK + "  "])
        assert verdict.info["reason"] == "timeout"  # retried on a fresh worker, where it then overran
        assert v.stats["crashes"] == 0 and v.stats["timeouts"] == 1 and v.worker_pids() != [pid]
        assert v(problem("3"), "\\boxed{3}").correct
