"""Train a process reward model: ``python -m prm.train recipe=tvm_arith|tvm_gsm8k|prm_classifier [key=value ...]``.

``kind=tvm`` trains a token-level value model (``prm.tvm.pipeline``); ``kind=classifier`` trains a stepwise
token-classification PRM in two stages (``prm.classifier_train``). The resolved config is saved in ``output_dir``.
Several GPUs: ``accelerate launch -m prm.train recipe=... stages=[train]`` after a ``stages=[data]`` run.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prm.fit import FitConfig, check_fit_config
from pure_rl.core.configio import (
    ConfigError,
    check,
    check_component_kwargs,
    check_registered,
    help_text,
    load_config,
    to_yaml,
)
from pure_rl.core.registry import import_string
from pure_rl.core.rows import DataError
from pure_rl.models.config import TinyModelConfig

STAGES = ("data", "train", "eval")
USAGE = ("python -m prm.train recipe=tvm_arith|tvm_gsm8k|prm_classifier [key=value ...]  (--help lists every key; "
         "recipe=tvm_arith runs the CPU default)")
COMPONENTS = (("data.task", "data.task_kwargs"), ("data.verifier", "data.verifier_kwargs"), ("data.engine", "data.engine_kwargs"))
KINDS = {"tvm": "prm.tvm.pipeline:run_tvm", "classifier": "prm.classifier_train:run_classifier"}  # kind -> runner


@dataclass
class PolicyConfig:
    recipe: str | None = "tiny"  # pure_rl recipe whose policy samples (its warm-started tiny model or model.path)
    overrides: list[str] = field(default_factory=list)  # dotlist applied to that recipe, e.g. model.warm_start.steps=400
    path: str | None = None  # a causal LM folder or hub id to sample from instead of a recipe
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 (with path)


@dataclass
class TVMDataConfig:
    task: str = "arith"  # task the training problems come from (registry name or module:attr)
    task_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the task
    split: str = "train"  # split of the training problems
    problems: int = 256  # training problems sampled
    samples: int = 16  # sampled solutions per problem (N of the empirical value; the paper uses 100)
    temperature: float = 1.0  # sampling temperature
    top_p: float = 1.0  # nucleus sampling mass
    max_new_tokens: int = 64  # generation cap per solution
    verifier: str = "math"  # grader of the final answers
    verifier_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the verifier
    engine: str = "hf"  # rollout engine (hf | native | vllm | module:attr)
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # constructor arguments of the engine
    problems_per_call: int = 16  # problems per engine call (x samples rows)
    file: str | None = None  # labelled-path JSONL; default output_dir/tvm_data.jsonl


@dataclass
class ValueModelConfig:
    init: str = "policy"  # policy (copy the sampling policy's weights, as the paper) | path
    path: str | None = None  # causal LM to start from with init=path
    activation: str = "sigmoid"  # sigmoid | identity (OVM)
    dropout: float = 0.0  # dropout before the value head
    loss: str = "mse"  # mse (on the soft labels) | bce (soft targets)
    lm_coef: float = 0.0  # weight of the LM loss on the response tokens; 0 = off
    freeze_backbone: bool = False  # train the head only
    max_length: int = 1024  # tokens per training row (longer rows keep their end)
    output: str | None = None  # where the trained TVM is saved; default output_dir/tvm


@dataclass
class TVMEvalConfig:
    split: str = "test"  # held-out split
    problems: int = 200  # held-out problems
    n: int = 16  # candidates per problem (best-of-n)
    temperature: float = 1.0  # sampling temperature of the candidates
    seed: int = 1234  # sampling seed of the candidates and of the random pick
    separator: str = "\n\n"  # step separator of the policy's responses
    batch_size: int = 64  # TVM scoring micro-batch


@dataclass
class ClassifierConfig:
    data: str = "arith"  # arith (stepwise data generated from the arithmetic task) | a .jsonl file | a hub dataset id
    data_split: str = "train"  # split of a hub dataset
    limit: int | None = None  # use at most this many examples
    arith_examples: int = 3000  # examples generated with data=arith
    arith_error_rate: float = 0.5  # share of generated solutions with a slip (labelled False from the slip on)
    eval_fraction: float = 0.1  # share held out for step accuracy
    base: str = "tiny"  # tiny (built from classifier.tiny) | a folder or hub id of the backbone
    tiny: TinyModelConfig = field(default_factory=lambda: TinyModelConfig(hidden_size=64, num_layers=2, num_heads=4,
                                                                         intermediate_size=128))
    separator: str = "\n"  # inserted after each step; the label sits on its last token
    max_length: int = 1024  # tokens per example (longer ones keep their end)
    stage1: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-4, epochs=3.0))  # frozen backbone, head only; epochs 0 skips
    stage2: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-6, epochs=1.0))  # all parameters; epochs 0 skips


@dataclass
class PRMTrainConfig:
    recipe: str | None = None  # recipe name or path this config came from
    kind: str = "tvm"  # tvm | classifier
    output_dir: str | None = None  # run folder; default runs/<recipe>-<timestamp>
    seed: int = 0  # seed for torch, sampling and data order
    device: str = "auto"  # auto | cpu | cuda
    stages: list[str] = field(default_factory=lambda: list(STAGES))  # tvm stages to run: data, train, eval
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    data: TVMDataConfig = field(default_factory=TVMDataConfig)
    value_model: ValueModelConfig = field(default_factory=ValueModelConfig)
    optim: FitConfig = field(default_factory=lambda: FitConfig(lr=1e-4, epochs=2.0, batch_size=32))
    eval: TVMEvalConfig = field(default_factory=TVMEvalConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)


def validate(cfg: PRMTrainConfig) -> None:
    """Range and cross-field checks, before anything is built."""
    from pure_rl.core import registry

    check(cfg.kind in KINDS, f"kind must be {' or '.join(KINDS)}, got {cfg.kind!r}")
    check(cfg.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {cfg.device!r}")
    bad = [s for s in cfg.stages if s not in STAGES]
    check(not bad and bool(cfg.stages), f"stages must be a non-empty subset of {list(STAGES)}, got {cfg.stages}")
    check(cfg.data.problems >= 1 and cfg.data.samples >= 2, "data.problems must be >= 1 and data.samples >= 2")
    check(cfg.eval.n >= 1 and cfg.eval.problems >= 1, "eval.n and eval.problems must be >= 1")
    check(cfg.value_model.init in ("policy", "path"), f"value_model.init must be policy or path, got {cfg.value_model.init!r}")
    check(cfg.value_model.loss in ("mse", "bce"), f"value_model.loss must be mse or bce, got {cfg.value_model.loss!r}")
    check(cfg.value_model.activation in ("sigmoid", "identity"),
           f"value_model.activation must be sigmoid or identity, got {cfg.value_model.activation!r}")
    check(not (cfg.value_model.loss == "bce" and cfg.value_model.activation != "sigmoid"),
           "value_model.loss=bce needs value_model.activation=sigmoid")
    check(0 <= cfg.classifier.eval_fraction < 1, f"classifier.eval_fraction must be in [0, 1), got {cfg.classifier.eval_fraction}")
    stages = (("optim", cfg.optim), ("classifier.stage1", cfg.classifier.stage1), ("classifier.stage2", cfg.classifier.stage2))
    for section, fit_cfg in stages:
        if section.startswith("classifier") and fit_cfg.epochs == 0:
            continue  # a classifier stage with epochs 0 is skipped
        try:
            check_fit_config(fit_cfg, section)
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
    check_registered([(registry.TASKS, cfg.data.task, "data.task"), (registry.VERIFIERS, cfg.data.verifier, "data.verifier"),
                      (registry.ROLLOUT_ENGINES, cfg.data.engine, "data.engine")])
    check_component_kwargs([(registry.TASKS, cfg.data.task, cfg.data.task_kwargs, "data.task_kwargs"),
                            (registry.VERIFIERS, cfg.data.verifier, cfg.data.verifier_kwargs, "data.verifier_kwargs"),
                            (registry.ROLLOUT_ENGINES, cfg.data.engine, cfg.data.engine_kwargs, "data.engine_kwargs")],
                           {"data.engine_kwargs": ("model", "tokenizer", "device", "use_chat_template")})


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help" in argv or "-h" in argv:
        print(__doc__ + help_text(PRMTrainConfig))
        return {}
    if not argv:  # a pipeline that samples, trains and writes a run folder is not started by accident
        print(f"usage: {USAGE}", file=sys.stderr)
        raise SystemExit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(argv, schema=PRMTrainConfig, default_recipe="tvm_arith", validate=validate, cli="python -m prm.train",
                          components=COMPONENTS)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    from prm.runtime import resolve_device
    from pure_rl.core.outputs import writable_dir
    from pure_rl.core.registry import RegistryError
    from pure_rl.models.loading import ModelLoadError

    name = Path(cfg.recipe).stem if cfg.recipe else cfg.kind
    try:
        out_dir = writable_dir(cfg.output_dir or f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
        (out_dir / "config.yaml").write_text(to_yaml(cfg))
        print(to_yaml(cfg))
        device = resolve_device(cfg.device)
        summary = import_string(KINDS[cfg.kind])(cfg, out_dir, device)
    except (ConfigError, ModelLoadError, RegistryError, DataError, FileNotFoundError) as exc:
        print(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
