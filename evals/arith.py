"""The embedded multi-step arithmetic task: the demo and smoke test of every stage, no downloads.

A problem chains 2-4 small operands with + and -; its reference solution is one checkable equation per step,
steps separated by "\\n\\n", and the final answer in ``\\boxed{}``::

    Compute 7 + 12 - 5.        ->   7 + 12 = 19\\n\\n19 - 5 = 14\\n\\n\\boxed{14}

``prm.arith.ArithPRM`` checks each step against the question, so the task has a real, deterministic process
reward; the answer is graded by the project's math verifier like any other task.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass

from evals.base import TaskDefaults
from pure_rl.core.interfaces import Problem

SEPARATOR = "\n\n"
QUESTION_RE = re.compile(r"Compute ((?:-?\d+)(?:\s*[+\-*]\s*-?\d+)+)\.")
# Any other phrasing: the first chain "a op b [op c ...]" not preceded by a digit (what QUESTION_TEMPLATES produce).
EXPRESSION_RE = re.compile(r"(?<![\d.])(-?\d+(?:\s*[+\-*]\s*-?\d+)+)")
# Phrasings of a problem. "compute" is the tiny default's; "question" asks an instruct model the way users do.
QUESTION_TEMPLATES = {
    "compute": "Compute {expr}.",
    "question": "What is {expr}?",
}
# What an instruct model is told besides the question: how to lay out its steps and where the answer goes.
INSTRUCT_SUFFIX = (
    " Solve it step by step: write one calculation per step, separate the steps with a blank line, and put the "
    "final answer in \\boxed{}."
)
_SPLIT_SEEDS = {"train": 0, "test": 1, "validation": 2}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Expression:
    """Operands and the operators between them, evaluated left to right."""

    operands: tuple[int, ...]
    ops: tuple[str, ...]

    def text(self) -> str:
        parts = [str(self.operands[0])]
        for op, x in zip(self.ops, self.operands[1:]):
            parts += [op, str(x)]
        return " ".join(parts)

    def partials(self) -> list[int]:
        """Running totals after each operator: the result of each solution step."""
        acc, out = self.operands[0], []
        for op, x in zip(self.ops, self.operands[1:]):
            acc = apply(acc, op, x)
            out.append(acc)
        return out


def apply(a: int, op: str, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    raise ValueError(f"operator {op!r} is not one of + - *")


def parse_question(text: str) -> Expression | None:
    """The expression in a question or prompt ("Compute 3 + 4 - 1.", "What is 3 + 4 - 1?"), or None."""
    m = QUESTION_RE.search(text) or EXPRESSION_RE.search(text)
    if not m:
        return None
    tokens = re.findall(r"-?\d+|[+\-*]", m.group(1))
    operands, ops, expect_operand = [], [], True
    for tok in tokens:
        if expect_operand:
            operands.append(int(tok))
        else:
            ops.append(tok)
        expect_operand = not expect_operand
    if len(operands) != len(ops) + 1:
        return None
    return Expression(tuple(operands), tuple(ops))


def solution_text(expr: Expression, slip_step: int | None = None, slip: int = 0, stop_after: int | None = None) -> str:
    """Reference solution, optionally flawed the way imperfect demonstrations are.

    ``slip_step``: that step's result is off by ``slip`` and later steps carry the wrong value.
    ``stop_after``: only that many operations are worked out before the (then premature) boxed answer.
    """
    steps, acc = [], expr.operands[0]
    for i, (op, x) in enumerate(zip(expr.ops, expr.operands[1:])):
        if stop_after is not None and i >= stop_after:
            break
        result = apply(acc, op, x) + (slip if i == slip_step else 0)
        steps.append(f"{acc} {op} {x} = {result}")
        acc = result
    steps.append(f"\\boxed{{{acc}}}")
    return SEPARATOR.join(steps)


class ArithTask(TaskDefaults):
    """Synthetic multi-step arithmetic problems; splits are disjoint and deterministic.

    ``question_template`` is a key of ``QUESTION_TEMPLATES`` or a format string with ``{expr}``;
    ``prompt_suffix`` follows the question in the prompt ("instruct" = ``INSTRUCT_SUFFIX``).
    """

    name = "arith"
    max_new_tokens = 64  # at most 4 one-line steps and the boxed answer

    def __init__(self, min_operands: int = 2, max_operands: int = 3, max_operand: int = 9, ops: str = "+-",
                 train_size: int = 20000, seed: int = 1234, prompt_suffix: str = SEPARATOR,
                 question_template: str = "Compute {expr}."):
        if not 2 <= min_operands <= max_operands:
            raise ValueError(f"need 2 <= min_operands <= max_operands, got {min_operands}, {max_operands}")
        if max_operand < 1:
            raise ValueError(f"max_operand must be >= 1, got {max_operand}")
        bad = set(ops) - {"+", "-", "*"}
        if not ops or bad:
            raise ValueError(f"ops must be a non-empty string of + - *, got {ops!r}")
        question_template = QUESTION_TEMPLATES.get(question_template, question_template)
        if "{expr}" not in question_template:
            raise ValueError(f"question_template must be one of {', '.join(QUESTION_TEMPLATES)} or contain {{expr}}, "
                             f"got {question_template!r}")
        probe = question_template.format(expr="3 + 4 - 1")
        if parse_question(probe) != Expression((3, 4, 1), ("+", "-")):
            raise ValueError(f"question_template {question_template!r} hides the expression from the step checker: "
                             "keep {expr} apart from other digits")
        self.min_operands, self.max_operands, self.max_operand = min_operands, max_operands, max_operand
        self.ops, self.train_size, self.seed = ops, train_size, seed
        self.prompt_suffix = INSTRUCT_SUFFIX if prompt_suffix == "instruct" else prompt_suffix
        self.question_template = question_template

    def sample_expression(self, rng: random.Random) -> Expression:
        n = rng.randint(self.min_operands, self.max_operands)
        operands = tuple(rng.randint(1, self.max_operand) for _ in range(n))
        ops = tuple(rng.choice(self.ops) for _ in range(n - 1))
        return Expression(operands, ops)

    def problem(self, expr: Expression, pid: str) -> Problem:
        question = self.question_template.format(expr=expr.text())
        answer = expr.partials()[-1]
        return Problem(id=pid, question=question, prompt=question + self.prompt_suffix, answer=str(answer),
                       meta={"expression": expr.text(), "solution": solution_text(expr)})

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        """Deterministic problems of ``split``; test problems never appear in train."""
        if split not in _SPLIT_SEEDS:
            raise ValueError(f"split {split!r} is unknown for task arith; valid: {', '.join(_SPLIT_SEEDS)}")
        size = limit if limit is not None else (self.train_size if split == "train" else 500)
        held_out = set()
        if split == "train":
            for other in ("test", "validation"):
                held_out |= {p.meta["expression"] for p in self.load(other)}
        rng = random.Random(self.seed * 1000 + _SPLIT_SEEDS[split])
        problems, seen = [], set()
        attempts = 0
        while len(problems) < size and attempts < size * 50:
            attempts += 1
            expr = self.sample_expression(rng)
            if expr.text() in seen or expr.text() in held_out:
                continue
            seen.add(expr.text())
            problems.append(self.problem(expr, f"arith-{split}-{len(problems)}"))
        if split == "train" and len(problems) < size:
            # The held-out splits take their expressions first, so a small space leaves train skewed toward
            # whatever they did not exhaust (with operands <= 10, two-operand sums end up almost only in test).
            log.info("task arith: only %d distinct training problems outside the held-out splits (asked for %d); "
                     "the training mix may differ from the held-out one: raise max_operand or fix the operand count",
                     len(problems), size)
        return problems

    def demonstrations(self, n: int, error_rate: float, rng: random.Random,
                       early_stop_rate: float = 0.0) -> list[tuple[str, str]]:
        """(prompt, solution) pairs for the supervised warm start, imperfect like real SFT data.

        ``error_rate`` of them carry one arithmetic slip; ``early_stop_rate`` of them box the running total one
        operation too early (a premature answer).
        """
        demos = []
        for _ in range(n):
            expr = self.sample_expression(rng)
            slip_step, slip = None, 0
            if rng.random() < error_rate:
                slip_step = rng.randrange(len(expr.ops))
                slip = rng.choice([-2, -1, 1, 2])
            stop_after = len(expr.ops) - 1 if rng.random() < early_stop_rate else None
            demos.append((self.problem(expr, "demo").prompt, solution_text(expr, slip_step, slip, stop_after)))
        return demos
