"""End-to-end runs of the trainer on the embedded arithmetic task with a tiny policy (seconds each)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pure_rl import trainer as trainer_module
from pure_rl.checkpoint import latest_good, list_checkpoints
from pure_rl.config import load_config, validate_config
from pure_rl.core.interfaces import Problem, Verdict
from pure_rl.runlog import read_metrics
from pure_rl.trainer import Trainer, TrainingStopped

REPO = Path(__file__).resolve().parents[2]


def make_trainer(args):
    return Trainer(load_config(args, validate=validate_config))


def comparable(records):
    """Metric records without their wall-clock timings, which differ between runs."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in records]


def test_run_writes_every_output_and_changes_the_policy(tiny_args):
    trainer = make_trainer(tiny_args())
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    summary = trainer.fit()
    run = trainer.run_dir
    records = read_metrics(run / "metrics.jsonl")
    train_steps = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_steps] == [1, 2, 3]
    for r in train_steps:
        assert all(k in r for k in ("reward", "accuracy", "mean_steps", "empty_frac", "one_step_frac", "repetition",
                                    "clip_frac", "prm_verifier_disagreement", "response_length", "time/rollout"))
        assert r["loss"] is not None and abs(r["loss"]) < 1e3
    changed = [n for n, p in trainer.policy.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert len(changed) == len(before)
    for name in ("config.yaml", "summary.json", "training.png"):
        assert (run / name).exists(), name
    saved = json.loads((run / "summary.json").read_text())
    assert 0 <= saved["heldout_accuracy_before"] <= 1 and 0 <= saved["heldout_accuracy_after"] <= 1
    assert saved["wall_seconds"] > 0 and summary["steps"] == 3
    assert latest_good(run).name == "step-000003"
    samples = read_metrics(run / "samples.jsonl")
    assert [s["step"] for s in samples if s["kind"] == "first"] == [1] * 4 + [2] * 4 + [3] * 4
    assert all(s["correct"] is False for s in samples if s["kind"] == "top_prm_wrong")
    for s in samples:
        assert len(s["steps"]) == len(s["step_scores"]) >= 1 and s["correct"] in (True, False)
        assert all(-1 <= x <= 1 for x in s["step_scores"]) and s["question"].startswith("Compute")


def test_resume_after_kill_matches_uninterrupted(tiny_args, tmp_path):
    args = tiny_args("train.steps=4", run="full")
    full = make_trainer(args)
    full.fit()
    reference = comparable(read_metrics(full.run_dir / "metrics.jsonl"))

    killed_args = tiny_args("train.steps=4", run="killed")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pure_rl.train", *killed_args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not any(p.name == "step-000002" for p in list_checkpoints(ckpts)):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    resumed = make_trainer(killed_args + ["resume=auto"])
    assert resumed.step >= 2
    resumed.fit()
    assert comparable(read_metrics(resumed.run_dir / "metrics.jsonl")) == reference


def test_sigterm_writes_a_final_checkpoint(tiny_args, tmp_path):
    args = tiny_args("train.steps=500", "train.save_every=0", run="term")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "pure_rl.train", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    metrics = tmp_path / "term" / "metrics.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and len(read_metrics(metrics)) < 3:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    last_step = max(r["step"] for r in read_metrics(metrics))
    good = latest_good(tmp_path / "term")
    assert good is not None and good.name == f"step-{last_step:06d}"


def test_corrupt_checkpoint_falls_back_to_previous(tiny_args, caplog):
    trainer = make_trainer(tiny_args("train.steps=2"))
    trainer.fit()
    newest = list_checkpoints(trainer.run_dir / "checkpoints")[-1]
    (newest / "trainer_state.pt").write_bytes(b"truncated")
    assert latest_good(trainer.run_dir).name == "step-000001"
    assert "corrupt" in caplog.text
    resumed = make_trainer(tiny_args("train.steps=2", "resume=auto"))
    assert resumed.step == 1


def test_non_finite_loss_skips_then_stops(tiny_args, monkeypatch):
    def nan_loss(logp, *args, **kwargs):
        return logp.sum() * float("nan"), {}

    monkeypatch.setattr(trainer_module, "ppo_clip_loss", nan_loss)
    trainer = make_trainer(tiny_args("train.steps=10", "optim.max_bad_steps=2"))
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    with pytest.raises(TrainingStopped, match="2 consecutive non-finite"):
        trainer.fit()
    skipped = [r for r in read_metrics(trainer.run_dir / "metrics.jsonl") if r.get("skipped_update")]
    assert len(skipped) == 1
    assert all(torch.equal(p.detach(), before[n]) for n, p in trainer.policy.named_parameters())


class FlakyVerifier:
    """Test double: the project's math verifier, except every third item is an infrastructure failure."""

    def __init__(self):
        from evals.verifier import MathVerifier

        self.inner = MathVerifier()

    def __call__(self, problem, completion):
        return self.verify_batch([problem], [completion])[0]

    def verify_batch(self, problems, completions):
        verdicts = self.inner.verify_batch(problems, completions)
        return [Verdict(None, None, {"reason": "infra"}) if i % 3 == 0 else v for i, v in enumerate(verdicts)]


class TaskWithBadRows:
    """The arithmetic task with some empty prompts mixed in, as a dataset with bad rows would have."""

    name = "arith_bad_rows"

    def __init__(self, **kwargs):
        from evals.arith import ArithTask

        self.inner = ArithTask(**kwargs)

    def demonstrations(self, *args):
        return self.inner.demonstrations(*args)

    def load(self, split, limit=None):
        problems = self.inner.load(split, limit)
        return problems + [Problem(id=f"bad-{i}", question="", prompt="  ", answer="1") for i in range(5)]


def test_infra_failures_are_masked_and_bad_rows_skipped(tiny_args, caplog):
    args = tiny_args(
        f"reward.verifier={__name__}:FlakyVerifier", f"task.name={__name__}:TaskWithBadRows", "train.steps=2"
    )
    trainer = make_trainer(args)
    assert all(p.prompt.strip() for p in trainer.train_problems)
    assert "skipped 5 train rows" in caplog.text
    trainer.fit()
    steps = [r for r in read_metrics(trainer.run_dir / "metrics.jsonl") if "loss" in r]
    assert all(r["masked_rows"] > 0 and r["verifier_infra_failures"] > 0 for r in steps)
    assert all(r["loss"] is not None for r in steps)


def test_lora_with_kl_to_the_base_model(tiny_args):
    trainer = make_trainer(tiny_args("model.lora.r=4", "model.lora.target_modules=[q_proj,v_proj]",
                                     "credit.kl_coef=0.01", "train.steps=2"))
    base_before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters() if not p.requires_grad}
    trainer.fit()
    records = [r for r in read_metrics(trainer.run_dir / "metrics.jsonl") if "loss" in r]
    assert all("kl" in r for r in records)
    assert all(torch.equal(p.detach(), base_before[n]) for n, p in trainer.policy.named_parameters() if n in base_before)
    assert (latest_good(trainer.run_dir) / "model" / "adapter_model.safetensors").exists()


def test_single_pass_update_skips_the_old_logprob_pass(tiny_args, monkeypatch):
    """One optimiser step per batch: the ratio is exactly 1 and no separate pi_old pass runs; with two
    mini-batches per batch the policy moves between them, so the rollout must compute pi_old once."""
    calls = []
    real = trainer_module.batched_token_logprobs
    monkeypatch.setattr(trainer_module, "batched_token_logprobs", lambda *a, **k: calls.append(1) or real(*a, **k))
    stats = make_trainer(tiny_args()).train_step()
    assert calls == [] and stats["ratio_max"] == 1.0 and stats["clip_frac"] == 0.0
    stats = make_trainer(tiny_args("optim.mini_batches=2", "optim.lr=0.05", run="two")).train_step()
    assert calls == [1] and stats["ratio_max"] > 1.0
