"""GSM8K / MATH-500 / MATH tasks: loading through ``datasets``, prompt formats, gold conventions, and the grader
scoring every reference solution as correct (GSM8K test 1319, MATH-500 500)."""

import json
import os
import subprocess
import sys

import pytest

from evals.tasks import (
    GSM8K_COT_EXEMPLARS,
    PROMPT_FORMATS,
    SHARED_DATA,
    GSM8KTask,
    MATH500Task,
    MATHTrainTask,
    gsm8k_gold,
    math_gold,
)
from evals.verifier import MathVerifier
from pure_rl.core.interfaces import Task
from pure_rl.core.registry import TASKS

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"shared data copies missing at {SHARED_DATA}")


@pytest.fixture(scope="module")
def gsm8k():
    return GSM8KTask().load("test")


@pytest.fixture(scope="module")
def math500():
    return MATH500Task().load("test")


def test_registry_and_protocol():
    for name, cls in (("gsm8k", GSM8KTask), ("math500", MATH500Task), ("math", MATHTrainTask)):
        assert TASKS.get(name) is cls
        task = TASKS.build(name)
        assert isinstance(task, Task) and task.name == name


def test_gsm8k_records(gsm8k):
    assert len(gsm8k) == 1319
    first = gsm8k[0]
    assert first.id == "gsm8k/test/0" and first.answer == "18" and first.question.startswith("Janet")
    assert all("," not in p.answer and p.answer.lstrip("-").replace(".", "").isdigit() for p in gsm8k)
    assert "#### " in first.meta["solution"]


def test_math500_records(math500):
    assert len(math500) == 500
    first = math500[0]
    assert first.id == "test/precalculus/807.json"
    assert first.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta["subject"] == "Precalculus" and first.meta["level"] == 2


def test_gold_conventions():
    assert gsm8k_gold("So 3 * 400 = 1200.\n#### 1,200") == "1200"
    with pytest.raises(ValueError, match="no '####' line"):
        gsm8k_gold("no marker")
    assert math_gold({"answer": " 5 ", "solution": "\\boxed{6}"}) == "5"
    assert math_gold({"solution": "so \\boxed{\\frac{1}{2}}."}) == "\\frac{1}{2}"
    with pytest.raises(ValueError, match="neither 'answer' nor"):
        math_gold({"solution": "none"})


def test_prompt_formats(gsm8k):
    question = gsm8k[0].question
    qwen = GSM8KTask().load("test", 1)[0].prompt
    assert (
        qwen
        == question
        + '\n\nPlease reason step by step with steps separated by "\n\n", and put your final answer within \\boxed{}.'
    )
    five = GSM8KTask(prompt="gsm8k").load("test", 1)[0].prompt
    assert (
        five.count("Question: ") == 6 and five.endswith(f"Question: {question}\nAnswer:") and five.count("#### ") == 5
    )
    assert five == GSM8KTask(prompt="gsm8k").load("test", 1)[0].prompt  # the seeded draw is deterministic
    cot = GSM8KTask(prompt="gsm8k_cot").load("test", 1)[0].prompt
    assert cot.count("Q: ") == 9 and cot.count("The answer is") == 8 and cot.endswith(f"Q: {question}\nA:")
    assert cot.startswith(f"Q: {GSM8K_COT_EXEMPLARS[0][0]}\nA: {GSM8K_COT_EXEMPLARS[0][1]}\n\n")
    zero = GSM8KTask(prompt="cot_zeroshot").load("test", 1)[0].prompt
    assert zero == f"Q: {question}\nA: Let's think step by step."
    assert set(PROMPT_FORMATS) == {"qwen-boxed", "gsm8k", "gsm8k_cot", "cot_zeroshot"}
    assert MATH500Task(prompt="cot_zeroshot").load("test", 1)[0].prompt.startswith("Q: Convert the point")


def test_limit_and_errors():
    assert len(GSM8KTask().load("test", 3)) == 3 and GSM8KTask().load("test", 0) == []
    with pytest.raises(ValueError, match="split='validation' is not a gsm8k split; valid: train, test"):
        GSM8KTask().load("validation")
    with pytest.raises(ValueError, match="prompt='chatml' is not a prompt format"):
        GSM8KTask(prompt="chatml")
    with pytest.raises(ValueError, match="limit=-1"):
        GSM8KTask().load("test", -1)
    with pytest.raises(FileNotFoundError, match="data_path='/nonexistent.jsonl'"):
        MATH500Task(data_path="/nonexistent.jsonl").load("test")


def test_local_jsonl_for_math_train(tmp_path):
    path = tmp_path / "math_train.jsonl"
    rows = [
        {"problem": "What is $1+1$?", "solution": "It is $\\boxed{2}$.", "level": "Level 1", "type": "Algebra"},
        {"problem": "Half?", "solution": "$\\boxed{\\frac12}$", "level": "Level 2", "type": "Prealgebra"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    problems = MATHTrainTask(data_path=str(path)).load("train")
    assert [p.answer for p in problems] == ["2", "\\frac12"]
    assert problems[0].id == "math/train/0" and problems[1].meta["subject"] == "Prealgebra"
    directory = MATHTrainTask(data_path=str(tmp_path)).load  # a folder means <folder>/<split>.jsonl
    path.rename(tmp_path / "train.jsonl")
    assert len(directory("train")) == 2


def test_offline_hub_error_is_one_clear_line():
    code = "from evals.tasks import MATHTrainTask\nMATHTrainTask().load('train', 2)"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=120, cwd=root
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot load 'DigitalLearningGmbH/MATH-lighteval' split 'train'" in last and "data_path=" in last


def test_reference_solutions_grade_100_percent(gsm8k, math500):
    with MathVerifier(timeout=10.0, workers=2) as verifier:
        for problems in (gsm8k, math500):
            verdicts = verifier.verify_batch(problems, [p.meta["solution"] for p in problems])
            misses = [(p.id, p.answer, v.info) for p, v in zip(problems, verdicts) if not v.correct]
            assert not misses, misses[:10]
