"""``NativeRolloutEngine``: batched sampling for the lightning policy on its own fp32 recurrent states.

Per ``generate`` call: tokenize and left-pad the prompts (n rows per problem, consecutive), prefill them in chunks
of ``prefill_chunk_size`` tokens on top of a fresh ``LightningCache`` (the chunked kernel, not a token loop), then
decode one token per step for all rows. Rows finish independently (EOS, stop string, or the length cap); finished rows
keep stepping with a pad token whose output is discarded, so the batch shape (and a captured CUDA graph) stays fixed.
On CUDA a pure-lightning model decodes through ``FusedLightningDecoder`` (``fused_decode.py``): the learner's own
function (the chunk kernel's rounding, see ``kernels/lightning_attn/decode.py``) with fused norms, and sampling plus
the EOS / length bookkeeping inside one CUDA graph per step. Elsewhere (CPU, hybrid models, ``fused_decode=False``)
each step is the model's forward on the fp32 recurrent state, captured as a graph on CUDA, with eager sampling.

``old_logprobs[b, t]`` = log softmax(logits / T)[token] in fp32 with T the sampling temperature (T = 0, greedy, uses
T = 1), over the full vocabulary (top-p truncation changes which tokens are drawn, not the recorded log-prob), which
is what the learner recomputes from the same logits.

Over 400 lines: the engine keeps both decode paths (fused, and the model-forward step for hybrid or CPU models)
behind one ``generate``.

Over 400 lines on purpose: prefill, the eager, graphed and fused decode loops and the stop checks share the engine's
state (cache, graphs, generator); splitting them would pass that state around instead of reading it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pure_rl.batch import RolloutBatch
from pure_rl.core.interfaces import Problem, SamplingParams
from pure_rl.rollout.base import cut_at_stop


def sample_tokens(
    logits: torch.Tensor,  # [B, V]
    temperature: float,
    top_p: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row; returns (tokens [B] long, log-probs [B] fp32).

    logp = log_softmax(logits / T) (T = 1 when greedy). Greedy (T = 0) takes argmax. With top_p < 1 the draw is
    restricted to the smallest prefix of tokens by descending probability whose mass reaches top_p (the top token is
    always kept); the returned log-prob is still logp[token] of the untruncated distribution.
    """
    logp = torch.log_softmax(logits.float() / (temperature if temperature > 0 else 1.0), dim=-1)  # [B, V]
    if temperature <= 0:
        tokens = logp.argmax(dim=-1)
    else:
        draw = logp
        if top_p < 1.0:
            sorted_logp, order = logp.sort(dim=-1, descending=True)  # [B, V]
            sorted_p = sorted_logp.exp()
            mass_before = sorted_p.cumsum(dim=-1) - sorted_p  # probability mass of strictly better tokens
            drop_sorted = mass_before >= top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            draw = logp.masked_fill(drop, float("-inf"))
        tokens = torch.multinomial(draw.exp(), 1, generator=generator).squeeze(-1)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists to one length: ([B, P] ids, [B, P] bool mask)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r) :] = True
    return ids, mask


@dataclass
class Prefilled:
    """A batch of prompts after prefill: the cache after ``aligned`` tokens and what is left of each prompt."""

    cache: Any  # LightningCache
    logits: torch.Tensor | None  # [B, V] fp32 next-token logits when the whole prompt went through the model
    prompt_mask: torch.Tensor  # [B, P]
    tail_ids: torch.Tensor  # [B, P - aligned]: prompt tokens the fused decoder feeds itself
    tail_mask: torch.Tensor  # [B, P - aligned]


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


class _GraphedDecodeStep:
    """One decode step of a pure-lightning model captured as a CUDA graph for a fixed batch size.

    The graph reads its own static cache; ``load`` copies a prefilled cache into it in place, ``__call__`` writes the
    new tokens into the static input, replays, and returns the static fp32 logits [B, V].
    """

    def __init__(self, model: torch.nn.Module, template_cache: Any, batch_size: int, device: torch.device):
        from pure_rl.models import LightningCache

        self.cache = LightningCache(_unwrap(model).config)
        self.cache.copy_from(template_cache)
        saved = [s.clone() for s in self.cache.states]
        self.ids = torch.zeros((batch_size, 1), dtype=torch.long, device=device)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(2):  # compile the Triton kernels and settle allocations before capture
                model(self.ids, cache=self.cache, use_cache=True, logits_to_keep=1)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = model(self.ids, cache=self.cache, use_cache=True, logits_to_keep=1).logits[:, -1].float()
        for dst, src in zip(self.cache.states, saved):
            dst.copy_(src)

    def load(self, cache: Any) -> None:
        self.cache.copy_from(cache)

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        self.ids.copy_(tokens[:, None])
        self.graph.replay()
        return self.logits


