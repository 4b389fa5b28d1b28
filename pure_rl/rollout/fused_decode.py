"""The native engine's decode step for a pure-lightning policy: the learner's function, fused, in one CUDA graph.

``FusedLightningDecoder`` runs ``LightningForCausalLM`` one token per row from the model's own weights (so weight
updates need no sync) with three changes to how, not what, it computes:
- attention goes through ``chunk_consistent_step``, which reproduces the chunk kernel's rounding (the learner's
  forward) instead of an fp32 recurrence, and reads a rounded state instead of reading and writing an fp32 one;
- each SRMSNorm (with its residual add, or with the output gate) is one kernel instead of six torch ops;
- sampling (temperature, top-p, Gumbel-max on the graph's own generator) and the EOS / length bookkeeping run on
  the device, so one graph replay is one whole decode step.
The chunk kernel rounds at fixed positions (multiples of C from the row start), so the prompt is prefilled by the
model only up to the last multiple of C; the rest of the prompt goes through the same step as decoding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from kernels.lightning_attn.decode import ChunkDecodeState, chunk_consistent_step
from kernels.lightning_attn.norms import add_srms_norm, srms_norm_gate

__all__ = ["FusedLightningDecoder", "gumbel_sample"]


def gumbel_sample(
    logits: torch.Tensor,  # [B, V] fp32
    temperature: torch.Tensor,  # [1] fp32; <= 0 means greedy
    top_p: torch.Tensor | None,  # [1] fp32 in (0, 1), or None for no truncation
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [B], log-probs [B]) with no host sync: the draw is argmax(logp - log E), E ~ Exp(1) (Gumbel-max).

    logp = log_softmax(logits / T) (T = 1 when greedy), recorded for the drawn token over the full vocabulary, as
    ``native.sample_tokens`` does; top_p restricts the draw to the smallest prefix by probability reaching top_p.
    """
    greedy = temperature <= 0
    logp = torch.log_softmax(logits / torch.where(greedy, torch.ones_like(temperature), temperature), dim=-1)
    draw = logp
    if top_p is not None:
        sorted_logp, order = logp.sort(dim=-1, descending=True)
        sorted_p = sorted_logp.exp()
        drop_sorted = (sorted_p.cumsum(dim=-1) - sorted_p) >= top_p
        draw = logp.masked_fill(torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted), float("-inf"))
    noise = torch.empty_like(logp).exponential_(generator=generator)
    sampled = (draw - noise.log()).argmax(dim=-1)
    tokens = torch.where(greedy, logp.argmax(dim=-1), sampled)
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)


