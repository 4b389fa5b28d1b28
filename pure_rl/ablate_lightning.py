"""Architecture ablation of the tiny lightning policy: held-out greedy accuracy right after the supervised warm start.

    OMP_NUM_THREADS=1 python -m pure_rl.ablate_lightning                      # every variant, seeds 0 1 2
    OMP_NUM_THREADS=1 python -m pure_rl.ablate_lightning variants=tnl,conv4 seeds=0 out=ablate.jsonl save=DIR

Every run starts from ``recipes/tiny.yaml`` (the Llama default: same task, warm-start budget, seeds and held-out set)
and changes only the policy: ``arch`` plus the ``LightningConfig`` fields of the variant. The warm start is the
trainer's own (``warm_start_policy``, cache off, so each run trains from scratch); the held-out accuracy is the one
the trainer logs before RL (greedy, ``evaluate_heldout``, same verifier), decoded by the recipe's engine for the
architecture (``hf`` for Llama, ``native`` for lightning). Results append to ``out`` as JSON lines (one per run) and
a markdown table (mean and per-seed accuracy, parameters, warm-start seconds) is printed at the end; runs already in
``out`` are reused, so an interrupted grid resumes.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

LIGHTNING_LAYERS = {"linear_attention": "L", "full_attention": "S"}

# name -> (model.tiny fields, model.tiny.lightning fields); "tnl" is the original tiny lightning policy and every
# other lightning variant changes one thing from it, except the "+" combinations of the winners.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "llama": ({"arch": "llama"}, {}),
    "tnl": ({"arch": "lightning"}, {}),
    "lrpe0": ({"arch": "lightning"}, {"lrpe_layers": [0]}),
    "conv2": ({"arch": "lightning"}, {"conv_size": 2}),
    "conv4": ({"arch": "lightning"}, {"conv_size": 4}),
    "gate_sigmoid": ({"arch": "lightning"}, {"gate_act": "sigmoid"}),
    "gate_silu": ({"arch": "lightning"}, {"gate_act": "silu"}),
    "decay_learned": ({"arch": "lightning"}, {"decay": "learned"}),
    "hybrid_LS": ({"arch": "lightning"}, {"layer_types": ["linear_attention", "full_attention"]}),
    "hybrid_SL": ({"arch": "lightning"}, {"layer_types": ["full_attention", "linear_attention"]}),
    # Equal parameter count (+-3%): 3 layers with a narrower GLU; 4 layers of width 96.
    "deep3": ({"arch": "lightning", "num_layers": 3, "intermediate_size": 184}, {}),
    "deep4_d96": ({"arch": "lightning", "num_layers": 4, "hidden_size": 96, "intermediate_size": 256}, {}),
    "conv4+decay_learned": ({"arch": "lightning"}, {"conv_size": 4, "decay": "learned"}),
    "conv4+lrpe0": ({"arch": "lightning"}, {"conv_size": 4, "lrpe_layers": [0]}),
    "conv4+gate_sigmoid": ({"arch": "lightning"}, {"conv_size": 4, "gate_act": "sigmoid"}),
}
DEFAULT_VARIANTS = [
    "llama", "tnl", "lrpe0", "conv2", "conv4", "gate_sigmoid", "decay_learned", "hybrid_LS", "deep3", "deep4_d96",
]


class UsageError(ValueError):
    """A bad command-line argument, explained in one line."""


def variant_config(name: str, seed: int, recipe: str = "tiny") -> Any:
    """The run config of ``name``: ``recipe`` with the variant's policy, the seed, and the warm-start cache off."""
    from pure_rl.config import load_config, validate_config

    if name not in VARIANTS:
        raise UsageError(f"variant {name!r} is unknown; choose from {', '.join(VARIANTS)}")
    tiny_fields, lightning_fields = VARIANTS[name]
    cfg = load_config([f"recipe={recipe}"], validate=validate_config)
    cfg.seed = seed
    cfg.model.tiny = dataclasses.replace(cfg.model.tiny, **tiny_fields, lightning=dict(lightning_fields))
    cfg.model.warm_start = dataclasses.replace(cfg.model.warm_start, cache=False)
    if cfg.model.tiny.arch == "lightning":
        cfg.rollout = dataclasses.replace(cfg.rollout, engine="native", engine_kwargs={})
    validate_config(cfg)
    return cfg


