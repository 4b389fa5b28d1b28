"""Evaluate a checkpoint: ``python -m evals.run task=gsm8k|math500|minif2f|arith model=PATH_OR_ID [key=value ...]``.

Generates through the project's rollout engines (``engine=hf|native|vllm|module:attr``), grades with the trainer's
verifiers (``math`` for answers, ``lean`` for miniF2F), and writes ``predictions.jsonl``, ``metrics.json``, ``report.md``
and ``report.png`` to ``output_dir``. Examples::

    python -m evals.run task=gsm8k model=Qwen/Qwen2.5-Math-7B shots=8 limit=200
    python -m evals.run task=math500 model=./ckpt n=8 temperature=0.7 top_p=0.8 k=1,4,8
    python -m evals.run task=minif2f model=./prover n=32 k=1,8,32 verifier_kwargs.backend=repl
    python -m evals.run model=runs/tiny/checkpoints/step-000100/model      # task and settings from the run

A checkpoint inside a training run (``<run>/checkpoints/step-N/model``) brings the run's ``config.yaml``: task and its
kwargs, held-out split and size, generation cap, engine, chat template and verifier default to the trainer's, so the
greedy accuracy equals the ``heldout_accuracy`` the trainer logged for that checkpoint. Explicit keys win.
An interrupted evaluation resumes from ``predictions.jsonl`` (same settings; ``overwrite=true`` starts over).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pure_rl.core.metrics import sample_outcome, summarize
from evals.report import PREDICTIONS, PredictionLog, record_key, write_outputs
from pure_rl.config import ConfigError, help_text, load_config
from pure_rl.core.interfaces import Problem, SamplingParams, Verdict

log = logging.getLogger("evals.run")

# Held-out evaluation in the trainer (pure_rl.evaluate.evaluate_heldout) generates 256 problems per call; the same
# chunking gives the same left padding, hence bit-identical greedy outputs.
TRAINER_EVAL_CHUNK = 256
DEFAULT_SPLIT = {"minif2f": "valid,test"}
DEFAULT_MAX_TOKENS = {"arith": 64, "gsm8k": 1024, "math500": 2048, "minif2f": 2048}
GROUP_KEYS = ("split", "subject", "level")
# Settings that change what a prediction is; resuming with any of them changed would mix two evaluations.
FINGERPRINT = ("task", "task_kwargs", "splits", "model", "engine", "engine_kwargs", "chat_template", "n", "temperature",
               "top_p", "max_tokens", "stop", "seed", "verifier", "verifier_kwargs")


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
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # task constructor arguments (override the run's)
    verifier: str | None = None  # math | lean | module:attr; default: lean for miniF2F, else math
    verifier_kwargs: dict[str, Any] = field(default_factory=dict)  # verifier constructor arguments
    chunk_size: int = TRAINER_EVAL_CHUNK  # problems per generate call and per predictions.jsonl flush
    conventions: bool = True  # also grade first samples with lm-eval (GSM8K) and plain math-verify, report disagreements
    run_config: str | None = None  # a training run's config.yaml; default: found beside the checkpoint; "none" = ignore
    output_dir: str | None = None  # default runs/eval/<task>-<model> (beside the trainer's runs/)
    overwrite: bool = False  # discard predictions.jsonl in output_dir instead of resuming


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

    def fingerprint(self) -> dict[str, Any]:
        return json.loads(json.dumps({k: getattr(self, k) for k in FINGERPRINT}, default=str))


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def validate_eval_config(cfg: EvalConfig) -> None:
    """Range checks that need no files: one-line ConfigErrors."""
    from pure_rl.core import registry

    _check(cfg.model is not None, "model= is required: a checkpoint folder, a hub id or a known model name")
    _check(cfg.n >= 1, f"n must be >= 1, got {cfg.n}")
    _check(cfg.temperature is None or cfg.temperature >= 0, f"temperature must be >= 0, got {cfg.temperature}")
    _check(cfg.top_p is None or 0 < cfg.top_p <= 1, f"top_p must be in (0, 1], got {cfg.top_p}")
    _check(cfg.max_tokens is None or cfg.max_tokens >= 1, f"max_tokens must be >= 1, got {cfg.max_tokens}")
    _check(cfg.limit is None or cfg.limit >= 0, f"limit must be >= 0, got {cfg.limit}")
    _check(cfg.chunk_size >= 1, f"chunk_size must be >= 1, got {cfg.chunk_size}")
    _check(cfg.shots in (None, 0, 5, 8), f"shots must be 0, 5 or 8, got {cfg.shots}")
    _check(cfg.dtype in (None, "float32", "bfloat16", "float16"), f"dtype must be float32, bfloat16 or float16, got {cfg.dtype!r}")
    _check(cfg.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {cfg.device!r}")
    for k in cfg.k or []:
        _check(1 <= k <= cfg.n, f"k={k} needs 1 <= k <= n samples per problem (n={cfg.n}); raise n or drop k={k}")
    _check(cfg.n == 1 or cfg.temperature != 0,
           f"n={cfg.n} samples at temperature=0 are all the same greedy answer; set temperature > 0 or n=1")
    for reg, name, key in ((registry.TASKS, cfg.task, "task"), (registry.ROLLOUT_ENGINES, cfg.engine, "engine"),
                           (registry.VERIFIERS, cfg.verifier, "verifier")):
        if name is not None:
            try:
                reg.check(name)
            except registry.RegistryError as exc:
                raise ConfigError(f"{key}: {exc}") from exc


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
    try:
        return load_config(_normalise_argv(argv), schema=EvalConfig, default_recipe=None, validate=validate_eval_config)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("python -m pure_rl.train", "python -m evals.run")) from exc


# ---------------------------------------------------------------------------------------------------- resolution


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


def _task_arguments(task: str, cfg: EvalConfig, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map the CLI's generic prompt / shots / data_path onto each built-in task's constructor arguments."""
    kwargs = dict(kwargs)
    if task == "minif2f":
        if cfg.prompt is not None:
            kwargs["prompt_style"] = cfg.prompt
        if cfg.data_path is not None:
            kwargs["source"] = cfg.data_path
        _check(cfg.shots in (None, 0), f"task=minif2f prompts are zero-shot, got shots={cfg.shots}")
        return kwargs
    if cfg.data_path is not None:
        kwargs["data_path"] = cfg.data_path
    shot_prompts = {0: "qwen-boxed", 5: "gsm8k", 8: "gsm8k_cot"}
    prompt = cfg.prompt
    if cfg.shots is not None:
        _check(task == "gsm8k" or cfg.shots == 0, f"shots={cfg.shots}: only task=gsm8k has few-shot prompts")
        prompt = prompt or shot_prompts[cfg.shots]
        used = {"gsm8k": 5, "gsm8k_cot": 8}.get(prompt, 0)
        _check(used == cfg.shots, f"prompt={prompt} uses {used} shots, not shots={cfg.shots}")
    if prompt is not None:
        _check(task in ("gsm8k", "math500", "math"), f"prompt={prompt!r}: task={task} has no prompt formats")
        kwargs["prompt"] = prompt
    return kwargs


