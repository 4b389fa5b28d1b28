"""miniF2F loader, unbiased pass@k and the per-problem report."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lean_env.minif2f import load_minif2f, pass_at_k, report
from lean_env.types import Status, VerifyResult


def test_loads_shared_data_with_splits():
    everything = load_minif2f()
    assert len(everything) == 488
    valid, test = load_minif2f(split="valid"), load_minif2f(split="test")
    assert len(valid) == len(test) == 244
    assert all(r["formal_statement"].rstrip().endswith(":= by") for r in everything)
    assert len(load_minif2f(split="test", limit=5)) == 5


def test_local_path_and_folder(tmp_path):
    record = {"name": "x", "split": "valid", "informal_prefix": "", "formal_statement": "theorem x : True := by\n",
              "header": "import Mathlib\n"}
    (tmp_path / "minif2f.jsonl").write_text(json.dumps(record) + "\n")
    assert load_minif2f(tmp_path)[0]["name"] == "x"
    assert load_minif2f(tmp_path / "minif2f.jsonl", split="test") == []


def test_bad_inputs_are_clear(tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        load_minif2f(split="train")
    with pytest.raises(FileNotFoundError, match="miniF2F data not found"):
        load_minif2f(tmp_path / "nope.jsonl")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"name": "y"}) + "\n")
    with pytest.raises(ValueError, match="lacks field"):
        load_minif2f(tmp_path / "bad.jsonl")


def test_hub_id_without_network_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="could not load hub dataset"):
        load_minif2f("no-such-org/no-such-minif2f")


def test_pass_at_k_values():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    with pytest.raises(ValueError, match="at least 8 samples"):
        pass_at_k(4, 1, 8)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)


@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_matches_the_sampling_definition(args):
    n, c, k = args
    # probability that a k-subset of n samples (without replacement) holds at least one of the c correct ones
    exact = 1 - math.prod((n - c - i) / (n - i) for i in range(k)) if n - c >= k else 1.0
    assert pass_at_k(n, c, k) == pytest.approx(exact)


def test_report_excludes_infra_failures_from_n():
    ok, bad = VerifyResult(Status.PROVED), VerifyResult(Status.LEAN_ERROR)
    rows = [("a", "p1", ok), ("a", "p2", bad), ("a", "p3", VerifyResult.infra_error("crash")),
            ("b", "q1", bad), ("b", "q2", bad)]
    out = report(rows, ks=(1, 2, 3))
    a, b = out["per_problem"]
    assert (a["n"], a["proved"], a["infra"], a["first_proof"]) == (2, 1, 1, "p1")
    assert b["proved"] == 0 and out["solved_any"] == 1
    assert out["pass@1"] == pytest.approx((0.5 + 0.0) / 2)
    assert out["pass@2"] == pytest.approx(0.5) and "pass@3" not in out
