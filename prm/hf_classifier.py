"""PURE-PRM-7B-style PRMs: a 2-class token classifier read at a separator inserted after every step.

The input is ``prompt + step_1 + "\\n" + step_2 + "\\n" + ... + step_n + "\\n"`` (TRL's stepwise-supervision layout,
which PURE rebuilds from the policy's tokens): each step is tokenized on its own with the separator appended, and
the step's logits are read at its separator's last token. The reward is ``p - (1 - p) = 2p - 1`` with p the
positive-class probability, in [-1, 1]. ``stepwise_input`` is shared with the classifier trainer, so a PRM is
scored on exactly the layout it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from prm.runtime import TokenRunner, check_rows, load_hf, logits_of, resolve_device, resolve_dtype
from pure_rl.core.scores import PM1


def stepwise_input(tokenizer: Any, prompt: str, steps: Sequence[str], separator: str = "\n") -> tuple[list[int], list[int]]:
    """(token ids, read position of each step): prompt, then each step followed by ``separator``.

    A BOS token leads when the tokenizer has one, as TRL's PRM data collator does.
    """
    ids = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids += tokenizer(prompt, add_special_tokens=False)["input_ids"]
    positions = []
    for step in steps:
        ids += tokenizer(step + separator, add_special_tokens=False)["input_ids"]
        positions.append(len(ids) - 1)
    return ids, positions


def classifier_logits(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Per-token class logits [b, L, C] of a token-classification model."""
    return logits_of(model(input_ids=input_ids, attention_mask=attention_mask))


class HFTokenClassifierPRM:
    """A ``transformers`` token-classification PRM (registry name ``hf_token_classifier``), scores 2p - 1 in [-1, 1].

    Give ``path`` (folder or hub id, e.g. ``jinachris/PURE-PRM-7B``) or an already built ``model`` and ``tokenizer``;
    ``init="random"`` builds ``path``'s architecture with random weights (throughput runs: ``prm.runtime.load_hf``).
    """

    score_range = PM1

    def __init__(self, path: str | None = None, model: torch.nn.Module | None = None, tokenizer: Any = None,
                 device: str = "auto", dtype: str = "auto", batch_size: int = 8, max_length: int = 4096,
                 separator: str = "\n", positive_label: int = 1, init: str = "pretrained"):
        dev = resolve_device(device)
        if model is None:
            if path is None:
                raise ValueError("hf_token_classifier PRM needs path= (folder or hub id) or model= and tokenizer=")
            from transformers import AutoModelForTokenClassification

            model, tokenizer = load_hf(AutoModelForTokenClassification, path, resolve_dtype(dtype, dev), init, dev)
        elif tokenizer is None:
            raise ValueError("hf_token_classifier PRM got model= without tokenizer=")
        num_labels = getattr(model.config, "num_labels", 2)
        if not 0 <= positive_label < num_labels:
            raise ValueError(f"positive_label={positive_label} but the model has {num_labels} labels")
        self.tokenizer, self.separator, self.positive_label = tokenizer, separator, positive_label
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.runner = TokenRunner(model.to(resolve_dtype(dtype, dev)), pad, dev, batch_size, max_length,
                                  name="hf_token_classifier")

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        check_rows(prompts, steps, "hf_token_classifier")
        rows = [stepwise_input(self.tokenizer, p, s, self.separator) for p, s in zip(prompts, steps)]
        logits = self.runner.gather(rows, classifier_logits)  # each [n_steps, C]
        return [(2 * torch.softmax(x, dim=-1)[:, self.positive_label] - 1).tolist() for x in logits]
