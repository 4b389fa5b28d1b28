"""GPU-scale recipes on a machine without weights or hub: every object that needs no weights is built, and
loading fails with one clear message instead of a stack trace."""

import pytest

from pure_rl.config import load_config, validate_config
from pure_rl.core.registry import CREDIT_FORMS, PRMS, ROLLOUT_ENGINES, TASKS, VERIFIERS
from pure_rl.models.loading import ModelLoadError, load_pretrained

REAL_RECIPES = ["qwen_math", "qwen_math_1p5b", "qwen_math_sum"]


@pytest.mark.parametrize("recipe", REAL_RECIPES)
def test_real_recipe_builds_everything_but_weights(recipe, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = load_config([f"recipe={recipe}"], validate=validate_config)
    assert cfg.credit.temperature == 0.1 and cfg.reward.vr_fraction == 0.1
    assert cfg.rollout.prompts_per_step == 64 and cfg.rollout.group_size == 8 and cfg.rollout.max_new_tokens == 8192
    for registry, name in (
        (PRMS, cfg.reward.prm),
        (ROLLOUT_ENGINES, cfg.rollout.engine),
        (TASKS, cfg.task.name),
        (VERIFIERS, cfg.reward.verifier),
        (CREDIT_FORMS, cfg.credit.form),
    ):
        assert callable(registry.get(name))
    verifier = VERIFIERS.build(cfg.reward.verifier, **cfg.reward.verifier_kwargs)
    assert callable(verifier.verify_batch)
    with pytest.raises(ModelLoadError, match="not found locally and the hub is unreachable.*set model.path="):
        load_pretrained(cfg.model)


def test_missing_local_path_names_the_field(tmp_path):
    cfg = load_config(["recipe=qwen_math", f"model.path={tmp_path / 'nope'}"], validate=validate_config)
    with pytest.raises(ModelLoadError, match="model.path .* does not exist"):
        load_pretrained(cfg.model)


def test_our_kernels_package_does_not_pose_as_the_hub_kernels_package(tmp_path):
    """transformers switches to hub kernels when it believes `kernels` (huggingface/kernels) is installed."""
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.utils import import_utils

    import kernels

    assert kernels.__file__ is not None
    import_utils.is_kernels_available.cache_clear()
    assert not import_utils.is_kernels_available()
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    model.save_pretrained(tmp_path)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path)
    assert loaded.config.hidden_size == 32
