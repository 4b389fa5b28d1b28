"""``evals.run``'s loop: generate, grade and record every problem not yet in ``predictions.jsonl``, then the metrics
and the report (resumable: a finished chunk is never generated again)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from typing import Any

from evals.build import build_engine, build_verifier, load_problems, setup_step
from evals.plan import FINGERPRINT, Plan
from evals.records import problem_record, verify_safely
from evals.report import PREDICTIONS, PredictionLog, record_key, write_outputs
from pure_rl.core.configio import ConfigError
from pure_rl.core.interfaces import SamplingParams
from pure_rl.core.metrics import summarize
from pure_rl.core.outputs import writable_dir
from pure_rl.core.registry import TASKS, VERIFIERS

log = logging.getLogger("evals.run")
GROUP_KEYS = ("split", "subject", "level")


def prepare_output(plan: Plan) -> PredictionLog:
    """Create ``output_dir``; refuse to resume predictions made with other settings."""
    out = writable_dir(plan.output_dir)
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
    task = TASKS.build(plan.task, **plan.task_kwargs)
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
                                              verdicts[rows], verifier, task))
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
                        majority=bool(getattr(VERIFIERS.get(plan.verifier), "majority_vote", True)), seed=plan.seed)
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