def run_variant(name: str, seed: int, save: Path | None = None) -> dict[str, Any]:
    """Warm-start the variant's policy from scratch and grade it greedily on the recipe's held-out set.

    With ``save`` the warm-started model and tokenizer are written to ``save/<variant>-seed<seed>``.
    """
    import torch

    from pure_rl.config import apply_task_defaults
    from pure_rl.evaluate import evaluate_heldout
    from pure_rl.core.interfaces import SamplingParams
    from pure_rl.core.registry import ROLLOUT_ENGINES, TASKS, VERIFIERS
    from pure_rl.models.tiny import load_tiny

    cfg = variant_config(name, seed)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    model, tokenizer = load_tiny(cfg.model, cfg.task.name, cfg.task.kwargs, cfg.seed)
    warm_s = time.perf_counter() - t0
    if save is not None:
        model.save_pretrained(save / f"{name}-seed{seed}")
        tokenizer.save_pretrained(save / f"{name}-seed{seed}")
    task = TASKS.build(cfg.task.name, **cfg.task.kwargs)
    apply_task_defaults(cfg, task)
    heldout = task.load(cfg.task.eval_split, cfg.task.eval_size)
    verifier = VERIFIERS.build(cfg.reward.verifier, **cfg.reward.verifier_kwargs)
    engine = ROLLOUT_ENGINES.build(
        cfg.rollout.engine, model=model, tokenizer=tokenizer, device="cpu",
        use_chat_template=cfg.rollout.chat_template, **cfg.rollout.engine_kwargs,
    )
    t1 = time.perf_counter()
    max_new = cfg.task.eval_max_new_tokens or cfg.rollout.max_new_tokens
    result = evaluate_heldout(engine, verifier, heldout, max_new)
    greedy = engine.generate(heldout, 1, SamplingParams(temperature=0.0, max_new_tokens=max_new))
    return {
        "variant": name,
        "seed": seed,
        "heldout_accuracy": result.accuracy,
        "correct": result.correct,
        "graded": result.graded,
        "params": sum(p.numel() for p in model.parameters()),
        "warm_start_s": round(warm_s, 1),
        "eval_s": round(time.perf_counter() - t1, 1),
        **solution_diagnostics(heldout, greedy.responses),
        "tiny": dataclasses.asdict(cfg.model.tiny),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
    }


def solution_diagnostics(problems: list[Any], responses: list[str]) -> dict[str, float]:
    """Where greedy solutions go wrong, less noisy than the final accuracy (which a coin-flip early stop dominates).

    Over the equation steps written for operations that exist (step k < number of operations):
    copy_acc = fraction whose operator and operand are the question's k-th ones (recalling "the next operand");
    arith_acc = fraction whose result is right for the numbers written; step_acc = fraction exactly right (the
    arithmetic PRM's +1). early_rate = fraction of solutions boxing an answer before the last operation.
    """
    from evals.arith import apply, parse_question
    from prm.arith import EQUATION_RE, score_solution

    copy = arith = steps = early = 0
    exact = 0.0
    for problem, response in zip(problems, responses):
        expr = parse_question(problem.prompt)
        parts = [p for p in response.split("\n\n") if p.strip()]
        equations = [p for p in parts if "boxed" not in p][: len(expr.ops)]
        early += len(equations) < len(expr.ops) and any("boxed" in p for p in parts)
        for k, (step, score) in enumerate(zip(equations, score_solution(expr, equations))):
            m = EQUATION_RE.match(step)
            steps += 1
            exact += score > 0
            if m:
                copy += m.group(2) == expr.ops[k] and int(m.group(3)) == expr.operands[k + 1]
                arith += int(m.group(4)) == apply(int(m.group(1)), m.group(2), int(m.group(3)))
    n = max(steps, 1)
    return {"copy_acc": copy / n, "arith_acc": arith / n, "step_acc": exact / n, "early_rate": early / len(problems)}


