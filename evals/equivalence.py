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

import math
import re
import threading
from dataclasses import dataclass
from fractions import Fraction

MAX_FAST_LEN = 400  # longer strings skip the number fast path; they are solution texts, not answers
_MATH_WORDS = {
    "pi",
    "sqrt",
    "frac",
    "infty",
    "inf",
    "cdot",
    "times",
    "log",
    "ln",
    "sin",
    "cos",
    "tan",
    "and",
    "or",
    "i",
    "e",
}
_UNIT_WORD = re.compile(
    r"^(.*?[\d}])(?:\s*\\(?:text|mbox|mathrm|textbf)\{\s*([a-zA-Z][a-zA-Z\s.]*)\}|\s+([a-zA-Z]{2,}(?:\s+[a-zA-Z]{2,}){0,2}))"
    r"(?:\^?\{?[23]\}?)?$"
)
_VAR_PREFIX = re.compile(r"^\\?[a-zA-Z](?:_\{?\w+\}?)?\s*=\s*")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}
_REPEATING = re.compile(r"(-?)(\d*)\.(\d*)\\overline\{(\d+)\}")
_MC = re.compile(r"^\(?([A-E])\)?$")
_DECIMAL = re.compile(r"-?(?:\d+\.?\d*|\.\d+)")
_SLASH = re.compile(r"(-?\d+)/(-?\d+)")
_POWER = re.compile(r"(\d+)\s*\^\s*\{?\s*(\d+)")
_TOWER = re.compile(r"(\d+)\s*\^\s*\{?\s*(\d+)\s*\^\s*\{?\s*(\d+)(\s*\^)?")
_FRAC = re.compile(r"(-)?\\frac(?:\{(-?\d+)\}|(\d))(?:\{(-?\d+)\}|(\d))")


@dataclass(frozen=True)
class Normalized:
    """An answer after the rule pipeline: ``text`` has no delimiters and no spaces except a comma's before three digits
    (``"32, 349"`` is a list, ``"32,349"`` a number); ``percent`` = it carried a % sign."""

    text: str
    percent: bool


def strip_delimiters(s: str) -> str:
    """Drop math delimiters and a whole-string box: ``"$\\boxed{5}$."`` -> ``"5"``, ``"\\(x\\)"`` -> ``"x"``."""
    prev = None
    while prev != s:
        prev = s
        s = s.strip().rstrip(".").strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if len(s) > len(left) + len(right) - 1 and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)]
        for box in ("\\boxed{", "\\fbox{"):
            if s.startswith(box) and s.endswith("}") and _balanced(s[len(box) : -1]):
                s = s[len(box) : -1]
    return s


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def drop_layout(s: str) -> str:
    """Remove sizing and spacing macros: ``"\\left( 1,\\! 2 \\right)"`` -> ``"( 1, 2 )"``; as thousands separators
    ``"1\\,000"`` -> ``"1000"`` and ``"32,\\!348"`` -> ``"32,348"``; a matrix row break ``\\\\ `` is kept."""
    s = re.sub(r"\\(?:left|right|big|Big|bigg|Bigg)(?![a-zA-Z])", "", s)
    s = re.sub(r"\\(?:displaystyle|quad|qquad)(?![a-zA-Z])", " ", s)
    s = re.sub(r"(?<=\d)\\[,;: ](?=\d{3})", "", s)
    s = re.sub(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))", ",", s)
    return re.sub(r"(?<!\\)\\[!,;: ]", " ", s)


def canonical_macros(s: str) -> str:
    """``\\dfrac``/``\\tfrac``/``\\cfrac`` -> ``\\frac``; ``^{9}`` -> ``^9``; ``\\mathrm{e}`` -> ``e`` (math-verify stops
    reading at it); ``{,}`` thousands go: ``"14{,}916"`` -> ``"14916"``."""
    s = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", s)
    s = re.sub(r"\^\{(\w)\}", r"^\1", s)
    s = re.sub(r"\\(?:mathrm|mathit|text|operatorname)\{([a-zA-Z])\}", r"\1", s)
    return s.replace("{,}", "")


def drop_degrees(s: str) -> str:
    """Degrees are dropped (Qwen): ``"90^\\circ"`` -> ``"90"``, ``"45°"`` -> ``"45"``, ``"30 degrees"`` -> ``"30"``."""
    s = re.sub(r"\^\s*\{?\\circ\}?|°|\\degree(?![a-zA-Z])", "", s)
    return re.sub(r"(?<=\d)\s*(?:\\text\{\s*)?degrees?\}?$", "", s)


def drop_currency(s: str) -> str:
    """Currency signs and words go: ``"\\$1,000"`` -> ``"1,000"``, ``"5 dollars"`` -> ``"5"``."""
    s = s.replace("\\$", "").replace("$", "").replace("€", "").replace("£", "")
    return re.sub(r"(?<=\d)\s*(?:\\text\{\s*)?(?:dollars?|cents?|euros?)\}?$", "", s)


def split_percent(s: str) -> tuple[str, bool]:
    """A trailing percent sign becomes a flag: ``"12.5\\%"`` -> ``("12.5", True)``, ``"12 percent"`` -> ``("12", True)``."""
    m = re.match(r"^(.*?)\s*(?:\\%|%|\\text\{\s*percent\s*\}|percent|pct)$", s)
    return (m.group(1), True) if m and m.group(1) else (s, False)


