"""Final-answer extraction from model outputs, plus lm-evaluation-harness's GSM8K regexes for comparison.

Public API (stable; the trainer and ``evals.run`` use it):

- ``extract_answer(text, style="auto") -> str | None``: the final answer as a string, or None when nothing is found.
  Styles: ``boxed`` (last ``\\boxed{...}`` / ``\\fbox{...}``, brace-matched, also ``\\boxed 5``), ``gsm8k`` (after ``####``),
  ``answer_is`` ("The answer is X", "final answer is X", Minerva's "final answer is $X$. I hope"), ``last_number``
  (the last number in the text), ``auto`` (Qwen2.5-Math harness order: Minerva -> boxed -> ``####`` -> "answer is" ->
  last number; ``####`` is added because GSM8K reference solutions use it).
- ``lm_eval_strict(text, variant)`` / ``lm_eval_flexible(text)``: lm-eval's ``strict-match`` and ``flexible-extract`` filters
  (task version 3.0), returning ``"[invalid]"`` when nothing matches, as lm-eval does.
- ``lm_eval_exact_match(pred, gold)``: lm-eval's ``exact_match`` with the GSM8K ``regexes_to_ignore`` and ``ignore_case``.

Every function is linear-time in the text length (no regex with nested quantifiers), so adversarial inputs cannot
stall extraction; the equivalence check is what needs a hard timeout.
"""

from __future__ import annotations

import re

STYLES = ("auto", "boxed", "gsm8k", "answer_is", "last_number")

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MINERVA = re.compile(r"final answer is \$([^$]+)\$\.? ?I hope")
_ANSWER_IS = ("he answer is", "final answer is")
# A thousands-grouped number first, so "1,234.5" is one number and "1, 2" is two.
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d*\.?\d+")

LM_EVAL_STRICT = {
    "gsm8k": re.compile(r"#### (\-?[0-9\.\,]+)"),
    "gsm8k_cot": re.compile(r"The answer is (\-?[0-9\.\,]+)."),
    "gsm8k_cot_llama": re.compile(r"The final answer is ((-?[$0-9.,]{2,})|(-?[0-9]+))"),
}
LM_EVAL_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
LM_EVAL_IGNORE = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))
INVALID = "[invalid]"


def _clean(answer: str) -> str | None:
    """Strip whitespace, one pair of surrounding ``$``, and a trailing period: ``" $5$. "`` -> ``"5"``."""
    answer = answer.strip()
    if len(answer) >= 2 and answer[0] == "$" and answer[-1] == "$":
        answer = answer.strip("$").strip()
    answer = answer.rstrip(".").strip() if not re.fullmatch(r"\.\d+", answer) else answer
    return answer or None


def _brace_group(text: str, start: int) -> str | None:
    """Content of the ``{...}`` group opening at ``text[start]``, brace-matched; None if it never closes."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
    return None


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` or ``\\fbox{...}``: ``"so \\boxed{\\frac{1}{2}}."`` -> ``"\\frac{1}{2}"``.

    ``\\boxed 5`` (no braces) yields the token after the space, up to ``$`` or whitespace.
    """
    pos = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    if pos < 0:
        return None
    cmd = "\\boxed" if text.startswith("\\boxed", pos) else "\\fbox"
    i = pos + len(cmd)
    if text.startswith("{", i):
        inner = _brace_group(text, i)
        return _clean(inner) if inner is not None else None
    if i < len(text) and text[i] == " ":
        token = re.match(r"\s*([^\s$]+)", text[i : i + 1000])
        return _clean(token.group(1)) if token else None
    return None


def extract_gsm8k(text: str) -> str | None:
    """Text after the first ``####`` up to the end of its line: ``"...\\n#### 1,234"`` -> ``"1,234"``."""
    pos = text.find("####")
    if pos < 0:
        return None
    line = text[pos + 4 :].split("\n", 1)[0]
    return _clean(line)