def describe(name: str) -> str:
    """A short human description of the variant's change, for the table."""
    tiny_fields, lightning_fields = VARIANTS[name]
    parts = [f"{k}={v}" for k, v in tiny_fields.items() if k != "arch"]
    for k, v in lightning_fields.items():
        if k == "layer_types":
            v = "".join(LIGHTNING_LAYERS[t] for t in v)
        parts.append(f"{k}={v}")
    return ", ".join(parts) or ("Llama (RoPE, SwiGLU)" if tiny_fields["arch"] == "llama" else "TNL baseline")


def table(rows: list[dict[str, Any]], order: list[str]) -> str:
    """Markdown table: one line per variant, accuracy per seed and mean +- population std over the seeds run."""
    seeds = sorted({r["seed"] for r in rows})
    head = "| variant | change | params | " + " | ".join(f"seed {s}" for s in seeds)
    head += " | mean | step acc | operand copy | arithmetic | early stop | warm start s |"
    lines = [head, "|" + "---|" * (9 + len(seeds))]
    for name in order:
        mine = {r["seed"]: r for r in rows if r["variant"] == name}
        if not mine:
            continue
        accs = [r["heldout_accuracy"] for r in mine.values()]
        spread = f" ± {statistics.pstdev(accs):.3f}" if len(accs) > 1 else ""
        cells = [f"{mine[s]['heldout_accuracy']:.3f}" if s in mine else "" for s in seeds]
        warm = statistics.mean(r["warm_start_s"] for r in mine.values())
        params = next(iter(mine.values()))["params"]
        diag = []
        for key in ("step_acc", "copy_acc", "arith_acc", "early_rate"):
            values = [r[key] for r in mine.values() if key in r]
            diag.append(f"{statistics.mean(values):.3f}" if values else "")
        lines.append(
            f"| {name} | {describe(name)} | {params / 1e3:.0f}k | " + " | ".join(cells)
            + f" | {statistics.mean(accs):.3f}{spread} (n={len(accs)}) | " + " | ".join(diag) + f" | {warm:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str]) -> dict[str, Any]:
    args: dict[str, Any] = {"variants": DEFAULT_VARIANTS, "seeds": [0, 1, 2], "out": "ablate.jsonl", "save": None}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in args:
            raise UsageError(f"argument {arg!r} must be variants=a,b | seeds=0,1 | out=FILE | save=DIR")
        if key == "variants":
            args[key] = value.split(",")
            unknown = [v for v in args[key] if v not in VARIANTS]
            if unknown:
                raise UsageError(f"variants: {unknown} unknown; choose from {', '.join(VARIANTS)}")
        elif key == "seeds":
            try:
                args[key] = [int(s) for s in value.split(",")]
            except ValueError:
                raise UsageError(f"seeds={value!r} must be comma-separated integers, e.g. seeds=0,1,2") from None
        else:
            args[key] = value
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return 2
    out = Path(args["out"])
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    done = {(r["variant"], r["seed"]) for r in rows}
    for seed in args["seeds"]:
        for name in args["variants"]:
            if (name, seed) in done:
                continue
            row = run_variant(name, seed, Path(args["save"]) if args["save"] else None)
            rows.append(row)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{name} seed {seed}: held-out {row['heldout_accuracy']:.3f} "
                  f"(warm start {row['warm_start_s']:.0f}s, {row['threads']} threads)", flush=True)
    wanted = [r for r in rows if r["variant"] in args["variants"] and r["seed"] in args["seeds"]]
    print(table(wanted, args["variants"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