class NativeRolloutEngine:
    """Rollouts for ``LightningForCausalLM`` (or a peft/DDP wrapper of it) with per-sequence fp32 recurrent states.

    ``model`` is normally the learner's own module (colocated): then weights are always current and
    ``sync_weights`` has nothing to do. ``cuda_graphs`` defaults to on for CUDA and pure-lightning models.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        device: str | torch.device | None = None,
        use_chat_template: bool = False,
        prefill_chunk_size: int = 4096,
        cuda_graphs: bool | None = None,
        stop_check_window: int = 16,
        fused_decode: bool | None = None,
    ):
        from pure_rl.models import LightningConfig

        config = getattr(_unwrap(model), "config", None)
        if not isinstance(config, LightningConfig):
            raise TypeError(
                f"NativeRolloutEngine needs a lightning policy (LightningForCausalLM), got "
                f"{type(_unwrap(model)).__name__}; use rollout.engine=hf for other models"
            )
        if prefill_chunk_size < 1:
            raise ValueError(f"prefill_chunk_size must be >= 1, got {prefill_chunk_size}")
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model = model.to(self.device)
        self.config = config
        self.tokenizer = tokenizer
        self.use_chat_template = use_chat_template
        self.prefill_chunk_size = prefill_chunk_size
        self.stop_check_window = stop_check_window
        want_graphs = self.device.type == "cuda" and config.is_pure_lightning
        if cuda_graphs and not want_graphs:
            raise ValueError("cuda_graphs=True needs a CUDA device and a model with only linear_attention layers")
        self.cuda_graphs = want_graphs if cuda_graphs is None else cuda_graphs
        if fused_decode and not config.is_plain_tnl:
            raise ValueError("fused_decode=True needs a plain lightning model (only linear_attention layers, fixed "
                             "decay, no conv_size / lrpe_layers / gate_act)")
        self.fused_decode = (want_graphs and config.is_plain_tnl) if fused_decode is None else fused_decode
        self._graphs: dict[int, _GraphedDecodeStep] = {}
        self._fused: Any = None  # FusedLightningDecoder, built on first use
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            raise ValueError("the tokenizer has neither pad_token_id nor eos_token_id; set tokenizer.pad_token")
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        gen_eos = getattr(getattr(_unwrap(model), "generation_config", None), "eos_token_id", None)
        eos |= set(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos] if gen_eos is not None else [])
        self.eos_ids = torch.tensor(sorted(eos), dtype=torch.long, device=self.device)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(torch.initial_seed())
        self._seeder = torch.Generator().manual_seed(torch.initial_seed())  # seeds of the fused decoder's draws

    # -- protocol -------------------------------------------------------------------------------------------------
    def generate(self, problems: Sequence[Problem], n: int, sampling: SamplingParams) -> RolloutBatch:
        """``n`` sampled responses per problem, rows grouped n per problem, with fp32 per-token log-probs."""
        if n < 1:
            raise ValueError(f"n (responses per problem) must be >= 1, got {n}")
        if not problems:
            raise ValueError("generate() needs at least one problem")
        if sampling.max_new_tokens < 1:
            raise ValueError(f"sampling.max_new_tokens must be >= 1, got {sampling.max_new_tokens}")
        if not 0 < sampling.top_p <= 1:
            raise ValueError(f"sampling.top_p must be in (0, 1], got {sampling.top_p}")
        texts = [self._prompt_text(p) for p in problems]
        encoded = [self._encode(p, t) for p, t in zip(problems, texts)]
        rows = [ids for ids in encoded for _ in range(n)]
        prompt_ids, prompt_mask = left_pad(rows, self.pad_id)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                t0 = time.perf_counter()
                prefilled = self._prefill(prompt_ids.to(self.device), prompt_mask.to(self.device))
                t1 = time.perf_counter()
                ids, logps, lengths, finished = self._decode(prefilled, sampling)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                t2 = time.perf_counter()
        finally:
            self.model.train(was_training)
        width = max(int(lengths.max()), 1)
        response_ids, logps = ids[:, :width].cpu(), logps[:, :width].cpu()
        lengths, finished = lengths.cpu(), finished.cpu()
        response_mask = torch.arange(width)[None, :] < lengths[:, None]
        responses = [self._response_text(response_ids[b, : lengths[b]], sampling.stop) for b in range(len(rows))]
        new_tokens = int(lengths.sum())
        return RolloutBatch(
            problems=[p for p in problems for _ in range(n)],
            prompts=[t for t in texts for _ in range(n)],
            responses=responses,
            group_size=n,
            prompt_ids=prompt_ids,
            prompt_mask=prompt_mask,
            response_ids=response_ids,
            response_mask=response_mask,
            old_logprobs=logps.masked_fill(~response_mask, 0.0),
            finished=finished,
            stats={
                "rollout/prefill_s": t1 - t0,
                "rollout/decode_s": t2 - t1,
                "rollout/new_tokens": new_tokens,
                "rollout/decode_tokens_per_s": new_tokens / max(t2 - t1, 1e-9),
                "rollout/cuda_graphs": float(self.cuda_graphs),
                "rollout/fused_decode": float(self.fused_decode),
            },
        )

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Copy ``model``'s weights into the engine's model in place (keeps CUDA-graph addresses valid)."""
        src, dst = _unwrap(model), _unwrap(self.model)
        if src is dst:
            return
        if hasattr(src, "peft_config") or hasattr(dst, "peft_config"):
            raise TypeError(
                "sync_weights between a PEFT-wrapped model and a separate engine copy is not supported; "
                "build the engine on the learner's own model object (colocated) instead"
            )
        src_state, dst_state = src.state_dict(), dst.state_dict()
        missing = sorted(set(dst_state) - set(src_state))
        if missing:
            raise KeyError(f"sync_weights: source model lacks {len(missing)} weights, e.g. {missing[:3]}")
        with torch.no_grad():
            for name, tensor in dst_state.items():
                tensor.copy_(src_state[name])

    # -- stages ---------------------------------------------------------------------------------------------------
    def _prompt_text(self, problem: Problem) -> str:
        if not self.use_chat_template:
            return problem.prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": problem.prompt}], tokenize=False, add_generation_prompt=True
        )

    def _encode(self, problem: Problem, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=not self.use_chat_template)["input_ids"]
        if not ids:
            raise ValueError(f"problem {problem.id!r} has an empty prompt after tokenization; give it prompt text")
        return list(ids)

    def _prefill(self, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> Prefilled:
        """Run the prompts through the model in time chunks on one cache.

        For the fused decoder only up to the last multiple of the kernel's chunk C (its rounding points), in
        prefill chunks that are multiples of C; the decoder feeds itself the rest of the prompt.
        """
        from pure_rl.models import LightningCache

        P, step = prompt_ids.shape[1], self.prefill_chunk_size
        aligned = P
        if self.fused_decode:
            from kernels.lightning_attn.chunk import TUNING

            C = TUNING["chunk"]
            aligned, step = P // C * C, max(C, step // C * C)
        cache = LightningCache(self.config)
        out = None
        for start in range(0, aligned, step):
            end = min(start + step, aligned)
            out = self.model(
                input_ids=prompt_ids[:, start:end],
                attention_mask=prompt_mask[:, :end],
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
        logits = out.logits[:, -1].float() if aligned == P else None
        return Prefilled(cache, logits, prompt_mask, prompt_ids[:, aligned:], prompt_mask[:, aligned:])

    def _step_fn(self, cache: Any, prompt_mask: torch.Tensor):
        """The function feeding one token per row and returning next logits [B, V] fp32."""
        batch = prompt_mask.shape[0]
        if self.cuda_graphs:
            graphed = self._graphs.get(batch)
            if graphed is None:
                # One graph at a time: each holds a full set of static states (RL batch sizes rarely change).
                self._graphs.clear()
                graphed = self._graphs[batch] = _GraphedDecodeStep(self.model, cache, batch, self.device)
            graphed.load(cache)
            return graphed
        mask = prompt_mask
        hybrid = not self.config.is_pure_lightning

        def eager(tokens: torch.Tensor) -> torch.Tensor:
            nonlocal mask
            if hybrid:
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask if hybrid else None,
                cache=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            return out.logits[:, -1].float()

        return eager

    def _decode(
        self, prefilled: Prefilled, sampling: SamplingParams
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample up to max_new_tokens per row; returns (ids [B, T], logps [B, T], lengths [B], finished [B]).

        Reads the prefilled cache without changing it, so one prefill can be decoded several times.
        """
        if self.fused_decode:
            return self._decode_fused(prefilled, sampling)
        from pure_rl.models import LightningCache

        generator = self._generator
        if sampling.seed is not None:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(sampling.seed)
        cache = LightningCache(self.config)
        cache.copy_from(prefilled.cache)
        return self._decode_eager(cache, prefilled.logits, prefilled.prompt_mask, sampling, generator)

    def _decode_fused(
        self, prefilled: Prefilled, sampling: SamplingParams
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        from pure_rl.rollout.fused_decode import FusedLightningDecoder, fused_rollout

        B = prefilled.prompt_mask.shape[0]
        if self._fused is None or self._fused.B != B:
            # One decoder at a time: each holds a full set of states and graphs (RL batch sizes rarely change).
            self._fused = None
            core = _unwrap(self.model)
            if hasattr(core, "get_base_model"):  # peft: the base model, with the adapters injected in its layers
                core = core.get_base_model()
            self._fused = FusedLightningDecoder(core, B, self.device, self.cuda_graphs)
        seed = sampling.seed
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,), generator=self._seeder))
        return fused_rollout(self._fused, prefilled, sampling, seed, self.eos_ids, self.pad_id, self._tail_has_stop)

    def _decode_eager(
        self,
        cache: Any,
        logits: torch.Tensor,  # [B, V] fp32
        prompt_mask: torch.Tensor,  # [B, P]
        sampling: SamplingParams,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T = logits.shape[0], sampling.max_new_tokens
        ids = torch.full((B, T), self.pad_id, dtype=torch.long, device=self.device)
        logps = torch.zeros((B, T), dtype=torch.float32, device=self.device)
        lengths = torch.zeros(B, dtype=torch.long, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        finished = torch.zeros(B, dtype=torch.bool, device=self.device)
        step = self._step_fn(cache, prompt_mask)
        history: list[list[int]] = [[] for _ in range(B)]
        for t in range(T):
            tokens, lp = sample_tokens(logits, sampling.temperature, sampling.top_p, generator)
            active = ~done
            tokens = torch.where(active, tokens, torch.full_like(tokens, self.pad_id))
            ids[:, t] = tokens
            logps[:, t] = torch.where(active, lp, torch.zeros_like(lp))
            lengths += active.long()
            hit = active & torch.isin(tokens, self.eos_ids)
            if sampling.stop:
                hit |= active & self._stop_hits(tokens, active, history, sampling.stop)
            done |= hit
            finished |= hit
            # Checking for an all-finished batch syncs with the device, so do it only every few steps.
            if t == T - 1 or ((t % 8 == 7 or sampling.stop) and bool(done.all())):
                break
            logits = step(tokens)
        return ids, logps, lengths, finished

    def _stop_hits(
        self, tokens: torch.Tensor, active: torch.Tensor, history: list[list[int]], stop: Sequence[str]
    ) -> torch.Tensor:
        """[B] bool: rows whose decoded tail now contains a stop string (only the last few tokens are decoded)."""
        hits = torch.zeros_like(active)
        for b, (tok, live) in enumerate(zip(tokens.tolist(), active.tolist())):
            if not live:
                continue
            history[b].append(tok)
            hits[b] = self._tail_has_stop(history[b], stop)
        return hits

    def _tail_has_stop(self, history: list[int], stop: Sequence[str]) -> bool:
        """Whether the decoded last few tokens of ``history`` contain a stop string."""
        window = max(self.stop_check_window, max(len(s) for s in stop) + 2)
        return cut_at_stop(self.tokenizer.decode(history[-window:], skip_special_tokens=True), stop)[1]

    def _response_text(self, ids: torch.Tensor, stop: Sequence[str]) -> str:
        text = self.tokenizer.decode(ids.tolist(), skip_special_tokens=True)
        return cut_at_stop(text, stop)[0] if stop else text
