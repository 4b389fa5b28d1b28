"""Stepwise-supervision training of a token-classification PRM (``python -m prm.train recipe=prm_classifier``).

Data rows are ``{"prompt": str, "completions": [step, ...], "labels": [bool, ...]}`` (the PRM800K-derived format of
``HuggingFaceH4/prm800k-trl-dedup``): a JSONL file, a hub dataset, or ``arith`` (solutions of the arithmetic task,
some with a slip, labelled by the rule-based checker and cut after the first wrong step as PRM800K rows are).
Each row is laid out by ``prm.hf_classifier.stepwise_input`` (the layout the adapter scores), the label sits on
the separator token after each step and every other token is ignored. As in PURE's recipe, stage 1 trains the
2-class head on a frozen backbone and stage 2 fine-tunes everything; a stage with ``epochs: 0`` is skipped. The
result loads with ``reward.prm=hf_token_classifier reward.prm_kwargs.path=<output_dir>/prm``.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import torch

from evals.arith import ArithTask, solution_text
from prm.arith import score_solution
from prm.fit import fit
from prm.hf_classifier import stepwise_input

log = logging.getLogger(__name__)


def check_row(row: Any, where: str) -> dict:
    """A stepwise row, or a one-line error naming the bad field."""
    if not isinstance(row, dict):
        raise TypeError(f"{where}: expected an object with prompt, completions, labels; got {type(row).__name__}")
    for key, kind in (("prompt", str), ("completions", list), ("labels", list)):
        if not isinstance(row.get(key), kind):
            raise TypeError(f"{where}: field {key!r} must be a {kind.__name__}, got {type(row.get(key)).__name__}")
    if len(row["completions"]) != len(row["labels"]) or not row["labels"]:
        raise ValueError(f"{where}: {len(row['completions'])} completions but {len(row['labels'])} labels "
                         f"(need one bool per step, at least one step)")
    if not all(isinstance(x, bool) for x in row["labels"]):
        raise ValueError(f"{where}: labels must be true/false per step")
    return {"prompt": row["prompt"], "completions": [str(c) for c in row["completions"]], "labels": row["labels"]}


def arith_rows(n: int, error_rate: float, seed: int, task_kwargs: dict | None = None) -> list[dict]:
    """Arithmetic solutions with slips, labelled step by step by the rule checker, cut after the first error."""
    task, rng = ArithTask(**(task_kwargs or {})), random.Random(seed)
    rows = []
    for i in range(n):
        expr = task.sample_expression(rng)
        slip_step = rng.randrange(len(expr.ops)) if rng.random() < error_rate else None
        steps = solution_text(expr, slip_step, rng.choice([-2, -1, 1, 2])).split("\n\n")
        labels = [s > 0 for s in score_solution(expr, steps)]
        cut = labels.index(False) + 1 if False in labels else len(labels)
        rows.append({"prompt": task.problem(expr, f"arith-prm-{i}").prompt, "completions": steps[:cut],
                     "labels": labels[:cut]})
    return rows


# Named generators of stepwise rows; any other ``classifier.data`` is a .jsonl file or a hub dataset id.
GENERATED = {"arith": lambda cfg, seed: arith_rows(cfg.arith_examples, cfg.arith_error_rate, seed)}


def load_rows(cfg: Any, seed: int) -> list[dict]:
    """The stepwise rows of ``classifier.data`` (arith | .jsonl | hub id), at most ``classifier.limit``."""
    if cfg.data in GENERATED:
        rows = GENERATED[cfg.data](cfg, seed)
    elif cfg.data.endswith(".jsonl"):
        path = Path(cfg.data)
        if not path.exists():
            raise FileNotFoundError(f"classifier.data={cfg.data!r} does not exist")
        with path.open() as f:
            rows = [check_row(json.loads(line), f"{path}:{i}") for i, line in enumerate(f, 1) if line.strip()]
    else:
        import datasets

        try:
            ds = datasets.load_dataset(cfg.data, split=cfg.data_split)
        except Exception as exc:  # offline, unknown id, missing split: say what to set
            raise ValueError(f"classifier.data={cfg.data!r} could not be loaded ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}); download it or point classifier.data at a .jsonl") from exc
        rows = [check_row(dict(r), f"{cfg.data}[{i}]") for i, r in enumerate(ds)]
    return rows[: cfg.limit] if cfg.limit else rows


def encode_row(tokenizer: Any, row: dict, separator: str, max_length: int) -> dict[str, list[int]] | None:
    """ids and per-token labels (-100 off the separators); None when no labelled token survives truncation."""
    ids, positions = stepwise_input(tokenizer, row["prompt"], row["completions"], separator)
    labels = [-100] * len(ids)
    for pos, ok in zip(positions, row["labels"]):
        labels[pos] = int(ok)
    if len(ids) > max_length:
        ids, labels = ids[-max_length:], labels[-max_length:]
    return {"input_ids": ids, "labels": labels} if any(x >= 0 for x in labels) else None


def collate_tokens(rows: list[dict], pad_token_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r["input_ids"]) for r in rows)
    out = {"input_ids": torch.full((len(rows), width), pad_token_id, dtype=torch.long),
           "attention_mask": torch.zeros(len(rows), width, dtype=torch.long),
           "labels": torch.full((len(rows), width), -100, dtype=torch.long)}
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        out["input_ids"][i, :n] = torch.tensor(r["input_ids"])
        out["attention_mask"][i, :n] = 1
        out["labels"][i, :n] = torch.tensor(r["labels"])
    return out


def classification_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"])
    return out.loss, {}


@torch.no_grad()
def step_accuracy(model: torch.nn.Module, rows: list[dict], pad_token_id: int, device: torch.device) -> dict[str, float]:
    """Held-out step accuracy (argmax at each separator) and the share of rows whose first error is found exactly."""
    model.eval()
    hits = total = first_hits = 0
    for start in range(0, len(rows), 32):
        batch = collate_tokens(rows[start : start + 32], pad_token_id)
        logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
        pred = logits.argmax(-1).cpu()
        for p, y in zip(pred, batch["labels"]):
            keep = y >= 0
            p, y = p[keep], y[keep]
            hits += int((p == y).sum())
            total += int(keep.sum())
            first_hits += int(torch.equal(p, y))
    return {"step_accuracy": hits / max(total, 1), "row_exact": first_hits / max(len(rows), 1), "steps": float(total)}


def tiny_classifier(cfg: Any, rows: list[dict], seed: int) -> tuple[torch.nn.Module, Any]:
    """A tiny Llama token classifier built from ``cfg.tiny``, its tokenizer trained on the rows' text."""
    from transformers import LlamaConfig, LlamaForTokenClassification

    from pure_rl.models.tiny import build_tokenizer

    corpus = [r["prompt"] + cfg.separator.join(r["completions"]) + cfg.separator for r in rows[:5000]]
    tokenizer = build_tokenizer(corpus, vocab_size=cfg.tiny.vocab_size)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=cfg.tiny.hidden_size,
                         num_hidden_layers=cfg.tiny.num_layers, num_attention_heads=cfg.tiny.num_heads,
                         num_key_value_heads=cfg.tiny.num_heads, intermediate_size=cfg.tiny.intermediate_size,
                         max_position_embeddings=max(cfg.max_length, 512), num_labels=2,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    return LlamaForTokenClassification(config), tokenizer


