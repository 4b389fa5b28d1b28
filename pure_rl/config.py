"""The run configuration: one dataclass per concern, merged with OmegaConf 2.4 (no Hydra).

``python -m pure_rl.train recipe=NAME a.b=c ...`` loads ``recipes/NAME.yaml`` (or a path), then the dotlist.
Unknown keys fail with the closest valid key; wrong types, bad values and unknown registry names fail before
any model is built, each with a one-line message. ``--help`` prints every field with its default and comment.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
DEFAULT_RECIPE = "tiny"


class ConfigError(ValueError):
    """A configuration problem, explained in one line."""


@dataclass
class LoRAConfig:
    r: int = 0  # LoRA rank; 0 = full fine-tuning
    alpha: int = 16  # LoRA scaling numerator (scale = alpha / r)
    dropout: float = 0.0  # dropout on the LoRA branch
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])  # module names


@dataclass
class TinyModelConfig:
    arch: str = "llama"  # llama | lightning: architecture of the tiny policy built from this config
    hidden_size: int = 128  # model width
    num_layers: int = 2  # transformer blocks
    num_heads: int = 4  # attention heads
    intermediate_size: int = 384  # MLP width
    vocab_size: int = 400  # byte-level BPE vocabulary trained offline on the task's text (>= 259: bytes + specials)
    lightning: dict[str, Any] = field(default_factory=dict)  # extra LightningConfig fields for arch=lightning (conv_size, decay, ...)


@dataclass
class WarmStartConfig:
    steps: int = 0  # supervised steps on task demonstrations before RL; 0 = none
    batch_size: int = 32  # demonstrations per supervised step
    lr: float = 3e-3  # supervised learning rate
    demo_error_rate: float = 0.0  # fraction of demonstrations with one arithmetic slip (a realistic, imperfect SFT set)
    demo_early_stop_rate: float = 0.0  # fraction of demonstrations that box their answer one operation too early
    cache: bool = True  # reuse a warm-start checkpoint with the same settings (keyed by their hash)


@dataclass
class ModelConfig:
    name: str = "tiny"  # "tiny" (built from model.tiny), a known name (smollm2-135m-instruct), a hub id or a local path
    path: str | None = None  # local folder or hub id; overrides name when set
    gguf_file: str | None = None  # GGUF file inside path (or an absolute path) to load and convert
    dtype: str = "float32"  # float32 | bfloat16 | float16 for the trained weights
    gradient_checkpointing: bool = False  # trade compute for activation memory
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    warm_start: WarmStartConfig = field(default_factory=WarmStartConfig)


@dataclass
class RolloutConfig:
    engine: str = "hf"  # hf | native | vllm | module:attr
    prompts_per_step: int = 16  # distinct prompts sampled per training step
    group_size: int = 8  # responses per prompt (K of the leave-one-out baseline)
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling mass
    max_new_tokens: int = 64  # generation cap per response
    stop: list[str] = field(default_factory=list)  # stop strings (the response keeps the stop string)
    chat_template: bool = False  # wrap prompts in the tokenizer's chat template
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # extra constructor arguments for the engine


@dataclass
class RewardConfig:
    verifier: str = "math"  # math | lean | none | module:attr
    verifier_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments for the verifier
    prm: str = "arith"  # arith | hf_token_classifier | qwen_prm | tvm | remote | none | module:attr
    prm_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments for the PRM
    vr_coef: float = 1.0  # weight of the verifiable reward added at the last token; 0 = PRM only
    vr_fraction: float = 1.0  # fraction of training problems that keep their ground truth (PURE's "10% VR" = 0.1)
    separator: str = "\n\n"  # step separator: every token whose text ends with it ends a step


@dataclass
class CreditConfig:
    form: str = "min"  # min (PURE) | hardmin (T -> 0) | sum (the collapsing baseline) | module:attr
    temperature: float = 0.1  # T of the min-form softmax; rewards are in [-1, 1]
    baseline: str = "token"  # token (OpenRLHF PURE) | paper (Eq. 7, verl)
    mask_step_ends: bool = True  # zero the advantage on separator / last tokens
    whiten: bool = True  # whiten advantages over the batch
    kl_coef: float = 0.0  # beta of the -beta * KL term in the reward (PURE: 1e-3); 0 = no reference model
    kl_estimator: str = "k1"  # k1 | k2 | k3


@dataclass
class OptimConfig:
    lr: float = 1e-6  # learning rate of the policy update
    weight_decay: float = 0.0  # AdamW weight decay
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])  # AdamW betas
    warmup_steps: int = 0  # linear warm-up steps, then constant
    grad_clip: float = 1.0  # max global gradient norm
    clip_eps: float = 0.2  # PPO ratio clip
    ppo_epochs: int = 1  # passes over each rollout batch
    mini_batches: int = 1  # optimiser steps per epoch (PURE paper: 1)
    micro_batch_size: int = 16  # rows per forward/backward (gradient accumulation inside a mini-batch)
    loss_aggregation: str = "token-mean"  # token-mean | seq-mean-token-mean
    max_bad_steps: int = 3  # consecutive non-finite losses tolerated before the run stops


@dataclass
class TaskConfig:
    name: str = "arith"  # arith | gsm8k | math | math500 | minif2f | module:attr
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the task
    train_split: str = "train"  # split the RL prompts come from
    eval_split: str = "test"  # held-out split
    eval_size: int = 200  # held-out problems evaluated (greedy) before, during and after training
    eval_every: int = 0  # evaluate every N steps; 0 = only before and after
    eval_max_new_tokens: int = 0  # generation cap for evaluation; 0 = rollout.max_new_tokens


@dataclass
class TrainConfig:
    steps: int = 100  # RL steps
    save_every: int = 50  # checkpoint every N steps (and at the end); 0 = only at the end
    keep_checkpoints: int = 2  # most recent checkpoints kept on disk
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class LogConfig:
    tensorboard: bool = True  # write TensorBoard events when tensorboard is installed
    wandb_project: str | None = None  # log to Weights & Biases when set and installed
    progress: bool = True  # rich progress bar
    jump_factor: float = 3.0  # monitors warn when a watched metric moves by this many running std devs
    samples_per_step: int = 4  # rollouts per step written to samples.jsonl with their step scores and verdict


@dataclass
class Config:
    recipe: str | None = None  # recipe name or path this config came from
    output_dir: str | None = None  # run folder; default runs/<recipe>-<timestamp>
    resume: str | None = None  # checkpoint folder, run folder, or "auto" (latest good checkpoint in output_dir)
    seed: int = 0  # seed for torch, sampling and data order
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    credit: CreditConfig = field(default_factory=CreditConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)


def recipe_path(recipe: str) -> Path:
    """``recipes/NAME.yaml`` (searched recursively) or a path to a YAML file."""
    p = Path(recipe)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    matches = sorted(RECIPES_DIR.rglob(f"{recipe}.yaml"))
    if matches:
        return matches[0]
    known = sorted(q.stem for q in RECIPES_DIR.rglob("*.yaml"))
    close = difflib.get_close_matches(recipe, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"recipe {recipe!r} not found; known recipes: {', '.join(known)}.{hint}")


def all_keys(schema: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the schema (sections and leaves)."""
    keys = []
    instance = schema()
    for f in dataclasses.fields(schema):
        keys.append(prefix + f.name)
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            keys.extend(all_keys(type(value), prefix + f.name + "."))
    return keys