def default_stop(task: str, task_kwargs: dict[str, Any]) -> list[str]:
    """lm-eval's ``until`` for its GSM8K formats, the closing fence for DeepSeek-style miniF2F, else none."""
    if task == "minif2f":
        return ["```"] if str(task_kwargs.get("prompt_style", "deepseek")).startswith("deepseek") else []
    return {"gsm8k": ["Question:"], "gsm8k_cot": ["Q:"], "cot_zeroshot": ["Q:"]}.get(task_kwargs.get("prompt", ""), [])


def default_ks(n: int) -> list[int]:
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return sorted(set(ks + [n]))


def _slug(text: str) -> str:
    parts = [p for p in Path(text).parts if p not in ("/", ".", "..")][-2:]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(parts))[:80] or "model"


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
    _check(task is not None, "task= is required (gsm8k, math500, minif2f, arith) unless the model comes from a training run")
    same_task = peek("task.name") == task

    def from_task_run(key: str, default: Any = None) -> Any:
        return from_run(key, default) if same_task else default

    task_kwargs = _task_arguments(task, cfg, {**from_task_run("task.kwargs", {}), **cfg.task_kwargs})
    split = cfg.split or from_task_run("task.eval_split") or DEFAULT_SPLIT.get(task, "test")
    splits = [s.strip() for s in split.split(",") if s.strip()]
    limit = cfg.limit if cfg.limit is not None else from_task_run("task.eval_size")
    max_tokens = (cfg.max_tokens or from_task_run("task.eval_max_new_tokens") or from_task_run("rollout.max_new_tokens")
                  or DEFAULT_MAX_TOKENS.get(task, 1024))
    engine = cfg.engine or from_run("rollout.engine", "hf")
    run_engine_kwargs = from_run("rollout.engine_kwargs", {}) if engine == peek("rollout.engine") else {}
    engine_kwargs = {**run_engine_kwargs, **cfg.engine_kwargs}
    chat_template = cfg.chat_template if cfg.chat_template is not None else bool(from_run("rollout.chat_template", False))
    run_verifier = peek("reward.verifier") if same_task else None
    run_verifier = None if run_verifier == "none" else run_verifier
    verifier = cfg.verifier or (from_run("reward.verifier") if run_verifier else None) or (
        "lean" if task == "minif2f" else "math")
    run_verifier_kwargs = from_run("reward.verifier_kwargs", {}) if verifier == run_verifier else {}
    verifier_kwargs = {**run_verifier_kwargs, **cfg.verifier_kwargs}
    temperature = cfg.temperature if cfg.temperature is not None else (0.0 if cfg.n == 1 else 1.0)
    top_p = cfg.top_p if cfg.top_p is not None else (0.95 if task == "minif2f" and temperature > 0 else 1.0)
    stop = list(cfg.stop) if cfg.stop is not None else default_stop(task, task_kwargs)
    dtype = cfg.dtype or from_run("model.dtype", "float32")
    output_dir = cfg.output_dir or str(Path("runs") / "eval" / f"{_slug(task)}-{_slug(cfg.model)}")
    return Plan(
        task=task, task_kwargs=task_kwargs, splits=splits, limit=limit, model=cfg.model, gguf_file=cfg.gguf_file,
        dtype=dtype, device=cfg.device, engine=engine, engine_kwargs=engine_kwargs, chat_template=chat_template,
        n=cfg.n, temperature=temperature, top_p=top_p, max_tokens=int(max_tokens), stop=stop, seed=cfg.seed,
        ks=sorted(set(cfg.k or default_ks(cfg.n))), verifier=verifier, verifier_kwargs=verifier_kwargs,
        chunk_size=cfg.chunk_size, conventions=cfg.conventions, output_dir=output_dir, overwrite=cfg.overwrite,
        run_config=str(run_path) if run_path else None, adopted=sorted(set(adopted)),
    )


