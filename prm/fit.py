"""The supervised loop shared by TVM and classifier-PRM training, on ``accelerate`` (DDP / bf16 / accumulation).

Run under ``accelerate launch -m prm.train ...`` for several GPUs; plain ``python -m prm.train`` uses one device.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

# (model, batch) -> (loss, {metric: float})
LossFn = Callable[[torch.nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]


@dataclass
class FitConfig:
    lr: float = 1e-4  # peak learning rate (AdamW)
    weight_decay: float = 0.0  # AdamW weight decay
    betas: list[float] | None = None  # AdamW betas; None = (0.9, 0.999)
    epochs: float = 1.0  # passes over the data (fractions allowed)
    batch_size: int = 16  # rows per optimiser step per process (before accumulation)
    grad_accum: int = 1  # micro-batches accumulated per optimiser step
    grad_clip: float = 1.0  # max global gradient norm; 0 = off
    warmup_ratio: float = 0.0  # linear warm-up share of the steps, then linear decay to 0
    mixed_precision: str = "fp32"  # fp32 (none) | bf16 | fp16 (accelerate's autocast)
    log_every: int = 10  # optimiser steps between log lines


def check_fit_config(cfg: FitConfig, section: str) -> None:
    """One-line errors for impossible optimiser settings, naming the config section."""
    problems = []
    if cfg.lr <= 0:
        problems.append(f"{section}.lr must be > 0, got {cfg.lr}")
    if cfg.epochs <= 0:
        problems.append(f"{section}.epochs must be > 0, got {cfg.epochs}")
    if cfg.batch_size < 1 or cfg.grad_accum < 1:
        problems.append(f"{section}.batch_size and {section}.grad_accum must be >= 1")
    if cfg.mixed_precision not in ("fp32", "bf16", "fp16"):
        problems.append(f"{section}.mixed_precision must be fp32, bf16 or fp16, got {cfg.mixed_precision!r}")
    if not 0 <= cfg.warmup_ratio < 1:
        problems.append(f"{section}.warmup_ratio must be in [0, 1), got {cfg.warmup_ratio}")
    if problems:
        raise ValueError("; ".join(problems))


def fit(model: torch.nn.Module, dataset: Sequence[Any], collate: Callable[[list[Any]], dict[str, torch.Tensor]],
        loss_fn: LossFn, cfg: FitConfig, seed: int = 0, log_file: str | Path | None = None, cpu: bool = False,
        name: str = "fit") -> list[dict[str, float]]:
    """Train the parameters of ``model`` that require grad; returns the logged history (one dict per log line)."""
    from accelerate import Accelerator

    check_fit_config(cfg, name)
    if not dataset:
        raise ValueError(f"{name}: the training set is empty")
    accelerator = Accelerator(mixed_precision="no" if cfg.mixed_precision == "fp32" else cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum, cpu=cpu)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(list(dataset), batch_size=cfg.batch_size, shuffle=True, collate_fn=collate,
                                         generator=generator)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{name}: the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=tuple(cfg.betas) if cfg.betas else (0.9, 0.999))
    total = max(1, math.ceil(len(loader) * cfg.epochs / cfg.grad_accum))
    warmup = int(cfg.warmup_ratio * total)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(total - warmup, 1)))
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    model.train()
    history, step, running, t0 = [], 0, {}, time.perf_counter()
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log_file, "a")) if (log_file and accelerator.is_main_process) else None
        while step < total:
            for batch in loader:
                with accelerator.accumulate(model):
                    loss, metrics = loss_fn(model, batch)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.grad_clip > 0:
                        accelerator.clip_grad_norm_(params, cfg.grad_clip)
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad(set_to_none=True)
                if not math.isfinite(loss.item()):
                    raise FloatingPointError(f"{name}: non-finite loss at step {step}; lower {name}.lr")
                for k, v in {"loss": loss.item(), **metrics}.items():
                    running.setdefault(k, []).append(v)
                if not accelerator.sync_gradients:
                    continue
                step += 1
                if step % cfg.log_every == 0 or step == total:
                    row = {"stage": name, "step": step, "of": total, "lr": schedule.get_last_lr()[0],
                           "time_s": round(time.perf_counter() - t0, 2),
                           **{k: sum(v) / len(v) for k, v in running.items()}}
                    running = {}
                    history.append(row)
                    log.info("%s step %d/%d %s", name, step, total,
                             " ".join(f"{k}={v:.4g}" for k, v in row.items() if k not in ("stage", "step", "of")))
                    if out:
                        out.write(json.dumps(row) + "\n")
                        out.flush()
                if step >= total:
                    break
    model.eval()
    accelerator.wait_for_everyone()
    return history
