"""``evals.run``'s resolution stage: explicit keys, then the training run's ``config.yaml``, then the task's defaults
(``evals.base.TaskDefaults``), into one ``Plan``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.base import task_attr
from evals.config import EvalConfig
from pure_rl.core.configio import ConfigError, check
from pure_rl.core.registry import TASKS, VERIFIERS, RegistryError

# Settings that change what a prediction is; resuming with any of them changed would mix two evaluations.
FINGERPRINT = ("task", "task_kwargs", "splits", "model", "engine", "engine_kwargs", "chat_template", "n", "temperature",
               "top_p", "max_tokens", "stop", "seed", "verifier", "verifier_kwargs")


@dataclass
class Plan:
    """Fully resolved settings of one evaluation (what ``metrics.json`` records under ``settings``)."""

    task: str
    task_kwargs: dict[str, Any]
    splits: list[str]
    limit: int | None
    model: str
    gguf_file: str | None
    dtype: str
    device: str
    engine: str
    engine_kwargs: dict[str, Any]
    chat_template: bool
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    stop: list[str]
    seed: int
    ks: list[int]
    verifier: str
    verifier_kwargs: dict[str, Any]
    chunk_size: int
    conventions: bool
    output_dir: str
    overwrite: bool
    run_config: str | None = None
    adopted: list[str] = field(default_factory=list)  # settings taken from the training run's config
    max_bad_row_fraction: float = 0.01  # share of bad data rows tolerated (skipped and counted)

    def fingerprint(self) -> dict[str, Any]:
        return json.loads(json.dumps({k: getattr(self, k) for k in FINGERPRINT}, default=str))


def find_run_config(model: str) -> Path | None:
    """``config.yaml`` of the training run a checkpoint folder belongs to (``<run>/checkpoints/step-N/model``)."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return None
    for folder in [path, *list(path.resolve().parents)[:3]]:
        candidate = folder / "config.yaml"
        if candidate.is_file():
            return candidate
    return None


def load_run_config(path: Path) -> Any:
    from omegaconf import OmegaConf

    try:
        run = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"run_config {str(path)!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if OmegaConf.select(run, "task.name") is None:
        raise ConfigError(f"run_config {str(path)!r} has no task.name: not a pure_rl training config")
    return run


def default_ks(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return sorted(set(ks + [n]))


def _slug(text: str) -> str:
    parts = [p for p in Path(text).parts if p not in ("/", ".", "..")][-2:]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))[:80] or "model"


def _grades_answers(verifier: str) -> bool:
    """Whether a run's verifier judges answers (the null verifier declares ``grades_answers = False``)."""
    try:
        return bool(getattr(VERIFIERS.get(verifier), "grades_answers", True))
    except RegistryError:  # a plugin that does not import here: let building it report the problem
        return True


def resolve(cfg: EvalConfig) -> Plan:
    """Defaults filled in: explicit keys, then the training run's config (same task only), then task defaults."""
    from omegaconf import OmegaConf

    run_path = None if cfg.run_config == "none" else (Path(cfg.run_config) if cfg.run_config else find_run_config(cfg.model))
    if run_path is not None and not run_path.is_file():
        raise ConfigError(f"run_config {str(run_path)!r} does not exist")
    run = load_run_config(run_path) if run_path is not None else None
    adopted: list[str] = []

    def peek(key: str) -> Any:
        value = OmegaConf.select(run, key, default=None) if run is not None else None
        return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value

    def from_run(key: str, default: Any = None) -> Any:
        value = peek(key)
        if value is None or value == 0:  # 0 = "unset" in the trainer's schema (eval_max_new_tokens)
            return default
        adopted.append(key)
        return value

    task = cfg.task or from_run("task.name")
    check(task is not None, "task= is required (gsm8k, math500, minif2f, arith) unless the model comes from a training run")
    same_task = peek("task.name") == task  # the run's settings belong to its own task only

    def from_task_run(key: str, default: Any = None) -> Any:
        return from_run(key, default) if same_task else default

    cli_arguments = task_attr(TASKS.get(task), "cli_arguments")
    task_kwargs = {**from_task_run("task.kwargs", {}), **cfg.task_kwargs,
                   **cli_arguments(cfg.prompt, cfg.shots, cfg.data_path)}
    try:  # the task's defaults below depend on its arguments (a prompt format's stop strings)
        task_obj = TASKS.build(task, **task_kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"task={task}: {exc}".splitlines()[0]) from exc
    split = cfg.split or from_task_run("task.eval_split") or ",".join(task_attr(task_obj, "eval_splits"))
    splits = [s.strip() for s in split.split(",") if s.strip()]
    limit = cfg.limit if cfg.limit is not None else from_task_run("task.eval_size")
    max_tokens = (cfg.max_tokens or from_task_run("task.eval_max_new_tokens") or from_task_run("rollout.max_new_tokens")
                  or task_attr(task_obj, "max_new_tokens"))
    engine = cfg.engine or from_run("rollout.engine", "hf")
    run_engine_kwargs = from_run("rollout.engine_kwargs", {}) if engine == peek("rollout.engine") else {}
    engine_kwargs = {**run_engine_kwargs, **cfg.engine_kwargs}
    chat_template = cfg.chat_template if cfg.chat_template is not None else bool(from_run("rollout.chat_template", False))
    run_verifier = peek("reward.verifier") if same_task else None
    run_verifier = run_verifier if run_verifier is not None and _grades_answers(run_verifier) else None
    verifier = cfg.verifier or (from_run("reward.verifier") if run_verifier else None) or task_attr(task_obj, "verifier")
    run_verifier_kwargs = from_run("reward.verifier_kwargs", {}) if verifier == run_verifier else {}
    verifier_kwargs = {**run_verifier_kwargs, **cfg.verifier_kwargs}
    temperature = cfg.temperature if cfg.temperature is not None else (0.0 if cfg.n == 1 else 1.0)
    top_p = cfg.top_p if cfg.top_p is not None else (task_attr(task_obj, "sampling_top_p") if temperature > 0 else 1.0)
    stop = list(cfg.stop) if cfg.stop is not None else list(task_attr(task_obj, "stop"))
    dtype = cfg.dtype or from_run("model.dtype", "float32")
    output_dir = cfg.output_dir or str(Path("runs") / "eval" / f"{_slug(task)}-{_slug(cfg.model)}")
    return Plan(
        task=task, task_kwargs=task_kwargs, splits=splits, limit=limit, model=cfg.model, gguf_file=cfg.gguf_file,
        dtype=dtype, device=cfg.device, engine=engine, engine_kwargs=engine_kwargs, chat_template=chat_template,
        n=cfg.n, temperature=temperature, top_p=top_p, max_tokens=int(max_tokens), stop=stop, seed=cfg.seed,
        ks=sorted(set(cfg.k or default_ks(cfg.n))), verifier=verifier, verifier_kwargs=verifier_kwargs,
        chunk_size=cfg.chunk_size, conventions=cfg.conventions, output_dir=output_dir, overwrite=cfg.overwrite,
        run_config=str(run_path) if run_path else None, adopted=sorted(set(adopted)),
        max_bad_row_fraction=cfg.max_bad_row_fraction,
    )