# ---------------------------------------------------------------------------------------------------- building


def build_engine(plan: Plan) -> Any:
    """Load the model (local folder, hub id, known name or GGUF) and wrap it in the rollout engine."""
    import torch

    from pure_rl.config import ModelConfig
    from pure_rl.known_models import PACKAGED_GGUF
    from pure_rl.policy import load_pretrained
    from pure_rl.core.registry import ROLLOUT_ENGINES

    factory = ROLLOUT_ENGINES.get(plan.engine)  # an engine that cannot import fails before the model loads
    config_json = Path(plan.model).expanduser() / "config.json"
    if config_json.is_file() and "pure_lightning" in config_json.read_text(encoding="utf-8"):
        import pure_rl.models  # noqa: F401  (registers the lightning policy with AutoModelForCausalLM)
    device = plan.device if plan.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    packaged = plan.model in PACKAGED_GGUF and not Path(plan.model).exists()
    model_cfg = ModelConfig(name=plan.model, dtype=plan.dtype) if packaged else ModelConfig(
        path=plan.model, gguf_file=plan.gguf_file, dtype=plan.dtype)
    model, tokenizer = load_pretrained(model_cfg)
    model = model.to(device).eval()
    return factory(model=model, tokenizer=tokenizer, device=device, use_chat_template=plan.chat_template,
                   **plan.engine_kwargs)


