"""The grading CLI (``python -m evals.grade``) and the grader benchmark's input generator (``evals.bench_grader``)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.bench_grader import make_pairs
from evals.equivalence import is_equivalent
from evals.grade import lm_eval_verdicts, main, read_predictions

ROOT = Path(__file__).resolve().parents[2]


def write_jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_grade_with_inline_gold(tmp_path, capsys):
    preds = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"id": "a", "completion": "3 + 4 = 7.\n#### 7", "answer": "7"},
            {"id": "b", "completion": "The answer is \\boxed{\\frac{1}{2}}.", "answer": "0.5"},
            {"id": "c", "completion": "The answer is 12.", "answer": "13"},
        ],
    )
    out = tmp_path / "verdicts.jsonl"
    assert main([str(preds), "--task", "gsm8k", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "accuracy=0.6667 (2/3) timeouts=0" in text
    assert "lm_eval_flexible" in text and "math_verify" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, True, False]
    assert rows[1]["lm_eval_flexible"] is False and rows[1]["extracted"] == "\\frac{1}{2}"
    assert "disagreements (1" in text  # b: right for us, wrong for lm-eval's number regexes


def test_grade_matches_task_data_by_index_and_line(tmp_path, capsys):
    solutions = [
        json.loads(line) for line in (ROOT.parent / "shared/data/math500/test.jsonl").read_text().splitlines()[:5]
    ]
    rows = [{"index": 4, "completion": solutions[4]["solution"]}, {"completion": solutions[1]["solution"]}]
    preds = write_jsonl(tmp_path / "m.jsonl", rows)
    assert main([str(preds), "--task", "math500", "--no-math-verify"]) == 0
    assert "accuracy=1.0000 (2/2)" in capsys.readouterr().out


def test_grade_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"completion": "1"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not valid JSON"):
        read_predictions(bad)
    bad.write_text('{"text": "1"}\n')
    with pytest.raises(ValueError, match="needs one of the keys completion, prediction"):
        read_predictions(bad)
    result = subprocess.run(
        [sys.executable, "-m", "evals.grade", str(tmp_path / "missing.jsonl"), "--task", "gsm8k"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_lm_eval_verdicts():
    assert lm_eval_verdicts("#### 1,000", "1000") == (True, True)
    assert lm_eval_verdicts("The answer is 12.", "12") == (True, True)
    assert lm_eval_verdicts("\\boxed{\\frac{1}{2}}", "0.5") == (False, False)


def test_bench_pairs_are_labelled_correctly():
    golds = ["18", "1234", "\\frac{14}{3}", "\\left( 3, \\frac{\\pi}{2} \\right)", "\\text{Evelyn}", "0"]
    pairs = make_pairs(golds, per_gold=6, seed=1)
    assert len(pairs) >= 20 and {p[2] for p in pairs} == {True, False}
    assert pairs == make_pairs(golds, per_gold=6, seed=1)
    for completion, gold, label, form in pairs:
        assert is_equivalent(completion, gold) == label, (form, completion, gold)
