"""Benchmark a recipe: N PURE steps through the real trainer, timed stage by stage, on whatever device is there.

    python -m pure_rl.bench_recipe recipe=qwen_math_1p5b model.init=random reward.prm_kwargs.init=random \\
        task.name=math500 rollout.prompts_per_step=8 train.steps=3 [--json FILE] [--peak-tflops 989] \\
        [--update-variant gradient_checkpointing=false,micro_batch_size=4]

``train.steps`` is N; every other ``key=value`` is a trainer override. Per step it prints: rollout (the engine's
generation, then the learner's pass for pi_old when the recipe needs one), generated tokens/s (generation only),
verify, segment, score (PRM tokens/s, unpadded), credit (with the reference model's pass when KL is on), update
(tokens/s and MFU = 6 x params x trained tokens / seconds / peak bf16 FLOP/s), the peak GPU memory allocated and
the process's peak host RSS. Each stage is bracketed by a device synchronize, so GPU work is charged to the stage
that queued it. No held-out evaluation, no checkpoint, and no accuracy: with ``init=random`` there is none to report.
The last row is the mean over steps 2..N (step 1 carries kernel compilation and CUDA-graph capture).
``--update-variant`` (repeatable) then times one more update on the last step's batch with gradient checkpointing
and / or the micro-batch size changed, in the order given; an out-of-memory there is recorded, not raised.
"""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

import torch

from pure_rl.config import Config, ConfigError, load_config, validate_config
from pure_rl.trainer import Trainer

STAGES = ("rollout", "verify", "segment", "score", "credit", "update")
H100_H200_BF16_DENSE_TFLOPS = 989.0  # the datasheet's dense bf16 rate (SXM); the MFU denominator by default
BENCH_DEFAULTS = ["log.progress=false", "log.tensorboard=false", "train.save_every=0", "log.samples_per_step=1"]


def model_flops_utilization(params: int, tokens: int, seconds: float, peak_tflops: float) -> float:
    """MFU = 6 * N * D / (t * peak): N parameters, D tokens through forward + backward, t seconds.

    The 6 counts a forward (2 N D) and a backward (4 N D) and nothing else: attention's T^2 term, activation
    recomputation under gradient checkpointing and the optimizer step are work the count leaves out.
    """
    return 6.0 * params * tokens / max(seconds, 1e-12) / (peak_tflops * 1e12)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gib(n_bytes: float) -> float:
    return n_bytes / 2**30


def host_peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _gib(peak if sys.platform == "darwin" else peak * 1024)


class BenchTrainer(Trainer):
    """The trainer with synchronized stage timers, GPU peak memory per stage and token counters."""

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.counts: dict[str, float] = defaultdict(float)
        self.peaks: dict[str, float] = {}
        generate = self.engine.generate

        def timed_generate(*args: Any, **kwargs: Any) -> Any:
            _sync(self.device)
            t0 = time.perf_counter()
            out = generate(*args, **kwargs)
            _sync(self.device)
            self.counts["generate_s"] += time.perf_counter() - t0
            return out

        self.engine.generate = timed_generate  # the engine's own call, timed apart from the learner's pi_old pass

    @contextlib.contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        _sync(self.device)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.stage_start = self.timings.get(stage, 0.0)
        with super().timed(stage):
            yield
            _sync(self.device)
        if self.device.type == "cuda":
            self.peaks[stage] = _gib(torch.cuda.max_memory_allocated(self.device))
        # one line per stage as it ends, so a run cut off by a time limit still shows where its time went
        print(f"stage {stage}: {self.timings[stage] - self.stage_start:.2f} s, "
              f"peak GPU {self.peaks.get(stage, 0.0):.1f} GiB", flush=True)

    def rollout(self, problems: list) -> Any:
        batch = super().rollout(problems)
        self.counts["rows"] += batch.size
        self.counts["generated_tokens"] += int(batch.response_mask.sum())
        self.counts["prompt_tokens"] += int(batch.prompt_mask.sum())
        self.counts["finished_rows"] += int(batch.finished.sum())
        self.counts["response_width"] = batch.response_ids.shape[1]
        return batch

    def score(self, batch: Any) -> None:
        runner = getattr(self.prm, "runner", None)
        before = (getattr(runner, "tokens_scored", 0), getattr(runner, "tokens_padded", 0))
        super().score(batch)
        self.counts["prm_tokens"] += getattr(runner, "tokens_scored", 0) - before[0]
        self.counts["prm_tokens_padded"] += getattr(runner, "tokens_padded", 0) - before[1]

    def update(self, batch: Any) -> dict[str, float]:
        self.last_batch = batch
        _, attn = batch.input_ids()
        epochs = self.cfg.optim.ppo_epochs
        self.counts["trained_tokens"] += int(attn.sum()) * epochs
        self.counts["trained_tokens_padded"] += attn.numel() * epochs
        return super().update(batch)