def build_verifier(plan: Plan) -> Any:
    from pure_rl.core.registry import VERIFIERS

    return VERIFIERS.build(plan.verifier, **plan.verifier_kwargs)


def load_problems(plan: Plan) -> list[tuple[str, Problem]]:
    """(split, problem) pairs of every split, in order; problems with an empty prompt are skipped as the trainer does."""
    from pure_rl.core.registry import TASKS

    task = TASKS.build(plan.task, **plan.task_kwargs)
    pairs, seen, skipped = [], set(), 0
    for split in plan.splits:
        for problem in task.load(split, plan.limit):
            if not isinstance(problem.prompt, str) or not problem.prompt.strip():
                skipped += 1
                continue
            key = f"{split}/{problem.id}"
            if key in seen:
                raise ValueError(f"task {plan.task!r} split {split!r} has two problems with id {problem.id!r}")
            seen.add(key)
            pairs.append((split, problem))
    if skipped:
        log.warning("skipped %d problems with an empty prompt", skipped)
    if not pairs:
        raise ValueError(f"task {plan.task!r} has no problems in split(s) {','.join(plan.splits)} (limit={plan.limit})")
    return pairs


# ---------------------------------------------------------------------------------------------------- grading


def answer_key(extracted: str | None) -> str | None:
    """What maj@k votes on: the exact value of a plain number, else the normalised answer text."""
    if extracted is None:
        return None
    from evals.equivalence import normalize, number_value

    try:
        text = normalize(extracted).text
        value = number_value(text)
    except Exception:  # noqa: BLE001  (a pathological answer still gets a vote, as its raw text)
        return extracted.strip()
    return str(value) if value is not None else text


def verify_safely(verifier: Any, problems: list[Problem], texts: list[str]) -> list[Verdict]:
    """Verdicts for a chunk; a verifier that fails as a whole marks the chunk as infrastructure failures."""
    try:
        verdicts = verifier.verify_batch(problems, texts)
    except Exception as exc:  # noqa: BLE001  (keep the generations: they are written, masked, and resumable)
        log.warning("verifier failed on a chunk of %d samples (%s: %s)", len(texts), type(exc).__name__, exc)
        reason = f"verifier error: {type(exc).__name__}: {exc}"[:300]
        return [Verdict(None, None, {"reason": reason}) for _ in texts]
    if len(verdicts) != len(texts):
        reason = f"verifier returned {len(verdicts)} verdicts for {len(texts)} samples"
        return [Verdict(None, None, {"reason": reason}) for _ in texts]
    return verdicts


def sample_record(problem: Problem, text: str, finished: bool, verdict: Verdict) -> dict[str, Any]:
    info = verdict.info or {}
    record: dict[str, Any] = {"text": text, "finished": finished, "outcome": sample_outcome(verdict),
                              "time_s": info.get("time_s")}
    if "status" in info:  # a Lean verdict: keep the proof that was checked and Lean's first messages
        from lean_env.extract import extract_proof

        record["extracted"] = extract_proof(text, continues_prompt=bool(problem.meta.get("prompt_ends_in_proof")))
        record["answer_key"] = None
        record["reason"] = "; ".join([info["status"], *info.get("reasons", [])[:2]])[:300]
        record["messages"] = [m.get("data", "")[:300] for m in info.get("messages", [])[:3]]
    else:
        record["extracted"] = info.get("extracted")
        record["answer_key"] = answer_key(info.get("extracted"))
        record["reason"] = info.get("reason")
    return record


