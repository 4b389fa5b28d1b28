"""Configuration: every recipe loads, bad input fails early with one readable line."""

from pathlib import Path

import pytest

from pure_rl.config import RECIPES_DIR, Config, ConfigError, help_text, load_config, validate_config

RECIPES = sorted(RECIPES_DIR.rglob("*.yaml"))
TRAIN_RECIPES = [p for p in RECIPES if not p.stem.startswith(("tvm_", "prm_"))]


def test_recipes_exist():
    assert {"tiny", "qwen_math", "qwen_math_1p5b", "qwen_math_sum"} <= {p.stem for p in RECIPES}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(RECIPES_DIR)))
def test_every_recipe_opens_with_its_launch_command(path: Path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("# python -m "), f"{path} must open with its launch command, got {first!r}"
    assert path.stem in first or path.stem == "tiny"


@pytest.mark.parametrize("path", TRAIN_RECIPES, ids=lambda p: p.stem)
def test_every_training_recipe_validates(path: Path):
    cfg = load_config([f"recipe={path}"], validate=validate_config)
    assert isinstance(cfg, Config)


def test_default_is_tiny_and_overrides_apply():
    cfg = load_config(["credit.temperature=0.05", "optim.lr=2e-5"], validate=validate_config)
    assert cfg.recipe == "tiny" and cfg.model.name == "tiny"
    assert cfg.credit.temperature == 0.05 and cfg.optim.lr == 2e-5


@pytest.mark.parametrize(
    "args, message",
    [
        (["credit.temprature=0.2"], "did you mean 'credit.temperature'"),
        (["optim.lrr=1"], "did you mean 'optim.lr'"),
        (["optim.lr=fast"], "optim.lr"),
        (["rollout.prompts_per_step=-4"], "rollout.prompts_per_step must be >= 1"),
        (["rollout.group_size=1"], "group_size must be >= 2"),
        (["reward.prm=nonexistent"], "reward.prm: unknown prm 'nonexistent'; known: arith"),
        (["credit.form=maxx"], "credit.form: unknown credit form"),
        (["recipe=qwen_mat"], "Did you mean 'qwen_math'"),
        (["justaword"], "not of the form key=value"),
    ],
)
def test_bad_input_is_one_clear_line(args, message):
    with pytest.raises(ConfigError) as info:
        load_config(args, validate=validate_config)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_help_lists_fields_with_defaults_and_comments():
    text = help_text()
    assert "credit.temperature = 0.1  # T of the min-form softmax" in text
    assert "[rollout]" in text and "rollout.group_size = 8" in text


def test_cli_help_and_config_error_exit_codes(capsys):
    from pure_rl.train import main

    assert main(["--help"]) == 0
    assert "credit.form" in capsys.readouterr().out
    assert main(["credit.fomr=sum"]) == 2
    assert "did you mean 'credit.form'" in capsys.readouterr().err


def test_cli_reports_a_missing_model_in_one_line(tmp_path, capsys, monkeypatch):
    from pure_rl.train import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main([f"output_dir={tmp_path}", "model.name=some-org/no-such-model", "task.eval_size=4", "log.progress=false"])
    err = capsys.readouterr().err
    assert code == 2
    assert "not found locally and the hub is unreachable" in err and "Traceback" not in err
