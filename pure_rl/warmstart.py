"""The tiny policy and its supervised warm start, cached so a second run starts RL at once."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from pure_rl.config import Config
from pure_rl.known_models import cache_root
from pure_rl.policy import build_tiny_model, build_tokenizer
from pure_rl.registry import TASKS

log = logging.getLogger(__name__)


def _cache_key(cfg: Config) -> str:
    payload = {
        "tiny": dataclasses.asdict(cfg.model.tiny),
        "warm_start": dataclasses.asdict(cfg.model.warm_start),
        "task": [cfg.task.name, dict(cfg.task.kwargs)],
        "seed": cfg.seed,
        "version": 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def supervised_loss(model: torch.nn.Module, tokenizer: Any, pairs: list[tuple[str, str]]) -> torch.Tensor:
    """Mean next-token cross-entropy on the solution tokens (and EOS) of (prompt, solution) pairs."""
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p, _ in pairs]
    full_ids = [tokenizer(p + s, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for p, s in pairs]
    width = max(len(x) for x in full_ids)
    ids = torch.full((len(pairs), width), tokenizer.pad_token_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros(len(pairs), width, dtype=torch.long)
    for i, (p, f) in enumerate(zip(prompt_ids, full_ids)):
        ids[i, : len(f)] = torch.tensor(f)
        mask[i, : len(f)] = 1
        labels[i, len(p) : len(f)] = torch.tensor(f[len(p) :])
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def warm_start_policy(cfg: Config) -> tuple[torch.nn.Module, Any]:
    """Build the tiny policy from ``cfg.model.tiny`` and run ``cfg.model.warm_start.steps`` supervised steps.

    The task must offer ``demonstrations(n, error_rate, rng)``; the tokenizer is trained offline on the same
    distribution. With ``warm_start.cache`` the result is stored under ``$PURE_RL_CACHE/warmstart/<hash>``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws = cfg.model.warm_start
    task = TASKS.build(cfg.task.name, **cfg.task.kwargs)
    cached = cache_root() / "warmstart" / _cache_key(cfg)
    if ws.cache and (cached / "config.json").exists():
        log.info("warm start: loading cached policy from %s", cached)
        if cfg.model.tiny.arch == "lightning":
            import pure_rl.models  # noqa: F401  (registers the lightning classes with the Auto API)
        return AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached, padding_side="left")
    if not hasattr(task, "demonstrations"):
        raise ValueError(f"model.name=tiny needs a task with demonstrations(); task {cfg.task.name!r} has none")
    rng = random.Random(cfg.seed)
    corpus = [p + s for p, s in task.demonstrations(2000, ws.demo_error_rate, rng, ws.demo_early_stop_rate)]
    tokenizer = build_tokenizer(corpus, cfg.model.tiny.vocab_size)
    torch.manual_seed(cfg.seed)
    model = build_tiny_model(cfg.model.tiny, tokenizer)
    if ws.steps > 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=ws.lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / ws.steps)
        )
        model.train()
        for step in range(ws.steps):
            demos = task.demonstrations(ws.batch_size, ws.demo_error_rate, rng, ws.demo_early_stop_rate)
            loss = supervised_loss(model, tokenizer, demos)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if step % 100 == 0 or step == ws.steps - 1:
                log.info("warm start step %d/%d loss %.4f", step + 1, ws.steps, loss.item())
    if ws.cache:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(cached)
        except OSError:  # a concurrent run cached it first
            shutil.rmtree(tmp, ignore_errors=True)
    return model, tokenizer