def step_record(stage_s: dict[str, float], counts: dict[str, float], peaks: dict[str, float], params: int,
                peak_tflops: float) -> dict[str, float]:
    """One step's row: stage seconds, token rates, MFU and memory, from the trainer's timers and counters."""
    rec = {f"{s}_s": stage_s.get(s, 0.0) for s in STAGES}
    rec.update({k: float(v) for k, v in counts.items()})
    gen_s = counts.get("generate_s", 0.0)
    rec["generate_tok_s"] = counts.get("generated_tokens", 0) / gen_s if gen_s else 0.0
    rec["prm_tok_s"] = counts.get("prm_tokens", 0) / rec["score_s"] if rec["score_s"] else 0.0
    rec["update_tok_s"] = counts.get("trained_tokens", 0) / rec["update_s"] if rec["update_s"] else 0.0
    rec["update_mfu"] = model_flops_utilization(params, int(counts.get("trained_tokens", 0)), rec["update_s"], peak_tflops)
    rec["peak_gpu_gib"] = max(peaks.values(), default=0.0)
    rec["peak_gpu_stage"] = max(peaks, key=peaks.get) if peaks else ""
    rec["host_peak_rss_gib"] = host_peak_rss_gib()
    rec["step_s"] = sum(stage_s.values())
    return rec


