"""What every model-backed PRM shares, handled once: device and dtype, loading, batching, and the max-length policy.

An adapter turns (prompt, steps) into one token row plus the positions its scores are read from; ``TokenRunner``
runs the model over many such rows in right-padded micro-batches (so a row's scores never depend on its batch
mates: positions start at 0 and padding sits after the real tokens), and returns the model's per-token output at
the read positions. A row longer than ``max_length`` loses tokens from the left, with a warning, never a crash.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# model, input_ids [b, L], attention_mask [b, L] -> per-token output [b, L, C]
PerTokenFn = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


class PRMLoadError(RuntimeError):
    """A PRM checkpoint could not be found or loaded; the message says what to set."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when visible, else CPU; ``cuda`` without a GPU is an error, not a silent CPU run."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but no CUDA GPU is visible; use device=cpu or device=auto")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device={device!r} is not a torch device; valid: auto, cpu, cuda, cuda:N") from exc


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA and float32 on CPU (bf16 matmuls are slow on most CPUs)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not valid; use auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_hf(auto_cls: Any, path: str, dtype: torch.dtype, init: str = "pretrained",
            device: torch.device | str = "cpu", **kwargs: Any) -> tuple[torch.nn.Module, Any]:
    """Load ``auto_cls`` weights and the tokenizer from a folder or hub id, with a one-line error when offline.

    ``init="random"`` builds the architecture of ``path`` from its config (a folder, or a config shipped under
    ``pure_rl/models/configs``) with random weights drawn on ``device``: for throughput runs, never for scores.
    """
    from transformers import AutoTokenizer

    if init not in ("pretrained", "random"):
        raise ValueError(f"init={init!r} is not valid; use pretrained or random")
    if init == "random":
        from pure_rl.models.random_init import build_random, check_vocab, config_dir, load_tokenizer

        folder = config_dir(path, "PRM path")
        tokenizer = load_tokenizer(folder)
        model = build_random(auto_cls, folder, dtype, device, **kwargs)
        check_vocab(model, tokenizer, str(folder))
        return model, tokenizer
    local = Path(path).expanduser()
    if not local.exists() and path.startswith(("/", ".", "~")):
        raise PRMLoadError(f"PRM path {path!r} does not exist; point path= at a folder with config.json and weights")
    local_only = local.exists() or os.environ.get("HF_HUB_OFFLINE") == "1"
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local_only, **kwargs)
        model = auto_cls.from_pretrained(path, dtype=dtype, local_files_only=local_only, **kwargs)
    except (OSError, ValueError) as exc:
        raise PRMLoadError(
            f"PRM {path!r} not found locally and the hub is unreachable or refused it ({type(exc).__name__}); "
            f"download it and set path=/local/folder"
        ) from exc
    return model, tokenizer


def truncate_left(ids: list[int], positions: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Keep the last ``max_length`` tokens; read positions shift left by the cut.

    A position that fell off the window reads the first kept token: the step is no longer visible, so it shares
    the earliest score the model can still give, rather than dropping the row or scoring it 0.
    """
    cut = len(ids) - max_length
    if cut <= 0:
        return ids, positions
    return ids[cut:], [max(p - cut, 0) for p in positions]


@dataclass
class TokenRunner:
    """Runs a per-token model over rows of token ids in micro-batches on one device."""

    model: torch.nn.Module
    pad_token_id: int
    device: torch.device
    batch_size: int = 8
    max_length: int = 4096
    name: str = "prm"
    tokens_scored: int = 0  # real (unpadded) tokens run through the model so far: throughput accounting
    tokens_padded: int = 0  # the same with padding, what the micro-batches cost

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {self.max_length}")
        self.model.to(self.device).eval()

    @torch.no_grad()
    def gather(self, rows: Sequence[tuple[list[int], list[int]]], per_token: PerTokenFn) -> list[torch.Tensor]:
        """For each (ids, read positions) row, ``per_token`` output at those positions: [n_pos, C] float32 on CPU."""
        fitted, truncated = [], 0
        for ids, positions in rows:
            if any(not 0 <= p < len(ids) for p in positions):
                raise ValueError(f"{self.name}: read position out of range for a row of {len(ids)} tokens")
            truncated += len(ids) > self.max_length
            fitted.append(truncate_left(ids, positions, self.max_length))
        if truncated:
            warnings.warn(f"{self.name}: {truncated} of {len(rows)} rows exceed max_length={self.max_length} "
                          f"tokens and were truncated from the left", stacklevel=3)
        # longest first, so each micro-batch pads little; results go back to the caller's order
        order = sorted(range(len(fitted)), key=lambda i: -len(fitted[i][0]))
        out: list[torch.Tensor | None] = [None] * len(fitted)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = len(fitted[chunk[0]][0])
            input_ids = torch.full((len(chunk), width), self.pad_token_id, dtype=torch.long)
            attention_mask = torch.zeros(len(chunk), width, dtype=torch.long)
            for r, i in enumerate(chunk):
                ids = fitted[i][0]
                input_ids[r, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                attention_mask[r, : len(ids)] = 1
            self.tokens_scored += int(attention_mask.sum())
            self.tokens_padded += attention_mask.numel()
            values = per_token(self.model, input_ids.to(self.device), attention_mask.to(self.device))  # [b, L, C]
            values = values.float().cpu()
            for r, i in enumerate(chunk):
                out[i] = values[r, fitted[i][1]]
        return out  # type: ignore[return-value]


def check_rows(prompts: Sequence[str], steps: Sequence[Sequence[str]], name: str) -> None:
    """One-line errors for the common misuse of ``score_steps`` (mismatched lengths, a bare string as steps)."""
    if len(prompts) != len(steps):
        raise ValueError(f"{name}: got {len(prompts)} prompts but {len(steps)} step lists")
    for i, row in enumerate(steps):
        if isinstance(row, str):
            raise TypeError(f"{name}: steps[{i}] is a string; pass a list of step strings per response")


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a transformers output object or of a tuple whose first item is the logits."""
    logits = getattr(output, "logits", None)
    return logits if logits is not None else output[0]
