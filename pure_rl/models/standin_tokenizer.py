"""A stand-in tokenizer with the exact vocabulary size of a published one, trained offline, for random-init runs.

The real tokenizers of the GPU recipes' models cannot be downloaded here, and what a throughput run needs from a
tokenizer is its size (every id the policy samples must decode) and its behaviour on text (prompts and decoded
responses re-tokenize into about as many tokens, step separators are single tokens). So the stand-in is a byte-level
BPE with Qwen2's pre-tokenization, trained with ``tokenizers`` on a deterministic corpus: a short English / LaTeX
text in the MATH prompt style, then pseudo-words (syllables drawn from a seeded generator) that give the trainer
enough distinct words to learn exactly ``vocab_size - len(special_tokens)`` merges and base tokens. The special
tokens take the ids the spec puts them at (after the regular tokens as in Qwen2, or first as in Llama-style
vocabularies). The result is cached under ``$PURE_RL_CACHE/standin_tokenizers/<hash of the spec>``.

Spec (``tokenizer_spec.json`` beside a shipped config.json)::

    {"vocab_size": 151665, "special_tokens": ["<|endoftext|>", ...], "specials_first": false,
     "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "bos_token": null, "unk_token": null}
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pure_rl.models.known import cache_root

VERSION = 1  # bump when the corpus or the training changes: it keys the cache
# Qwen2's pre-tokenization: single digits, letter runs with one leading non-letter, punctuation keeping its
# trailing newlines, newline runs whole (so "\n\n" is one token, as the step splitter expects).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SEED_TEXT = (
    "Let $x$ be a real number such that $x^2 + 3x - 10 = 0$. Find the sum of all possible values of $x$.\n\n"
    "Please reason step by step with steps separated by \"\\n\\n\", and put your final answer within \\boxed{}.\n\n"
    "First, we factor the quadratic: $(x + 5)(x - 2) = 0$, so $x = -5$ or $x = 2$.\n\n"
    "The sum of the roots is $-5 + 2 = -3$, which agrees with Vieta's formulas, since the sum is $-b/a = -3$.\n\n"
    "Therefore, the answer is $\\boxed{-3}$.\n\n"
    "A triangle has sides of length 7, 24 and 25. What is the area of the triangle? Since $7^2 + 24^2 = 25^2$, "
    "it is a right triangle, and its area is $\\frac{1}{2} \\cdot 7 \\cdot 24 = 84$. The answer is $\\boxed{84}$.\n\n"
    "How many positive integers $n \\le 100$ are divisible by 3 or 5? By inclusion-exclusion we count "
    "$\\left\\lfloor \\frac{100}{3} \\right\\rfloor + \\left\\lfloor \\frac{100}{5} \\right\\rfloor - "
    "\\left\\lfloor \\frac{100}{15} \\right\\rfloor = 33 + 20 - 6 = 47$.\n\n"
    "Evaluate $\\sqrt{49} + \\sum_{k=1}^{n} k = 7 + \\frac{n(n+1)}{2}$ for $n = 10$: we get $7 + 55 = 62$.\n\n"
)
CONSONANTS = "bcdfghjklmnprstvwz"
VOWELS = "aeiou"


def spec_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps({"spec": spec, "version": VERSION}, sort_keys=True).encode()).hexdigest()[:16]


def pseudo_words(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct lower-case words of 2-5 consonant-vowel(-consonant) syllables, in a seeded order."""
    rng = random.Random(seed)
    seen: set[str] = set()
    words = []
    while len(words) < n:
        syllables = rng.randint(2, 5)
        w = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) + (rng.choice(CONSONANTS) if rng.random() < 0.3 else "")
                    for _ in range(syllables))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def corpus(n_words: int, seed: int = 0) -> Iterator[str]:
    """The seed text a few times, then lines of pseudo-words, each word once bare and once after a space.

    Word frequency falls with its index (Zipf-like), so the trainer's merges come in a stable, frequency-ranked order.
    """
    for _ in range(20):
        yield SEED_TEXT
    words = pseudo_words(n_words, seed)
    for rank, w in enumerate(words):
        repeats = max(1, 2000 // (rank + 1))
        yield " ".join([w] * repeats) + "\n" + (w + "\n") * min(repeats, 4)


def train_standin(spec: dict[str, Any]) -> Any:
    """Train the stand-in described by ``spec``; a ``PreTrainedTokenizerFast`` of exactly ``spec['vocab_size']``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    size, specials = int(spec["vocab_size"]), list(spec.get("special_tokens", []))
    first = bool(spec.get("specials_first", False))
    regular = size - len(specials)
    if regular < 512:
        raise ValueError(f"tokenizer_spec vocab_size={size} leaves {regular} regular tokens; need >= 512")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size if first else regular, special_tokens=specials if first else [],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus(max(regular, 1000)), trainer)
    if not first:
        tok.add_special_tokens(specials)
    if tok.get_vocab_size() != size:
        raise RuntimeError(f"stand-in tokenizer reached {tok.get_vocab_size()} tokens, not vocab_size={size}")
    names = {k: spec.get(k) for k in ("eos_token", "pad_token", "bos_token", "unk_token") if spec.get(k) is not None}
    return PreTrainedTokenizerFast(tokenizer_object=tok, padding_side="left", **names)


def standin_tokenizer(spec: dict[str, Any]) -> Any:
    """The cached stand-in for ``spec`` (trained on first use; a run of 151k tokens takes about a minute)."""
    from transformers import AutoTokenizer

    cached = cache_root() / "standin_tokenizers" / spec_key(spec)
    if (cached / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(cached, padding_side="left")
    tokenizer = train_standin(spec)
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".tmp-"))
    try:
        tokenizer.save_pretrained(tmp)
        tmp.rename(cached)
    except OSError:
        if not (cached / "tokenizer.json").exists():  # not a lost race with another process: a real failure
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return tokenizer
