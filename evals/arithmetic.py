"""Exact values of numbers-only arithmetic (``"-(18)"``, ``"\\frac{36}{2}+1"``): a small recursive-descent parser over
``Fraction``, so the fast path of ``evals.equivalence`` decides such answers without sympy."""

from __future__ import annotations

import re
from fractions import Fraction

_TOKEN = re.compile(r"\s*(\d+\.?\d*|\.\d+|\\frac|\\cdot|\\times|[-+*/^(){}])")
_MAX_EXPONENT = 64


def arithmetic_value(text: str) -> Fraction | None:
    """Exact value of a numbers-only expression (``+ - * / ^``, parentheses, ``\\frac``, ``\\cdot``), else None.

    ``"-(18)"`` -> -18, ``"\\frac{36}{2}+1"`` -> 19, ``"2^{10}"`` -> 1024; ``"\\sqrt{2}"``, ``"x+1"``, ``"1/0"`` -> None.
    Exponents are integers up to 64, so nothing here can explode; anything else is left to sympy.
    """
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            if text[pos:].strip():
                return None
            break
        tokens.append(m.group(1))
        pos = m.end()
    try:
        value, rest = _sum(tokens, 0)
    except (ValueError, ZeroDivisionError, IndexError, OverflowError):
        return None
    return value if rest == len(tokens) else None


def _sum(t: list[str], i: int) -> tuple[Fraction, int]:
    value, i = _product(t, i)
    while i < len(t) and t[i] in "+-":
        rhs, j = _product(t, i + 1)
        value, i = (value + rhs if t[i] == "+" else value - rhs), j
    return value, i


def _product(t: list[str], i: int) -> tuple[Fraction, int]:
    value, i = _unary(t, i)
    while i < len(t) and t[i] in ("*", "/", "\\cdot", "\\times"):
        rhs, j = _unary(t, i + 1)
        value, i = (value / rhs if t[i] == "/" else value * rhs), j
    return value, i


def _unary(t: list[str], i: int) -> tuple[Fraction, int]:
    if t[i] in "+-":
        value, j = _unary(t, i + 1)
        return (-value if t[i] == "-" else value), j
    return _power(t, i)


def _power(t: list[str], i: int) -> tuple[Fraction, int]:
    base, i = _atom(t, i)
    if i < len(t) and t[i] == "^":
        exponent, i = _atom(t, i + 1)
        if exponent.denominator != 1 or abs(exponent) > _MAX_EXPONENT:
            raise ValueError("exponent out of range")
        return base ** int(exponent), i
    return base, i


def _atom(t: list[str], i: int) -> tuple[Fraction, int]:
    tok = t[i]
    if tok in ("(", "{"):
        value, i = _sum(t, i + 1)
        if t[i] != {"(": ")", "{": "}"}[tok]:
            raise ValueError("unbalanced")
        return value, i + 1
    if tok == "\\frac":
        num, i = _atom(t, i + 1)
        den, i = _atom(t, i)
        return num / den, i
    if tok[0].isdigit() or tok[0] == ".":
        return Fraction(tok.rstrip(".") if tok.endswith(".") else tok), i + 1
    raise ValueError(f"unexpected {tok!r}")


