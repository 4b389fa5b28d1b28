"""Answer extraction: each style, the auto order, lm-eval's GSM8K regexes, and linear-time behaviour on hostile text."""

import json
from pathlib import Path

import pytest

from evals.answer import (
    INVALID,
    extract_answer,
    extract_boxed,
    lm_eval_exact_match,
    lm_eval_flexible,
    lm_eval_normalize,
    lm_eval_strict,
)

GSM8K_TEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "gsm8k" / "test.jsonl"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("so \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # last box, escaped braces balance
        ("nested \\boxed{\\sqrt{\\frac{a}{b}}} end", "\\sqrt{\\frac{a}{b}}"),
        ("\\fbox{42}", "42"),
        ("the result is $\\boxed 5$.", "5"),
        ("truncated \\boxed{12", None),
        ("no box here", None),
        ("\\boxed{ $7$ }", "7"),
    ],
)
def test_boxed(text, expected):
    assert extract_answer(text, "boxed") == expected


def test_boxed_prefers_the_later_of_boxed_and_fbox():
    assert extract_boxed("\\boxed{1} and later \\fbox{2}") == "2"
    assert extract_boxed("\\fbox{1} and later \\boxed{2}") == "2"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She pays 3 * 4 = <<3*4=12>>12.\n#### 1,200", "1,200"),
        ("#### 18\nQuestion: next #### 99", "18"),
        ("no hashes", None),
    ],
)
def test_gsm8k(text, expected):
    assert extract_answer(text, "gsm8k") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("So the answer is 42. Then more text.", "42"),
        ("The answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("Final Answer: The final answer is $x^2$. I hope it is correct.", "x^2"),
        ("final answer is $3$. I hope ... final answer is $5$. I hope", "5"),  # the restated (last) answer counts
        ("the answer is \\boxed{7} clearly", "7"),
        ("nothing", None),
    ],
)
def test_answer_is(text, expected):
    assert extract_answer(text, "answer_is") == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("it costs $1,200 and 3 more", "3"),
        ("total: 1,234,567", "1234567"),
        ("values 1, 2", "2"),
        ("-0.5 and -.25", "-.25"),
        ("none", None),
    ],
)
def test_last_number(text, expected):
    assert extract_answer(text, "last_number") == expected


def test_auto_order_follows_qwen_harness():
    minerva = "The final answer is $4$. I hope it is correct. \\boxed{5}"
    assert extract_answer(minerva) == "4"
    assert extract_answer("The answer is 3. \\boxed{5}") == "5"  # boxed before "answer is"
    assert extract_answer("#### 8\nThe answer is 3.") == "8"  # #### before "answer is"
    assert extract_answer("The answer is 3. Later 9") == "3"
    assert extract_answer("only a number 9 here") == "9"
    assert extract_answer("no answer at all") is None


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="style='latex'.*valid: auto, boxed"):
        extract_answer("x", "latex")
    with pytest.raises(TypeError, match="text must be str"):
        extract_answer(b"\\boxed{1}")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="variant='minerva'"):
        lm_eval_strict("x", "minerva")


@pytest.mark.parametrize(
    "text, strict, flexible",
    [
        ("Janet sells 9 eggs.\n#### 18", "18", "18"),
        ("#### -1,234.5 dollars, then 7", "-1,234.5", "7"),
        ("She has 5 apples. The answer is 12.", INVALID, "12."),
        ("no numbers", INVALID, INVALID),
        ("costs $40.", INVALID, "$40."),
    ],
)
def test_lm_eval_gsm8k_filters(text, strict, flexible):
    assert lm_eval_strict(text, "gsm8k") == strict
    assert lm_eval_flexible(text) == flexible


def test_lm_eval_cot_strict_and_exact_match():
    assert lm_eval_strict("5 + 4 = 9. The answer is 9.", "gsm8k_cot") == "9"
    assert lm_eval_strict("The final answer is $1,000", "gsm8k_cot_llama") == "$1,000"
    assert lm_eval_normalize("Reasoning #### $1,000.") == "1000"
    assert lm_eval_exact_match("$1,000.", "1000")
    assert not lm_eval_exact_match("1000.5", "1000")


def test_gsm8k_references_extract_to_their_gold():
    rows = [json.loads(line) for line in GSM8K_TEST.read_text().splitlines()[:200]]
    for row in rows:
        gold = row["answer"].split("####")[-1].strip()
        assert extract_answer(row["answer"]) == gold
        assert lm_eval_exact_match(lm_eval_strict(row["answer"]), row["answer"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "{" * 10_000 + "\\boxed{" + "{" * 10_000,
        "\\boxed{" * 20_000,
        "1" * 1_000_000,
        "final answer is $" * 50_000,
        "the answer is " * 50_000,
        "1,000," * 100_000,
        "\x00\\boxed{\x00}" * 10_000,
    ],
)
def test_hostile_text_finishes(text):
    for style in ("auto", "boxed", "gsm8k", "answer_is", "last_number"):
        result = extract_answer(text, style)
        assert result is None or isinstance(result, str)
