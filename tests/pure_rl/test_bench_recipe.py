"""The recipe benchmark (``python -m pure_rl.bench_recipe``) and random-init runs through the real trainer, on CPU
with 2-layer configs: per-stage records, token counts, the MFU formula, the update replay, and no accuracy."""

from __future__ import annotations

import json

import pytest

from pure_rl import bench_recipe
from pure_rl.config import load_config, validate_config
from tests.pure_rl.models.test_random_init import tiny_folder


@pytest.fixture
def folders(tmp_path, monkeypatch):
    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path / "cache"))
    return {
        "policy": tiny_folder(tmp_path / "policy"),
        "lightning": tiny_folder(tmp_path / "lightning", arch="LightningForCausalLM", model_type="pure_lightning"),
        "prm": tiny_folder(tmp_path / "prm", arch="Qwen2ForTokenClassification", num_labels=2),
    }


def overrides(tmp_path, folders, policy="policy", *extra):
    return [
        f"model.path={folders[policy]}", "model.init=random", "reward.prm=hf_token_classifier",
        f"reward.prm_kwargs.path={folders['prm']}", "reward.prm_kwargs.init=random", "reward.prm_kwargs.batch_size=2",
        "rollout.prompts_per_step=2", "rollout.group_size=2", "rollout.max_new_tokens=12", "credit.kl_coef=0.001",
        "optim.micro_batch_size=2", "train.steps=2", f"output_dir={tmp_path / 'run'}", "task.eval_size=4", *extra,
    ]


def test_mfu_is_six_n_d_over_time_and_peak():
    assert bench_recipe.model_flops_utilization(1_000_000_000, 100_000, 2.0, 1000.0) == pytest.approx(0.3)


def test_bench_hf_policy_records_every_stage(tmp_path, folders, capsys):
    out = tmp_path / "bench.json"
    argv = ["recipe=tiny", *overrides(tmp_path, folders), "--json", str(out),
            "--update-variant", "micro_batch_size=2", "--update-variant", "gradient_checkpointing=true,micro_batch_size=1"]
    assert bench_recipe.main(argv) == 0
    printed = capsys.readouterr().out
    assert "no accuracy is reported" in printed and "| mean 2..N |" in printed and "accuracy |" not in printed
    result = json.loads(out.read_text())
    assert result["env"]["init"] == "random" and result["env"]["rows"] == 4
    for rec in result["steps"]:
        assert all(rec[f"{s}_s"] > 0 for s in ("rollout", "verify", "score", "update"))
        assert rec["rows"] == 4 and 0 < rec["generated_tokens"] <= 4 * 12
        assert rec["generate_s"] <= rec["rollout_s"]  # the learner's pi_old pass (KL on) is part of the rollout stage
        assert rec["prm_tokens"] > 0 and rec["prm_tok_s"] > 0
        assert rec["trained_tokens"] == rec["generated_tokens"] + rec["prompt_tokens"]
        assert rec["update_mfu"] == pytest.approx(bench_recipe.model_flops_utilization(
            result["env"]["policy_params"], int(rec["trained_tokens"]), rec["update_s"], result["peak_tflops"]))
    same, changed = result["update_variants"]
    assert same["variant"] == {"micro_batch_size": 2} and changed["variant"] == {"gradient_checkpointing": True,
                                                                               "micro_batch_size": 1}
    for variant in (same, changed):
        assert variant["oom"] is False and variant["trained_tokens"] == result["steps"][-1]["trained_tokens"]


def test_bench_lightning_policy_on_the_native_engine(tmp_path, folders):
    out = tmp_path / "bench.json"
    argv = ["recipe=tiny_lightning", *overrides(tmp_path, folders, "lightning", "train.steps=1"), "--json", str(out)]
    assert bench_recipe.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["env"]["policy_class"] == "LightningForCausalLM" and result["env"]["engine"] == "native"
    assert result["steady"]["generated_tokens"] == result["steps"][0]["generated_tokens"] > 0


@pytest.mark.parametrize("argv, message", [
    (["--update-variant", "lr=3"], "--update-variant item 'lr=3'"),
    (["--peak-tflops", "0"], "--peak-tflops must be > 0"),
    (["train.steps=0"], "train.steps must be >= 1"),
    (["model.init=warm"], "model.init must be pretrained or random"),
])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys):
    assert bench_recipe.main(["recipe=tiny", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_random_init_run_reports_no_accuracy_and_skips_held_out_evaluation(tmp_path, folders, monkeypatch):
    from pure_rl.trainer import Trainer

    cfg = load_config(["recipe=tiny", *overrides(tmp_path, folders, "policy", "train.steps=1"), "log.progress=false",
                       "log.tensorboard=false"], validate=validate_config)
    trainer = Trainer(cfg)
    monkeypatch.setattr(trainer, "evaluate", lambda: pytest.fail("a random-init run must not evaluate"))
    summary = trainer.fit()
    assert summary["init"].startswith("random weights") and summary["steps"] == 1
    assert not [k for k in summary if "accuracy" in k]
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["init"] == summary["init"]
