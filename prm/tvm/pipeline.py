"""``python -m prm.train recipe=tvm_*``: sample + label, train the value model, then judge it by best-of-N selection.

Stages (``stages=[data,train,eval]``; each can run alone, reading the previous stage's files from ``output_dir``):

- data: the policy samples ``data.samples`` solutions per training problem, the verifier grades them, and every
  token gets its TVM label (``tvm_data.jsonl``);
- train: the value model (initialised from the policy's weights by default, as the paper does) fits the labels
  (``tvm/``, loadable with ``reward.prm=tvm reward.prm_kwargs.path=...``);
- eval: on held-out problems the policy samples ``eval.n`` solutions each; the TVM's pick (value at the last token)
  is compared with majority voting over extracted answers and with random selection (``tvm_eval.json``).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prm.fit import fit
from prm.search import aggregate_scores, split_response
from prm.tvm.data import collate, load_paths, sample_and_label, save_paths
from prm.tvm.model import TokenValueModel, ValueHeadConfig, lm_loss, value_loss
from prm.tvm.scorer import TVMScorer
from pure_rl.core.interfaces import SamplingParams

log = logging.getLogger(__name__)


def load_policy(policy: Any, device: torch.device) -> tuple[torch.nn.Module, Any]:
    """The sampling policy: a model folder / hub id, or the (warm-started, cached) policy of a pure_rl recipe."""
    from pure_rl.models.config import ModelConfig
    from pure_rl.models.loading import DTYPES, load_model, load_recipe_policy

    if policy.path:
        dtype = "bfloat16" if policy.dtype == "auto" and device.type == "cuda" else policy.dtype
        dtype = "float32" if dtype == "auto" else dtype
        if dtype not in DTYPES:
            raise ValueError(f"policy.dtype={policy.dtype!r} is not valid; use auto, {', '.join(DTYPES)}")
        model, tokenizer = load_model(ModelConfig(path=policy.path, dtype=dtype))
    else:
        model, tokenizer = load_recipe_policy(policy.recipe, list(policy.overrides))
    return model.to(device).eval(), tokenizer


def build_value_model(cfg: Any, policy: torch.nn.Module, device: torch.device) -> TokenValueModel:
    """A fresh value model on a copy of the policy's weights (``init=policy``) or on a pretrained causal LM."""
    head = ValueHeadConfig(activation=cfg.activation, dropout=cfg.dropout)
    if cfg.init == "policy":
        import copy

        backbone = copy.deepcopy(policy).float()
    elif cfg.init == "path":
        from transformers import AutoModelForCausalLM

        if not cfg.path:
            raise ValueError("value_model.init=path needs value_model.path (folder or hub id of a causal LM)")
        backbone = AutoModelForCausalLM.from_pretrained(cfg.path, dtype=torch.float32)
    else:
        raise ValueError(f"value_model.init={cfg.init!r} is not valid; use policy or path")
    model = TokenValueModel(backbone, head).to(device)
    if cfg.freeze_backbone:
        model.backbone.requires_grad_(False)
    return model


