"""Building the policy: a tiny model from a config (offline), a local/hub checkpoint, or a packaged GGUF file.

Every path returns ``(model, tokenizer)`` with a pad token set and left padding for generation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch

from pure_rl.config import LoRAConfig, ModelConfig, TinyModelConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]
# Qwen2-style pre-tokenisation: punctuation keeps its trailing newlines and newline runs stay whole, so the
# step separator "\n\n" (and merged forms such as ".\n\n") become single tokens, as in real LLM tokenizers.
PRETOKENIZE_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to set."""


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


def _hub_unreachable_message(name: str, exc: Exception) -> str:
    return (
        f"model {name!r} not found locally and the hub is unreachable or refused it ({type(exc).__name__}); "
        f"set model.path=/local/folder (or model.gguf_file=...) to a downloaded copy"
    )


def load_pretrained(model_cfg: ModelConfig) -> tuple[torch.nn.Module, Any]:
    """Load a transformers causal LM and its tokenizer from a folder, a hub id or a GGUF file (cached)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import pure_rl.models  # noqa: F401  (registers the lightning policy with the Auto classes)
    from pure_rl.known_models import resolve_known_model

    source, gguf_file = resolve_known_model(model_cfg)
    dtype = DTYPES[model_cfg.dtype]
    if gguf_file is not None:
        from pure_rl.known_models import load_gguf_cached

        return load_gguf_cached(source, gguf_file, dtype)
    local = Path(source).expanduser()
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    if not local.exists() and source.startswith(("/", ".", "~")):
        raise ModelLoadError(f"model.path {source!r} does not exist; point it at a folder with config.json and weights")
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline or local.exists())
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline or local.exists())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(_hub_unreachable_message(source, exc)) from exc
    return model, prepare_tokenizer(tokenizer)


def prepare_tokenizer(tokenizer: Any) -> Any:
    """Left padding for generation and a pad token (the EOS when the model has none)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


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
