"""``model.init=random``: a published architecture built from its config.json with random weights, no download.

For throughput and memory runs on hosts that cannot fetch the weights: ``pure_rl/models/configs/<name>/`` holds the
config.json of the models the GPU recipes name (and of a PURE-PRM-style token classifier) with a
``tokenizer_spec.json`` for a stand-in tokenizer of the same vocabulary size (``standin_tokenizer``). A hub id maps to
its folder by the last path component, lower-cased (``Qwen/Qwen2.5-Math-1.5B`` -> ``qwen2.5-math-1.5b``); a path to
any folder with a config.json (and a tokenizer or a spec) works too. Random weights say nothing about accuracy: the
trainer reports none for such a run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from pure_rl.models.config import ModelConfig

CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
INITS = ("pretrained", "random")
RANDOM_INIT_NOTE = "random weights (init=random): throughput and memory only, accuracy not reported"


def shipped_configs() -> list[str]:
    return sorted(p.parent.name for p in CONFIGS_DIR.glob("*/config.json"))


def config_dir(name_or_path: str, field: str = "model.name") -> Path:
    """The folder whose config.json defines ``name_or_path``: the path itself, else the shipped folder of that name."""
    local = Path(name_or_path).expanduser()
    if (local / "config.json").is_file():
        return local
    shipped = CONFIGS_DIR / name_or_path.rstrip("/").split("/")[-1].lower()
    if (shipped / "config.json").is_file():
        return shipped
    raise ValueError(f"{field}={name_or_path!r} with init=random needs a config: neither a folder with config.json nor "
                     f"a shipped config ({', '.join(shipped_configs())})")


def load_tokenizer(folder: Path) -> Any:
    """The folder's own tokenizer when it has one, else the stand-in its ``tokenizer_spec.json`` describes."""
    from transformers import AutoTokenizer

    from pure_rl.models.standin_tokenizer import standin_tokenizer

    if (folder / "tokenizer.json").is_file() or (folder / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(folder, padding_side="left")
    spec = folder / "tokenizer_spec.json"
    if not spec.is_file():
        raise ValueError(f"{folder} has neither a tokenizer nor a tokenizer_spec.json for a stand-in")
    return standin_tokenizer(json.loads(spec.read_text()))


def build_device() -> torch.device:
    """Where random weights are drawn: the GPU when there is one (a 7B model initialised on a CPU takes minutes)."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_random(auto_cls: Any, folder: Path, dtype: torch.dtype, device: torch.device | str, seed: int = 0,
                 **config_overrides: Any) -> torch.nn.Module:
    """``auto_cls`` from ``folder``'s config.json with freshly drawn weights (the model's own initialiser) on ``device``."""
    from transformers import AutoConfig

    import pure_rl.models  # noqa: F401  (registers the lightning policy with the Auto classes)

    config = AutoConfig.from_pretrained(folder, **config_overrides)
    torch.manual_seed(seed)
    with torch.device(device):
        return auto_cls.from_config(config, dtype=dtype)


def check_vocab(model: torch.nn.Module, tokenizer: Any, where: str) -> None:
    """Every token id must have an embedding row (more rows than tokens is normal: padding to a multiple)."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise ValueError(f"{where}: the tokenizer has {len(tokenizer)} tokens but the config's vocab_size is {rows}")


def load_random(model_cfg: ModelConfig, task: str = "", task_kwargs: dict[str, Any] | None = None,
                seed: int = 0) -> tuple[torch.nn.Module, Any]:
    """The ``model.init=random`` loader: (causal LM with random weights in ``model.dtype``, tokenizer)."""
    from transformers import AutoModelForCausalLM

    from pure_rl.models.loading import DTYPES, prepare_tokenizer

    field = "model.path" if model_cfg.path else "model.name"
    folder = config_dir(model_cfg.path or model_cfg.name, field)
    tokenizer = load_tokenizer(folder)
    model = build_random(AutoModelForCausalLM, folder, DTYPES[model_cfg.dtype], build_device(), seed)
    check_vocab(model, tokenizer, str(folder))
    return model, prepare_tokenizer(tokenizer)
