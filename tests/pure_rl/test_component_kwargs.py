"""Kwargs belong to their component: a swap on the command line drops the recipe's, ``KWARGS={}`` clears them, and a
typo inside them fails at config time (nothing built) with the closest constructor argument."""

import logging

import pytest

from pure_rl.config import ConfigError, load_config, validate_config


def _load(*args):
    return load_config(list(args), validate=validate_config)


def test_swapping_the_task_drops_the_recipes_task_kwargs_with_an_info_line(caplog):
    with caplog.at_level(logging.INFO, logger="pure_rl.core.configio"):
        cfg = _load("task.name=gsm8k")
    assert cfg.task.name == "gsm8k" and cfg.task.kwargs == {}
    assert "task.name=gsm8k replaces the recipe's arith" in caplog.text and "min_operands" in caplog.text
    kept = _load("task.name=gsm8k", "task.kwargs.prompt=gsm8k")  # the new component's own kwargs stay
    assert kept.task.kwargs == {"prompt": "gsm8k"}
    assert _load("task.name=arith").task.kwargs["min_operands"] == 3  # naming the same component keeps them


def test_swapping_the_prm_verifier_or_engine_drops_their_kwargs(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("reward: {verifier: math, verifier_kwargs: {timeout: 2.0}, prm: arith, prm_kwargs: {mode: lenient}}\n"
                      "rollout: {engine: hf, engine_kwargs: {micro_batch_size: 4}}\n")
    qwen = _load("recipe=qwen_math", "reward.prm=none")
    assert qwen.reward.prm == "none" and qwen.reward.prm_kwargs == {}
    cfg = _load(f"recipe={recipe}", f"reward.verifier={__name__}:KeywordVerifier", "reward.prm=none",
                f"rollout.engine={__name__}:KeywordEngine")
    assert cfg.reward.verifier_kwargs == {} and cfg.reward.prm_kwargs == {} and cfg.rollout.engine_kwargs == {}
    same = _load(f"recipe={recipe}")
    assert same.reward.verifier_kwargs == {"timeout": 2.0} and same.rollout.engine_kwargs == {"micro_batch_size": 4}


def test_a_whole_kwargs_assignment_replaces_the_recipes():
    assert _load("recipe=qwen_math", "reward.prm_kwargs={}").reward.prm_kwargs == {}
    assert _load("task.kwargs={}").task.kwargs == {}
    assert _load("task.kwargs={max_operand: 5}").task.kwargs == {"max_operand": 5}
    assert _load("task.kwargs.max_operand=5").task.kwargs == {"min_operands": 3, "max_operands": 4, "max_operand": 5}


@pytest.mark.parametrize("arg, message", [
    ("task.kwargs.max_operandz=3", ("task.kwargs.max_operandz: arith has no argument 'max_operandz'; "
                                    "did you mean task.kwargs.max_operand?")),
    ("reward.verifier_kwargs.timout=3", "did you mean reward.verifier_kwargs.timeout?"),
    ("reward.prm_kwargs.mod=lenient", "did you mean reward.prm_kwargs.mode?"),
    ("rollout.engine_kwargs.micro_batch_sise=3", "did you mean rollout.engine_kwargs.micro_batch_size?"),
    ("rollout.engine_kwargs.tokenizer=x", "hf gets 'tokenizer' from the trainer"),
])
def test_a_kwarg_typo_fails_at_config_time_with_the_closest_argument(arg, message):
    with pytest.raises(ConfigError) as info:
        _load(arg)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_required_argument_is_named_before_anything_is_built():
    with pytest.raises(ConfigError, match=r"reward.prm_kwargs: remote needs 'url'; set reward.prm_kwargs.url="):
        _load("reward.prm=remote")


def test_the_cli_reports_a_kwarg_typo_in_one_line(capsys):
    from pure_rl.train import main

    assert main(["task.name=gsm8k", "task.kwargs.promt=gsm8k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [("config error: task.kwargs.promt: gsm8k has no argument 'promt'; did you mean task.kwargs.prompt? "
                    "(its arguments: prompt, data_path, hub_id, seed)")]


class KeywordVerifier:
    """A plugin verifier with one keyword of its own (only its signature is read here)."""

    def __init__(self, strict: bool = False):
        self.strict = strict


class KeywordEngine:
    """A plugin engine's signature: the trainer supplies the first four arguments."""

    def __init__(self, model, tokenizer, device, use_chat_template=False, beams: int = 1):
        self.beams = beams