def convention_verdicts(task: str, text: str, gold: str | None) -> dict[str, bool | None]:
    """Other graders on one sample: lm-eval strict / flexible (GSM8K) and plain math-verify (math tasks)."""
    from evals.grade import lm_eval_verdicts, math_verify_verdict

    if gold is None:
        return {}
    out: dict[str, bool | None] = {}
    if task == "gsm8k":
        out["lm_eval_strict"], out["lm_eval_flexible"] = lm_eval_verdicts(text, gold)
    try:
        out["math_verify"] = math_verify_verdict(text, gold)
    except Exception:  # noqa: BLE001  (math-verify's own timeout or parse failure: no verdict, not a wrong one)
        out["math_verify"] = None
    return out


def problem_record(plan: Plan, split: str, problem: Problem, texts: list[str], finished: list[bool],
                   verdicts: list[Verdict]) -> dict[str, Any]:
    meta = {k: problem.meta[k] for k in ("subject", "level", "unique_id", "name", "formal_statement") if k in problem.meta}
    meta["split"] = split
    record = {"id": problem.id, "split": split, "prompt": problem.prompt, "gold": problem.answer, "meta": meta,
              "samples": [sample_record(problem, t, f, v) for t, f, v in zip(texts, finished, verdicts)]}
    if plan.conventions and plan.verifier == "math" and texts:
        record["conventions"] = convention_verdicts(plan.task, texts[0], problem.answer)
    return record


# ---------------------------------------------------------------------------------------------------- running


