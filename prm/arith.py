"""A deterministic process reward for the arithmetic task: every step is checked, none is guessed.

Step k of a solution to "Compute a0 op1 a1 op2 a2 ..." must read "x op_k a_k = y" where x is the previous
step's result (a0 for the first step) and y = x op_k a_k. The final step must be ``\\boxed{y}`` with the last
result. A step scores +1 when it is exactly right and -1 otherwise (wrong arithmetic, a skipped or invented
operand, garbage, or extra steps), so min-form credit keys on the first mistake.
"""

from __future__ import annotations

import re
from typing import Sequence

from evals.arith import Expression, apply, parse_question

EQUATION_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")
BOXED_RE = re.compile(r"^\s*\\boxed\{\s*(-?\d+)\s*\}\s*$")


def score_solution(expr: Expression, steps: Sequence[str]) -> list[float]:
    """+1 / -1 per step; the running value follows what the solution wrote, so one slip costs one step."""
    scores = []
    acc = expr.operands[0]
    for k, step in enumerate(steps):
        if k < len(expr.ops):
            m = EQUATION_RE.match(step)
            ok = bool(m) and int(m.group(1)) == acc and m.group(2) == expr.ops[k] and int(m.group(3)) == expr.operands[k + 1]
            ok = ok and int(m.group(4)) == apply(acc, expr.ops[k], expr.operands[k + 1])
            acc = int(m.group(4)) if m else acc
        elif k == len(expr.ops):
            m = BOXED_RE.match(step)
            ok = bool(m) and int(m.group(1)) == acc
        else:
            ok = False
        scores.append(1.0 if ok else -1.0)
    return scores


class ArithPRM:
    """Rule-based PRM for ``task=arith``; reads the expression from the prompt text."""

    score_range = (-1.0, 1.0)

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        if len(prompts) != len(steps):
            raise ValueError(f"got {len(prompts)} prompts but {len(steps)} step lists")
        out: list[list[float] | None] = []
        for prompt, row in zip(prompts, steps):
            expr = parse_question(prompt)
            if expr is None:
                raise ValueError(f"arith PRM: no 'Compute ...' expression in prompt {prompt[:80]!r}")
            out.append(score_solution(expr, row))
        return out
