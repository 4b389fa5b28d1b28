"""The TransNormerLLM converter, on a synthetic checkpoint with the published key names and shapes: the converted
model must compute what an independent TNL forward (written from the paper's formulas) computes."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from kernels.lightning_attn import alibi_slopes, naive_recurrent_lightning_attn
from pure_rl.models import LightningForCausalLM
from pure_rl.models.convert_tnl import convert, load_tnl_folder, main

TNL_CONFIG = {
    "vocab_size": 90,
    "decoder_embed_dim": 48,
    "hidden_dim": 64,
    "decoder_attention_heads": 4,
    "decoder_layers": 3,
    "glu_dim": 80,
    "bias": False,
    "norm_type": "simplermsnorm",
    "linear_act_fun": "silu",
    "no_scale_embedding": False,
    "linear_use_lrpe_list": [1, 0, 0],
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def synthetic_tnl_state(cfg: dict, lrpe: bool, tied: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    d, inner, glu, V = cfg["decoder_embed_dim"], cfg["hidden_dim"], cfg["glu_dim"], cfg["vocab_size"]
    heads = cfg["decoder_attention_heads"]

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    state = {"model.embed_tokens.weight": w(V, d)}
    if not tied:
        state["lm_head.weight"] = w(V, d)
    for i in range(cfg["decoder_layers"]):
        p = f"model.layers.{i}."
        state[p + "token_mixer.qkvu_proj.weight"] = w(4 * inner, d)
        state[p + "token_mixer.out_proj.weight"] = w(d, inner)
        state[p + "channel_mixer.l1.weight"] = w(glu, d)
        state[p + "channel_mixer.l2.weight"] = w(glu, d)
        state[p + "channel_mixer.l3.weight"] = w(d, glu)
        if lrpe and cfg["linear_use_lrpe_list"][i]:
            state[p + "token_mixer.lrpe.theta"] = w(heads, 1, inner // heads)
    return state


def srms(x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)


def tnl_reference_logits(cfg: dict, state: dict, ids: torch.Tensor) -> torch.Tensor:
    """TransNormerLLM without LRPE, from TNL-ICML: pre-norm GLA + SGLU blocks, ALiBi decay x (1 - l/(L-1) + 1e-5)."""
    d, heads, L = cfg["decoder_embed_dim"], cfg["decoder_attention_heads"], cfg["decoder_layers"]
    x = state["model.embed_tokens.weight"][ids] * math.sqrt(d)
    B, T, _ = x.shape
    slopes = torch.tensor(alibi_slopes(heads))
    for i in range(L):
        p = f"model.layers.{i}."
        q, k, v, u = (srms(x) @ state[p + "token_mixer.qkvu_proj.weight"].T).chunk(4, -1)
        q, k = F.silu(q).view(B, T, heads, -1), F.silu(k).view(B, T, heads, -1)
        log_decay = -slopes * (1 - i / (L - 1) + 1e-5)
        o, _ = naive_recurrent_lightning_attn(q, k, v.view(B, T, heads, -1), log_decay)
        x = x + (srms(o.reshape(B, T, -1)) * u) @ state[p + "token_mixer.out_proj.weight"].T
        h = srms(x)
        glu = (h @ state[p + "channel_mixer.l1.weight"].T) * (h @ state[p + "channel_mixer.l2.weight"].T)
        x = x + glu @ state[p + "channel_mixer.l3.weight"].T
    head = state.get("lm_head.weight", state["model.embed_tokens.weight"])
    return srms(x) @ head.T


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_converted_model_computes_the_tnl_forward(tied):
    state = synthetic_tnl_state(TNL_CONFIG, lrpe=False, tied=tied)
    model, dropped = convert(TNL_CONFIG, state)
    assert dropped == []
    ids = torch.randint(0, 90, (2, 21))
    with torch.no_grad():
        torch.testing.assert_close(
            model(ids).logits, tnl_reference_logits(TNL_CONFIG, state, ids), rtol=1e-4, atol=1e-4
        )
    assert model.config.tie_word_embeddings == tied


def test_lrpe_is_dropped_and_reported_or_refused():
    state = synthetic_tnl_state(TNL_CONFIG, lrpe=True)
    model, dropped = convert(TNL_CONFIG, state)
    assert isinstance(model, LightningForCausalLM)
    assert dropped == ["model.layers.0.token_mixer.lrpe.theta"]
    with pytest.raises(ValueError, match="LRPE"):
        convert(TNL_CONFIG, state, allow_lrpe_drop=False)


def test_bad_checkpoints_fail_clearly():
    state = synthetic_tnl_state(TNL_CONFIG, lrpe=False)
    with pytest.raises(KeyError, match="unexpected TransNormerLLM weight"):
        convert(TNL_CONFIG, {**state, "model.layers.0.mystery.weight": torch.zeros(1)})
    with pytest.raises(KeyError, match="lacks"):
        convert(TNL_CONFIG, {k: v for k, v in state.items() if "layers.2.channel_mixer.l3" not in k})
    bad = dict(state)
    bad["model.layers.1.token_mixer.out_proj.weight"] = torch.zeros(48, 32)
    with pytest.raises(ValueError, match="shape"):
        convert(TNL_CONFIG, bad)
    with pytest.raises(ValueError, match="norm_type"):
        convert({**TNL_CONFIG, "norm_type": "layernorm"}, state)


def test_cli_converts_a_folder_and_the_result_loads(tmp_path):
    src, dst = tmp_path / "tnl", tmp_path / "out"
    src.mkdir()
    state = synthetic_tnl_state(TNL_CONFIG, lrpe=True)
    (src / "config.json").write_text(json.dumps(TNL_CONFIG))
    save_file(state, src / "model.safetensors")
    main([str(src), str(dst), "--dtype", "float32"])
    loaded = LightningForCausalLM.from_pretrained(dst).eval()
    ids = torch.randint(0, 90, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, convert(TNL_CONFIG, state)[0](ids).logits)
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        load_tnl_folder(tmp_path / "missing")