def prepare_output(plan: Plan) -> PredictionLog:
    """Create ``output_dir``; refuse to resume predictions made with other settings."""
    out = Path(plan.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings_path = out / "eval_config.json"
    predictions = out / PREDICTIONS
    if plan.overwrite:
        predictions.unlink(missing_ok=True)
    elif predictions.exists() and settings_path.exists():
        previous = json.loads(settings_path.read_text(encoding="utf-8"))
        diff = sorted(k for k in FINGERPRINT if previous.get(k) != plan.fingerprint().get(k))
        if diff:
            shown = ", ".join(f"{k}: {previous.get(k)!r} -> {plan.fingerprint().get(k)!r}" for k in diff[:3])
            raise ConfigError(f"output_dir {plan.output_dir!r} holds predictions made with other settings ({shown}); "
                              "pass overwrite=true or another output_dir")
    settings_path.write_text(json.dumps(plan.fingerprint(), indent=1) + "\n", encoding="utf-8")
    return PredictionLog(predictions)


class SetupError(RuntimeError):
    """The evaluation could not start: a missing file or model, an offline hub, a bad task or engine argument."""


@contextlib.contextmanager
def setup_step(what: str) -> Iterator[None]:
    """Turn the expected failures of one setup step into a one-line ``SetupError`` naming the step."""
    from lean_env.types import LeanSetupError
    from pure_rl.policy import ModelLoadError

    try:
        yield
    except (ModelLoadError, LeanSetupError, OSError, ValueError, ImportError, TypeError) as exc:
        raise SetupError(f"{what}: {exc}".splitlines()[0]) from exc
    except RuntimeError as exc:  # datasets' offline error and friends
        raise SetupError(f"{what}: {exc}".splitlines()[0]) from exc


def evaluate(plan: Plan, command: str = "") -> dict[str, Any]:
    """Generate, grade and record every problem not yet in ``predictions.jsonl``; write metrics and the report."""
    started = time.perf_counter()
    with setup_step(f"task={plan.task}"):
        pairs = load_problems(plan)
    predictions = prepare_output(plan)
    done = predictions.load()
    resumed = sum(f"{s}/{p.id}" in done for s, p in pairs)
    timing = {"load_s": 0.0, "generate_s": 0.0, "verify_s": 0.0}
    engine = verifier = None
    sampling_kwargs = {"temperature": plan.temperature, "top_p": plan.top_p, "max_new_tokens": plan.max_tokens,
                           "stop": tuple(plan.stop)}
    generated = 0
    try:
        for index in range(0, len(pairs), plan.chunk_size):
            todo = [(s, p) for s, p in pairs[index : index + plan.chunk_size] if f"{s}/{p.id}" not in done]
            if not todo:
                continue
            if engine is None:
                t0 = time.perf_counter()
                with setup_step(f"verifier={plan.verifier}"):
                    verifier = build_verifier(plan)
                with setup_step(f"model={plan.model} engine={plan.engine}"):
                    engine = build_engine(plan)
                timing["load_s"] = time.perf_counter() - t0
            problems = [p for _, p in todo]
            sampling = SamplingParams(seed=plan.seed + index // plan.chunk_size, **sampling_kwargs)
            t0 = time.perf_counter()
            batch = engine.generate(problems, plan.n, sampling)
            timing["generate_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            verdicts = verify_safely(verifier, batch.problems, batch.responses)
            finished = [bool(x) for x in batch.finished.tolist()]
            records = []
            for j, (split, problem) in enumerate(todo):
                rows = slice(j * plan.n, (j + 1) * plan.n)
                records.append(problem_record(plan, split, problem, batch.responses[rows], finished[rows],
                                              verdicts[rows]))
            timing["verify_s"] += time.perf_counter() - t0
            predictions.append(records)
            done.update((record_key(r), r) for r in records)
            generated += len(records)
            log.info("%d/%d problems done", len(done), len(pairs))
    finally:
        if verifier is not None and hasattr(verifier, "close"):
            verifier.close()
    records = [done[f"{s}/{p.id}"] for s, p in pairs]
    metrics = summarize(records, plan.ks, GROUP_KEYS if len(plan.splits) > 1 else GROUP_KEYS[1:],
                        majority=plan.verifier != "lean", seed=plan.seed)
    samples = generated * plan.n
    timing["total_s"] = time.perf_counter() - started
    timing["samples_per_s"] = samples / timing["generate_s"] if timing["generate_s"] else None
    metrics["timing"] = timing
    metrics["resumed_problems"] = resumed
    metrics["generated_problems"] = generated
    settings = {**asdict(plan), "split": ",".join(plan.splits), "command": command}
    paths = write_outputs(plan.output_dir, metrics, records, settings)
    metrics["outputs"] = {k: str(v) for k, v in paths.items()}
    return metrics


def _print_summary(plan: Plan, metrics: dict[str, Any]) -> None:
    from evals.report import metric_names

    print(f"task={plan.task} model={plan.model} split={','.join(plan.splits)} n={plan.n} "
          f"problems={metrics['problems']} judged={metrics['problems_judged']} "
          f"timeouts={metrics['timeouts']} infra_failures={metrics['infra_failures']}")
    for name in metric_names(metrics):
        m = metrics.get(name) or {}
        if m.get("value") is not None:
            low, high = m["ci95"]
            print(f"  {name:<10} {m['value']:.4f}  95% CI [{low:.4f}, {high:.4f}]  ({m['problems']} problems)")
    t = metrics["timing"]
    print(f"  time: total {t['total_s']:.1f}s (load {t['load_s']:.1f}s, generate {t['generate_s']:.1f}s, "
          f"grade {t['verify_s']:.1f}s); resumed {metrics['resumed_problems']} problems")
    print(f"  outputs: {plan.output_dir}/{{predictions.jsonl, metrics.json, report.md, report.png}}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        print("Keys (key=value):")
        print(help_text(EvalConfig))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        plan = resolve(parse_args(argv))
        if plan.adopted:
            print(f"from the training run's {plan.run_config}: {', '.join(plan.adopted)}")
        metrics = evaluate(plan, command="python -m evals.run " + " ".join(argv))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_summary(plan, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
