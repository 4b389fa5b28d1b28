"""Is a predicted answer equal to the gold answer? Cheap normalisation first, then math-verify (+ sympy).

Public API (stable):

- ``is_equivalent(pred, gold, timeout=5.0) -> bool``: either side may be a raw answer string (``"1,234"``, ``"$\\frac12$"``,
  ``"\\boxed{x=3}"``, ``"10\\%"``, ``"5 cm"``, ``"\\text{(C)}"``) or a whole solution text (math-verify then extracts from it).
- ``normalize(answer) -> Normalized``: the rule pipeline below, exposed for reports and tests.
- ``number_value(text) -> Fraction | None``: the exact value of a plain number (``"1000.5"``, ``"-\\frac{3}{4}"``, ``"3/4"``);
  ``arithmetic_value(text)``: the same for numbers-only arithmetic (``"-(18)"``, ``"\\frac{36}{2}+1"``).

Decision order: (1) the normalised strings are equal -> True; (2) both sides are plain numbers (or same-shaped lists of plain
numbers) -> decided exactly with ``Fraction`` arithmetic, no sympy (the fast path; near misses such as 17 vs 18 are rejected
here); (3) otherwise math-verify ``parse`` + ``verify(gold, pred)`` on the normalised strings wrapped in ``$...$`` and on the raw
strings, plus an element-wise pass for unbracketed comma lists. Any True wins.

Conventions, following Qwen2.5-Math's ``strip_string``/``math_equal`` unless stated:
- units, ``$``, degrees, ``\\text{}`` wrappers, thousands separators and ``x =`` prefixes (one-or-two-character left side) are
  dropped; ``\\dfrac``/``\\tfrac`` are ``\\frac``; text answers compare case-insensitively.
- Percent (deliberate difference): ``10\\%`` equals ``10`` and ``0.1`` (the sign is either dropped or read as /100), but a bare
  ``50`` does NOT equal a bare ``0.5``; Qwen's ``include_percentage`` accepts ref*100 and ref/100 for any number, which rewards a
  wrong scale in RL.
- Numbers: exact rational equality, or a relative difference <= 1e-6 when either side is a finite decimal (``0.333333`` equals
  ``1/3``; ``0.33`` does not). Qwen uses rel_tol 1e-4, which accepts ``3.1416`` for ``\\pi``-free ``3.14159``; we are stricter.
- Decimal commas are not read (deliberate difference from math-verify): ``"0,111"`` is the list 0, 111, not 0.111, because
  MATH answers write lists with commas.
- Unbracketed comma lists are unordered (``"1, 2"`` equals ``"2, 1"``: "find all solutions"); bracketed tuples and intervals are
  ordered and keep their bracket type.

``timeout`` bounds math-verify's own (``signal.alarm``) timers, which only work in a main thread; the hard wall-clock limit
belongs to ``evals.verifier.MathVerifier``, which runs this in worker processes it kills when they overrun.
"""


from __future__ import annotations

from fractions import Fraction

from evals.arithmetic import arithmetic_value
from evals.mathverify import _math_verify, is_bare_answer, too_big_to_evaluate
from evals.normalize import MAX_FAST_LEN, Normalized, normalize, number_value


def numbers_equal(a: Fraction, b: Fraction, inexact: bool) -> bool:
    """``a == b`` exactly, or ``|a - b| <= 1e-6 * max(1, |b|)`` when one side was a rounded decimal."""
    if a == b:
        return True
    return inexact and abs(a - b) <= Fraction(1, 10**6) * max(1, abs(b))


def _is_decimal(text: str) -> bool:
    return "." in text


def compare_numbers(pred: Normalized, gold: Normalized) -> bool | None:
    """Decide two plain numbers (percent-aware), or None when either side is not a plain number.

    ``pred="28", gold="28%"`` -> True (sign dropped); ``pred="0.28", gold="28%"`` -> True (sign read as /100);
    ``pred="50", gold="0.5"`` -> False (no % on either side, no rescaling).
    """
    p, g = number_value(pred.text), number_value(gold.text)
    p = arithmetic_value(pred.text) if p is None and len(pred.text) <= 64 else p
    g = arithmetic_value(gold.text) if g is None and len(gold.text) <= 64 else g
    if p is None or g is None:
        return None
    inexact = _is_decimal(pred.text) or _is_decimal(gold.text)
    if numbers_equal(p, g, inexact):
        return True
    if pred.percent != gold.percent:
        if pred.percent:
            return numbers_equal(p / 100, g, inexact)
        return numbers_equal(p, g / 100, inexact)
    return False


