"""The math-verify (+ sympy) side of ``evals.equivalence``: bounded ``parse`` + ``verify`` and a numeric probe that
catches symbolic answers math-verify wrongly calls equal."""

from __future__ import annotations

import math
import re
import threading

from evals.normalize import _POWER, _TOWER, MAX_FAST_LEN, normalize, strip_delimiters


def _mv_timeout(timeout: float) -> int | None:
    """math-verify's whole-second ``signal.alarm``; None where signals cannot be used (non-main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return max(1, math.floor(timeout) - 1) if timeout >= 2 else 1


def too_big_to_evaluate(s: str) -> bool:
    """Numeric powers sympy would expand into huge integers: ``"9^{9^{9^9}}"``, ``"2^{1000000}"``; ``"2^{2^3}"`` is fine.

    Such answers are compared as normalised strings only: evaluating them stalls sympy inside C code, where no timer reaches.
    """
    for m in _POWER.finditer(s):
        if int(m.group(1)) > 1 and len(m.group(2)) > 5:
            return True
    for m in _TOWER.finditer(s):
        base, exp = int(m.group(2)), int(m.group(3))
        if m.group(4) or (base > 1 and exp * math.log10(base) > 5):
            return True
    return False


def _delimited(s: str) -> str:
    """Short bare LaTeX gets ``$...$`` so math-verify reads it; texts with delimiters or a box go as they are."""
    return s if "$" in s or "\\boxed" in s or "\\(" in s or len(s) > MAX_FAST_LEN else f"${s}$"


def is_bare_answer(s: str) -> bool:
    """An answer, not a solution text: no inner math delimiters, boxes, line breaks or runs of words.

    ``"$\\frac{1}{2}$"`` and ``"10 cm"`` are bare; ``"Answer $ 9 $"`` and ``"so \\boxed{3}"`` are not.
    """
    if len(s) > MAX_FAST_LEN:
        return False
    inner = strip_delimiters(s)
    if any(t in inner for t in ("$", "\\(", "\\[", "\\boxed", "\\fbox", "\n", "####")):
        return False
    return len(re.findall(r"[a-zA-Z]{2,}", re.sub(r"\\[a-zA-Z]+", "", inner))) < 3


def _math_verify(pred: str, gold: str, timeout: float) -> bool:
    """math-verify on the normalised bare answers in ``$...$``, else on the raw strings (math-verify extracts from text)."""
    from math_verify import parse, verify

    secs = _mv_timeout(timeout)
    if is_bare_answer(pred) and is_bare_answer(gold):
        np_, ng = normalize(pred), normalize(gold)
        attempts = [(f"${np_.text}$", f"${ng.text}$")] if np_.text and ng.text else []
        if attempts and np_.percent != ng.percent:
            scaled_p = f"$\\frac{{{np_.text}}}{{100}}$" if np_.percent else f"${np_.text}$"
            scaled_g = f"$\\frac{{{ng.text}}}{{100}}$" if ng.percent else f"${ng.text}$"
            attempts.append((scaled_p, scaled_g))
        if attempts and "=" in pred and "=" in gold:
            kp, kg = normalize(pred, drop_prefix=False), normalize(gold, drop_prefix=False)
            attempts.append((f"${kp.text}$", f"${kg.text}$"))  # equation vs equation: y=-x/2+3/4 vs 2x+4y-3=0
        for p, g in attempts:
            gold_parsed = parse(g, parsing_timeout=secs)
            pred_parsed = parse(p, parsing_timeout=secs)
            if _different(gold_parsed, pred_parsed, secs):
                if (p, g) == attempts[-1]:
                    return False
                continue
            if gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=secs):
                return True
            if gold_parsed and pred_parsed and (p, g) == attempts[-1]:
                return False  # both normalised answers parsed: the raw strings would say the same, twice as slowly
    gold_parsed, pred_parsed = (
        parse(_delimited(gold), parsing_timeout=secs),
        parse(_delimited(pred), parsing_timeout=secs),
    )
    return bool(gold_parsed and pred_parsed and verify(gold_parsed, pred_parsed, timeout_seconds=secs))


_PROBE_VALUES = ("13/7", "17/11", "19/13", "23/17")


def numerically_different(a: object, b: object) -> bool:
    """True when two sympy expressions (or same-length tuples of them) take clearly different values at a fixed
    rational point: relative gap > 1e-4 in some component.

    A difference at one point proves the expressions are not identically equal, so math-verify's ``simplify(a - b)``
    can be skipped: ``x^2+1`` vs ``x^2-1`` is rejected in microseconds. Everything else (equal values, relations,
    sets, intervals, matrices, unknown functions, more than four symbols, evaluation errors) returns False and goes
    to math-verify.
    """
    import sympy

    if isinstance(a, sympy.Tuple) and isinstance(b, sympy.Tuple):
        return len(a) == len(b) and any(numerically_different(x, y) for x, y in zip(a, b))
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return False
    if a.atoms(sympy.core.function.AppliedUndef) or b.atoms(sympy.core.function.AppliedUndef):
        return False
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    if len(symbols) > len(_PROBE_VALUES):
        return False
    point = {sym: sympy.Rational(v) for sym, v in zip(symbols, _PROBE_VALUES)}
    try:
        va, vb = complex(a.subs(point).evalf(30)), complex(b.subs(point).evalf(30))
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return False
    if not all(math.isfinite(x) for x in (va.real, va.imag, vb.real, vb.imag)):
        return False
    return abs(va - vb) > 1e-4 * max(1.0, abs(vb))


def _different(gold_parsed: list, pred_parsed: list, secs: int | None) -> bool:
    """``numerically_different`` on math-verify's parsed values, under its own timer when one is available."""
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout as mv_timeout

    if not gold_parsed or not pred_parsed:
        return False
    try:
        return mv_timeout(secs)(numerically_different)(gold_parsed[0], pred_parsed[0])
    except TimeoutException:
        return False