def pretrained_classifier(cfg: Any, rows: list[dict], seed: int) -> tuple[torch.nn.Module, Any]:
    """A 2-label token classifier on the backbone at ``cfg.base`` (a folder or hub id)."""
    from transformers import AutoModelForTokenClassification

    from prm.runtime import load_hf

    model, tokenizer = load_hf(AutoModelForTokenClassification, cfg.base, torch.float32, num_labels=2)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


# Named backbones; any other ``classifier.base`` is a folder or a hub id.
BACKBONES = {"tiny": tiny_classifier}


def build_classifier(cfg: Any, rows: list[dict], seed: int) -> tuple[torch.nn.Module, Any]:
    """A 2-label token classifier: a named backbone (``tiny``) or one from a folder / hub id."""
    return BACKBONES.get(cfg.base, pretrained_classifier)(cfg, rows, seed)


def run_classifier(cfg: Any, out_dir: Path, device: torch.device) -> dict[str, Any]:
    """Load rows, split, train stage 1 (head) and stage 2 (all), report held-out step accuracy, save the PRM."""
    c = cfg.classifier
    rows = load_rows(c, cfg.seed)
    random.Random(cfg.seed).shuffle(rows)
    n_eval = int(len(rows) * c.eval_fraction)
    model, tokenizer = build_classifier(c, rows, cfg.seed)
    model.to(device)
    encoded = [e for e in (encode_row(tokenizer, r, c.separator, c.max_length) for r in rows) if e is not None]
    if len(encoded) < len(rows):
        log.warning("%d rows lost every labelled step to max_length=%d", len(rows) - len(encoded), c.max_length)
    held_out, train = encoded[:n_eval], encoded[n_eval:]
    pad = tokenizer.pad_token_id
    summary: dict[str, Any] = {"rows": len(encoded), "train_rows": len(train), "eval_rows": len(held_out)}
    if held_out:
        summary["before"] = step_accuracy(model, held_out, pad, device)
    for stage, stage_cfg, frozen in (("stage1", c.stage1, True), ("stage2", c.stage2, False)):
        if stage_cfg.epochs <= 0:
            continue
        model.requires_grad_(True)
        if frozen:
            model.base_model.requires_grad_(False)
        history = fit(model, train, lambda b: collate_tokens(b, pad), classification_loss, stage_cfg, seed=cfg.seed,
                      log_file=out_dir / "train_log.jsonl", cpu=device.type == "cpu", name=f"classifier.{stage}")
        summary[stage] = {"train": history[-1] if history else {}}
        if held_out:
            summary[stage]["eval"] = step_accuracy(model, held_out, pad, device)
            log.info("%s held-out step accuracy %.3f", stage, summary[stage]["eval"]["step_accuracy"])
    model.requires_grad_(True)
    model.save_pretrained(out_dir / "prm")
    tokenizer.save_pretrained(out_dir / "prm")
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