def steady_mean(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of the numeric fields over steps 2..N (step 1 alone when N = 1); peaks take the max."""
    rows = records[1:] or records
    out: dict[str, Any] = {}
    for key, value in rows[0].items():
        if isinstance(value, str):
            out[key] = value
        elif key.startswith(("peak_", "host_peak")):
            out[key] = max(r[key] for r in rows)
        else:
            out[key] = sum(r[key] for r in rows) / len(rows)
    return out


COLUMNS = [  # (header, key, format)
    ("rollout s", "rollout_s", "{:.1f}"), ("gen s", "generate_s", "{:.1f}"), ("gen tok", "generated_tokens", "{:,.0f}"),
    ("gen tok/s", "generate_tok_s", "{:,.0f}"), ("verify s", "verify_s", "{:.2f}"), ("segment s", "segment_s", "{:.2f}"),
    ("score s", "score_s", "{:.1f}"), ("PRM tok/s", "prm_tok_s", "{:,.0f}"), ("credit s", "credit_s", "{:.1f}"),
    ("update s", "update_s", "{:.1f}"), ("update tok/s", "update_tok_s", "{:,.0f}"), ("MFU", "update_mfu", "{:.1%}"),
    ("peak GPU GiB", "peak_gpu_gib", "{:.1f}"), ("host RSS GiB", "host_peak_rss_gib", "{:.1f}"), ("step s", "step_s", "{:.1f}"),
]


def markdown_table(records: list[dict[str, Any]], steady: dict[str, Any]) -> str:
    lines = ["| step | " + " | ".join(h for h, _, _ in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    labelled = [(str(i + 1), r) for i, r in enumerate(records)] + [("mean 2..N" if len(records) > 1 else "1", steady)]
    for label, rec in labelled:
        lines.append(f"| {label} | " + " | ".join(fmt.format(rec.get(key, 0.0)) for _, key, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def environment(trainer: Trainer, params: int) -> dict[str, Any]:
    cfg = trainer.cfg
    env = {
        "python": platform.python_version(), "torch": torch.__version__, "device": str(trainer.device),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "policy_params": params, "policy_class": type(trainer.policy).__name__, "init": cfg.model.init,
        "prm_init": cfg.reward.prm_kwargs.get("init", "pretrained"), "dtype": cfg.model.dtype,
        "engine": cfg.rollout.engine, "rows": cfg.rollout.prompts_per_step * cfg.rollout.group_size,
        "prompts_per_step": cfg.rollout.prompts_per_step, "group_size": cfg.rollout.group_size,
        "max_new_tokens": cfg.rollout.max_new_tokens, "micro_batch_size": cfg.optim.micro_batch_size,
        "gradient_checkpointing": cfg.model.gradient_checkpointing, "kl_coef": cfg.credit.kl_coef,
        "prm_batch_size": cfg.reward.prm_kwargs.get("batch_size"),
    }
    import transformers

    env["transformers"] = transformers.__version__
    if trainer.device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(trainer.device)
    return env


def run_bench(cfg: Config, peak_tflops: float = H100_H200_BF16_DENSE_TFLOPS,
              variants: list[dict[str, Any]] | None = None, json_path: str | None = None) -> dict[str, Any]:
    """Build the trainer for ``cfg`` and run ``cfg.train.steps`` PURE steps; the per-step records and their mean,
    then one replayed update per variant. ``json_path`` is rewritten after each step and variant."""
    trainer = BenchTrainer(cfg)
    params = sum(p.numel() for p in trainer.policy.parameters())
    result: dict[str, Any] = {"env": environment(trainer, params), "peak_tflops": peak_tflops, "steps": [],
                              "steady": {}, "update_variants": [], "run_dir": str(trainer.run_dir)}
    for _ in range(cfg.train.steps):
        before = {s: trainer.timings.get(s, 0.0) for s in STAGES}
        trainer.counts.clear()
        trainer.peaks.clear()
        trainer.train_step()
        trainer.step += 1
        stage_s = {s: trainer.timings[s] - before[s] for s in STAGES}
        result["steps"].append(step_record(stage_s, trainer.counts, trainer.peaks, params, peak_tflops))
        result["steady"] = steady_mean(result["steps"])
        _write(json_path, result)
    for variant in variants or []:
        result["update_variants"].append(replay_update(trainer, variant, peak_tflops))
        _write(json_path, result)
    return result


def _write(json_path: str | None, result: dict[str, Any]) -> None:
    if json_path:
        Path(json_path).write_text(json.dumps(result, indent=1))


def parse_variant(text: str) -> dict[str, Any]:
    """``gradient_checkpointing=false,micro_batch_size=4`` -> {"gradient_checkpointing": False, "micro_batch_size": 4}."""
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key == "gradient_checkpointing" and value in ("true", "false"):
            out[key] = value == "true"
        elif key == "micro_batch_size" and value.isdigit() and int(value) >= 1:
            out[key] = int(value)
        else:
            raise ConfigError(f"--update-variant item {item!r}: valid are gradient_checkpointing=true|false and "
                              f"micro_batch_size=N (N >= 1)")
    return out


def replay_update(trainer: BenchTrainer, variant: dict[str, Any], peak_tflops: float) -> dict[str, Any]:
    """One more timed update on the last rollout batch under ``variant``; {"oom": True} if it does not fit."""
    policy = trainer.policy
    if "gradient_checkpointing" in variant:
        (policy.gradient_checkpointing_enable if variant["gradient_checkpointing"] else policy.gradient_checkpointing_disable)()
    if "micro_batch_size" in variant:
        trainer.cfg.optim.micro_batch_size = variant["micro_batch_size"]
    trainer.counts.clear()
    trainer.peaks.clear()
    before = trainer.timings.get("update", 0.0)
    record: dict[str, Any] = {"variant": variant}
    try:
        with trainer.timed("update"):
            trainer.update(trainer.last_batch)
    except torch.cuda.OutOfMemoryError as exc:
        trainer.optimizer.zero_grad(set_to_none=True)
        return {**record, "oom": True, "error": str(exc).splitlines()[0]}
    seconds = trainer.timings["update"] - before
    tokens = int(trainer.counts["trained_tokens"])
    params = sum(p.numel() for p in policy.parameters())
    return {**record, "oom": False, "update_s": seconds, "trained_tokens": tokens, "update_tok_s": tokens / seconds,
            "update_mfu": model_flops_utilization(params, tokens, seconds, peak_tflops),
            "peak_gpu_gib": max(trainer.peaks.values(), default=0.0)}


def _pop_flag(argv: list[str], flag: str) -> str | None:
    if flag not in argv:
        return None
    i = argv.index(flag)
    if i + 1 >= len(argv):
        raise ConfigError(f"{flag} needs a value")
    value = argv[i + 1]
    del argv[i : i + 2]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        json_path = _pop_flag(argv, "--json")
        peak = _pop_flag(argv, "--peak-tflops")
        variants = []
        while "--update-variant" in argv:
            variants.append(parse_variant(_pop_flag(argv, "--update-variant") or ""))
        peak_tflops = float(peak) if peak is not None else H100_H200_BF16_DENSE_TFLOPS
        if peak_tflops <= 0:
            raise ConfigError(f"--peak-tflops must be > 0, got {peak}")
        cfg = load_config(BENCH_DEFAULTS + argv, validate=validate_config)
    except (ConfigError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if cfg.train.steps < 1:
        print(f"config error: train.steps must be >= 1 for a benchmark, got {cfg.train.steps}", file=sys.stderr)
        return 2
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    result = run_bench(cfg, peak_tflops, variants, json_path)
    print(json.dumps(result["env"]))
    if result["env"]["init"] == "random" or result["env"]["prm_init"] == "random":
        print("random weights: throughput and memory only; no accuracy is reported")
    print(markdown_table(result["steps"], result["steady"]))
    for variant in result["update_variants"]:
        print("update variant:", json.dumps(variant))
    return 0


if __name__ == "__main__":
    sys.exit(main())
