"""``TVMScorer`` (registry name ``tvm``): a trained token-level value model as a PRM.

Text in: the response is rebuilt as ``separator.join(steps)`` after the prompt, tokenized like the policy's
(prompt and response separately, EOS appended when ``append_eos``), and v is read at the token that ends each step
(the one holding the separator's last character; EOS, else the last token, for the final step). Two mappings
(pure_and_tvm.md section 3):

- ``mode="level"``: r_k = v at the end of step k, in [0, 1] (the trainer maps it to 2v - 1);
- ``mode="progress"``: r_k = v_end(k) - v_end(k-1), with v_end(0) at the prompt's last token, in [-1, 1].

When the TVM shares the policy's tokenizer, ``score_step_ends`` skips the text round trip and reads the values at
the policy's own step-end tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from prm.runtime import TokenRunner, check_rows, resolve_device, resolve_dtype
from prm.tvm.model import TokenValueModel
from pure_rl.core.scores import PM1, PROB01

MODES = ("level", "progress")


def values_of(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    return model.values(input_ids, attention_mask).unsqueeze(-1)  # [b, L, 1]


def step_scores_from_values(values: torch.Tensor, mode: str) -> torch.Tensor:
    """values  # [1 + S]: v at the prompt's last token, then at each step end -> [S] step scores.

    level: r_k = clamp(v_k, 0, 1); progress: r_k = v_k - v_{k-1} (both clamped to [0, 1] first).
    """
    v = values.clamp(0.0, 1.0)
    return v[1:] if mode == "level" else v[1:] - v[:-1]


class TVMScorer:
    """Per-step scores from a ``TokenValueModel``; give ``path`` (a saved TVM folder) or ``model`` + ``tokenizer``."""

    def __init__(self, path: str | None = None, model: TokenValueModel | None = None, tokenizer: Any = None,
                 device: str = "auto", dtype: str = "auto", batch_size: int = 16, max_length: int = 4096,
                 separator: str = "\n\n", mode: str = "level", append_eos: bool = True):
        if mode not in MODES:
            raise ValueError(f"tvm mode={mode!r} is not valid; use level or progress")
        dev = resolve_device(device)
        if model is None:
            if path is None:
                raise ValueError("tvm PRM needs path= (a folder saved by python -m prm.train) or model= and tokenizer=")
            from transformers import AutoTokenizer

            model = TokenValueModel.from_pretrained(path, dtype=resolve_dtype(dtype, dev))
            tokenizer = AutoTokenizer.from_pretrained(path)
        elif tokenizer is None:
            raise ValueError("tvm PRM got model= without tokenizer=")
        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("tvm PRM needs a fast tokenizer (character offsets locate the step ends)")
        self.tokenizer, self.separator, self.mode, self.append_eos = tokenizer, separator, mode, append_eos
        self.score_range = PROB01 if mode == "level" else PM1
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.runner = TokenRunner(model.to(resolve_dtype(dtype, dev)), pad, dev, batch_size, max_length, name="tvm")

    def encode(self, prompt: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        """(ids, read positions): the prompt's last token, then the token that ends each step."""
        prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        response = self.separator.join(steps)
        enc = self.tokenizer(response, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(prompt_ids) + list(enc["input_ids"])
        token_end = [end for _, end in enc["offset_mapping"]]  # exclusive char end of each response token
        positions, cursor, char = [max(len(prompt_ids) - 1, 0)], 0, 0
        for k, step in enumerate(steps):
            char += len(step) + (len(self.separator) if k < len(steps) - 1 else 0)
            while cursor < len(token_end) - 1 and token_end[cursor] < char:
                cursor += 1
            positions.append(len(prompt_ids) + cursor if token_end else max(len(prompt_ids) - 1, 0))
        if self.append_eos and self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
            positions[-1] = len(ids) - 1
        return ids, positions

    def score_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]]) -> list[list[float] | None]:
        check_rows(prompts, steps, "tvm")
        rows = [self.encode(p, s) for p, s in zip(prompts, steps)]
        return [step_scores_from_values(v[:, 0], self.mode).tolist() for v in self.runner.gather(rows, values_of)]

    def score_step_ends(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, step_end_pos: torch.Tensor,
                        prompt_end_pos: torch.Tensor) -> torch.Tensor:
        """Token-level fast path for a TVM that shares the policy's tokenizer: [B, S] scores in ``score_range``.

        input_ids       # [B, L] prompt + response as the policy produced them (any padding, masked)
        attention_mask  # [B, L]
        step_end_pos    # [B, S] absolute index of each step's last token; -1 = padding (scored 0)
        prompt_end_pos  # [B] absolute index of each prompt's last token
        Rows are re-packed without their padding, so left-padded prompts get the positions they were trained on.
        """
        rows, keep = [], attention_mask.bool()
        for i in range(input_ids.shape[0]):
            kept = keep[i].nonzero().squeeze(-1)  # [n] absolute indices of real tokens
            new_index = torch.full((input_ids.shape[1],), -1, dtype=torch.long)
            new_index[kept] = torch.arange(kept.numel())
            ends = step_end_pos[i][step_end_pos[i] >= 0]
            if (new_index[ends] < 0).any() or new_index[prompt_end_pos[i]] < 0:
                raise ValueError(f"tvm: row {i} has a step end or prompt end on a padding position")
            rows.append((input_ids[i, kept].tolist(), [int(new_index[prompt_end_pos[i]])] + new_index[ends].tolist()))
        out = torch.zeros(step_end_pos.shape, dtype=torch.float32)
        for i, v in enumerate(self.runner.gather(rows, values_of)):
            scores = step_scores_from_values(v[:, 0], self.mode)
            out[i, : scores.numel()] = scores
        return out
