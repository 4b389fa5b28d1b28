"""The ``tiny`` model loader: a small causal LM built from ``model.tiny`` with a tokenizer trained offline on the
task's demonstrations, then warm-started on them (supervised), cached so a second run starts at once.

The warm start is how the tiny model gets its weights, so it lives with the model; the task supplies the
demonstrations (``task.demonstrations(n, error_rate, rng, early_stop_rate)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch

from pure_rl.core.registry import TASKS
from pure_rl.models.config import ModelConfig, TinyModelConfig
from pure_rl.models.known import cache_root

log = logging.getLogger(__name__)
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]
# Qwen2-style pre-tokenisation: punctuation keeps its trailing newlines and newline runs stay whole, so the
# step separator "\n\n" (and merged forms such as ".\n\n") become single tokens, as in real LLM tokenizers.
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_tokenizer(corpus: Sequence[str], vocab_size: int = 400) -> Any:
    """A byte-level BPE trained on ``corpus`` with single-digit tokens, wrapped as a transformers tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Single-digit tokens make arithmetic learnable by a tiny model; ByteLevel keeps every string encodable.
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", padding_side="left"
    )


def build_tiny_model(tiny: TinyModelConfig, tokenizer: Any) -> torch.nn.Module:
    """A randomly initialised tiny causal LM of ``tiny.arch`` for ``tokenizer``."""
    common = dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    if tiny.arch == "lightning":
        from pure_rl.models import LightningConfig, LightningForCausalLM

        config = LightningConfig(
            hidden_size=tiny.hidden_size, num_hidden_layers=tiny.num_layers, num_attention_heads=tiny.num_heads,
            intermediate_size=tiny.intermediate_size, tie_word_embeddings=True, **common, **tiny.lightning,
        )
        return LightningForCausalLM(config)
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=tiny.hidden_size, num_hidden_layers=tiny.num_layers, num_attention_heads=tiny.num_heads,
        num_key_value_heads=tiny.num_heads, intermediate_size=tiny.intermediate_size, max_position_embeddings=512,
        tie_word_embeddings=True, **common,
    )
    return LlamaForCausalLM(config)


def _cache_key(model_cfg: ModelConfig, task_name: str, task_kwargs: dict[str, Any], seed: int) -> str:
    payload = {
        "tiny": dataclasses.asdict(model_cfg.tiny),
        "warm_start": dataclasses.asdict(model_cfg.warm_start),
        "task": [task_name, dict(task_kwargs)],
        "seed": seed,
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


def load_tiny(model_cfg: ModelConfig, task: str, task_kwargs: dict[str, Any], seed: int) -> tuple[torch.nn.Module, Any]:
    """Build the tiny policy from ``model_cfg.tiny`` and run ``model_cfg.warm_start.steps`` supervised steps.

    The task must offer ``demonstrations(n, error_rate, rng)``; the tokenizer is trained offline on the same
    distribution. With ``warm_start.cache`` the result is stored under ``$PURE_RL_CACHE/warmstart/<hash>``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ws = model_cfg.warm_start
    task_obj = TASKS.build(task, **task_kwargs)
    cached = cache_root() / "warmstart" / _cache_key(model_cfg, task, task_kwargs, seed)
    if ws.cache and (cached / "config.json").exists():
        log.info("warm start: loading cached policy from %s", cached)
        return AutoModelForCausalLM.from_pretrained(cached), AutoTokenizer.from_pretrained(cached, padding_side="left")
    if not hasattr(task_obj, "demonstrations"):
        raise ValueError(f"model.name=tiny needs a task with demonstrations(); task {task!r} has none")
    rng = random.Random(seed)
    corpus = [p + s for p, s in task_obj.demonstrations(2000, ws.demo_error_rate, rng, ws.demo_early_stop_rate)]
    tokenizer = build_tokenizer(corpus, model_cfg.tiny.vocab_size)
    torch.manual_seed(seed)
    model = build_tiny_model(model_cfg.tiny, tokenizer)
    if ws.steps > 0:
        optimizer = torch.optim.AdamW(model.parameters(), lr=ws.lr, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / 20) * max(0.05, 1 - s / ws.steps)
        )
        model.train()
        for step in range(ws.steps):
            demos = task_obj.demonstrations(ws.batch_size, ws.demo_error_rate, rng, ws.demo_early_stop_rate)
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
