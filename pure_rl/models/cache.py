"""``LightningCache``: per-layer fp32 recurrent states (lightning layers) and K/V (softmax layers).

A lightning layer's whole past is one [B, H, K, V] fp32 state, so its cache never grows; softmax layers of a
hybrid model keep the usual growing K/V. A lightning layer with a short convolution also keeps its last W-1 inputs
[B, W-1, C] (fixed size too). The state stays fp32 whatever the weights' dtype: rounding it to bf16 every
token is what makes rollout and learner log-probs drift apart (kernels.md 1.5 / 3).
"""

from __future__ import annotations

import torch
from transformers.cache_utils import Cache

from pure_rl.models.configuration_lightning import LIGHTNING, LightningConfig


class LightningCache(Cache):
    """Decode cache of ``LightningForCausalLM``; built by the model on the first forward with ``use_cache``.

    ``seen_tokens`` counts positions fed so far (padding included), which is what ``generate`` slices inputs with.
    ``position(device)`` is the same count as a device tensor, advanced in place, for layers that need positions
    inside a captured CUDA graph (LRPE), where a Python int would be frozen at its capture-time value.
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
        self.conv_states: list[torch.Tensor | None] = [None] * len(self.layer_types)  # [B, W-1, C]
        self.seen_tokens = 0
        self._position: torch.Tensor | None = None  # [] long, == seen_tokens

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

    def get_conv(self, layer_idx: int) -> torch.Tensor | None:
        return self.conv_states[layer_idx]

    def set_conv(self, layer_idx: int, tail: torch.Tensor, in_place: bool = False) -> None:
        """Store a lightning layer's last convolution inputs; ``in_place`` keeps the tensor's address (CUDA graphs)."""
        if self.layer_types[layer_idx] != LIGHTNING:
            raise ValueError(f"layer {layer_idx} is a {self.layer_types[layer_idx]} layer; it has no convolution state")
        current = self.conv_states[layer_idx]
        if in_place and current is not None and current.shape == tail.shape:
            current.copy_(tail)
        else:
            self.conv_states[layer_idx] = tail

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
        if self._position is not None:
            self._position.add_(num_tokens)

    def position(self, device: torch.device) -> torch.Tensor:
        """The number of positions fed so far as a [] long tensor on ``device`` (created on first use)."""
        if self._position is None or self._position.device != device:
            self._position = torch.tensor(self.seen_tokens, dtype=torch.long, device=device)
        return self._position

    def _groups(self) -> tuple[list[torch.Tensor | None], ...]:
        return self.states, self.keys, self.values, self.conv_states

    def _tensors(self):
        for group in self._groups():
            yield from (t for t in group if t is not None)

    def _map(self, fn) -> None:
        for group in self._groups():
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
        self.conv_states = [None] * len(self)
        self.seen_tokens = 0
        self._position = None

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError(
            "LightningCache cannot crop: a recurrent state cannot forget tokens; assisted/speculative decoding is "
            "not supported for this model"
        )

    def copy_from(self, other: LightningCache) -> None:
        """Copy another cache's contents into this cache's existing tensors, keeping their addresses (CUDA graphs)."""
        for dst_group, src_group in zip(self._groups(), other._groups()):
            for i, src in enumerate(src_group):
                if src is None:
                    continue
                if dst_group[i] is None or dst_group[i].shape != src.shape:
                    dst_group[i] = src.clone()
                else:
                    dst_group[i].copy_(src)
        self.seen_tokens = other.seen_tokens
        if self._position is not None:
            self._position.fill_(other.seen_tokens)