def unwrap_text(s: str) -> str:
    """A whole-string text wrapper goes: ``"\\text{Evelyn}"`` -> ``"Evelyn"``, ``"\\textbf{(B)}"`` -> ``"(B)"``."""
    m = re.fullmatch(r"\\(?:text|textbf|mathrm|mbox|textit|mathbf)\{([^{}]*)\}", s.strip())
    return m.group(1).strip() if m else s


def drop_units(s: str) -> str:
    """Unit words after a number go: ``"10\\text{ cm}^2"`` -> ``"10"``, ``"5 apples"`` -> ``"5"``; ``"2 \\pi"`` stays."""
    m = _UNIT_WORD.match(s.strip())
    if not m:
        return s
    words = (m.group(2) or m.group(3) or "").lower().split()
    if not words or any(w in _MATH_WORDS for w in words):
        return s
    return m.group(1)


def scale_words(s: str) -> str:
    """Number words for powers of ten become factors: ``"2.5 million"`` -> ``"2.5*10^6"`` (PRM800K's rule)."""
    m = re.fullmatch(r"(.*\d)\s*(?:\\text\{\s*)?(thousand|million|billion|trillion)\}?", s)
    return f"{m.group(1)}*10^{_SCALES[m.group(2)]}" if m else s


def mixed_number(s: str) -> str:
    """A whole number followed by a fraction is a mixed number: ``"7 3/4"`` -> ``"(7+3/4)"``, ``"-2\\frac{1}{4}"`` ->
    ``"-(2+1/4)"`` (math-verify reads ``2\\frac{1}{4}`` the same way; PRM800K does for ``7 3/4``)."""
    m = re.fullmatch(r"(-?)(\d+)(?:\s+(\d+)/(\d+)|\s*\\frac\{(\d+)\}\{(\d+)\})", s)
    if not m:
        return s
    num, den = (m.group(3), m.group(4)) if m.group(3) else (m.group(5), m.group(6))
    return f"{m.group(1)}({m.group(2)}+{num}/{den})"


def drop_variable_prefix(s: str) -> str:
    """A short ``name =`` prefix goes when the rest has no other ``=``: ``"x = 3"`` -> ``"3"``, ``"a=b=1"`` stays."""
    m = _VAR_PREFIX.match(s)
    if m and "=" not in s[m.end() :] and s[m.end() :].strip():
        return s[m.end() :]
    return s


def join_and(s: str) -> str:
    """``and``/``or`` joining answers becomes a comma: ``"19, 46, \\text{ and } 82"`` -> ``"19, 46, 82"``."""
    s = re.sub(r",?\s*\\text\{\s*(?:and|or)\s*\}\s*", ", ", s)
    return re.sub(r",?\s+(?:and|or)\s+", ", ", s)


def drop_thousands(s: str) -> str:
    """Comma-grouped numbers lose their commas when the whole answer is one number: ``"-1,234.5"`` -> ``"-1234.5"``."""
    return s.replace(",", "") if _THOUSANDS.fullmatch(s) else s


def multiple_choice(s: str) -> str:
    """A choice letter in parentheses is the bare letter: ``"(C)"`` -> ``"C"``."""
    m = _MC.match(s)
    return m.group(1) if m else s


def normalize(answer: str, drop_prefix: bool = True) -> Normalized:
    """The rule pipeline above, in order (see ``Normalized`` for spaces). ``drop_prefix=False`` keeps ``x =``."""
    s = strip_delimiters(answer)
    s = drop_layout(s)
    s = canonical_macros(s)
    s = unwrap_text(strip_delimiters(s))
    s = drop_degrees(s)
    s = drop_currency(s).strip()
    s, percent = split_percent(s)
    s = mixed_number(drop_units(scale_words(s.strip())))
    s = drop_variable_prefix(s.strip()) if drop_prefix else s.strip()
    s = join_and(s)
    s = drop_thousands(unwrap_text(strip_delimiters(s)).strip())
    s = multiple_choice(re.sub(r"(?<!,)\s+|(?<=,)\s+(?!\d{3}(?!\d))", "", s))
    return Normalized(s, percent)


def number_value(text: str) -> Fraction | None:
    """Exact value of a plain number, else None: ``"-0.25"``, ``"3/4"``, ``"\\frac{3}{4}"``, ``"-\\frac34"``, ``"0.\\overline{3}"``.

    Commas are not read here: ``normalize`` has already removed thousands separators where the spacing says so
    (``"1,000"``), and ``"32,349"`` left after removing spaces from ``"32, 349"`` is a list, not a number.
    """
    s = text.replace(" ", "")
    s = s.removeprefix("+")
    m = _REPEATING.fullmatch(s)
    if m:  # 0.1\overline{6} = 0.1 + 0.0666... = 1/10 + 6/90
        sign, whole, fixed, rep = m.groups()
        value = Fraction(int(whole or 0)) + Fraction(int(fixed or 0), 10 ** len(fixed))
        value += Fraction(int(rep), (10 ** len(rep) - 1) * 10 ** len(fixed))
        return -value if sign else value
    try:
        if _DECIMAL.fullmatch(s):
            return Fraction(s if not s.endswith(".") else s[:-1])
        m = _SLASH.fullmatch(s)
        if m:
            den = int(m.group(2))
            return Fraction(int(m.group(1)), den) if den else None
        m = _FRAC.fullmatch(s)
        if m:
            num, den = int(m.group(2) or m.group(3)), int(m.group(4) or m.group(5))
            if den == 0:
                return None
            return -Fraction(num, den) if m.group(1) else Fraction(num, den)
    except (ValueError, ZeroDivisionError):
        return None
    return None


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
