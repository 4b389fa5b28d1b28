"""``LightningCache``: per-layer fp32 recurrent states (lightning layers) and K/V (softmax layers).

A lightning layer's whole past is one [B, H, K, V] fp32 state, so its cache never grows; softmax layers of a
hybrid model keep the usual growing K/V. The state stays fp32 whatever the weights' dtype: rounding it to bf16 every
token is what makes rollout and learner log-probs drift apart (kernels.md 1.5 / 3).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache

from pure_rl.models.configuration_lightning import LIGHTNING, LightningConfig


class LightningCache(Cache):
    """Decode cache of ``LightningForCausalLM``; built by the model on the first forward with ``use_cache``.

    ``seen_tokens`` counts positions fed so far (padding included), which is what ``generate`` slices inputs with.
    Recurrent states cannot be rolled back, so ``crop`` (assisted decoding) is refused with a clear error.
    """

    is_compileable = False
    is_croppable = False

    def __init__(self, config: LightningConfig):
        # Cache.__init__ insists on layer objects it drives itself; this cache owns its storage instead.
        self.layer_types = list(config.layer_types)
        self.layers: list = []
        self.layer_class_to_replicate = None
        self.offloading = False
        self.states: list[torch.Tensor | None] = [None] * len(self.layer_types)  # [B, H, K, V] fp32
        self.keys: list[torch.Tensor | None] = [None] * len(self.layer_types)  # [B, Hkv, S, D]
        self.values: list[torch.Tensor | None] = [None] * len(self.layer_types)
        self.seen_tokens = 0

    def __len__(self) -> int:
        return len(self.layer_types)

    def __repr__(self) -> str:
        return f"LightningCache(layers={len(self)}, seen_tokens={self.seen_tokens})"

    # -- what generate() reads --------------------------------------------------------------------------------
    @property
    def is_linear(self) -> list[bool]:
        # Reported False on purpose: generate() then slices new inputs by get_seq_length(), which this cache tracks.
        return [False] * len(self)

    @property
    def is_sliding(self) -> list[bool]:
        return [False] * len(self)

    @property
    def is_dummy(self) -> list[bool]:
        return [False] * len(self)

    @property
    def is_initialized(self) -> bool:
        return self.seen_tokens > 0

    @property
    def batch_size(self) -> int | None:
        for t in self._tensors():
            return t.shape[0]
        return None

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seen_tokens

    def get_max_length(self, layer_idx: int | None = None) -> int:
        return -1

    def get_mask_sizes(self, query_length: int, layer_idx: int = 0) -> tuple[int, int]:
        return self.seen_tokens + query_length, 0

    # -- storage --------------------------------------------------------------------------------------------
    def get_state(self, layer_idx: int) -> torch.Tensor | None:
        return self.states[layer_idx]

    def set_state(self, layer_idx: int, state: torch.Tensor) -> None:
        if self.layer_types[layer_idx] != LIGHTNING:
            raise ValueError(f"layer {layer_idx} is a {self.layer_types[layer_idx]} layer; it has no recurrent state")
        self.states[layer_idx] = state.float()

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append K/V [B, Hkv, T, D] of a softmax layer; returns the full K/V so far."""
        if self.layer_types[layer_idx] == LIGHTNING:
            raise ValueError(f"layer {layer_idx} is a lightning layer; it keeps a recurrent state, not K/V")
        if self.keys[layer_idx] is None:
            self.keys[layer_idx], self.values[layer_idx] = key_states, value_states
        else:
            self.keys[layer_idx] = torch.cat([self.keys[layer_idx], key_states], dim=-2)
            self.values[layer_idx] = torch.cat([self.values[layer_idx], value_states], dim=-2)
        return self.keys[layer_idx], self.values[layer_idx]

    def advance(self, num_tokens: int) -> None:
        """Record that ``num_tokens`` more positions went through every layer."""
        self.seen_tokens += num_tokens

    def _tensors(self):
        for group in (self.states, self.keys, self.values):
            yield from (t for t in group if t is not None)

    def _map(self, fn) -> None:
        for group in (self.states, self.keys, self.values):
            for i, t in enumerate(group):
                if t is not None:
                    group[i] = fn(t)

    # -- batch surgery (beam search, contrastive search, engines) --------------------------------------------
    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Select rows ``beam_idx`` of every state and K/V (beam search)."""
        self._map(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._map(lambda t: t[indices])

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._map(lambda t: t.repeat_interleave(repeats, dim=0))

    def reset(self) -> None:
        self.states = [None] * len(self)
        self.keys = [None] * len(self)
        self.values = [None] * len(self)
        self.seen_tokens = 0

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError(
            "LightningCache cannot crop: a recurrent state cannot forget tokens; assisted/speculative decoding is "
            "not supported for this model"
        )

    def copy_from(self, other: LightningCache) -> None:
        """Copy another cache's contents into this cache's existing tensors, keeping their addresses (CUDA graphs)."""
        for dst_group, src_group in ((self.states, other.states), (self.keys, other.keys), (self.values, other.values)):
            for i, src in enumerate(src_group):
                if src is None:
                    continue
                if dst_group[i] is None or dst_group[i].shape != src.shape:
                    dst_group[i] = src.clone()
                else:
                    dst_group[i].copy_(src)
        self.seen_tokens = other.seen_tokens
