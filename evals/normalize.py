"""Answer normalisation (the rule pipeline of ``evals.equivalence``) and the exact value of a plain number.

``normalize(answer) -> Normalized`` applies the rules below in order; ``number_value(text) -> Fraction | None`` reads
``"1000.5"``, ``"-\\frac{3}{4}"``, ``"3/4"`` exactly. The conventions are listed in ``evals.equivalence``.
"""

from __future__ import annotations

import re
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


