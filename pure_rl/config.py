"""The trainer's run configuration: one dataclass per concern (loading and errors: ``pure_rl.core.configio``).

``python -m pure_rl.train recipe=NAME a.b=c ...`` loads ``recipes/NAME.yaml`` (or a path, with its ``base:`` chain),
then the dotlist. Unknown keys fail with the closest valid key; wrong types, bad values and unknown registry names
fail before any model is built, each with a one-line message. ``--help`` prints every field with its default and
comment. Fields left None take the task's default (splits, generation cap, stop strings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from pure_rl.core import configio
from pure_rl.core.configio import RECIPES_DIR, ConfigError, check, check_component_kwargs, check_registered, to_yaml
from pure_rl.core.registry import DEFAULT_TASK
from pure_rl.models.config import LoRAConfig, ModelConfig, TinyModelConfig, WarmStartConfig

DEFAULT_RECIPE = "tiny"
# Each component's name key and the key of its constructor arguments: the arguments belong to the component.
COMPONENTS = (("task.name", "task.kwargs"), ("reward.prm", "reward.prm_kwargs"),
              ("reward.verifier", "reward.verifier_kwargs"), ("rollout.engine", "rollout.engine_kwargs"))
# Constructor arguments the trainer passes itself.
SUPPLIED = {"rollout.engine_kwargs": ("model", "tokenizer", "device", "use_chat_template")}
__all__ = ["RECIPES_DIR", "Config", "ConfigError", "LoRAConfig", "ModelConfig", "TinyModelConfig", "WarmStartConfig",
           "help_text", "load_config", "to_yaml", "validate_config"]


@dataclass
class RolloutConfig:
    engine: str = "hf"  # hf | native | vllm | module:attr
    prompts_per_step: int = 16  # distinct prompts sampled per training step
    group_size: int = 8  # responses per prompt (K of the leave-one-out baseline)
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling mass
    max_new_tokens: int | None = None  # generation cap per response; None = the task's (arith: 64)
    stop: list[str] | None = None  # stop strings (the response keeps the stop string); None = the task's
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
    token_path: bool = True  # let a PRM that declares supports_token_scoring read the rollout ids (False: text path)


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
    name: str = DEFAULT_TASK  # arith | gsm8k | math | math500 | minif2f | module:attr
    kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the task
    train_split: str | None = None  # split the RL prompts come from; None = the task's (train; miniF2F: valid)
    eval_split: str | None = None  # held-out split; None = the task's (test)
    eval_size: int = 200  # held-out problems evaluated (greedy) before, during and after training
    eval_every: int = 0  # evaluate every N steps; 0 = only before and after
    eval_max_new_tokens: int = 0  # generation cap for evaluation; 0 = rollout.max_new_tokens
    max_bad_row_fraction: float = 0.01  # bad data rows (broken JSON, missing fields) are skipped; more than this share refuses


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
    prm_wrong_per_step: int = 2  # highest-PRM wrong answers per step also written to samples.jsonl
    hacking_window: int = 10  # steps of PRM reward up / verifier accuracy down before "reward hacking suspected"


@dataclass
class Config:
    recipe: str | None = None  # recipe name or path this config came from
    output_dir: str | None = None  # run folder; default runs/<recipe>-<timestamp>
    resume: str | None = None  # checkpoint folder, run folder, or "auto" (latest good checkpoint in output_dir)
    overwrite: bool = False  # start a new run in an output_dir that holds one, deleting it (else: refused)
    seed: int = 0  # seed for torch, sampling and data order
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    credit: CreditConfig = field(default_factory=CreditConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)


def validate_config(cfg: Config) -> None:
    """Cross-field and range checks, run before anything is built."""
    from pure_rl.core import registry

    check(cfg.rollout.group_size >= 2, f"rollout.group_size must be >= 2 (leave-one-out baseline), got {cfg.rollout.group_size}")
    check(cfg.rollout.prompts_per_step >= 1, f"rollout.prompts_per_step must be >= 1, got {cfg.rollout.prompts_per_step}")
    check(cfg.rollout.max_new_tokens is None or cfg.rollout.max_new_tokens >= 1,
          f"rollout.max_new_tokens must be >= 1, got {cfg.rollout.max_new_tokens}")
    check(cfg.rollout.temperature >= 0, f"rollout.temperature must be >= 0, got {cfg.rollout.temperature}")
    check(0 < cfg.rollout.top_p <= 1, f"rollout.top_p must be in (0, 1], got {cfg.rollout.top_p}")
    check(cfg.credit.temperature > 0, f"credit.temperature must be > 0, got {cfg.credit.temperature}")
    check(cfg.credit.baseline in ("token", "paper"), f"credit.baseline must be token or paper, got {cfg.credit.baseline!r}")
    check(cfg.credit.kl_estimator in ("k1", "k2", "k3"), f"credit.kl_estimator must be k1, k2 or k3, got {cfg.credit.kl_estimator!r}")
    check(cfg.credit.kl_coef >= 0, f"credit.kl_coef must be >= 0, got {cfg.credit.kl_coef}")
    check(0 <= cfg.reward.vr_fraction <= 1, f"reward.vr_fraction must be in [0, 1], got {cfg.reward.vr_fraction}")
    check(cfg.optim.lr > 0, f"optim.lr must be > 0, got {cfg.optim.lr}")
    check(len(cfg.optim.betas) == 2, f"optim.betas must hold two numbers, got {cfg.optim.betas}")
    check(cfg.optim.micro_batch_size >= 1, f"optim.micro_batch_size must be >= 1, got {cfg.optim.micro_batch_size}")
    check(cfg.optim.mini_batches >= 1 and cfg.optim.ppo_epochs >= 1, "optim.mini_batches and optim.ppo_epochs must be >= 1")
    check(cfg.optim.loss_aggregation in ("token-mean", "seq-mean-token-mean"),
           f"optim.loss_aggregation must be token-mean or seq-mean-token-mean, got {cfg.optim.loss_aggregation!r}")
    batch = cfg.rollout.prompts_per_step * cfg.rollout.group_size
    check(batch % cfg.optim.mini_batches == 0, f"rollout batch {batch} is not divisible by optim.mini_batches={cfg.optim.mini_batches}")
    check(cfg.train.steps >= 0, f"train.steps must be >= 0, got {cfg.train.steps}")
    check(cfg.optim.grad_clip > 0, f"optim.grad_clip must be > 0 (a max gradient norm), got {cfg.optim.grad_clip}")
    check(cfg.optim.clip_eps > 0, f"optim.clip_eps must be > 0 (the PPO ratio clip), got {cfg.optim.clip_eps}")
    check(cfg.optim.max_bad_steps >= 1, f"optim.max_bad_steps must be >= 1, got {cfg.optim.max_bad_steps}")
    check(cfg.optim.warmup_steps >= 0, f"optim.warmup_steps must be >= 0, got {cfg.optim.warmup_steps}")
    check(cfg.train.save_every >= 0, f"train.save_every must be >= 0 (0 = only at the end), got {cfg.train.save_every}")
    check(cfg.train.keep_checkpoints >= 0, f"train.keep_checkpoints must be >= 0, got {cfg.train.keep_checkpoints}")
    check(cfg.task.eval_size >= 1, f"task.eval_size must be >= 1 (held-out problems), got {cfg.task.eval_size}")
    check(cfg.task.eval_every >= 0, f"task.eval_every must be >= 0 (0 = only before and after), got {cfg.task.eval_every}")
    check(0 <= cfg.task.max_bad_row_fraction <= 1,
          f"task.max_bad_row_fraction must be in [0, 1], got {cfg.task.max_bad_row_fraction}")
    check(cfg.resume != "auto" or cfg.output_dir is not None,
          "resume=auto continues the run in output_dir: set output_dir=RUN_FOLDER too")
    check(not (cfg.resume and cfg.overwrite), "resume and overwrite=true contradict each other: pick one")
    check(cfg.model.dtype in ("float32", "bfloat16", "float16"), f"model.dtype must be float32, bfloat16 or float16, got {cfg.model.dtype!r}")
    check(cfg.model.init in ("pretrained", "random"), f"model.init must be pretrained or random, got {cfg.model.init!r}")
    check(cfg.model.lora.r >= 0, f"model.lora.r must be >= 0, got {cfg.model.lora.r}")
    check(cfg.model.tiny.vocab_size >= 300, f"model.tiny.vocab_size must be >= 300 (256 bytes + specials + merges such as the step separator), got {cfg.model.tiny.vocab_size}")
    check(cfg.model.tiny.arch in ("llama", "lightning"), f"model.tiny.arch must be llama or lightning, got {cfg.model.tiny.arch!r}")
    check(not cfg.model.tiny.lightning or cfg.model.tiny.arch == "lightning",
          f"model.tiny.lightning is only read with model.tiny.arch=lightning, got arch={cfg.model.tiny.arch!r}")
    if cfg.model.tiny.lightning:
        from pure_rl.models.configuration_lightning import override_error

        t = cfg.model.tiny
        error = override_error(dict(t.lightning), hidden_size=t.hidden_size, num_hidden_layers=t.num_layers,
                               num_attention_heads=t.num_heads)
        check(error is None, f"model.tiny.lightning: {error}")
    check(0 <= cfg.model.warm_start.demo_error_rate <= 1, "model.warm_start.demo_error_rate must be in [0, 1]")
    check(0 <= cfg.model.warm_start.demo_early_stop_rate <= 1, "model.warm_start.demo_early_stop_rate must be in [0, 1]")
    check(cfg.train.device in ("auto", "cpu", "cuda"), f"train.device must be auto, cpu or cuda, got {cfg.train.device!r}")
    check_registered([
        (registry.VERIFIERS, cfg.reward.verifier, "reward.verifier"),
        (registry.PRMS, cfg.reward.prm, "reward.prm"),
        (registry.TASKS, cfg.task.name, "task.name"),
        (registry.ROLLOUT_ENGINES, cfg.rollout.engine, "rollout.engine"),
        (registry.CREDIT_FORMS, cfg.credit.form, "credit.form"),
    ])
    check_component_kwargs([
        (registry.TASKS, cfg.task.name, cfg.task.kwargs, "task.kwargs"),
        (registry.PRMS, cfg.reward.prm, cfg.reward.prm_kwargs, "reward.prm_kwargs"),
        (registry.VERIFIERS, cfg.reward.verifier, cfg.reward.verifier_kwargs, "reward.verifier_kwargs"),
        (registry.ROLLOUT_ENGINES, cfg.rollout.engine, cfg.rollout.engine_kwargs, "rollout.engine_kwargs"),
    ], SUPPLIED)


def load_config(argv: list[str] | None = None, validate: Callable[[Config], None] | None = None) -> Config:
    """The trainer's config from ``recipe=NAME key=value ...`` (default recipe: the embedded ``tiny``)."""
    return configio.load_config(argv, Config, DEFAULT_RECIPE, validate, components=COMPONENTS)


def help_text() -> str:
    """Every trainer field with its default and comment."""
    return configio.help_text(Config)


def apply_task_defaults(cfg: Config, task: Any) -> None:
    """Fill the fields left None with the task's own defaults (``Task`` protocol attributes), in place.

    A plugin task that declares none of them gets train / test, 64 tokens and no stop strings.
    """
    cfg.task.train_split = cfg.task.train_split or getattr(task, "train_split", "train")
    cfg.task.eval_split = cfg.task.eval_split or getattr(task, "eval_split", "test")
    if cfg.rollout.max_new_tokens is None:
        cfg.rollout.max_new_tokens = int(getattr(task, "max_new_tokens", 64))
    if cfg.rollout.stop is None:
        cfg.rollout.stop = list(getattr(task, "stop", []))


def to_container(cfg: Config) -> dict[str, Any]:
    """The config as plain dicts and lists (what W&B and JSON want)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(cfg))
