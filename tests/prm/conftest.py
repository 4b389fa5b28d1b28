"""Tiny offline tokenizers and randomly initialised models of each PRM's architecture, built from configs."""

import random

import pytest
import torch

from evals.arith import ArithTask
from pure_rl.models.tiny import build_tokenizer

QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True, scope="module")
def one_intra_op_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy CPU two spinning threads per process made these
    tests 10-30x slower; restored after each module so other packages' tests keep their setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def arith_tokenizer():
    """Byte-level BPE trained on arithmetic demonstrations, plus Qwen's chat markers and step token."""
    demos = ArithTask().demonstrations(400, 0.3, random.Random(0))
    tok = build_tokenizer([p + s for p, s in demos] + ["Please reason step by step, system user assistant"])
    tok.add_tokens(["<extra_0>", "<|im_start|>", "<|im_end|>"], special_tokens=True)
    tok.chat_template = QWEN_TEMPLATE
    return tok


@pytest.fixture(scope="session")
def arith_problems():
    return ArithTask().load("test", limit=8)


def tiny_llama_config(tokenizer, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, **extra)


def tiny_qwen2_config(tokenizer, **extra):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                       pad_token_id=tokenizer.pad_token_id, **extra)


@pytest.fixture
def qwen2_token_classifier(arith_tokenizer):
    """PURE-PRM-7B's architecture (Qwen2 + 2-label token head), tiny and random."""
    from transformers import Qwen2ForTokenClassification

    torch.manual_seed(0)
    return Qwen2ForTokenClassification(tiny_qwen2_config(arith_tokenizer, num_labels=2)).eval()


@pytest.fixture
def llama_token_classifier(arith_tokenizer):
    from transformers import LlamaForTokenClassification

    torch.manual_seed(1)
    return LlamaForTokenClassification(tiny_llama_config(arith_tokenizer, num_labels=2)).eval()
