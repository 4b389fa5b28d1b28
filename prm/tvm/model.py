"""The token-level value model: any ``transformers`` causal LM plus a scalar head on every token's last hidden state.

``v_t = sigmoid(w . h_t + b)`` (or the raw ``w . h_t + b`` with ``activation="identity"``, OVM's choice) estimates
P(final answer correct | prefix up to token t). Training minimises MSE to the soft TVM labels on response tokens
(BCE with soft targets as the option), plus an optional LM loss that keeps the backbone a language model. Saved as a
normal checkpoint folder (the backbone's ``save_pretrained``) with ``value_head.safetensors`` and ``value_head.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

HEAD_WEIGHTS, HEAD_CONFIG = "value_head.safetensors", "value_head.json"


@dataclass
class ValueHeadConfig:
    activation: str = "sigmoid"  # sigmoid | identity
    dropout: float = 0.0  # dropout on the hidden state before the head

    def __post_init__(self) -> None:
        if self.activation not in ("sigmoid", "identity"):
            raise ValueError(f"value head activation={self.activation!r}; valid: sigmoid, identity")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"value head dropout must be in [0, 1), got {self.dropout}")


def value_loss(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, kind: str, activation: str) -> torch.Tensor:
    """Masked mean over labelled tokens: MSE(v, V̂) or soft-target BCE(sigmoid(logit), V̂).

    logits  # [B, L] head outputs before the activation
    labels  # [B, L] TVM labels in [0, 1]
    mask    # [B, L] bool, True on labelled (response) tokens
    """
    m = mask.float()
    if kind == "mse":
        values = torch.sigmoid(logits) if activation == "sigmoid" else logits
        per_token = (values.float() - labels) ** 2
    elif kind == "bce":
        if activation != "sigmoid":
            raise ValueError("loss=bce needs activation=sigmoid (BCE reads the head output as a logit)")
        per_token = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    else:
        raise ValueError(f"value loss {kind!r} is not valid; use mse or bce")
    return (per_token * m).sum() / m.sum().clamp(min=1.0)


def lm_loss(lm_logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy predicting the masked tokens: token t+1 from position t.

    lm_logits  # [B, L, V]
    input_ids  # [B, L]
    mask       # [B, L] bool, True on tokens to predict
    """
    targets = input_ids[:, 1:].masked_fill(~mask[:, 1:], -100)
    return F.cross_entropy(lm_logits[:, :-1].float().reshape(-1, lm_logits.shape[-1]), targets.reshape(-1),
                           ignore_index=-100)


class TokenValueModel(torch.nn.Module):
    """A causal LM backbone with a per-token scalar value head."""

    def __init__(self, backbone: torch.nn.Module, head: ValueHeadConfig | None = None):
        super().__init__()
        self.backbone = backbone
        self.head_config = head or ValueHeadConfig()
        hidden = backbone.config.hidden_size
        self.dropout = torch.nn.Dropout(self.head_config.dropout)
        self.value_head = torch.nn.Linear(hidden, 1)
        # a zero head starts every value at the same prior (0.5 after the sigmoid) instead of at noise
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)
        self.value_head.to(dtype=next(backbone.parameters()).dtype)

    @property
    def config(self) -> Any:
        return self.backbone.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_lm_logits: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(head logits [B, L], LM logits [B, L, V] when asked, else None)."""
        hidden = self.backbone.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.value_head(self.dropout(hidden)).squeeze(-1)  # [B, L]
        lm_logits = self.backbone.get_output_embeddings()(hidden) if with_lm_logits else None
        return logits, lm_logits

    def values(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """v_t for every token: [B, L] (probabilities with the sigmoid head)."""
        logits, _ = self.forward(input_ids, attention_mask)
        return torch.sigmoid(logits) if self.head_config.activation == "sigmoid" else logits

    def save_pretrained(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        self.backbone.save_pretrained(folder)
        save_file({k: v.contiguous() for k, v in self.value_head.state_dict().items()}, str(folder / HEAD_WEIGHTS))
        (folder / HEAD_CONFIG).write_text(json.dumps(asdict(self.head_config), indent=2))

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> TokenValueModel:
        """Load a folder written by ``save_pretrained`` (backbone through ``AutoModelForCausalLM``)."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM

        folder = Path(folder)
        if not (folder / HEAD_CONFIG).exists():
            raise FileNotFoundError(f"{folder} is not a TVM checkpoint: {HEAD_CONFIG} is missing "
                                    f"(train one with python -m prm.train recipe=tvm_arith)")
        import pure_rl.models  # noqa: F401  (registers the lightning policy with the Auto classes)

        backbone = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        model = cls(backbone, ValueHeadConfig(**json.loads((folder / HEAD_CONFIG).read_text())))
        model.value_head.load_state_dict(load_file(str(folder / HEAD_WEIGHTS)))
        model.value_head.to(dtype=dtype)
        return model
