"""training.png says what it shows: run name and credit form in the title, a PRM-score panel, integer step ticks,
and a KL panel that explains itself when the run has no KL term; a run without a terminal logs a line per step."""

import json
import logging

import pytest

from pure_rl.config import load_config, to_yaml
from pure_rl.progress import step_display, step_line
from pure_rl.runlog import training_figure


def _run(tmp_path, *overrides):
    run = tmp_path / "tiny-20261201"
    run.mkdir()
    (run / "config.yaml").write_text(to_yaml(load_config(list(overrides))))
    records = [{"step": 0, "heldout_accuracy": 0.4}]
    records += [{"step": s, "reward": 0.1 * s, "response_length": 20 - s, "prm_min_score": -0.5 + 0.2 * s,
                 **({"kl": 0.01 * s} if "credit.kl_coef=0.01" in overrides else {})} for s in (1, 2, 3)]
    records.append({"step": 3, "heldout_accuracy": 0.6})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _panel(fig, title):
    return next(ax for ax in fig.axes if ax.get_title().startswith(title))


def test_training_figure_titles_panels_and_ticks(tmp_path):
    fig = training_figure(_run(tmp_path, "credit.form=hardmin"))
    assert fig._suptitle.get_text() == "tiny-20261201: credit.form=hardmin, recipe tiny"
    prm = _panel(fig, "PRM score")
    assert list(prm.lines[0].get_ydata()) == pytest.approx([-0.3, -0.1, 0.1])
    kl = _panel(fig, "KL to reference")
    assert not kl.lines and any("credit.kl_coef=0" in t.get_text() for t in kl.texts)
    for ax in fig.axes:
        if ax.lines:
            low, high = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if low <= t <= high]
            assert ticks and all(float(t).is_integer() for t in ticks), (ax.get_title(), ticks)


def test_a_kl_run_draws_its_kl(tmp_path):
    kl = _panel(training_figure(_run(tmp_path, "credit.kl_coef=0.01")), "KL to reference")
    assert list(kl.lines[0].get_ydata()) == pytest.approx([0.01, 0.02, 0.03]) and not kl.texts


def test_without_a_terminal_each_step_is_one_log_line(caplog):
    assert step_line(3, 60, {"reward": 0.41234, "accuracy": 0.625, "masked_rows": 2, "kl": float("nan")}) == \
        "step 3/60 reward 0.412 acc 0.62 masked 2"
    with caplog.at_level(logging.INFO, logger="pure_rl.trainer"), step_display(True, 2, 0) as show:  # pytest: no TTY
        show(1, {"reward": 0.5})
        show(2, {"reward": float("nan"), "heldout_accuracy": 0.75})
    assert [r.getMessage() for r in caplog.records] == ["step 1/2 reward 0.500", "step 2/2 held-out 0.750"]