def _last_minerva(text: str) -> str | None:
    """The last Minerva-format answer (``final answer is $X$. I hope``); a model may restate it, the last one counts."""
    last = None
    for last in _MINERVA.finditer(text):
        pass
    return _clean(last.group(1)) if last else None


def extract_answer_is(text: str) -> str | None:
    """Minerva's ``final answer is $X$. I hope`` -> X; else the sentence after the last "the answer is" / "final answer is".

    ``"So the answer is 42. Done"`` -> ``"42"``; a ``\\boxed`` inside the sentence is unwrapped.
    """
    minerva = _last_minerva(text)
    if minerva is not None:
        return minerva
    for anchor in _ANSWER_IS:
        pos = text.rfind(anchor)
        if pos < 0:
            continue
        rest = text[pos + len(anchor) :].lstrip(" :")
        rest = rest.split("\n", 1)[0]
        sentence = re.split(r"\.(?:\s|$)", rest, maxsplit=1)[0]
        boxed = extract_boxed(sentence)
        return boxed if boxed is not None else _clean(sentence)
    return None


def extract_last_number(text: str) -> str | None:
    """The last number in the text, thousands separators removed: ``"it costs $1,200 and 3 more"`` -> ``"3"``."""
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return last.group(0).replace(",", "") if last else None


_EXTRACTORS = {
    "boxed": extract_boxed,
    "gsm8k": extract_gsm8k,
    "answer_is": extract_answer_is,
    "last_number": extract_last_number,
}


def extract_answer(text: str, style: str = "auto") -> str | None:
    """The final answer in ``text`` by ``style`` (see the module docstring), or None when nothing is found."""
    if style not in STYLES:
        raise ValueError(f"style={style!r} is not an extraction style; valid: {', '.join(STYLES)}")
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    if style != "auto":
        return _EXTRACTORS[style](text)
    minerva = _last_minerva(text)
    if minerva is not None:
        return minerva
    for extractor in (extract_boxed, extract_gsm8k, extract_answer_is, extract_last_number):
        found = extractor(text)
        if found is not None:
            return found
    return None


def _first_group(match: re.Match | tuple | str) -> str:
    """lm-eval's RegexFilter: for tuple matches take the first non-empty group."""
    if isinstance(match, tuple):
        return next((g for g in match if g), match[0])
    return match


def lm_eval_strict(text: str, variant: str = "gsm8k") -> str:
    """lm-eval ``strict-match``: the first regex match (``group_select: 0``), else ``"[invalid]"``.

    ``variant``: ``gsm8k`` (``#### N``), ``gsm8k_cot`` / zero-shot CoT (``The answer is N.``), ``gsm8k_cot_llama``.
    """
    if variant not in LM_EVAL_STRICT:
        raise ValueError(
            f"variant={variant!r} is not an lm-eval strict-match variant; valid: {', '.join(LM_EVAL_STRICT)}"
        )
    matches = LM_EVAL_STRICT[variant].findall(text)
    if not matches:
        return INVALID
    return _first_group(matches[0]).strip()


def lm_eval_flexible(text: str) -> str:
    """lm-eval ``flexible-extract``: the last number-like match anywhere (``group_select: -1``), else ``"[invalid]"``."""
    matches = LM_EVAL_FLEXIBLE.findall(text)
    if not matches:
        return INVALID
    return _first_group(matches[-1]).strip()


def lm_eval_normalize(text: str) -> str:
    """lm-eval GSM8K ``exact_match`` preprocessing: drop commas, ``$``, everything up to ``#### ``, one trailing ``.``; lowercase."""
    for pattern in LM_EVAL_IGNORE:
        text = pattern.sub("", text)
    return text.strip().lower()


def lm_eval_exact_match(pred: str, gold: str) -> bool:
    """lm-eval ``exact_match`` (``ignore_case``, GSM8K ``regexes_to_ignore``) on already-filtered strings."""
    return lm_eval_normalize(pred) == lm_eval_normalize(gold)
