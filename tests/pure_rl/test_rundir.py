"""A run folder belongs to one run: refusals, overwrite, resume choices, partial and failed checkpoints, signal stops."""

import json
import os
import shutil
import signal

import pytest
import torch

from pure_rl.checkpoint import latest_good, list_checkpoints
from pure_rl.config import ConfigError, load_config, validate_config
from pure_rl.rundir import RunDirError
from pure_rl.runlog import read_metrics
from pure_rl.trainer import Trainer

# The math grader without its warm-up and with one worker: the same verdicts, seconds faster on two cores.
FAST = ("reward.verifier_kwargs.warm_up=false", "reward.verifier_kwargs.workers=1", "task.eval_size=8",
        "rollout.prompts_per_step=2", "train.steps=2")


def make_trainer(args):
    return Trainer(load_config(args, validate=validate_config))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, pure_cache):
    """One finished two-step run (a checkpoint per step), copied by each test that changes it."""
    run = tmp_path_factory.mktemp("finished") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PURE_RL_CACHE", str(pure_cache))
        make_trainer(_args(run)).fit()
    return run


def _args(run, *extra):
    return [f"output_dir={run}", "model.tiny.hidden_size=32", "model.tiny.num_layers=1", "model.tiny.num_heads=2",
            "model.tiny.intermediate_size=64", "model.warm_start.steps=40", "rollout.group_size=4",
            "rollout.max_new_tokens=24", "train.save_every=1", "train.keep_checkpoints=5", "log.progress=false",
            "log.tensorboard=false", "optim.micro_batch_size=8", "optim.lr=1e-3", *FAST, *extra]


@pytest.fixture
def run_copy(finished_run, tmp_path, pure_cache, monkeypatch):
    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def test_a_folder_that_holds_a_run_refuses_a_new_one_and_overwrite_replaces_it(run_copy):
    before = (run_copy / "metrics.jsonl").read_text()
    with pytest.raises(RunDirError) as info:
        make_trainer(_args(run_copy))
    message = str(info.value)
    assert "holds a run" in message and "resume=auto" in message and "overwrite=true" in message
    assert "\n" not in message and (run_copy / "metrics.jsonl").read_text() == before  # nothing touched
    (run_copy / "notes.txt").write_text("mine")
    trainer = make_trainer(_args(run_copy, "overwrite=true", "train.steps=1"))
    trainer.fit()
    assert [r["step"] for r in read_metrics(run_copy / "metrics.jsonl")] == [0, 1, 1]  # only the new run's records
    assert [p.name for p in list_checkpoints(run_copy / "checkpoints")] == ["step-000001"]  # the old step 2 is gone
    assert (run_copy / "notes.txt").read_text() == "mine"  # overwrite deletes the run's outputs, nothing else


def test_resume_auto_needs_output_dir_and_refuses_a_run_without_a_good_checkpoint(run_copy):
    with pytest.raises(ConfigError, match="resume=auto continues the run in output_dir: set output_dir"):
        load_config(["resume=auto"], validate=validate_config)
    for ckpt in list_checkpoints(run_copy / "checkpoints"):
        (ckpt / "trainer_state.pt").write_bytes(b"truncated")
    before = {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()}
    with pytest.raises(RunDirError, match="holds a run but no good checkpoint.*overwrite=true"):
        make_trainer(_args(run_copy, "resume=auto"))
    assert {p.name: p.read_bytes() for p in run_copy.iterdir() if p.is_file()} == before  # not restarted over it
    empty = run_copy.parent / "fresh"
    assert make_trainer(_args(empty, "resume=auto")).step == 0  # an empty folder starts fresh


def test_an_explicit_corrupt_checkpoint_is_refused_never_replaced_by_another_step(run_copy):
    step2 = run_copy / "checkpoints" / "step-000002"
    (step2 / "trainer_state.pt").write_bytes(b"truncated")
    with pytest.raises(RunDirError, match="step-000002: this checkpoint is corrupt or partial"):
        make_trainer(_args(run_copy.parent / "other", f"resume={step2}"))
    resumed = make_trainer(_args(run_copy.parent / "other2", f"resume={run_copy}"))  # a run folder: its newest good one
    assert resumed.step == 1
    with pytest.raises(RunDirError, match="holds a run and resume=.* is not one of its checkpoints"):  # continuing A into B's folder mixes them
        make_trainer(_args(run_copy.parent / "other2", f"resume={run_copy / 'checkpoints' / 'step-000001'}"))


