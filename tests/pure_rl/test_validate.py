"""PRM and verifier output checked at the trainer's boundary: structure errors are one line, bad rows are masked and
counted (never clamped or scored 0), and a step whose rows are all masked makes no optimiser step."""

import logging
import math

import pytest

from pure_rl.config import ConfigError, load_config, validate_config
from pure_rl.core.interfaces import Outcome, Verdict
from pure_rl.rewards import score_steps
from pure_rl.trainer import Trainer
from pure_rl.validate import PluginOutputError, check_score_range, check_verdicts

FAST = ("reward.verifier_kwargs.warm_up=false", "reward.verifier_kwargs.workers=1", "task.eval_size=8",
        "rollout.prompts_per_step=2")


class Returns:
    """A PRM fake that returns the given rows, whatever it is asked (the boundary is what is under test)."""

    def __init__(self, rows, score_range=(0.0, 1.0)):
        self.rows, self.score_range = rows, score_range

    def score_steps(self, prompts, steps):
        return self.rows


STEPS = [["a", "b"], ["c"], ["d", "e"], ["f"], ["g"]]


def test_prm_rows_are_checked_and_bad_ones_masked_and_counted():
    rows = [[0.25, 1.0], None, [0.5], ["high", 0.2], [float("nan")]]  # ok, unscored, wrong length, text, NaN
    stats = {}
    scores, scored = score_steps(Returns(rows), ["p"] * 5, STEPS, 2, stats)
    assert scored.tolist() == [True, False, False, False, False]
    assert scores[0].tolist() == [-0.5, 1.0] and not scores[1:].any()  # masked rows carry no score at all
    assert stats == {"prm_malformed_rows": 3, "prm_out_of_range_rows": 0}


def test_scores_outside_the_declared_range_are_masked_not_clamped():
    stats = {}
    scores, scored = score_steps(Returns([[0.5, 1.7], [0.0], [1.0, 1.0 + 1e-9], [-0.2], [0.3]]), ["p"] * 5, STEPS, 2, stats)
    assert scored.tolist() == [False, True, True, False, True]  # 1 + 1e-9 is round-off, not out of range
    assert stats["prm_out_of_range_rows"] == 2 and scores[2].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("raw, message", [
    ([[0.5]] * 4, "score_steps returned 4 rows for 5 responses"),
    ({"rows": []}, "score_steps returned a dict, not a list"),
])
def test_a_wrong_structure_is_a_one_line_error(raw, message):
    with pytest.raises(PluginOutputError, match=message):
        score_steps(Returns(raw), ["p"] * 5, STEPS, 2)


@pytest.mark.parametrize("score_range, message", [
    (None, "declares no score_range"), ((1.0, 0.0), "finite with lo < hi"), ((0.0, math.inf), "finite with lo < hi"),
    ("01", "must be two numbers"), ((0, 1, 2), "must be two numbers"),
])
def test_the_declared_range_is_checked(score_range, message):
    with pytest.raises(ConfigError, match=message):
        check_score_range(Returns([], score_range))
    assert check_score_range(Returns([], (0, 1))) == (0.0, 1.0)


def test_verdicts_are_checked():
    good = Verdict(True, 1.0)
    out, bad = check_verdicts([good, {"correct": True}, Verdict(True, float("nan"))], 3)
    assert bad == 2 and out[0] is good and [v.outcome for v in out[1:]] == [Outcome.INFRA, Outcome.INFRA]
    assert out[1].reward_or_none is None and "not a Verdict: dict" in out[1].info["reason"]
    with pytest.raises(PluginOutputError, match="verify_batch returned 2 verdicts for 3 responses"):
        check_verdicts([good, good], 3)


class NoRangePRM:
    """A plugin PRM that forgot its score_range."""

    def score_steps(self, prompts, steps):
        return [[0.0] * len(s) for s in steps]


class InvertedRangePRM(NoRangePRM):
    score_range = (1.0, 0.0)


@pytest.mark.parametrize("prm, message", [("NoRangePRM", "NoRangePRM declares no score_range"),
                                          ("InvertedRangePRM", "score_range must be finite with lo < hi, got (1.0, 0.0)")])
def test_a_bad_declared_range_stops_the_cli_before_training(prm, message, tiny_args, capsys):
    from pure_rl.train import main

    assert main(tiny_args(f"reward.prm={__name__}:{prm}", *FAST)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("error: reward.prm:")


class ScriptedPRM:
    """The arithmetic PRM's scores in [0, 1], with scripted faults per call: ``range`` puts the first row at 1.5
    (outside the range), ``nan`` makes every row NaN."""

    score_range = (0.0, 1.0)

    def __init__(self, script: str = "ok"):
        from prm.arith import ArithPRM

        self.inner, self.script, self.calls = ArithPRM(), script.split(","), 0

    def score_steps(self, prompts, steps):
        fault = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        rows = [None if r is None else [(x + 1) / 2 for x in r] for r in self.inner.score_steps(prompts, steps)]
        if fault == "range":
            rows[0] = [1.5] * len(rows[0])
        if fault == "nan":
            rows = [[float("nan")] * len(r) for r in rows]
        return rows


def test_out_of_range_warns_once_and_an_all_masked_step_moves_no_weight(tiny_args, caplog):
    cfg = load_config(tiny_args(f"reward.prm={__name__}:ScriptedPRM", "reward.prm_kwargs.script=range,range,nan", *FAST),
                      validate=validate_config)
    trainer = Trainer(cfg)
    with caplog.at_level(logging.WARNING):
        first, second = trainer.train_step(), trainer.train_step()  # AdamW now carries momentum
        weights = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
        third = trainer.train_step()
    assert first["prm_out_of_range_rows"] == second["prm_out_of_range_rows"] == 1
    assert first["masked_rows"] == 1 and "skipped_update" not in second
    assert sum("out-of-range rows" in r.getMessage() for r in caplog.records) == 1  # once per run, not per step
    assert third["skipped_update"] == 1.0 and third["prm_malformed_rows"] == third["masked_rows"] == 8
    assert "every row is masked" in caplog.text and "no update" in caplog.text
    moved = max((p.detach() - weights[n]).abs().max().item() for n, p in trainer.policy.named_parameters())
    assert moved == 0.0
