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

import logging
import sys
from typing import Any

from evals.build import SetupError
from evals.config import EvalConfig, parse_args
from evals.loop import evaluate
from evals.plan import Plan, resolve
from pure_rl.core.configio import ConfigError, help_text

log = logging.getLogger("evals.run")


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
