"""Task data rows: a bad row is one line naming file, line and field, skipped and counted; an empty file or an
offline hub is one line, fast."""

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evals.data import hub_unreachable
from evals.tasks import GSM8KTask, MATH500Task, MATHTrainTask
from pure_rl.core.rows import DataError

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"question": "Tom has 3 apples and buys 2. How many?", "answer": "3 + 2 = 5\n#### 5"}


def _write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_bad_rows_are_skipped_counted_and_named_by_file_line_and_field(tmp_path, caplog):
    path = _write(tmp_path / "test.jsonl", [
        json.dumps(GOOD),
        '{"question": "broken", "answer": ',                                # 2: not JSON
        json.dumps({"question": "No answer here"}),                         # 3: answer missing
        json.dumps({"question": None, "answer": "#### 1"}),                 # 4: question null
        json.dumps({"question": "   ", "answer": "#### 1"}),                # 5: question empty
        json.dumps({"question": "Q?", "answer": "no final line"}),          # 6: gold unreadable
        json.dumps(["not", "an", "object"]),                                # 7
        json.dumps({**GOOD, "question": "Sam has 4 pens and loses 1. How many?", "answer": "#### 3"}),
    ])
    task = GSM8KTask(data_path=str(path))
    with caplog.at_level(logging.WARNING):
        problems = task.load("test")
    assert [p.answer for p in problems] == ["5", "3"]
    assert all(p.question and not p.prompt.startswith("None") for p in problems)  # a null question is never a prompt
    assert [p.id for p in problems] == ["gsm8k/test/0", "gsm8k/test/7"]  # ids keep the row's position in the file
    tally = task.row_tallies["test"]
    assert tally.rows == 8 and [(line, name) for line, name, _ in tally.bad] == [
        (2, None), (3, "answer"), (4, "question"), (5, "question"), (6, "answer"), (7, None)]
    warned = [r.getMessage() for r in caplog.records if "skipping bad row" in r.getMessage()]
    assert f"{path} line 2: not valid JSON" in warned[0] and len(warned) == 5  # the first five, one line each
    assert f"{path} line 3: field 'answer': missing" in warned[1] and "field 'question': null" in warned[2]
    assert "field 'question': empty" in warned[3] and "no '####' line" in warned[4]
    assert [p.answer for p in GSM8KTask(data_path=str(path)).load("test", 1)] == ["5"]  # limit counts good problems


def test_a_math_row_without_a_gold_answer_is_a_bad_row(tmp_path):
    path = _write(tmp_path / "test.jsonl", [json.dumps({"problem": "1+1?", "answer": "2"}),
                                            json.dumps({"problem": "2+2?", "solution": "four, not boxed"})])
    task = MATH500Task(data_path=str(path))
    assert [p.answer for p in task.load("test")] == ["2"]
    reason = "MATH record has neither 'answer' nor a \\boxed{} in 'solution': \"{'problem': '2+2?', 'solution': 'four, not boxed'}\""
    assert task.row_tallies["test"].bad == [(2, "answer", reason)]


def test_an_empty_file_is_one_line(tmp_path):
    path = _write(tmp_path / "test.jsonl", ["", "   "])
    with pytest.raises(DataError) as info:
        GSM8KTask(data_path=str(path)).load("test")
    assert str(info.value) == f"{path}: empty file (no JSON rows); point the data path at the JSONL with the data"


def test_an_unreachable_hub_fails_at_once_naming_the_data_path_key(monkeypatch):
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: closed, refused at once
    assert "127.0.0.1" in hub_unreachable()
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        MATHTrainTask(hub_id="no/such").load("train")  # no shared copy: straight to the hub
    assert time.perf_counter() - started < 5
    message = str(info.value)
    assert message.startswith("cannot load 'no/such' split 'train' from the Hugging Face hub (unreachable: 127.0.0.1")
    assert "task.kwargs.data_path=" in message and "HF_HUB_OFFLINE=1" in message


def test_offline_mode_is_one_line_without_retries():
    code = "from evals.tasks import MATHTrainTask\nMATHTrainTask().load('train', 2)"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120,
                            cwd=ROOT)
    assert result.returncode != 0 and "Retrying" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot load 'DigitalLearningGmbH/MATH-lighteval' split 'train'" in last and "task.kwargs.data_path=" in last