def tvm_loss_fn(kind: str, activation: str, lm_coef: float):
    def loss_fn(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        logits, lm_logits = model(batch["input_ids"], batch["attention_mask"], with_lm_logits=lm_coef > 0)
        v_loss = value_loss(logits, batch["labels"], batch["label_mask"], kind, activation)
        if lm_coef <= 0:
            return v_loss, {"value_loss": v_loss.item()}
        l_loss = lm_loss(lm_logits, batch["input_ids"], batch["label_mask"])
        return v_loss + lm_coef * l_loss, {"value_loss": v_loss.item(), "lm_loss": l_loss.item()}

    return loss_fn


def majority_pick(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> int:
    """Index of the first sample carrying the answer with the most votes (each vote weighted when ``weights`` is
    given); -1 when no sample has an answer."""
    votes: dict[str, float] = {}
    for i, a in enumerate(answers):
        if a is not None:
            votes[a] = votes.get(a, 0.0) + (1.0 if weights is None else weights[i])
    if not votes:
        return -1
    top = max(votes.values())
    return next(i for i, a in enumerate(answers) if a is not None and votes[a] == top)


def selection_report(scorer: TVMScorer, engine: Any, verifier: Any, problems: Sequence[Any], n: int,
                     sampling: SamplingParams, separator: str, seed: int) -> dict[str, Any]:
    """Accuracy of selecting one of ``n`` sampled candidates per problem, by several rules over the same samples.

    tvm_best_of_n: highest TVM value at the last token; tvm_min_step: highest lowest step value (PURE's min);
    tvm_weighted_vote: answer with the largest sum of last-token values; majority_vote: most frequent extracted
    answer; random_pick: one seeded uniform pick per problem (random_expected: its expectation).
    """
    batch = engine.generate(problems, n, sampling)
    verdicts = verifier.verify_batch(batch.problems, batch.responses)
    correct = [v.correct is True for v in verdicts]
    answers = [v.info.get("extracted") for v in verdicts]
    steps = [split_response(r, separator) for r in batch.responses]
    raw = scorer.score_steps([p.prompt for p in batch.problems], steps)
    last = [aggregate_scores(r, scorer.score_range, "last") for r in raw]
    low = [aggregate_scores(r, scorer.score_range, "min") for r in raw]
    rng = random.Random(seed)
    rules = ("tvm_best_of_n", "tvm_min_step", "tvm_weighted_vote", "majority_vote", "random_pick", "oracle_pass_at_n")
    hits = dict.fromkeys(rules, 0)
    random_expected = 0.0
    for g in range(len(problems)):
        sl = slice(g * n, (g + 1) * n)
        ok, ans, v_last, v_low = correct[sl], answers[sl], last[sl], low[sl]
        picks = {
            "tvm_best_of_n": max(range(n), key=v_last.__getitem__),
            "tvm_min_step": max(range(n), key=v_low.__getitem__),
            "tvm_weighted_vote": majority_pick(ans, [(x + 1) / 2 for x in v_last]),
            "majority_vote": majority_pick(ans),
            "random_pick": rng.randrange(n),
        }
        for rule, i in picks.items():
            hits[rule] += i >= 0 and ok[i]
        hits["oracle_pass_at_n"] += any(ok)
        random_expected += sum(ok) / n
    report: dict[str, Any] = {k: v / len(problems) for k, v in hits.items()}
    report.update(random_expected=random_expected / len(problems), n=n, problems=len(problems),
                  sample_accuracy=sum(correct) / len(correct), sampling_seed=sampling.seed, pick_seed=seed)
    return report


def run_tvm(cfg: Any, out_dir: Path, device: torch.device) -> dict[str, Any]:
    """Run the configured stages; returns the summary that is also written to ``out_dir/summary.json``."""
    from pure_rl.core.registry import ROLLOUT_ENGINES, TASKS, VERIFIERS

    torch.manual_seed(cfg.seed)
    summary: dict[str, Any] = {}
    data_file = Path(cfg.data.file) if cfg.data.file else out_dir / "tvm_data.jsonl"
    tvm_dir = Path(cfg.value_model.output) if cfg.value_model.output else out_dir / "tvm"
    policy, tokenizer = load_policy(cfg.policy, device)
    engine = ROLLOUT_ENGINES.build(cfg.data.engine, model=policy, tokenizer=tokenizer, device=device,
                                   **cfg.data.engine_kwargs)
    verifier = VERIFIERS.build(cfg.data.verifier, **cfg.data.verifier_kwargs)
    task = TASKS.build(cfg.data.task, **cfg.data.task_kwargs)
    try:
        if "data" in cfg.stages:
            sampling = SamplingParams(temperature=cfg.data.temperature, top_p=cfg.data.top_p,
                                      max_new_tokens=cfg.data.max_new_tokens, seed=cfg.seed)
            problems = task.load(cfg.data.split, cfg.data.problems)
            paths, summary["data"] = sample_and_label(engine, verifier, problems, cfg.data.samples, sampling,
                                                      cfg.data.problems_per_call)
            save_paths(paths, data_file)
        if "train" in cfg.stages:
            paths = load_paths(data_file)
            model = build_value_model(cfg.value_model, policy, device)
            history = fit(model, paths, lambda rows: collate(rows, tokenizer.pad_token_id, cfg.value_model.max_length),
                          tvm_loss_fn(cfg.value_model.loss, cfg.value_model.activation, cfg.value_model.lm_coef),
                          cfg.optim, seed=cfg.seed, log_file=out_dir / "train_log.jsonl", cpu=device.type == "cpu",
                          name="tvm")
            model.save_pretrained(tvm_dir)
            tokenizer.save_pretrained(tvm_dir)
            summary["train"] = history[-1] if history else {}
        if "eval" in cfg.stages:
            scorer = TVMScorer(path=str(tvm_dir), device=str(device), dtype="auto", separator=cfg.eval.separator,
                               batch_size=cfg.eval.batch_size)
            sampling = SamplingParams(temperature=cfg.eval.temperature, top_p=cfg.data.top_p,
                                      max_new_tokens=cfg.data.max_new_tokens, seed=cfg.eval.seed)
            problems = task.load(cfg.eval.split, cfg.eval.problems)
            summary["eval"] = selection_report(scorer, engine, verifier, problems, cfg.eval.n, sampling,
                                               cfg.eval.separator, cfg.eval.seed)
            (out_dir / "tvm_eval.json").write_text(json.dumps(summary["eval"], indent=2))
            log.info("best-of-%d on %d held-out problems: TVM %.3f, majority %.3f, random %.3f (expected %.3f)",
                     cfg.eval.n, len(problems), summary["eval"]["tvm_best_of_n"], summary["eval"]["majority_vote"],
                     summary["eval"]["random_pick"], summary["eval"]["random_expected"])
    finally:
        close = getattr(verifier, "close", None)
        if close:
            close()
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
