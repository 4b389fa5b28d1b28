"""``LightningForCausalLM``: a TransNormerLLM-style causal LM with an optional MiniMax-style softmax hybrid.

Block (pre-norm, TNL-ICML Fig. 3):  x += TokenMixer(SRMSNorm(x));  x += SGLU(SRMSNorm(x))
- lightning token mixer (GLA): [q, k, v] = Conv_W(x W_qkv) (optional causal depthwise conv, W taps); q, k = SiLU(q),
  SiLU(k) (LRPE-features on chosen layers); u = x W_u; o = SRMSNorm(LightningAttn(q, k, v; lambda)) * act(u), then
  out_proj; lambda is fixed per head or learned (fp32). Padding positions get v = 0, so they never enter a state.
- softmax token mixer (hybrid layers): RoPE + SDPA with grouped K/V heads.
- SGLU channel mixer: down(gate(x) * up(x)), no activation.
"""

from __future__ import annotations

import inspect
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

from pure_rl.models.cache import LightningCache
from pure_rl.models.configuration_lightning import LIGHTNING, LightningConfig
from pure_rl.models.ops import (
    apply_rope,
    causal_depthwise_conv,
    decay_grad_carrier,
    layer_log_decay,
    lightning_attention,
    lightning_decode_step,
    lrpe_features,
    positions_from_mask,
    rope_cos_sin,
    srms_norm,
)

# transformers renamed the cache argument/field from past_key_values to cache (5.2x); speak whichever is installed.
_CACHE_FIELD = "cache" if "cache" in inspect.signature(CausalLMOutputWithPast).parameters else "past_key_values"


class SRMSNorm(nn.Module):
    """Simple RMSNorm without gain: x / sqrt(mean(x^2) + eps)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return srms_norm(x, self.eps)


class SGLU(nn.Module):
    """Simple GLU channel mixer: down_proj(gate_proj(x) * up_proj(x)) (no activation, TNL's SGLU)."""

    def __init__(self, config: LightningConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.bias)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=config.bias)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.gate_proj(x) * self.up_proj(x))


