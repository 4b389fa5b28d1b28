"""``evals.run``'s keys: the ``EvalConfig`` schema, its checks, and argv parsing (``pure_rl.core.configio``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pure_rl.core.configio import check, check_component_kwargs, check_registered, load_config

# Held-out evaluation in the trainer (pure_rl.evaluate.evaluate_heldout) generates 256 problems per call; the same
# chunking gives the same left padding, hence bit-identical greedy outputs.
TRAINER_EVAL_CHUNK = 256


@dataclass
class EvalConfig:
    task: str | None = None  # gsm8k | math500 | minif2f | arith | math | module:attr; default: the training run's task
    model: str | None = None  # checkpoint folder, hub id or known name (smollm2-135m-instruct); required
    gguf_file: str | None = None  # GGUF file inside model (or an absolute path) to load instead
    dtype: str | None = None  # float32 | bfloat16 | float16; default: the run's model.dtype, else float32
    device: str = "auto"  # auto | cpu | cuda
    engine: str | None = None  # hf | native | vllm | module:attr; default: the run's rollout.engine, else hf
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # extra engine constructor arguments
    chat_template: bool | None = None  # wrap prompts in the tokenizer's chat template; default: the run's, else false
    n: int = 1  # samples per problem
    temperature: float | None = None  # default 0 (greedy) when n=1, else 1.0
    top_p: float | None = None  # default 1.0 (0.95 when sampling miniF2F, as DeepSeek-Prover)
    max_tokens: int | None = None  # generation cap; default: the run's eval cap, else 64/1024/2048/2048 by task
    stop: list[str] | None = None  # stop strings; default by prompt format (lm-eval's until, ``` for miniF2F)
    seed: int = 0  # sampling seed (chunk i uses seed + i, so a resumed run draws the same samples)
    shots: int | None = None  # GSM8K: 0 (qwen-boxed), 5 (prompt=gsm8k) or 8 (prompt=gsm8k_cot)
    prompt: str | None = None  # prompt format: qwen-boxed | gsm8k | gsm8k_cot | cot_zeroshot; miniF2F: deepseek | deepseek_cot | chat
    k: list[int] | None = None  # pass@k / maj@k values (k=1,8,32); default: 1, powers of 2 up to n, and n
    split: str | None = None  # split(s), comma-separated; default: the run's eval split, else test (miniF2F: valid,test)
    limit: int | None = None  # first N problems per split; default: the run's task.eval_size, else all
    data_path: str | None = None  # local JSONL (or folder) instead of the shared copy / hub
    max_bad_row_fraction: float = 0.01  # bad data rows are skipped and counted; more than this share refuses
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # task constructor arguments (override the run's)
    verifier: str | None = None  # math | lean | module:attr; default: lean for miniF2F, else math
    verifier_kwargs: dict[str, Any] = field(default_factory=dict)  # verifier constructor arguments
    chunk_size: int = TRAINER_EVAL_CHUNK  # problems per generate call and per predictions.jsonl flush
    conventions: bool = True  # also grade first samples with lm-eval (GSM8K) and plain math-verify, report disagreements
    run_config: str | None = None  # a training run's config.yaml; default: found beside the checkpoint; "none" = ignore
    output_dir: str | None = None  # default runs/eval/<task>-<model> (beside the trainer's runs/)
    overwrite: bool = False  # discard predictions.jsonl in output_dir instead of resuming


def validate_eval_config(cfg: EvalConfig) -> None:
    """Range checks that need no files: one-line ConfigErrors."""
    from pure_rl.core import registry

    check(cfg.model is not None, "model= is required: a checkpoint folder, a hub id or a known model name")
    check(cfg.n >= 1, f"n must be >= 1, got {cfg.n}")
    check(cfg.temperature is None or cfg.temperature >= 0, f"temperature must be >= 0, got {cfg.temperature}")
    check(cfg.top_p is None or 0 < cfg.top_p <= 1, f"top_p must be in (0, 1], got {cfg.top_p}")
    check(cfg.max_tokens is None or cfg.max_tokens >= 1, f"max_tokens must be >= 1, got {cfg.max_tokens}")
    check(cfg.limit is None or cfg.limit >= 0, f"limit must be >= 0, got {cfg.limit}")
    check(cfg.chunk_size >= 1, f"chunk_size must be >= 1, got {cfg.chunk_size}")
    check(0 <= cfg.max_bad_row_fraction <= 1, f"max_bad_row_fraction must be in [0, 1], got {cfg.max_bad_row_fraction}")
    check(cfg.shots in (None, 0, 5, 8), f"shots must be 0, 5 or 8, got {cfg.shots}")
    check(cfg.dtype in (None, "float32", "bfloat16", "float16"), f"dtype must be float32, bfloat16 or float16, got {cfg.dtype!r}")
    check(cfg.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {cfg.device!r}")
    for k in cfg.k or []:
        check(1 <= k <= cfg.n, f"k={k} needs 1 <= k <= n samples per problem (n={cfg.n}); raise n or drop k={k}")
    check(cfg.n == 1 or cfg.temperature != 0,
           f"n={cfg.n} samples at temperature=0 are all the same greedy answer; set temperature > 0 or n=1")
    check_registered([(registry.TASKS, cfg.task, "task"), (registry.ROLLOUT_ENGINES, cfg.engine, "engine"),
                      (registry.VERIFIERS, cfg.verifier, "verifier")])
    check_component_kwargs([(registry.TASKS, cfg.task, cfg.task_kwargs, "task_kwargs"),
                            (registry.ROLLOUT_ENGINES, cfg.engine, cfg.engine_kwargs, "engine_kwargs"),
                            (registry.VERIFIERS, cfg.verifier, cfg.verifier_kwargs, "verifier_kwargs")],
                           {"engine_kwargs": ("model", "tokenizer", "device", "use_chat_template")})


def _normalise_argv(argv: list[str]) -> list[str]:
    """``k=1,8,32`` -> ``k=[1,8,32]`` (OmegaConf reads a bare comma list as one string)."""
    out = []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key == "k" and value and not value.startswith("["):
            arg = f"k=[{value}]"
        out.append(arg)
    return out


def parse_args(argv: list[str]) -> EvalConfig:
    return load_config(_normalise_argv(argv), schema=EvalConfig, default_recipe=None, validate=validate_eval_config,
                       cli="python -m evals.run")
