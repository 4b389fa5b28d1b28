"""A deterministic process reward for the arithmetic task: every step is checked, none is guessed.

Step k of a solution to "Compute a0 op1 a1 op2 a2 ..." must read "x op_k a_k = y" where x is the previous
step's result (a0 for the first step) and y = x op_k a_k. The final step must be ``\\boxed{y}`` with the last
result. A step scores +1 when it is exactly right and -1 otherwise (wrong arithmetic, a skipped or invented
operand, garbage, or extra steps), so min-form credit keys on the first mistake.

``ArithPRM(mode="lenient")`` reads an instruct model's prose: it finds every equation inside a step
("First, 7 + 12 = 19.", "7 + 12 - 5 = \\boxed{14}"), scores a step +1 when all its equations are true and
use only the question's numbers or earlier results, -1 when one is false or invents a number, and 0 (neutral)
when the step only narrates. A ``\\boxed{}`` answer must equal the expression's value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evals.arith import Expression, apply, parse_question

EQUATION_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")
BOXED_RE = re.compile(r"^\s*\\boxed\{\s*(-?\d+)\s*\}\s*$")
# Lenient mode: an equation anywhere in prose, "a op b [op c ...] = r", with "×" read as "*" and
# "\boxed{r}" read as r; the lookbehind keeps "1." of a numbered list and "2x" out of the left side.
PROSE_EQUATION_RE = re.compile(r"(?<![\w.])(-?\d+(?:\s*[+\-*×]\s*-?\d+)+)\s*=\s*(-?\d+)")
PROSE_BOXED_RE = re.compile(r"\\boxed\{\s*(-?\d+)\s*\}")
MODES = ("strict", "lenient")


def score_solution(expr: Expression, steps: Sequence[str]) -> list[float]:
    """+1 / -1 per step; the running value follows what the solution wrote, so one slip costs one step."""
    scores = []
    acc = expr.operands[0]
    for k, step in enumerate(steps):
        if k < len(expr.ops):
            m = EQUATION_RE.match(step)
            ok = (bool(m) and int(m.group(1)) == acc and m.group(2) == expr.ops[k]
                  and int(m.group(3)) == expr.operands[k + 1])
            ok = ok and int(m.group(4)) == apply(acc, expr.ops[k], expr.operands[k + 1])
            acc = int(m.group(4)) if m else acc
        elif k == len(expr.ops):
            m = BOXED_RE.match(step)
            ok = bool(m) and int(m.group(1)) == acc
        else:
            ok = False
        scores.append(1.0 if ok else -1.0)
    return scores


def eval_left_to_right(chain: str) -> tuple[list[int], int]:
    """Operands of ``chain`` ("7 + 12 - 5") and its value evaluated left to right, as the task defines it."""
    operands: list[int] = []
    ops: list[str] = []
    sign = 1
    for tok in re.findall(r"\d+|[+\-*×]", chain):
        if tok.isdigit():
            operands.append(sign * int(tok))
            sign = 1
        elif len(operands) == len(ops):  # an operator where an operand belongs: a unary minus
            sign = -sign if tok == "-" else sign
        else:
            ops.append("*" if tok == "×" else tok)
    acc = operands[0]
    for op, x in zip(ops, operands[1:]):
        acc = apply(acc, op, x)
    return operands, acc


def score_prose_solution(expr: Expression, steps: Sequence[str]) -> list[float]:
    """+1 / -1 / 0 per step of a natural-language solution (see the module docstring).

    known = the question's operands plus every result written so far; an equation whose left side uses a
    number outside ``known`` skipped or invented something. Results count as known even when wrong, so one
    slip costs its own step, as in the strict mode.
    """
    answer = expr.partials()[-1]
    known = set(expr.operands)
    scores = []
    for step in steps:
        boxed = [int(b) for b in PROSE_BOXED_RE.findall(step)]
        text = PROSE_BOXED_RE.sub(lambda m: m.group(1), step)
        equations = PROSE_EQUATION_RE.findall(text)
        if not equations and not boxed:
            scores.append(0.0)
            continue
        ok = all(b == answer for b in boxed)
        for lhs, rhs in equations:
            operands, value = eval_left_to_right(lhs)
            ok = ok and value == int(rhs) and all(x in known for x in operands)
            known.add(int(rhs))
        scores.append(1.0 if ok else -1.0)
    return scores


class ArithPRM:
    """Rule-based PRM for ``task=arith``; reads the expression from the prompt text.

    ``mode="strict"`` (default) wants the reference layout, one bare equation per step; ``mode="lenient"``
    finds equations inside prose and scores narration 0. ``require_boxed=True`` scores the last step -1 when
    no step commits to a ``\\boxed{}`` answer: otherwise a policy that has learnt its equations are often
    wrong can earn more by narrating without ever answering (a truncated ramble scores 0, an attempt -1).
    """

    score_range = (-1.0, 1.0)

    def __init__(self, mode: str = "strict", require_boxed: bool = False):
        if mode not in MODES:
            raise ValueError(f"ArithPRM mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.require_boxed = require_boxed

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        if len(prompts) != len(steps):
            raise ValueError(f"got {len(prompts)} prompts but {len(steps)} step lists")
        out: list[list[float] | None] = []
        for prompt, row in zip(prompts, steps):
            expr = parse_question(prompt)
            if expr is None:
                raise ValueError(
                    f"arith PRM: no 'Compute ...' expression (or 'a + b - c' question) in prompt {prompt[:80]!r}")
            scores = score_solution(expr, row) if self.mode == "strict" else score_prose_solution(expr, row)
            if self.require_boxed and scores and not any(PROSE_BOXED_RE.search(step) for step in row):
                scores[-1] = -1.0
            out.append(scores)
        return out
