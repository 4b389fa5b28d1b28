"""Trainer-only model wrapping: LoRA adapters through ``peft`` (loading a policy: ``pure_rl.models.loading``)."""

from __future__ import annotations

import torch

from pure_rl.models.config import LoRAConfig


def apply_lora(model: torch.nn.Module, lora: LoRAConfig) -> torch.nn.Module:
    """Wrap ``model`` with peft LoRA adapters when ``lora.r > 0``; the base weights freeze."""
    if lora.r <= 0:
        return model
    from peft import LoraConfig, get_peft_model

    present = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora.target_modules if m not in present]
    if missing:
        raise ValueError(
            f"model.lora.target_modules {missing} not found in the model; available leaf modules include "
            f"{sorted(present)[:20]}"
        )
    config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules=list(lora.target_modules), task_type="CAUSAL_LM")
    return get_peft_model(model, config)
