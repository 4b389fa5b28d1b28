"""Qwen2.5-Math-PRM-style PRMs: ``<extra_0>`` after every step, the positive-class probability read there.

The input follows the models' card: the chat template over a system prompt, the question as the user turn, and
``"<extra_0>".join(steps) + "<extra_0>"`` as the assistant turn, tokenized as one text. Step k's score is
``softmax(logits)[1]`` at the k-th ``<extra_0>`` token, in [0, 1] (the trainer maps it to 2p - 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from prm.hf_classifier import classifier_logits
from prm.runtime import TokenRunner, check_rows, load_hf, resolve_device, resolve_dtype
from pure_rl.core.scores import PROB01

DEFAULT_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


class QwenPRM:
    """A Qwen2.5-Math-PRM-style model (registry name ``qwen_prm``); scores are probabilities in [0, 1].

    Give ``path`` (e.g. ``Qwen/Qwen2.5-Math-PRM-7B``, loaded with ``trust_remote_code``) or a built ``model`` and
    ``tokenizer`` (any model whose output's first item is per-token 2-class logits). A row whose step text itself
    contains the step token cannot be read unambiguously: it is returned unscored (None) with a warning.
    """

    score_range = PROB01

    def __init__(self, path: str | None = None, model: torch.nn.Module | None = None, tokenizer: Any = None,
                 device: str = "auto", dtype: str = "auto", batch_size: int = 8, max_length: int = 4096,
                 step_token: str = "<extra_0>", system_prompt: str = DEFAULT_SYSTEM, trust_remote_code: bool = True):
        dev = resolve_device(device)
        if model is None:
            if path is None:
                raise ValueError("qwen_prm needs path= (folder or hub id) or model= and tokenizer=")
            from transformers import AutoModel

            model, tokenizer = load_hf(AutoModel, path, resolve_dtype(dtype, dev), trust_remote_code=trust_remote_code)
        elif tokenizer is None:
            raise ValueError("qwen_prm got model= without tokenizer=")
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("qwen_prm needs a tokenizer with a chat template (Qwen2.5-Math-PRM ships one)")
        step_ids = tokenizer(step_token, add_special_tokens=False)["input_ids"]
        if len(step_ids) != 1:
            raise ValueError(f"step_token={step_token!r} must be one token of the PRM's vocabulary, got ids {step_ids}")
        self.tokenizer, self.step_token, self.step_id = tokenizer, step_token, step_ids[0]
        self.system_prompt = system_prompt
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.runner = TokenRunner(model.to(resolve_dtype(dtype, dev)), pad, dev, batch_size, max_length, name="qwen_prm")

    def render(self, prompt: str, steps: Sequence[str]) -> str:
        """The PRM's input text for one response."""
        messages = [
            {"role": "system", "content": self.system_prompt},
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": self.step_token.join(steps) + self.step_token},
        ]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        check_rows(prompts, steps, "qwen_prm")
        rows, readable = [], []
        for i, (prompt, row) in enumerate(zip(prompts, steps)):
            ids = self.tokenizer(self.render(prompt, row), add_special_tokens=False)["input_ids"]
            positions = [j for j, t in enumerate(ids) if t == self.step_id]
            if len(positions) != len(row):
                warnings.warn(f"qwen_prm: row {i} has {len(row)} steps but {len(positions)} {self.step_token} tokens "
                              f"(the text contains the step token); row left unscored", stacklevel=2)
                continue
            rows.append((ids, positions))
            readable.append(i)
        out: list[list[float] | None] = [None] * len(prompts)
        for i, logits in zip(readable, self.runner.gather(rows, classifier_logits)):
            out[i] = torch.softmax(logits, dim=-1)[:, 1].tolist()
        return out
