"""MiniF2FTask (the Task protocol over miniF2F) and extract_proof."""

import pytest

from evals.minif2f import PROMPT_STYLES, MiniF2FTask, extract_proof
from pure_rl.core.interfaces import Task
from pure_rl.core.registry import TASKS


def test_task_protocol_and_registry():
    task = TASKS.build("minif2f")
    assert isinstance(task, Task) and task.name == "minif2f"


def test_problems_carry_trusted_fields():
    problems = MiniF2FTask().load("valid", limit=4)
    assert len(problems) == 4
    p = problems[0]
    assert set(p.meta) >= {"formal_statement", "header", "informal_prefix", "split", "name"}
    assert p.meta["split"] == "valid" and p.id == p.meta["name"] and p.answer == p.meta["formal_statement"]
    assert p.prompt.startswith("Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib")
    assert p.prompt.endswith(p.meta["formal_statement"])
    assert p.meta["prompt_ends_in_proof"] is True


def test_splits_and_styles():
    task = MiniF2FTask(prompt_style="chat")
    assert len(task.load("validation")) == 244 and len(task.load("test")) == 244
    assert "sorry\n```" in task.load("test", limit=1)[0].prompt
    with pytest.raises(ValueError, match="no train split"):
        task.load("train")
    with pytest.raises(ValueError, match="prompt_style must be one of"):
        MiniF2FTask(prompt_style="nope")
    assert set(PROMPT_STYLES) == {"deepseek", "deepseek_cot", "chat"}


@pytest.mark.parametrize(
    ("completion", "continues", "expected"),
    [
        ("  nlinarith [sq_nonneg (a - b)]\n```\nDone.", True, "  nlinarith [sq_nonneg (a - b)]\n"),
        ("  norm_num", True, "  norm_num\n"),
        ("Plan...\n```lean4\ntheorem x : True := by\n  trivial\n```\nok", False, "theorem x : True := by\n  trivial\n"),
        ("```lean\nfirst\n```\nthen\n```lean4\nsecond\n```", False, "second\n"),
        ("```lean4\nunclosed block\n  simp", False, "unclosed block\n  simp\n"),
        ("  simp", False, "  simp\n"),
    ],
)
def test_extract_proof(completion, continues, expected):
    assert extract_proof(completion, continues_prompt=continues) == expected
