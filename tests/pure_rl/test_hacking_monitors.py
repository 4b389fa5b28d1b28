"""Reward-hacking monitors: the detector's warning line, the top-decile-wrong share, the top-PRM-wrong pick, and
``pure_rl.compare`` on real metrics files."""

import json
from types import SimpleNamespace

import torch

from pure_rl.compare import main as compare_main
from pure_rl.core.interfaces import Verdict
from pure_rl.monitors import HackingDetector, prm_reward_stats, slope, top_prm_wrong


def test_slope_is_the_least_squares_slope():
    assert slope([1.0, 3.0, 5.0]) == 2.0
    assert slope([2.0, 2.0]) == 0.0


def test_warns_once_when_prm_reward_rises_while_accuracy_falls():
    d = HackingDetector(window=4, min_change=0.05)
    lines = [d.update({"prm_reward": 0.1 * i, "accuracy": 0.8 - 0.05 * i}) for i in range(8)]
    fired = [i for i, w in enumerate(lines) if w]
    assert fired == [3]  # first full window; not repeated while the pattern holds
    assert lines[3][0].startswith("reward hacking suspected: PRM reward rose +0.300")


def test_no_warning_when_both_rise_or_on_missing_values():
    d = HackingDetector(window=3)
    assert not any(d.update({"prm_reward": 0.1 * i, "accuracy": 0.5 + 0.1 * i}) for i in range(6))
    assert d.update({"prm_reward": float("nan"), "accuracy": 0.1}) == []


def fake_batch(returns, correct):
    """The fields the PRM monitors read (a fake RolloutBatch: no policy needed)."""
    n = len(returns)
    return SimpleNamespace(
        size=n, step_rewards=torch.tensor(returns)[:, None], score_mask=torch.ones(n, dtype=torch.bool),
        step_scores=torch.tensor(returns)[:, None], step_mask=torch.ones(n, 1, dtype=torch.bool),
        verdicts=[Verdict(c, 1.0 if c else 0.0) for c in correct])


def test_top_decile_wrong_share_and_top_prm_wrong_rows():
    returns = [0.1 * i for i in range(10)]  # row 9 is the PRM's top decile
    b = fake_batch(returns, [True] * 9 + [False])
    stats = prm_reward_stats(b)
    assert abs(stats["prm_reward"] - 0.45) < 1e-6
    assert stats["prm_top_decile_wrong"] == 1.0
    assert prm_reward_stats(fake_batch(returns, [False] + [True] * 9))["prm_top_decile_wrong"] == 0.0
    assert top_prm_wrong(fake_batch(returns, [False, True, False] + [True] * 7), 5) == [2, 0]


def test_compare_prints_the_table_and_writes_the_png(tmp_path, capsys):
    runs = []
    for form, trend in (("min", 0.01), ("sum", -0.01)):
        d = tmp_path / form
        d.mkdir()
        rows = [{"step": s, "heldout_accuracy": 0.5 + trend * s} if s % 5 == 0 else
                {"step": s, "prm_reward": 0.1 * s, "accuracy": 0.5, "mean_steps": 3.0} for s in range(11)]
        (d / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
        (d / "summary.json").write_text(json.dumps({"credit_form": form, "seed": 0}))
        runs.append(str(d))
    assert compare_main(runs + ["--out", str(tmp_path / "c.png")]) == 0
    out = capsys.readouterr().out
    assert "| min | 0 | 10 | 0.500 | 0.600 |" in out and "| sum | 0 | 10 | 0.500 | 0.400 |" in out
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert compare_main([str(tmp_path / "missing")]) == 2