def load_config(
    argv: list[str] | None = None,
    schema: type = Config,
    default_recipe: str | None = DEFAULT_RECIPE,
    validate: Callable[[Any], None] | None = None,
) -> Any:
    """Parse ``recipe=NAME key=value ...`` into a ``schema`` instance, then run ``validate`` on it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    for arg in argv:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not of the form key=value (try --help)")
    recipe = next((a.split("=", 1)[1] for a in argv if a.startswith("recipe=")), default_recipe)
    dotlist = [a for a in argv if not a.startswith("recipe=")]
    base = OmegaConf.structured(schema)
    layers: list[DictConfig] = []
    if recipe:
        path = recipe_path(recipe)
        try:
            layers.append(OmegaConf.load(path))
        except Exception as exc:  # a YAML syntax error: say which file
            raise ConfigError(f"recipe {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    layers.append(OmegaConf.from_dotlist(dotlist))
    try:
        merged = OmegaConf.merge(base, *layers)
        if recipe and "recipe" in merged:
            merged.recipe = recipe
        cfg = OmegaConf.to_object(merged)
    except ConfigKeyError as exc:
        raise ConfigError(_unknown_key_message(exc, schema)) from exc
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "?"
        raise ConfigError(f"bad value for {key}: {str(exc).splitlines()[0]}") from exc
    if validate is not None:
        validate(cfg)
    return cfg


def _unknown_key_message(exc: ConfigKeyError, schema: type) -> str:
    full_key = getattr(exc, "full_key", None) or str(getattr(exc, "key", "?"))
    close = difflib.get_close_matches(full_key, all_keys(schema), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown config key {full_key!r}{hint} (python -m pure_rl.train --help lists every key)"


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def validate_config(cfg: Config) -> None:
    """Cross-field and range checks, run before anything is built."""
    from pure_rl import registry

    _check(cfg.rollout.group_size >= 2, f"rollout.group_size must be >= 2 (leave-one-out baseline), got {cfg.rollout.group_size}")
    _check(cfg.rollout.prompts_per_step >= 1, f"rollout.prompts_per_step must be >= 1, got {cfg.rollout.prompts_per_step}")
    _check(cfg.rollout.max_new_tokens >= 1, f"rollout.max_new_tokens must be >= 1, got {cfg.rollout.max_new_tokens}")
    _check(cfg.rollout.temperature >= 0, f"rollout.temperature must be >= 0, got {cfg.rollout.temperature}")
    _check(0 < cfg.rollout.top_p <= 1, f"rollout.top_p must be in (0, 1], got {cfg.rollout.top_p}")
    _check(cfg.credit.temperature > 0, f"credit.temperature must be > 0, got {cfg.credit.temperature}")
    _check(cfg.credit.baseline in ("token", "paper"), f"credit.baseline must be token or paper, got {cfg.credit.baseline!r}")
    _check(cfg.credit.kl_estimator in ("k1", "k2", "k3"), f"credit.kl_estimator must be k1, k2 or k3, got {cfg.credit.kl_estimator!r}")
    _check(cfg.credit.kl_coef >= 0, f"credit.kl_coef must be >= 0, got {cfg.credit.kl_coef}")
    _check(0 <= cfg.reward.vr_fraction <= 1, f"reward.vr_fraction must be in [0, 1], got {cfg.reward.vr_fraction}")
    _check(cfg.optim.lr > 0, f"optim.lr must be > 0, got {cfg.optim.lr}")
    _check(len(cfg.optim.betas) == 2, f"optim.betas must hold two numbers, got {cfg.optim.betas}")
    _check(cfg.optim.micro_batch_size >= 1, f"optim.micro_batch_size must be >= 1, got {cfg.optim.micro_batch_size}")
    _check(cfg.optim.mini_batches >= 1 and cfg.optim.ppo_epochs >= 1, "optim.mini_batches and optim.ppo_epochs must be >= 1")
    _check(cfg.optim.loss_aggregation in ("token-mean", "seq-mean-token-mean"),
           f"optim.loss_aggregation must be token-mean or seq-mean-token-mean, got {cfg.optim.loss_aggregation!r}")
    batch = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    _check(batch % cfg.optim.mini_batches == 0, f"rollout batch {batch} is not divisible by optim.mini_batches={cfg.optim.mini_batches}")
    _check(cfg.train.steps >= 0, f"train.steps must be >= 0, got {cfg.train.steps}")
    _check(cfg.model.dtype in ("float32", "bfloat16", "float16"), f"model.dtype must be float32, bfloat16 or float16, got {cfg.model.dtype!r}")
    _check(cfg.model.lora.r >= 0, f"model.lora.r must be >= 0, got {cfg.model.lora.r}")
    _check(cfg.model.tiny.vocab_size >= 300, f"model.tiny.vocab_size must be >= 300 (256 bytes + specials + merges such as the step separator), got {cfg.model.tiny.vocab_size}")
    _check(cfg.model.tiny.arch in ("llama", "lightning"), f"model.tiny.arch must be llama or lightning, got {cfg.model.tiny.arch!r}")
    _check(not cfg.model.tiny.lightning or cfg.model.tiny.arch == "lightning", f"model.tiny.lightning is only read with model.tiny.arch=lightning, got arch={cfg.model.tiny.arch!r}")
    if cfg.model.tiny.lightning:
        from pure_rl.models.configuration_lightning import override_error

        t = cfg.model.tiny
        error = override_error(dict(t.lightning), hidden_size=t.hidden_size, num_hidden_layers=t.num_layers, num_attention_heads=t.num_heads)
        _check(error is None, f"model.tiny.lightning: {error}")
    _check(0 <= cfg.model.warm_start.demo_error_rate <= 1, "model.warm_start.demo_error_rate must be in [0, 1]")
    _check(0 <= cfg.model.warm_start.demo_early_stop_rate <= 1, "model.warm_start.demo_early_stop_rate must be in [0, 1]")
    _check(cfg.train.device in ("auto", "cpu", "cuda"), f"train.device must be auto, cpu or cuda, got {cfg.train.device!r}")
    for reg, name, key in (
        (registry.VERIFIERS, cfg.reward.verifier, "reward.verifier"),
        (registry.PRMS, cfg.reward.prm, "reward.prm"),
        (registry.TASKS, cfg.task.name, "task.name"),
        (registry.ROLLOUT_ENGINES, cfg.rollout.engine, "rollout.engine"),
        (registry.CREDIT_FORMS, cfg.credit.form, "credit.form"),
    ):
        try:
            reg.check(name)
        except registry.RegistryError as exc:
            raise ConfigError(f"{key}: {exc}") from exc


def field_comments(schema: type) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a dataclass's source."""
    comments = {}
    for line in inspect.getsource(schema).splitlines():
        m = re.match(r"\s+(\w+): [^=]+=.*?#\s*(.*)$", line)
        if m:
            comments[m.group(1)] = m.group(2)
    return comments


def help_text(schema: type = Config, prefix: str = "") -> str:
    """Every field with its default and comment, section by section."""
    lines = []
    comments = field_comments(schema)
    instance = schema()
    for f in dataclasses.fields(schema):
        value = getattr(instance, f.name)
        if dataclasses.is_dataclass(value):
            lines.append(f"\n[{prefix}{f.name}]")
            lines.append(help_text(type(value), prefix + f.name + "."))
        else:
            lines.append(f"  {prefix}{f.name} = {value!r}  # {comments.get(f.name, '')}")
    return "\n".join(lines)


def to_yaml(cfg: Any) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