def test_stale_partial_checkpoints_are_reported_and_removed_at_start(run_copy, caplog):
    stale = run_copy / "checkpoints" / ".tmp-step-000003-12345"
    (stale / "model").mkdir(parents=True)
    (stale / "model" / "model.safetensors").write_bytes(b"\0" * 2**20)
    trainer = make_trainer(_args(run_copy, "resume=auto"))
    assert not stale.exists() and trainer.step == 2
    assert "removing" in caplog.text and ".tmp-step-000003-12345 (1.0 MB)" in caplog.text


def test_resuming_with_another_model_size_is_one_line(finished_run, tmp_path, pure_cache, monkeypatch, capsys):
    from pure_rl.train import main

    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))
    step2 = finished_run / "checkpoints" / "step-000002"
    code = main(_args(tmp_path / "bigger", f"resume={step2}", "model.tiny.hidden_size=48"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]
    assert "was saved from another model shape" in err[0] and "saved [" in err[0] and "config.yaml" in err[0]


def test_a_failed_checkpoint_write_warns_and_the_next_save_retries(tmp_path, pure_cache, monkeypatch, caplog):
    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))
    trainer = make_trainer(_args(tmp_path / "run", "train.steps=3"))
    blocker = trainer.run_dir / "checkpoints"
    blocker.write_text("a file where the checkpoints folder should be")  # mkdir fails as on a read-only folder
    saved, real_save = [], trainer.save

    def save():
        saved.append(real_save())
        if blocker.is_file():
            blocker.unlink()  # the disk recovers after the first failure
        return saved[-1]

    monkeypatch.setattr(trainer, "save", save)
    trainer.fit()
    assert saved[0] is None and [p.name for p in saved[1:]] == ["step-000002", "step-000003"]
    assert "checkpoint of step 1 could not be written" in caplog.text and "next save retries" in caplog.text
    assert not list((trainer.run_dir / "checkpoints").glob(".tmp-*"))
    assert json.loads((trainer.run_dir / "summary.json").read_text())["steps"] == 3


def test_the_last_step_is_saved_once_quietly_with_a_line_per_step(tmp_path, pure_cache, monkeypatch, caplog, capfd):
    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))
    trainer = make_trainer(_args(tmp_path / "run", "train.save_every=1"))
    saves, real_save = [], trainer.save
    monkeypatch.setattr(trainer, "save", lambda: saves.append(trainer.step) or real_save())
    with caplog.at_level("INFO", logger="pure_rl.trainer"):
        trainer.fit()
    assert saves == [1, 2]  # step 2 is a save_every step and the last one: written once
    err = capfd.readouterr().err
    assert "Writing model shards" not in err and "Loading weights" not in err
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("step ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"] and all("reward" in line for line in lines)


def test_a_signal_stop_writes_the_summary_and_plot_of_the_steps_done(tmp_path, pure_cache, monkeypatch):
    monkeypatch.setenv("PURE_RL_CACHE", str(pure_cache))
    trainer = make_trainer(_args(tmp_path / "run", "train.steps=50", "train.save_every=0"))
    real_step = trainer.train_step

    def step_then_signal():
        stats = real_step()
        os.kill(os.getpid(), signal.SIGTERM)  # the trainer's own handler: finish this step, then stop
        return stats

    monkeypatch.setattr(trainer, "train_step", step_then_signal)
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    summary = trainer.fit()
    saved = json.loads((trainer.run_dir / "summary.json").read_text())
    assert saved["stopped_at"] == 1 == saved["steps"] and saved["heldout_accuracy_after"] is None
    assert saved["heldout_accuracy_before"] is not None and summary == saved
    assert (trainer.run_dir / "training.png").stat().st_size > 0
    assert latest_good(trainer.run_dir).name == "step-000001"
    assert any(not torch.equal(p.detach(), before[n]) for n, p in trainer.policy.named_parameters())
