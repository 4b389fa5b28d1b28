"""Evaluation outputs: the append-only predictions log (torn tails), metrics.json, the markdown report and the PNG."""

import json
import re

import matplotlib.image
import pytest

from evals.report import PredictionLog, metric_names, plot, record_key, render_markdown, write_outputs
from pure_rl.core.metrics import summarize


def _record(i, outcomes, split="test", subject=None, level=None, conventions=None, gold="12"):
    meta = {"split": split}
    meta.update({k: v for k, v in (("subject", subject), ("level", level)) if v is not None})
    samples = [{"text": f"so \\boxed{{{i}}}", "extracted": str(i), "answer_key": str(i), "outcome": o,
                "reason": "equal" if o == "correct" else "not_equal"} for o in outcomes]
    record = {"id": f"p{i}", "split": split, "prompt": "Q?", "gold": gold, "meta": meta, "samples": samples}
    if conventions is not None:
        record["conventions"] = conventions
    return record


def test_prediction_log_round_trip_and_torn_tail(tmp_path):
    log = PredictionLog(tmp_path / "out" / "predictions.jsonl")
    assert log.load() == {}
    first = [_record(1, ["correct"]), _record(2, ["wrong"])]
    log.append(first)
    log.append([_record(3, ["timeout"])])
    loaded = log.load()
    assert list(loaded) == ["test/p1", "test/p2", "test/p3"] and loaded["test/p1"] == first[0]
    good = log.path.read_bytes()
    log.path.write_bytes(good + b'{"id": "p4", "samp')  # killed mid-write
    assert list(log.load()) == ["test/p1", "test/p2", "test/p3"]
    assert log.path.read_bytes() == good  # trimmed, so the next append starts on a fresh line
    log.append([_record(4, ["correct"])])
    assert list(log.load()) == ["test/p1", "test/p2", "test/p3", "test/p4"]
    assert record_key({"id": "x", "split": "valid"}) == "valid/x"


def test_a_line_that_is_not_a_record_ends_the_readable_part(tmp_path):
    log = PredictionLog(tmp_path / "predictions.jsonl")
    log.append([_record(1, ["correct"])])
    with log.path.open("a") as fh:
        fh.write('["not", "a", "record"]\n' + json.dumps(_record(2, ["wrong"])) + "\n")
    assert list(log.load()) == ["test/p1"]


@pytest.fixture
def records():
    return [
        _record(1, ["correct", "wrong"], subject="Algebra", level=1,
                conventions={"math_verify": True, "lm_eval_flexible": False}),
        _record(2, ["wrong", "wrong"], subject="Algebra", level=3, conventions={"math_verify": True}),
        _record(3, ["timeout", "correct"], subject="Geometry", level=3, conventions={"math_verify": None}),
        _record(4, ["correct", "correct"], subject="Number | Theory", level=5, conventions={"math_verify": True}),
    ]


def test_markdown_report(records):
    metrics = summarize(records, ks=[1, 2], group_keys=("subject", "level"))
    metrics["timing"] = {"generate_s": 1.5}
    settings = {"task": "math500", "model": "ckpt", "n": 2, "command": "python -m evals.run task=math500 model=ckpt"}
    text = render_markdown(metrics, records, settings)
    assert text.startswith("# Evaluation: math500 — ckpt")
    assert "`python -m evals.run task=math500 model=ckpt`" in text
    assert metric_names(metrics) == ["accuracy", "pass@1", "pass@2", "maj@2"]
    assert f"| accuracy | {100 * metrics['accuracy']['value']:.1f} [" in text
    assert "4 problems (4 judged), 8 samples, 7 graded, 1 timeouts, 0 infrastructure failures" in text
    assert "## By subject" in text and "## By level" in text and "Number \\| Theory" in text
    # first samples: p1 correct (m-v agrees, lm-eval flexible not), p2 wrong (m-v says right), p3 timed out (skipped)
    section = text.split("## Grading conventions")[1].split("## Per problem")[0]
    assert "2 disagreement(s)." in section and "| p1 |" in section and "| p2 |" in section and "| p3 |" not in section
    assert "| math_verify | 100.0 | 66.7 (2 of 3) |" in section and "| lm_eval_flexible | 0.0 | 0.0 (0 of 1) |" in section
    table = text.split("## Per problem")[1]
    assert all(f"| p{i} |" in table for i in range(1, 5))
    assert "| 1 of 2 | correct 1, wrong 1 |" in table and "| 1 of 1 | correct 1, timeout 1 |" in table


def test_outputs_are_strict_json_and_real_pngs(records, tmp_path):
    metrics = summarize(records, ks=[1, 2], group_keys=("subject", "level"))
    metrics["timing"] = {"samples_per_s": float("nan")}
    paths = write_outputs(tmp_path, metrics, records, {"task": "math500", "model": "m"})
    saved = json.loads(paths["metrics"].read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert saved["settings"]["task"] == "math500" and saved["timing"]["samples_per_s"] is None
    assert saved["pass@2"]["value"] == pytest.approx(metrics["pass@2"]["value"])
    wide = matplotlib.image.imread(paths["plot"])
    single = matplotlib.image.imread(plot(summarize(records, ks=[1, 2]), tmp_path / "curve.png"))
    # three panels (pass@k, subject, level) against the pass@k curve alone
    assert wide.shape[1] == pytest.approx(3 * single.shape[1], rel=0.05) and wide.shape[0] == single.shape[0]
    assert wide.std() > 0.01  # something is drawn


def test_one_problem_reads_on_a_percent_axis_with_its_interval():
    from evals.report import report_figure

    metrics = summarize([_record(1, ["correct"])], ks=[1])
    assert metrics["accuracy"]["ci95"][0] == pytest.approx(0.2065, abs=1e-4)  # Wilson, not a point at 100%
    ax = report_figure(metrics).axes[0]
    assert ax.get_ylim() == (0.0, 100.0) and ax.get_xlim() == pytest.approx((0.5, 2.0))
    low_err = ax.containers[0].lines[2][0].get_segments()[0]  # the error bar of the one point: 20.7% to 100%
    assert low_err[:, 1].tolist() == pytest.approx([20.65, 100.0], abs=0.01)


def test_every_rate_in_the_report_is_a_percent(records):
    metrics = summarize(records, ks=[1, 2], group_keys=("subject",))
    text = render_markdown(metrics, records, {"task": "math500", "model": "m", "command": "python -m evals.run"})
    headers = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line and "|---" not in line]
    assert "| metric | value (%) [95% CI] | problems |" in headers
    assert "| convention | accuracy (%) | agrees with ours (%) |" in headers
    assert not re.search(r"\d\s*/\s*\d", text.split("## Metrics")[1])  # no x/y fractions beside the percents
    assert "Wilson when each problem is right or wrong" in text
