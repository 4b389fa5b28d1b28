"""Tiny lightning policies and a BPE tokenizer trained in-process, shared by the model and native-engine tests."""

from __future__ import annotations

import torch

from pure_rl.models import LIGHTNING, SOFTMAX, LightningConfig, LightningForCausalLM

CORPUS = ["What is 12 + 35? Answer: 47.\n\n", "Compute 3 * 4 = 12. Then 12 - 5 = 7.\n\n", "Let x = 9; x + 1 = 10"] * 10
HYBRID = [LIGHTNING, SOFTMAX, LIGHTNING, SOFTMAX]


def tiny_config(vocab_size: int = 101, layer_types: list[str] | None = None, **overrides) -> LightningConfig:
    """A 3- or 4-layer model of width 64 (4 heads of 16); ``layer_types`` picks pure lightning or the hybrid."""
    kwargs = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 96,
        "num_hidden_layers": len(layer_types) if layer_types else 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "layer_types": layer_types,
        "chunk_size": 16,
    }
    kwargs.update(overrides)
    return LightningConfig(**kwargs)


def tiny_model(seed: int = 0, **kwargs) -> LightningForCausalLM:
    torch.manual_seed(seed)
    return LightningForCausalLM(tiny_config(**kwargs)).eval()


def tiny_tokenizer():
    """A byte-level BPE (vocab 120) trained on ``CORPUS`` with <pad>/<bos>/<eos>, as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=120, special_tokens=["<pad>", "<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", padding_side="left"
    )
