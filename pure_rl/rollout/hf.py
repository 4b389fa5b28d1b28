"""The ``hf`` rollout engine: any transformers causal LM through ``generate``."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import Problem, SamplingParams
from pure_rl.rollout.base import cut_at_stop


class HFRolloutEngine:
    """Samples with ``model.generate`` in micro-batches; the model is shared with the learner (no weight copy)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, device: torch.device | str = "cpu",
                 use_chat_template: bool = False, micro_batch_size: int = 64):
        self.model, self.tokenizer = model, tokenizer
        self.device = torch.device(device)
        self.use_chat_template = use_chat_template
        self.micro_batch_size = micro_batch_size

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model

    def format_prompt(self, prompt: str) -> str:
        if not self.use_chat_template:
            return prompt
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ValueError("rollout.chat_template=true but the tokenizer has no chat template")
        messages = [{"role": "user", "content": prompt}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    @torch.no_grad()
    def generate(self, problems: Sequence[Problem], n: int, sampling: SamplingParams) -> RolloutBatch:
        prompts = [self.format_prompt(p.prompt) for p in problems for _ in range(n)]
        rows = [p for p in problems for _ in range(n)]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        prompt_ids, prompt_mask = enc["input_ids"], enc["attention_mask"].bool()
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        was_training = self.model.training
        self.model.eval()
        chunks = []
        for i in range(0, len(prompts), self.micro_batch_size):
            chunks.append(self._sample(prompt_ids[i : i + self.micro_batch_size],
                                       prompt_mask[i : i + self.micro_batch_size], sampling))
        self.model.train(was_training)
        width = max(c.shape[1] for c in chunks)
        pad = self.tokenizer.pad_token_id
        generated = torch.cat([torch.nn.functional.pad(c, (0, width - c.shape[1]), value=pad) for c in chunks])
        response_ids, response_mask, finished, texts = self._trim(generated, sampling)
        return RolloutBatch(
            problems=rows, prompts=prompts, responses=texts, group_size=n,
            prompt_ids=prompt_ids, prompt_mask=prompt_mask,
            response_ids=response_ids, response_mask=response_mask,
            old_logprobs=None,  # the learner computes them
            finished=finished,
        )

    def _sample(self, ids: torch.Tensor, mask: torch.Tensor, sampling: SamplingParams) -> torch.Tensor:
        greedy = sampling.temperature == 0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=sampling.max_new_tokens, do_sample=not greedy,
            pad_token_id=self.tokenizer.pad_token_id, eos_token_id=self.tokenizer.eos_token_id,
        )
        if not greedy:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        return out[:, ids.shape[1] :].cpu()

    def _trim(self, generated: torch.Tensor, sampling: SamplingParams):
        """Mask each row after its EOS (kept) or after its first stop string; decode the kept tokens."""
        B, T = generated.shape
        eos = self.tokenizer.eos_token_id
        mask = torch.zeros(B, T, dtype=torch.bool)
        finished = torch.zeros(B, dtype=torch.bool)
        texts = []
        for i in range(B):
            row = generated[i].tolist()
            length = row.index(eos) + 1 if eos in row else T
            finished[i] = eos in row
            if sampling.stop:
                length, stopped = self._stop_length(row[:length], sampling.stop)
                finished[i] |= stopped
            mask[i, :length] = True
            texts.append(self.tokenizer.decode(row[:length], skip_special_tokens=True))
        T_kept = max(int(mask.sum(1).max()), 1)
        ids = generated[:, :T_kept].masked_fill(~mask[:, :T_kept], self.tokenizer.pad_token_id)
        return ids, mask[:, :T_kept], finished, texts

    def _stop_length(self, row: list[int], stop: Sequence[str]) -> tuple[int, bool]:
        """Smallest token prefix whose text contains a stop string (kept), else the whole row."""
        text = self.tokenizer.decode(row, skip_special_tokens=True)
        _, stopped = cut_at_stop(text, stop)
        if not stopped:
            return len(row), False
        for k in range(1, len(row) + 1):
            if cut_at_stop(self.tokenizer.decode(row[:k], skip_special_tokens=True), stop)[1]:
                return k, True
        return len(row), True
