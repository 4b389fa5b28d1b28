"""The embedded arithmetic task and its rule-based process reward."""

import random

import pytest

from evals.arith import ArithTask, Expression, parse_question, solution_text
from prm.arith import ArithPRM, score_solution


def test_splits_are_deterministic_and_disjoint():
    task = ArithTask(min_operands=2, max_operands=4)
    train = task.load("train", 3000)
    test = task.load("test", 200)
    assert [p.question for p in test] == [p.question for p in ArithTask(min_operands=2, max_operands=4).load("test", 200)]
    assert not {p.question for p in train} & {p.question for p in test}
    assert len({p.question for p in test}) == len(test)


def test_reference_solutions_score_perfectly_and_match_the_answer():
    task = ArithTask(min_operands=2, max_operands=4, ops="+-*")
    prm = ArithPRM()
    for p in task.load("test", 100):
        steps = p.meta["solution"].split("\n\n")
        assert prm.score_steps([p.prompt], [steps]) == [[1.0] * len(steps)]
        assert steps[-1] == f"\\boxed{{{p.answer}}}"


def test_one_slip_costs_exactly_its_step():
    expr = Expression((4, 7, 2), ("+", "-"))
    slipped = solution_text(expr, slip_step=0, slip=1).split("\n\n")
    assert slipped == ["4 + 7 = 12", "12 - 2 = 10", "\\boxed{10}"]
    assert score_solution(expr, slipped) == [-1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    "steps, expected",
    [
        (["4 + 7 = 11", "11 - 2 = 9", "\\boxed{9}"], [1, 1, 1]),
        (["4 + 7 = 11", "\\boxed{11}"], [1, -1]),  # skipped an operation
        (["4 + 8 = 12", "12 - 2 = 10", "\\boxed{10}"], [-1, 1, 1]),  # invented operand
        (["4 + 7 = 11", "11 - 2 = 9", "\\boxed{8}"], [1, 1, -1]),  # answer differs from the work
        (["4 + 7 = 11", "11 - 2 = 9", "\\boxed{9}", "extra"], [1, 1, 1, -1]),
        (["the answer is 9"], [-1]),
        ([], []),
    ],
)
def test_step_checks(steps, expected):
    assert score_solution(Expression((4, 7, 2), ("+", "-")), steps) == [float(x) for x in expected]


def test_parse_question_and_bad_prompts():
    assert parse_question("Compute 3 - -2 + 4.\n\n") == Expression((3, -2, 4), ("-", "+"))
    assert parse_question("What is love?") is None
    with pytest.raises(ValueError, match="no 'Compute ...' expression"):
        ArithPRM().score_steps(["hello"], [["1 + 1 = 2"]])


def test_demonstrations_carry_the_requested_error_rate():
    task = ArithTask()
    prm = ArithPRM()
    demos = task.demonstrations(2000, 0.3, random.Random(0))
    flawed = sum(min(prm.score_steps([p], [s.split("\n\n")])[0]) < 0 for p, s in demos)
    assert 0.25 < flawed / len(demos) < 0.35


def test_bad_task_arguments_fail_clearly():
    with pytest.raises(ValueError, match="min_operands"):
        ArithTask(min_operands=1)
    with pytest.raises(ValueError, match="ops"):
        ArithTask(ops="/")
    with pytest.raises(ValueError, match="split 'dev' is unknown"):
        ArithTask().load("dev")


def test_a_small_space_says_train_is_short(caplog):
    caplog.set_level("INFO", logger="evals.arith")
    task = ArithTask(min_operands=2, max_operands=2, max_operand=30, train_size=2000)
    train, test = task.load("train"), task.load("test")
    assert 0 < len(train) < 2000 and not {p.meta["expression"] for p in train} & {p.meta["expression"] for p in test}
    assert f"only {len(train)} distinct training problems" in caplog.text
