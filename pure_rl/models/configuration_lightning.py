"""``LightningConfig``: the hyper-parameters of the lightning-attention causal LM (TransNormerLLM style).

Every layer is a lightning-attention layer unless ``layer_types`` mixes in softmax layers, MiniMax style:
``layer_types=["linear_attention"] * 7 + ["full_attention"]`` repeated. Softmax layers use RoPE and SDPA.
Lightning layers use the per-head decay schedule of ``kernels.lightning_attn.lightning_slopes`` (fixed, or learned
from it with ``decay="learned"``), and optionally a short causal convolution on q/k/v (``conv_size``), TNL's LRPE
(``lrpe_layers``) and an activation on the output gate (``gate_act``). Every option keeps the fixed-size recurrent
state, so decoding stays constant-cost per token. The defaults reproduce the original TNL-style layer.
"""

from __future__ import annotations

import inspect

from typing import Any, ClassVar

from transformers import PretrainedConfig

LIGHTNING = "linear_attention"  # the names HF validates and MiniMax uses
SOFTMAX = "full_attention"
LAYER_TYPES = (LIGHTNING, SOFTMAX)
DECAYS = ("fixed", "learned")
GATE_ACTS = ("none", "sigmoid", "silu")


class LightningConfig(PretrainedConfig):
    """Configuration of ``LightningForCausalLM``.

    Sizes follow HF naming; ``head_dim`` defaults to ``hidden_size // num_attention_heads``. ``intermediate_size``
    is the width of the simple GLU channel mixer (TNL's ``glu_dim``). ``embed_scale`` multiplies the token
    embeddings (TransNormerLLM uses sqrt(hidden_size) unless ``no_scale_embedding``). ``chunk_size`` is the block
    length of the chunked lightning kernel used for training and prefill.

    Lightning-layer options: ``decay`` "fixed" (TNL slopes) or "learned" (a per-head fp32 parameter initialised at
    those slopes); ``conv_size`` the width of a causal depthwise convolution on q, k, v (0 = none; 2 is a token
    shift); ``lrpe_layers`` the layers that get LRPE (TNL puts it on layer 0); ``gate_act`` the activation of the
    output gate u in ``Norm(attn) * act(u)`` ("none" is TNL's linear gate, "sigmoid" MiniMax's).
    """

    model_type = "pure_lightning"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["cache", "past_key_values"]

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 1024,
        intermediate_size: int = 2816,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 8,
        head_dim: int | None = None,
        num_key_value_heads: int | None = None,
        layer_types: list[str] | None = None,
        rope_theta: float = 10000.0,
        norm_eps: float = 1e-6,
        embed_scale: float = 1.0,
        chunk_size: int = 64,
        decay: str = "fixed",
        conv_size: int = 0,
        lrpe_layers: list[int] | None = None,
        gate_act: str = "none",
        bias: bool = False,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        tie_word_embeddings: bool = False,
        pad_token_id: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        **kwargs: Any,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.num_key_value_heads = num_key_value_heads if num_key_value_heads is not None else num_attention_heads
        self.layer_types = list(layer_types) if layer_types is not None else [LIGHTNING] * num_hidden_layers
        self.rope_theta = rope_theta
        self.norm_eps = norm_eps
        self.embed_scale = embed_scale
        self.chunk_size = chunk_size
        self.decay = decay
        self.conv_size = conv_size
        self.lrpe_layers = sorted(lrpe_layers) if lrpe_layers else []
        self.gate_act = gate_act
        self.bias = bias
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        self._validate()
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )

    def _validate(self) -> None:
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types has {len(self.layer_types)} entries but num_hidden_layers={self.num_hidden_layers}; "
                "give one type per layer"
            )
        for i, kind in enumerate(self.layer_types):
            if kind not in LAYER_TYPES:
                raise ValueError(f"layer_types[{i}]={kind!r} is not valid; use one of {list(LAYER_TYPES)}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={self.num_attention_heads} must be a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.chunk_size < 1 or self.chunk_size & (self.chunk_size - 1):
            raise ValueError(f"chunk_size={self.chunk_size} must be a power of 2 (e.g. 64)")
        if self.decay not in DECAYS:
            raise ValueError(f"decay={self.decay!r} is not valid; use one of {list(DECAYS)}")
        if self.gate_act not in GATE_ACTS:
            raise ValueError(f"gate_act={self.gate_act!r} is not valid; use one of {list(GATE_ACTS)}")
        if not isinstance(self.conv_size, int) or self.conv_size < 0 or self.conv_size == 1:
            raise ValueError(f"conv_size={self.conv_size!r} must be 0 (no convolution) or an int >= 2")
        for i in self.lrpe_layers:
            if not 0 <= i < self.num_hidden_layers or self.layer_types[i] != LIGHTNING:
                raise ValueError(
                    f"lrpe_layers has {i}; it must name lightning layers in [0, {self.num_hidden_layers - 1}]"
                )

    @property
    def is_pure_lightning(self) -> bool:
        """True when no layer needs a growing KV cache (decode state is fixed-size, CUDA graphs apply)."""
        return all(kind == LIGHTNING for kind in self.layer_types)

    @property
    def is_plain_tnl(self) -> bool:
        """Pure lightning with none of the layer options (fixed decay, no conv, no LRPE, no gate activation): the
        form ``pure_rl.rollout.fused_decode`` implements; other forms decode through the model's own step."""
        return (self.is_pure_lightning and self.decay == "fixed" and self.conv_size == 0 and not self.lrpe_layers
                and self.gate_act == "none")


def override_error(overrides: dict, **base: Any) -> str | None:
    """Why ``LightningConfig(**base, **overrides)`` would fail or silently keep an unknown field; None when valid."""
    known = set(inspect.signature(LightningConfig.__init__).parameters) - {"self", "kwargs"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        return f"unknown fields {unknown}; LightningConfig takes {sorted(known)}"
    try:
        LightningConfig(**{**base, **overrides})
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None
