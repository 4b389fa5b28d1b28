"""``TVMScorer`` (registry name ``tvm``): a trained token-level value model as a PRM.

Text in: the response is rebuilt as ``separator.join(steps)`` after the prompt, tokenized like the policy's
(prompt and response separately, EOS appended when ``append_eos``), and v is read at the token that ends each step
(the one holding the separator's last character; EOS, else the last token, for the final step). Two mappings
(pure_and_tvm.md section 3):

- ``mode="level"``: r_k = v at the end of step k, in [0, 1] (the trainer maps it to 2v - 1);
- ``mode="progress"``: r_k = v_end(k) - v_end(k-1), with v_end(0) at the prompt's last token, in [-1, 1].

Token path: when the TVM shares the policy's tokenizer (``supports_token_scoring``), ``score_step_ends`` skips the
text round trip and reads the values at the policy's own step-end tokens in one batched forward over the rollout ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from prm.runtime import TokenRunner, check_rows, resolve_device, resolve_dtype
from prm.tvm.model import HEAD_CONFIG, TokenValueModel
from pure_rl.core.scores import PM1, PROB01

log = logging.getLogger(__name__)

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
                 separator: str = "\n\n", mode: str = "level", append_eos: bool = True,
                 train_recipe: str | None = None, train_overrides: Sequence[str] = ()):
        if mode not in MODES:
            raise ValueError(f"tvm mode={mode!r} is not valid; use level or progress")
        dev = resolve_device(device)
        if model is None and path is None and train_recipe:
            from prm.cached import trained_prm_dir

            path = str(trained_prm_dir(train_recipe, list(train_overrides)))
        if model is None:
            if path is None:
                raise ValueError("tvm PRM needs path= (a folder saved by python -m prm.train), train_recipe= (trained "
                                 "and cached on first use) or model= and tokenizer=")
            if not (Path(path) / HEAD_CONFIG).exists():
                raise ValueError(f"tvm PRM path={path!r} is not a trained TVM folder (no {HEAD_CONFIG}); train one with "
                                 f"python -m prm.train recipe=tvm_arith (it writes OUTPUT_DIR/tvm) or set "
                                 f"prm_kwargs.train_recipe=tvm_arith to train and cache it on first use")
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

    def supports_token_scoring(self, tokenizer: Any) -> bool:
        """True when ``tokenizer`` maps text to the same ids as this TVM's, so the trainer may hand over the policy's
        own rollout ids (``score_step_ends``) instead of text; the trainer asks this once, never tests a name."""
        same = getattr(tokenizer, "get_vocab", None) and tokenizer.get_vocab() == self.tokenizer.get_vocab()
        if not (same and tokenizer.eos_token_id == self.tokenizer.eos_token_id):
            log.warning("tvm PRM: its tokenizer differs from the policy's, so steps are scored through text (decode + "
                        "re-encode); for the token path retrain it on this policy: python -m prm.train policy.recipe=...")
            return False
        return True

    @torch.no_grad()
    def score_step_ends(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, step_end_pos: torch.Tensor,
                        prompt_end_pos: torch.Tensor) -> torch.Tensor:
        """Token-level path for a TVM that shares the policy's tokenizer: [B, S] scores in ``score_range``.

        input_ids       # [B, L] prompt + response as the policy produced them (any padding, masked)
        attention_mask  # [B, L]
        step_end_pos    # [B, S] absolute index of each step's last token; -1 = padding (scored 0)
        prompt_end_pos  # [B] absolute index of each prompt's last token
        Real tokens are packed to the left of each row (a stable sort of the mask), so left-padded prompts get the
        positions they were trained on, and the whole batch runs through the model with no per-row Python work.
        """
        keep = attention_mask.bool()  # [B, L]
        new_index = torch.where(keep, keep.long().cumsum(1) - 1, -1)  # [B, L] position after packing
        ends_valid = step_end_pos >= 0  # [B, S]
        ends = new_index.gather(1, step_end_pos.clamp_min(0)).masked_fill(~ends_valid, 0)  # [B, S]
        prompt_end = new_index.gather(1, prompt_end_pos[:, None])  # [B, 1]
        if bool(((ends < 0) & ends_valid).any()) or bool((prompt_end < 0).any()):
            raise ValueError("tvm: a step end or prompt end lies on a padding position")
        order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices  # [B, L] real tokens first
        width = int(keep.sum(1).max())
        if width > self.runner.max_length:  # rare: fall back to the row path, which truncates from the left
            return self._score_step_ends_rows(input_ids, keep, ends, ends_valid, prompt_end[:, 0])
        packed = input_ids.gather(1, order)[:, :width]  # [B, W]
        packed_mask = keep.gather(1, order)[:, :width].long()  # [B, W]
        reads = torch.cat([prompt_end, ends], dim=1)  # [B, 1 + S]
        values = torch.empty(reads.shape, dtype=torch.float32)
        model, dev, bs = self.runner.model, self.runner.device, self.runner.batch_size
        for lo in range(0, packed.shape[0], bs):
            v = model.values(packed[lo : lo + bs].to(dev), packed_mask[lo : lo + bs].to(dev)).float().cpu()  # [b, W]
            values[lo : lo + bs] = v.gather(1, reads[lo : lo + bs])
        return self._step_scores(values, ends_valid)

    def _step_scores(self, values: torch.Tensor, ends_valid: torch.Tensor) -> torch.Tensor:
        """values  # [B, 1 + S] (prompt end, step ends) -> [B, S] scores, 0 on padded steps."""
        v = values.clamp(0.0, 1.0)
        scores = v[:, 1:] if self.mode == "level" else v[:, 1:] - v[:, :-1]
        return scores.masked_fill(~ends_valid, 0.0)

    def _score_step_ends_rows(self, input_ids: torch.Tensor, keep: torch.Tensor, ends: torch.Tensor,
                              ends_valid: torch.Tensor, prompt_end: torch.Tensor) -> torch.Tensor:
        rows = [(input_ids[i, keep[i]].tolist(), [int(prompt_end[i])] + ends[i].tolist()) for i in range(keep.shape[0])]
        values = torch.stack([v[:, 0] for v in self.runner.gather(rows, values_of)])  # [B, 1 + S]
        return self._step_scores(values, ends_valid)
