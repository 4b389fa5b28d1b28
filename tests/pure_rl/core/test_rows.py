"""Bad rows are counted against a share: a few are skipped, too many refuse the run (one line, exit 2)."""

import json

import pytest

from pure_rl.core.interfaces import Problem
from pure_rl.core.rows import BadRow, DataError, RowTally, text_field, usable_problems


def _problem(i, question="Compute 1 + 1.", prompt="Compute 1 + 1.\n\n"):
    return Problem(id=str(i), question=question, prompt=prompt, answer="2")


def test_text_fields_name_what_is_wrong():
    assert text_field({"q": "x"}, "q") == "x"
    for record, reason in (({}, "missing"), ({"q": None}, "null"), ({"q": " "}, "empty"), ({"q": 3}, "a int, not text")):
        with pytest.raises(BadRow, match=f"field 'q': {reason}"):
            text_field(record, "q")


def test_empty_or_missing_questions_and_prompts_are_bad_rows():
    problems = [_problem(i) for i in range(200)] + [_problem("q", question=None), _problem("p", prompt="  ")]
    good = usable_problems(problems, None, 0.01, "task t split train")
    assert len(good) == 200 and all(p.question for p in good)
    with pytest.raises(DataError) as info:
        usable_problems(problems[198:], None, 0.01, "task t split train")
    assert str(info.value) == ("task t split train: 2 of 4 rows are bad (50.0% > task.max_bad_row_fraction=0.01); "
                               "first: task t split train problem 2: field 'question': missing")


def test_the_share_counts_the_tasks_own_bad_rows():
    tally = RowTally("data.jsonl", rows=100)
    tally.add_bad(7, BadRow("answer", "missing"))
    assert len(usable_problems([_problem(i) for i in range(99)], tally, 0.01, "x")) == 99
    tally.add_bad(9, BadRow(None, "not valid JSON"))
    with pytest.raises(DataError, match=r"data.jsonl: 2 of 100 rows are bad \(2.0% > task.max_bad_row_fraction=0.01\); "
                                        "first: data.jsonl line 7: field 'answer': missing"):
        usable_problems([_problem(i) for i in range(98)], tally, 0.01, "x")


def test_a_run_on_a_file_with_too_many_bad_rows_refuses_in_one_line(tmp_path, capsys):
    from pure_rl.train import main

    data = tmp_path / "test.jsonl"
    rows = [json.dumps({"question": f"Q{i}?", "answer": f"#### {i}"}) for i in range(18)] + ['{"question": ', "{}"]
    data.write_text("\n".join(rows) + "\n")
    args = [f"output_dir={tmp_path / 'run'}", "task.name=gsm8k", f"task.kwargs.data_path={data}", "task.train_split=test",
            "log.progress=false"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(f"error: {data}: 2 of 20 rows are bad (10.0% > task.max_bad_row_fraction=0.01); first: {data} line 19: "
                    "not valid JSON (Expecting value at column 14)")]
    assert not (tmp_path / "run" / "config.yaml").exists()  # refused before anything was written