def split_top_level(s: str) -> list[str]:
    """Split on commas outside brackets: ``"(1,2),3"`` -> ``["(1,2)", "3"]``."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(s):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    parts.append(s[start:])
    return parts


def _bracketed(s: str) -> tuple[str, str, str] | None:
    """``"(1,2]"`` -> ``("(", "1,2", "]")`` when one bracket pair encloses the whole string."""
    if len(s) < 2 or s[0] not in "([" or s[-1] not in ")]":
        return None
    inner = s[1:-1]
    depth = 0
    for ch in inner:
        depth += (ch in "([{") - (ch in ")]}")
        if depth < 0:
            return None
    return (s[0], inner, s[-1]) if depth == 0 else None


def compare_number_lists(pred: Normalized, gold: Normalized) -> bool | None:
    """Lists of plain numbers: bracketed ones ordered with equal brackets, bare ones as multisets; None if not such lists.

    ``"(1,2]"`` vs ``"(1,2]"`` -> True; ``"2,1"`` vs ``"1,2"`` -> True; ``"(2,1)"`` vs ``"(1,2)"`` -> False.
    """
    bp, bg = _bracketed(pred.text), _bracketed(gold.text)
    if (bp is None) != (bg is None):
        return None
    ordered = bp is not None
    if ordered and (bp[0], bp[2]) != (bg[0], bg[2]):
        return None
    items_p = split_top_level(bp[1] if ordered else pred.text)
    items_g = split_top_level(bg[1] if ordered else gold.text)
    if len(items_g) < 2 and not ordered:
        return None
    vals_p = [number_value(x) for x in items_p]
    vals_g = [number_value(x) for x in items_g]
    if any(v is None for v in vals_p + vals_g):
        return None
    if len(vals_p) != len(vals_g):
        return False
    if not ordered:
        vals_p, vals_g = sorted(vals_p), sorted(vals_g)
    inexact = _is_decimal(pred.text) or _is_decimal(gold.text)
    return all(numbers_equal(a, b, inexact) for a, b in zip(vals_p, vals_g))


def fast_verdict(pred: str, gold: str) -> bool | None:
    """The no-sympy decision (string equality, plain numbers, number lists), or None when sympy is needed."""
    if pred == gold:
        return True
    if len(pred) > MAX_FAST_LEN or len(gold) > MAX_FAST_LEN:
        return None
    np_, ng = normalize(pred), normalize(gold)
    if not np_.text or not ng.text:
        return None
    if np_.text == ng.text or (np_.text.lower() == ng.text.lower() and ng.text.isalpha()):
        return True
    verdict = compare_numbers(np_, ng)
    if verdict is None:
        verdict = compare_number_lists(np_, ng)
    return verdict



def _extracted_pair(pred: str, gold: str) -> tuple[str, str] | None:
    """Solution texts reduced to their final answers (``evals.answer.extract_answer``), when that changes anything."""
    from evals.answer import extract_answer

    ep = pred if is_bare_answer(pred) else extract_answer(pred)
    eg = gold if is_bare_answer(gold) else extract_answer(gold)
    if ep is None or eg is None or (ep, eg) == (pred, gold):
        return None
    return ep, eg


def _elementwise(pred: str, gold: str, timeout: float) -> bool:
    """Unbracketed comma lists as multisets, each pair through ``is_equivalent``: ``"x=1, 2"`` vs ``"2, 1"``."""
    if len(pred) > MAX_FAST_LEN or len(gold) > MAX_FAST_LEN:
        return False
    items_p, items_g = split_top_level(normalize(pred).text), split_top_level(normalize(gold).text)
    if len(items_g) < 2 or len(items_p) != len(items_g) or len(items_g) > 16:
        return False
    remaining = list(items_p)
    for g in items_g:
        match = next((p for p in remaining if is_equivalent(p, g, timeout)), None)
        if match is None:
            return False
        remaining.remove(match)
    return True


def is_equivalent(pred: str, gold: str, timeout: float = 5.0) -> bool:
    """True when ``pred`` denotes the same answer as ``gold`` under the conventions in the module docstring."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        raise TypeError(f"pred and gold must be str, got {type(pred).__name__} and {type(gold).__name__}")
    if timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be > 0 seconds")
    fast = fast_verdict(pred, gold)
    if fast is not None:
        return fast
    if too_big_to_evaluate(pred) or too_big_to_evaluate(gold):
        return False
    if _math_verify(pred, gold, timeout):
        return True
    if _elementwise(pred, gold, timeout):
        return True
    extracted = _extracted_pair(pred, gold)
    return extracted is not None and is_equivalent(*extracted, timeout=timeout)

