"""Everyday mistakes end in one line on stderr and exit code 2 from ``pure_rl.train``, ``evals.run`` and ``prm.train``."""

import inspect

import pytest

from pure_rl.config import ConfigError, load_config, validate_config
from pure_rl.core.configio import RECIPES_DIR

FAST = ("reward.verifier_kwargs.warm_up=false", "reward.verifier_kwargs.workers=1", "task.eval_size=8",
        "rollout.prompts_per_step=2", "log.progress=false")


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def _train(args, capsys):
    from pure_rl.train import main

    code = main(list(args))
    return code, _one_line(capsys) if code else ""


def test_absolute_recipe_paths(tmp_path, capsys):
    cfg = load_config([f"recipe={RECIPES_DIR / 'tiny.yaml'}"], validate=validate_config)
    assert cfg.task.kwargs["max_operands"] == 4 and cfg.recipe == str(RECIPES_DIR / "tiny.yaml")
    assert load_config([f"recipe={RECIPES_DIR / 'tiny'}"]).task.kwargs["max_operands"] == 4  # .yaml may be left out
    code, line = _train([f"recipe={tmp_path / 'missing.yaml'}"], capsys)
    assert code == 2 and f"recipe '{tmp_path / 'missing.yaml'}': no such YAML file" in line


@pytest.mark.parametrize("arg, message", [
    ("optim.grad_clip=-1", "optim.grad_clip must be > 0"), ("optim.grad_clip=0", "optim.grad_clip must be > 0"),
    ("optim.clip_eps=-1", "optim.clip_eps must be > 0"), ("train.save_every=-1", "train.save_every must be >= 0"),
    ("task.eval_size=0", "task.eval_size must be >= 1"), ("task.max_bad_row_fraction=2", "must be in [0, 1]"),
])
def test_signs_of_numeric_fields_are_checked(arg, message, capsys):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config([arg], validate=validate_config)
    code, line = _train([arg], capsys)
    assert code == 2 and message in line


def test_output_dir_that_is_a_file_or_cannot_be_written(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, line = _train([f"output_dir={blocker}", *FAST], capsys)
    assert code == 2 and line == f"error: output_dir='{blocker}' is a file, not a folder; pass a folder path"
    code, line = _train([f"output_dir={blocker / 'run'}", *FAST], capsys)  # as unwritable as a read-only mount
    assert code == 2 and "cannot be written (Not a directory); pass a writable folder" in line


def test_a_mistyped_model_name_says_what_it_meant(tiny_args, capsys):
    code, line = _train(tiny_args("model.name=smollm2-135m-instrct", *FAST), capsys)
    assert code == 2 and "did you mean 'smollm2-135m-instruct'?" in line


def test_lean_verifier_without_a_project_names_a_real_key(tiny_args, capsys, monkeypatch):
    from lean_env.verifier import LeanVerifier

    monkeypatch.delenv("LEAN_PROJECT", raising=False)
    code, line = _train(tiny_args("reward.verifier=lean", *FAST[2:]), capsys)  # FAST[:2] are the math grader's
    assert code == 2 and line.startswith("error: reward.verifier=lean: no Lean project configured")
    assert "reward.verifier_kwargs.project=" in line and "lean.project" not in line
    assert "project" in inspect.signature(LeanVerifier).parameters  # the key the hint names is a real argument


def test_an_offline_hub_fails_fast_naming_the_data_path_key(tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # refused at once, as on a machine offline
    code, line = _train(["recipe=qwen_math", f"output_dir={tmp_path / 'run'}"], capsys)
    assert code == 2 and "cannot load 'DigitalLearningGmbH/MATH-lighteval' split 'train'" in line
    assert "pass task.kwargs.data_path=" in line


def test_evals_run_refuses_an_output_dir_that_is_a_file(tmp_path, capsys):
    from evals.run import main

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["task=arith", "model=tiny", "limit=2", f"output_dir={blocker}"]) == 2
    assert _one_line(capsys) == f"config error: output_dir='{blocker}' is a file, not a folder; pass a folder path"


def test_prm_train_without_arguments_prints_usage_and_starts_nothing(tmp_path, capsys, monkeypatch):
    from prm.train import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2 and _one_line(capsys).startswith("usage: python -m prm.train recipe=")
    assert not (tmp_path / "runs").exists()


def test_prm_train_takes_an_absolute_recipe_and_refuses_a_file_as_output_dir(tmp_path, capsys):
    from prm.train import main

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as info:
        main([f"recipe={RECIPES_DIR / 'tvm_arith.yaml'}", f"output_dir={blocker}"])
    assert info.value.code == 2 and _one_line(capsys) == f"error: output_dir='{blocker}' is a file, not a folder; pass a folder path"