class FusedLightningDecoder:
    """Fixed-batch decoder over a pure-lightning ``LightningForCausalLM`` (``core`` = the unwrapped model).

    Static device buffers: ``ids`` [B] (the token fed next), ``v_mask`` [B] (0 on padding), ``logits`` [B, V] fp32,
    per-layer ``ChunkDecodeState``, ``pos`` [1] int32 (chunk index of the next token), and the rollout outputs
    ``out_ids`` / ``out_logps`` [B, capacity], ``lengths``, ``done``, ``finished`` [B], ``step`` [1].
    """

    def __init__(self, core: torch.nn.Module, batch_size: int, device: torch.device, graphs: bool):
        self.core, self.config = core, core.config
        cfg = self.config
        self.B, self.device, self.graphs = batch_size, device, graphs
        dtype = core.lm_head.weight.dtype
        self.inner = cfg.num_attention_heads * cfg.head_dim
        self.states = [
            ChunkDecodeState(batch_size, cfg.num_attention_heads, cfg.head_dim, cfg.head_dim, dtype, device)
            for _ in core.model.layers
        ]
        self.chunk = self.states[0].chunk
        self.decays = [layer.token_mixer.log_decay(device) for layer in core.model.layers]
        self.pos = torch.zeros(1, dtype=torch.int32, device=device)
        self.ids = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.v_mask = torch.ones(batch_size, dtype=dtype, device=device)
        self.temperature = torch.ones(1, dtype=torch.float32, device=device)
        self.top_p = torch.ones(1, dtype=torch.float32, device=device)
        self.pad = torch.zeros((), dtype=torch.long, device=device)
        self.eos = torch.zeros(0, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.done = torch.zeros(batch_size, dtype=torch.bool, device=device)
        self.finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
        self.out_ids = self.out_logps = None
        self.capacity = 0
        self.generator = torch.Generator(device=device)
        self.logits = torch.zeros(batch_size, cfg.vocab_size, dtype=torch.float32, device=device)
        self._graphs: dict[tuple, torch.cuda.CUDAGraph] = {}
        self._truncate = False

    # -- the step -------------------------------------------------------------------------------------------------
    def _forward(self) -> None:
        """logits <- model(ids) one token per row on the decode states; advances pos."""
        cfg, core = self.config, self.core
        HD = self.inner
        h = core.model.embed_tokens(self.ids)  # [B, d]
        if cfg.embed_scale != 1.0:
            h = h * cfg.embed_scale
        delta = None  # the residual branch not yet added to h (fused into the next norm)
        for layer, state, decay in zip(core.model.layers, self.states, self.decays):
            mixer = layer.token_mixer
            h, x = add_srms_norm(h, delta, layer.token_norm.eps)
            qkvu = mixer.qkvu_proj(x)  # [B, 4 HD]: q, k, v, u
            qk = F.silu(qkvu[:, : 2 * HD])
            o = chunk_consistent_step(
                qk[:, :HD], qk[:, HD:], qkvu[:, 2 * HD : 3 * HD], decay, state, self.pos, 1.0, self.v_mask
            )  # [B, H, D]
            y = srms_norm_gate(o.reshape(self.B, HD), qkvu[:, 3 * HD :], mixer.norm.eps)
            h, x = add_srms_norm(h, mixer.out_proj(y), layer.channel_norm.eps)
            delta = layer.channel_mixer(x)
        _, x = add_srms_norm(h, delta, core.model.final_norm.eps)
        self.logits.copy_(core.lm_head(x))
        self.pos.add_(1).remainder_(self.chunk)

    def _sample(self, truncate: bool) -> None:
        """Draw from logits, record token / log-prob at column ``step`` for live rows, then feed the token."""
        tokens, logp = gumbel_sample(self.logits, self.temperature, self.top_p if truncate else None, self.generator)
        live = ~self.done
        tokens = torch.where(live, tokens, self.pad)
        col = self.step.expand(self.B)[:, None]
        self.out_ids.scatter_(1, col, tokens[:, None])
        self.out_logps.scatter_(1, col, torch.where(live, logp, torch.zeros_like(logp))[:, None])
        self.lengths.add_(live.long())
        hit = live & torch.isin(tokens, self.eos)
        self.done.logical_or_(hit)
        self.finished.logical_or_(hit)
        self.step.add_(1)
        self.ids.copy_(tokens)

    def _run(self, key: tuple, body: Callable[[], None]) -> None:
        """Run ``body`` (eagerly, or as a CUDA graph captured on first use per key)."""
        if not self.graphs:
            body()
            return
        graph = self._graphs.get(key)
        if graph is None:
            saved, rng = self._snapshot(), self.generator.get_state()
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                body()  # compile the Triton kernels and settle allocations before capture
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            if hasattr(graph, "register_generator_state"):
                graph.register_generator_state(self.generator)
            with torch.cuda.graph(graph):
                body()
            self._restore(saved)
            self.generator.set_state(rng)  # the warm-up's draws must not shift this rollout's random stream
            self._graphs[key] = graph
        graph.replay()

    def _snapshot(self) -> list[torch.Tensor]:
        tensors = [self.pos, self.ids, self.step, self.lengths, self.done, self.finished, self.logits]
        tensors += [t for s in self.states for t in (s.S, s.Sr, s.kbuf, s.vbuf)]
        tensors += [t for t in (self.out_ids, self.out_logps) if t is not None]
        return [(t, t.clone()) for t in tensors]

    @staticmethod
    def _restore(saved) -> None:
        for dst, src in saved:
            dst.copy_(src)

    # -- what the engine calls ------------------------------------------------------------------------------------
    def start(
        self,
        states: list[torch.Tensor | None],
        eos_ids: torch.Tensor,
        pad_id: int,
        max_new: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> None:
        """Reset for one rollout: boundary states (None = empty), EOS set, pad id, output capacity, sampling."""
        for dst, src in zip(self.states, states):
            if src is None:
                dst.S.zero_()
                dst.Sr.zero_()
            else:
                dst.load(src)
        self.pos.zero_()
        if max_new > self.capacity:  # new buffers: captured graphs hold the old addresses
            self.capacity = max(256, 1 << (max_new - 1).bit_length())
            self.out_ids = torch.zeros(self.B, self.capacity, dtype=torch.long, device=self.device)
            self.out_logps = torch.zeros(self.B, self.capacity, dtype=torch.float32, device=self.device)
            self._graphs = {k: g for k, g in self._graphs.items() if k[0] == "forward"}
        if eos_ids.numel() != self.eos.numel():
            self.eos = eos_ids.clone()
            self._graphs = {k: g for k, g in self._graphs.items() if k[0] == "forward"}
        else:
            self.eos.copy_(eos_ids)
        self.pad.fill_(pad_id)
        self.temperature.fill_(temperature)
        self.top_p.fill_(top_p)
        self._truncate = top_p < 1.0
        self.generator.manual_seed(seed)
        for t in (self.step, self.lengths, self.done, self.finished, self.out_ids, self.out_logps):
            t.zero_()
        self.v_mask.fill_(1)

    def feed(self, ids: torch.Tensor, mask: torch.Tensor) -> None:
        """Run prompt tokens [B, n] (mask [B, n], 0 on padding) through the step; logits then hold the next ones."""
        for j in range(ids.shape[1]):
            self.ids.copy_(ids[:, j])
            self.v_mask.copy_(mask[:, j])
            self._run(("forward",), self._forward)
        self.v_mask.fill_(1)

    def decode_step(self, last: bool = False) -> None:
        """Sample from the current logits, record, and (unless ``last``) compute the next logits: one graph replay."""
        truncate = self._truncate
        if last:
            self._run(("sample", truncate, self.eos.numel()), lambda: self._sample(truncate))
            return

        def body():
            self._sample(truncate)
            self._forward()

        self._run(("step", truncate, self.eos.numel()), body)


def fused_rollout(
    decoder: FusedLightningDecoder,
    prefilled,  # native.Prefilled
    sampling,  # SamplingParams
    seed: int,
    eos_ids: torch.Tensor,
    pad_id: int,
    has_stop: Callable[[list[int], Sequence[str]], bool],
    stop_every: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Decode one prefilled batch; returns (ids [B, T], logps [B, T], lengths [B], finished [B]) on the device.

    Stop strings need the text, so every ``stop_every`` steps the new tokens come to the host; a row whose text
    now holds a stop string is cut after the token that completed it (the graph kept stepping it meanwhile, and
    what it produced past the cut is dropped by ``lengths``).
    """
    # cuBLAS may split K at M = B and reduce the partial sums in bf16; the learner's GEMMs (M = B * T) reduce in fp32.
    flags = torch.backends.cuda.matmul
    reduced = flags.allow_bf16_reduced_precision_reduction, flags.allow_fp16_reduced_precision_reduction
    flags.allow_bf16_reduced_precision_reduction = flags.allow_fp16_reduced_precision_reduction = False
    try:
        return _rollout(decoder, prefilled, sampling, seed, eos_ids, pad_id, has_stop, stop_every)
    finally:
        flags.allow_bf16_reduced_precision_reduction, flags.allow_fp16_reduced_precision_reduction = reduced


def _rollout(decoder, prefilled, sampling, seed, eos_ids, pad_id, has_stop, stop_every):
    T = sampling.max_new_tokens
    states = [prefilled.cache.get_state(i) for i in range(len(decoder.states))]
    decoder.start(states, eos_ids, pad_id, T, sampling.temperature, sampling.top_p, seed)
    if prefilled.tail_ids.shape[1]:
        decoder.feed(prefilled.tail_ids, prefilled.tail_mask)
    else:
        decoder.logits.copy_(prefilled.logits)
    B = decoder.B
    history: list[list[int]] = [[] for _ in range(B)]
    stopped = [False] * B
    checked = 0
    for t in range(T):
        decoder.decode_step(last=t == T - 1)
        if sampling.stop and ((t + 1) % stop_every == 0 or t == T - 1):
            _cut_at_stop_strings(decoder, checked, t + 1, history, stopped, sampling.stop, has_stop)
            checked = t + 1
        # Checking for an all-finished batch syncs with the device, so do it only every few steps.
        if t < T - 1 and t % 8 == 7 and bool(decoder.done.all()):
            break
    lengths = decoder.lengths.clone()
    ids = decoder.out_ids[:, :T].clone()
    ids = torch.where(torch.arange(T, device=ids.device)[None, :] < lengths[:, None], ids, pad_id)
    return ids, decoder.out_logps[:, :T].clone(), lengths, decoder.finished.clone()


def _cut_at_stop_strings(decoder, t0: int, t1: int, history, stopped, stop, has_stop) -> None:
    """Scan steps [t0, t1) of every live row for a completed stop string; finish and cut the rows that have one."""
    tokens = decoder.out_ids[:, t0:t1].tolist()
    lengths = decoder.lengths.tolist()
    rows, cut = [], []
    for b in range(decoder.B):
        if stopped[b]:
            continue
        for j in range(t0, min(t1, lengths[b])):
            history[b].append(tokens[b][j - t0])
            if has_stop(history[b], stop):
                stopped[b] = True
                rows.append(b)
                cut.append(j + 1)
                break
    if rows:
        idx = torch.tensor(rows, device=decoder.device)
        decoder.done[idx] = True
        decoder.finished[idx] = True
        decoder.lengths[idx] = torch.tensor(cut, device=decoder.device)
