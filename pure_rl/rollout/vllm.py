"""The ``vllm`` rollout engine: vLLM in-process (``mode=colocate``) or TRL's ``trl vllm-serve`` server (``mode=server``).

vLLM is a GPU-only extra (``pip install -e .[vllm]``) and is imported lazily. Both modes sample with the sampled
token's log-prob returned (``logprobs=0``), finish sequences independently, and receive the learner's weights through
``sync_weights`` after every update (server mode over TRL's NCCL communicator; LoRA adapters merged first).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import Problem, SamplingParams
from pure_rl.rollout.base import pack_rollout

MODES = ("colocate", "server")


def _require_vllm() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "rollout.engine=vllm needs vLLM on a GPU host: pip install -e '.[vllm]' (vllm 0.31.0 with torch 2.13.0)"
        ) from exc


@contextmanager
def merged_weights(model: torch.nn.Module) -> Iterator[list[tuple[str, torch.Tensor]]]:
    """(name, tensor) pairs in the base model's naming; LoRA adapters merged in for the duration."""
    is_peft = hasattr(model, "merge_adapter")
    if is_peft:
        model.merge_adapter()
    try:
        named = []
        for name, param in model.named_parameters():
            if is_peft:
                if "lora_" in name or "modules_to_save" in name:
                    continue
                name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            named.append((name, param.data))
        yield named
    finally:
        if is_peft:
            model.unmerge_adapter()


class VLLMRolloutEngine:
    """Rollouts through vLLM; ``old_logprobs`` are vLLM's (the trainer recomputes and logs the difference)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, device: torch.device | str = "cuda",
                 use_chat_template: bool = False, mode: str = "colocate", base_url: str | None = None,
                 gpu_memory_utilization: float = 0.3, max_model_len: int | None = None, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"rollout.engine_kwargs.mode={mode!r} is invalid; valid: {', '.join(MODES)}")
        self.tokenizer, self.mode, self.use_chat_template = tokenizer, mode, use_chat_template
        if mode == "server":
            from trl.generation.vllm_client import VLLMClient

            self.client = VLLMClient(base_url=base_url or "http://localhost:8000")
            self.client.init_communicator(device=torch.device(device).index or 0)
        else:
            _require_vllm()
            from vllm import LLM

            self.llm = LLM(model=model.name_or_path, gpu_memory_utilization=gpu_memory_utilization,
                           max_model_len=max_model_len, seed=seed, logprobs_mode="processed_logprobs")

    def format_prompt(self, prompt: str) -> str:
        if not self.use_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                  add_generation_prompt=True)

    def sync_weights(self, model: torch.nn.Module) -> None:
        with merged_weights(model) as named:
            if self.mode == "server":
                self.client.update_named_params(
                    [(n, str(t.dtype).removeprefix("torch."), list(t.shape)) for n, t in named], iter(named)
                )
                self.client.reset_prefix_cache()
            else:
                runner_model = self.llm.llm_engine.model_executor.driver_worker.model_runner.model
                runner_model.load_weights(named)
                self.llm.reset_prefix_cache()

    def generate(self, problems: Sequence[Problem], n: int, sampling: SamplingParams) -> RolloutBatch:
        prompts = [self.format_prompt(p.prompt) for p in problems]
        if self.mode == "server":
            out = self.client.generate(prompts, n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                                       max_tokens=sampling.max_new_tokens, logprobs=0,
                                       generation_kwargs={"stop": list(sampling.stop), "seed": sampling.seed})
            prompt_ids = [ids for ids in out["prompt_ids"] for _ in range(n)]
            completions = out["completion_ids"]
            logprobs = [[tok[0] for tok in seq] for seq in out["logprobs"]]
            finished = [len(c) < sampling.max_new_tokens for c in completions]
        else:
            from vllm import SamplingParams as VLLMSampling

            params = VLLMSampling(n=n, temperature=sampling.temperature, top_p=sampling.top_p,
                                  max_tokens=sampling.max_new_tokens, stop=list(sampling.stop) or None,
                                  include_stop_str_in_output=True, logprobs=0, seed=sampling.seed)
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            prompt_ids, completions, logprobs, finished = [], [], [], []
            for request in outputs:
                for c in request.outputs:
                    prompt_ids.append(list(request.prompt_token_ids))
                    completions.append(list(c.token_ids))
                    logprobs.append([step[t].logprob for step, t in zip(c.logprobs, c.token_ids)])
                    finished.append(c.finish_reason == "stop")
        rows = [p for p in problems for _ in range(n)]
        return pack_rollout(rows, [p for p in prompts for _ in range(n)], prompt_ids, completions, logprobs, finished,
                            self.tokenizer, n)
