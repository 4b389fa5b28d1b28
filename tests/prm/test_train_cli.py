"""``python -m prm.train``: recipes parse and validate, bad configs fail in one line, and both kinds run end to end
on CPU at toy sizes (the TVM with the real tiny policy, HF engine and math verifier; the classifier on arith rows)."""

import json
import subprocess
import sys

import pytest

from prm.hf_classifier import HFTokenClassifierPRM
from prm.train import PRMTrainConfig, main, validate
from prm.tvm.scorer import TVMScorer
from pure_rl.core.configio import ConfigError, load_config


@pytest.mark.parametrize("recipe", ["tvm_arith", "tvm_gsm8k", "prm_classifier"])
def test_recipes_load_validate_and_open_with_their_launch_command(recipe):
    cfg = load_config([f"recipe={recipe}"], schema=PRMTrainConfig, default_recipe=None, validate=validate)
    assert cfg.recipe == recipe
    from pure_rl.core.configio import recipe_path

    assert recipe_path(recipe).read_text().startswith("# python -m prm.train recipe=" + recipe)


@pytest.mark.parametrize("override, message", [
    ("optim.lrr=1", "did you mean 'optim.lr'"),
    ("kind=regression", "kind must be tvm or classifier"),
    ("stages=[sample]", "stages must be a non-empty subset"),
    ("value_model.loss=bce", "needs value_model.activation=sigmoid"),
    ("data.engine=warp", "data.engine: unknown rollout engine 'warp'"),
    ("optim.mixed_precision=int8", "optim.mixed_precision must be fp32, bf16 or fp16"),
])
def test_bad_configs_fail_with_one_line(override, message):
    argv = ["recipe=tvm_arith", override]
    if override == "value_model.loss=bce":
        argv.append("value_model.activation=identity")
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("(", "\\(")):
        load_config(argv, schema=PRMTrainConfig, default_recipe=None, validate=validate)


def test_cli_reports_config_errors_without_a_traceback():
    proc = subprocess.run([sys.executable, "-m", "prm.train", "recipe=tvm_arith", "optim.lrr=1"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: unknown config key")
    assert "Traceback" not in proc.stderr


def test_tvm_pipeline_end_to_end_at_toy_size(tmp_path):
    summary = main([
        "recipe=tvm_arith", f"output_dir={tmp_path}", "device=cpu",
        ("policy.overrides=[model.warm_start.steps=10,model.warm_start.batch_size=8,model.warm_start.cache=false,"
         "model.tiny.hidden_size=32,model.tiny.intermediate_size=64]"),
        "data.problems=6", "data.samples=4", "data.max_new_tokens=24", "eval.problems=4", "eval.n=4",
        "optim.epochs=1", "optim.batch_size=8", "optim.log_every=1",
    ])
    assert summary["data"]["paths"] == 24
    rows = [json.loads(line) for line in (tmp_path / "tvm_data.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and all(len(r["labels"]) == len(r["response_ids"]) for r in rows)
    assert all(0 <= x <= 1 for r in rows for x in r["labels"])
    report = json.loads((tmp_path / "tvm_eval.json").read_text())
    for rule in ("tvm_best_of_n", "majority_vote", "random_pick", "random_expected", "oracle_pass_at_n"):
        assert 0 <= report[rule] <= 1
    assert report["oracle_pass_at_n"] >= max(report["tvm_best_of_n"], report["majority_vote"])
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "train_log.jsonl").exists()
    prm = TVMScorer(path=str(tmp_path / "tvm"), device="cpu")
    scores = prm.score_steps(["Compute 1 + 2 + 3.\n\n"], [["1 + 2 = 3", "3 + 3 = 6", "\\boxed{6}"]])
    assert len(scores[0]) == 3 and all(0 <= s <= 1 for s in scores[0])


def test_classifier_training_end_to_end_learns_and_loads_as_a_prm(tmp_path):
    summary = main([
        "recipe=prm_classifier", f"output_dir={tmp_path}", "device=cpu", "classifier.base=tiny", "classifier.data=arith",
        "classifier.arith_examples=400", "classifier.max_length=128", "classifier.eval_fraction=0.25",
        "classifier.stage1.epochs=2", "classifier.stage1.lr=3e-3", "classifier.stage1.mixed_precision=fp32",
        "classifier.stage2.epochs=1", "classifier.stage2.lr=1e-3", "classifier.stage2.mixed_precision=fp32",
    ])
    assert summary["train_rows"] == 300 and summary["eval_rows"] == 100
    # the head alone already beats the random start on held-out steps
    assert summary["stage1"]["eval"]["step_accuracy"] > summary["before"]["step_accuracy"]
    prm = HFTokenClassifierPRM(path=str(tmp_path / "prm"), device="cpu")
    scores = prm.score_steps(["Compute 1 + 2 + 3.\n\n"], [["1 + 2 = 3", "3 + 3 = 6", "\\boxed{6}"]])
    assert len(scores[0]) == 3 and all(-1 <= s <= 1 for s in scores[0])


def test_classifier_stage1_freezes_the_backbone(tmp_path, monkeypatch):
    import prm.classifier_train as ct

    seen = {}
    real_fit = ct.fit

    def spy(model, *args, name, **kwargs):
        seen[name] = sorted({n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad})
        return real_fit(model, *args, name=name, **kwargs)

    monkeypatch.setattr(ct, "fit", spy)
    main(["recipe=prm_classifier", f"output_dir={tmp_path}", "device=cpu", "classifier.base=tiny",
          "classifier.data=arith", "classifier.arith_examples=40", "classifier.stage1.epochs=1",
          "classifier.stage1.mixed_precision=fp32", "classifier.stage2.epochs=1", "classifier.stage2.mixed_precision=fp32"])
    assert seen["classifier.stage1"] == ["score"]
    assert seen["classifier.stage2"] == ["model", "score"]


def test_stepwise_rows_are_checked_field_by_field(tmp_path):
    from prm.classifier_train import arith_rows, check_row

    with pytest.raises(TypeError, match="field 'labels' must be a list"):
        check_row({"prompt": "p", "completions": ["a"], "labels": True}, "x.jsonl:3")
    with pytest.raises(ValueError, match="2 completions but 1 labels"):
        check_row({"prompt": "p", "completions": ["a", "b"], "labels": [True]}, "x.jsonl:3")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "p", "completions": ["a"], "labels": ["yes"]}) + "\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: labels must be true/false"):
        main(["recipe=prm_classifier", f"output_dir={tmp_path}", "device=cpu", "classifier.base=tiny",
              f"classifier.data={bad}"])
    rows = arith_rows(200, 0.5, seed=0)
    # PRM800K-style rows stop at the first wrong step
    assert all(r["labels"][:-1] == [True] * (len(r["labels"]) - 1) for r in rows)
    assert any(not r["labels"][-1] for r in rows) and any(all(r["labels"]) for r in rows)