class LightningAttention(nn.Module):
    """Gated lightning (linear) attention with a per-head decay and a fp32 recurrent decode state.

    Options (``LightningConfig``): a short causal depthwise convolution on q, k, v (its last inputs are carried in
    the cache), LRPE on q, k, a learned fp32 decay, an activation on the gate. Each keeps decode at O(1) per token.
    """

    _GATES: ClassVar[dict] = {"none": nn.Identity, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}

    def __init__(self, config: LightningConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.chunk_size = config.chunk_size
        inner = self.num_heads * self.head_dim
        self.qkvu_proj = nn.Linear(config.hidden_size, 4 * inner, bias=config.bias)
        self.out_proj = nn.Linear(inner, config.hidden_size, bias=config.bias)
        self.norm = SRMSNorm(config.norm_eps)
        self.gate_act = self._GATES[config.gate_act]()
        self.num_layers = config.num_hidden_layers
        self.conv_weight = nn.Parameter(torch.empty(3 * inner, config.conv_size)) if config.conv_size else None
        lrpe = layer_idx in config.lrpe_layers
        self.lrpe_theta = nn.Parameter(torch.empty(self.num_heads, self.head_dim)) if lrpe else None
        # A learned decay is a parameter (log of the slope, fp32: _keep_in_fp32_modules_strict); a fixed one is not a
        # buffer, so model.to(bfloat16) cannot round it and meta-device construction needs no values.
        self.log_slope = nn.Parameter(torch.empty(self.num_heads)) if config.decay == "learned" else None
        self._log_decay: torch.Tensor | None = None  # [H] fp32, the fixed schedule on its device
        self.reset_extra_parameters()

    def reset_extra_parameters(self) -> None:
        """Neutral init of the non-Linear parameters, so each option starts as the baseline layer computes: identity
        conv taps (the newest tap 1), LRPE theta[h, i] = 10000^(-i/D) (RoPE-like), the TNL decay schedule."""
        with torch.no_grad():
            if self.conv_weight is not None:
                self.conv_weight.zero_()[:, -1] = 1.0
            if self.lrpe_theta is not None:
                D = self.head_dim
                self.lrpe_theta.copy_(10000.0 ** (-torch.arange(D, dtype=torch.float32, device="cpu") / D))
            if self.log_slope is not None:
                with torch.device("cpu"):
                    self.log_slope.copy_((-layer_log_decay(self.num_heads, self.layer_idx, self.num_layers)).log())

    def log_decay(self, device: torch.device) -> torch.Tensor:
        """log lambda_h [H] fp32: -exp(log_slope) when learned (differentiable), else the fixed schedule."""
        if self.log_slope is not None:
            return -self.log_slope.float().exp()
        if self._log_decay is None or self._log_decay.device != device:
            with torch.device("cpu"):
                decay = layer_log_decay(self.num_heads, self.layer_idx, self.num_layers)
            self._log_decay = decay.to(device)
        return self._log_decay

    def forward(
        self,
        x: torch.Tensor,  # [B, T, d]
        token_mask: torch.Tensor | None,  # [B, T] True on real tokens
        cache: LightningCache | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        inner = self.num_heads * self.head_dim
        qkv, u = self.qkvu_proj(x).split([3 * inner, inner], dim=-1)  # [B, T, 3*H*D], [B, T, H*D]
        # The in-place step is for inference; with autograd on, the (out-of-place) chunked form keeps the graph valid.
        decoding = T == 1 and cache is not None and cache.get_state(self.layer_idx) is not None
        decoding = decoding and not torch.is_grad_enabled()
        if self.conv_weight is not None:
            if token_mask is not None:  # padding must not leak into the next real tokens' window
                qkv = qkv * token_mask[:, :, None].to(qkv.dtype)
            past = cache.get_conv(self.layer_idx) if cache is not None else None
            qkv, tail = causal_depthwise_conv(qkv, self.conv_weight, past)
            if cache is not None:
                cache.set_conv(self.layer_idx, tail, in_place=decoding)
        q, k, v = qkv.chunk(3, dim=-1)  # each [B, T, H*D]
        q = F.silu(q).view(B, T, self.num_heads, self.head_dim)
        k = F.silu(k).view(B, T, self.num_heads, self.head_dim)
        v = v.reshape(B, T, self.num_heads, self.head_dim)
        if token_mask is not None:
            v = v * token_mask[:, :, None, None].to(v.dtype)
        if self.lrpe_theta is not None:
            positions = torch.arange(T, device=x.device)
            if cache is not None:
                positions = positions + cache.position(x.device)
            q, k = lrpe_features(q, positions, self.lrpe_theta), lrpe_features(k, positions, self.lrpe_theta)
        log_decay = self.log_decay(x.device)
        state_factor = None
        if log_decay.requires_grad and torch.is_grad_enabled():
            q, k, state_factor = decay_grad_carrier(q, k, log_decay)
        log_decay = log_decay.detach()
        state = cache.get_state(self.layer_idx) if cache is not None else None
        if decoding:
            o = lightning_decode_step(q, k, v, log_decay, state)
        else:
            o, new_state = lightning_attention(
                q,
                k,
                v,
                log_decay,
                initial_state=state,
                output_final_state=cache is not None,
                chunk_size=self.chunk_size,
            )
            if cache is not None:
                if state_factor is not None:
                    new_state = new_state * state_factor[None, :, None, None]
                cache.set_state(self.layer_idx, new_state)
        o = self.norm(o.reshape(B, T, -1).float()).to(u.dtype) * self.gate_act(u)
        return self.out_proj(o)


class SoftmaxAttention(nn.Module):
    """Causal softmax attention with RoPE and grouped K/V heads (the hybrid's full-attention layers)."""

    def __init__(self, config: LightningConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.q_proj = nn.Linear(config.hidden_size, self.num_heads * self.head_dim, bias=config.bias)
        self.k_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=config.bias)
        self.v_proj = nn.Linear(config.hidden_size, self.num_kv_heads * self.head_dim, bias=config.bias)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, config.hidden_size, bias=config.bias)

    def forward(
        self,
        x: torch.Tensor,  # [B, T, d]
        token_mask: torch.Tensor | None,
        cache: LightningCache | None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,  # [B, S] over past + current keys, True on real tokens
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(B, T, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(B, T, self.num_kv_heads, self.head_dim)
        cos, sin = rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T, D]
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx)
        S = k.shape[2]
        groups = self.num_heads // self.num_kv_heads
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        q_pos = torch.arange(S - T, S, device=x.device)[:, None]  # [T, 1]
        allowed = torch.arange(S, device=x.device)[None, :] <= q_pos  # [T, S] causal
        if attention_mask is not None:
            allowed = allowed[None] & attention_mask[:, None, -S:].bool()  # [B, T, S]
            # A padding query would attend to nothing (NaN); letting it see itself changes no real row.
            allowed = allowed | (torch.arange(S, device=x.device)[None, None, :] == q_pos[None])
            allowed = allowed[:, None]  # [B, 1, T, S]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # [B, H, T, D]
        return self.o_proj(o.transpose(1, 2).reshape(B, T, -1))


class LightningDecoderLayer(GradientCheckpointingLayer):
    """Pre-norm block: token mixer (lightning or softmax) then the SGLU channel mixer, each with a residual."""

    def __init__(self, config: LightningConfig, layer_idx: int):
        super().__init__()
        self.is_lightning = config.layer_types[layer_idx] == LIGHTNING
        self.token_norm = SRMSNorm(config.norm_eps)
        mixer = LightningAttention if self.is_lightning else SoftmaxAttention
        self.token_mixer = mixer(config, layer_idx)
        self.channel_norm = SRMSNorm(config.norm_eps)
        self.channel_mixer = SGLU(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        token_mask: torch.Tensor | None = None,
        cache: LightningCache | None = None,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = hidden_states + self.token_mixer(self.token_norm(hidden_states), token_mask, cache, rope, attention_mask)
        return h + self.channel_mixer(self.channel_norm(h))


class LightningPreTrainedModel(PreTrainedModel):
    config_class = LightningConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["LightningDecoderLayer"]
    _supports_sdpa = True
    _keep_in_fp32_modules_strict: ClassVar[list[str]] = ["log_slope"]  # from_pretrained(dtype=bf16) keeps the decay fp32

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # generate() must not build a DynamicCache: the model creates its own LightningCache on the first forward.
        return False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            with torch.no_grad():
                module.weight.normal_(mean=0.0, std=std)
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            with torch.no_grad():
                module.weight.normal_(mean=0.0, std=std)
        elif isinstance(module, LightningAttention):
            module.reset_extra_parameters()


class LightningModel(LightningPreTrainedModel):
    """The decoder stack without the LM head."""

    def __init__(self, config: LightningConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LightningDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = SRMSNorm(config.norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,  # [B, past + T], 1 on real tokens
        position_ids: torch.LongTensor | None = None,
        cache: LightningCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: LightningCache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("give exactly one of input_ids or inputs_embeds")
        cache = cache if cache is not None else past_key_values
        if cache is not None and not isinstance(cache, LightningCache):
            raise TypeError(f"cache must be a LightningCache, got {type(cache).__name__}")
        use_cache = use_cache if use_cache is not None else (self.config.use_cache and not self.training)
        if use_cache and cache is None:
            cache = LightningCache(self.config)
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)
        h = inputs_embeds * self.config.embed_scale if self.config.embed_scale != 1.0 else inputs_embeds
        T = h.shape[1]
        past = cache.get_seq_length() if cache is not None else 0
        if attention_mask is not None and attention_mask.dim() != 2:
            raise ValueError(
                f"attention_mask must be 2-D [batch, past+new tokens], got shape {tuple(attention_mask.shape)}"
            )
        token_mask = attention_mask[:, -T:].bool() if attention_mask is not None else None
        rope = None
        if not self.config.is_pure_lightning:
            if position_ids is None:
                position_ids = (
                    positions_from_mask(attention_mask, T)
                    if attention_mask is not None
                    else torch.arange(past, past + T, device=h.device)[None].expand(h.shape[0], T)
                )
            rope = rope_cos_sin(position_ids, self.config.head_dim, self.config.rope_theta)
        for layer in self.layers:
            h = layer(h, token_mask, cache, rope, attention_mask)
        if cache is not None:
            cache.advance(T)
        return BaseModelOutputWithPast(last_hidden_state=self.final_norm(h), **{_CACHE_FIELD: cache})


class LightningForCausalLM(LightningPreTrainedModel, GenerationMixin):
    """Lightning causal LM: ``LightningModel`` + a linear LM head; works with ``generate()`` via ``LightningCache``."""

    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: LightningConfig):
        super().__init__(config)
        self.model = LightningModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings: nn.Linear) -> None:
        self.lm_head = new_embeddings

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: LightningCache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values: LightningCache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Logits [B, T, V] (or the last ``logits_to_keep``); next-token cross-entropy when ``labels`` is given."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
        )
        h = out.last_hidden_state
        if isinstance(logits_to_keep, int) and logits_to_keep > 0:
            h = h[:, -logits_to_keep:]
        elif isinstance(logits_to_keep, torch.Tensor):
            h = h[:, logits_to_keep]
        logits = self.lm_head(h)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
            )
        return CausalLMOutputWithPast(loss=loss, logits=logits, **{_CACHE_FIELD: getattr(out, _CACHE_FIELD)})
