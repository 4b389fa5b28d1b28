"""Convert a published TransNormerLLM checkpoint (OpenNLPLab/TransNormerLLM-385M/1B/7B, remote-code layout) to
``LightningForCausalLM``.

    python -m pure_rl.models.convert_tnl /path/to/TransNormerLLM-1B /path/to/out [--dtype bfloat16]

Layout of the source (its ``modeling_transnormer.py``): ``model.embed_tokens``, per layer ``token_mixer.qkvu_proj``
(q, k, v, u stacked in that order), ``token_mixer.out_proj``, ``channel_mixer.l1 / l2 / l3`` (SGLU l3(l1(x) * l2(x))),
parameter-free SimpleRMSNorms, ``lm_head``; decay = ALiBi slopes x (1 - l/(L-1) + 1e-5), which is the schedule of
``kernels.lightning_attn.lightning_slopes``; embeddings scaled by sqrt(d) unless ``no_scale_embedding``.

Approximated: LRPE (``token_mixer.lrpe.theta``, the first layer(s) in ``linear_use_lrpe_list``) rotates q and k by
learned per-position angles and doubles their width; this model has no LRPE, so those angles are dropped and the
layer attends without them (TNL-ICML reports little quality change from LRPE). ``convert`` lists what it dropped;
``allow_lrpe_drop=False`` refuses instead.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from pure_rl.models.configuration_lightning import LightningConfig
from pure_rl.models.modeling_lightning import LightningForCausalLM

_RENAMES = [
    (
        re.compile(r"^model\.layers\.(\d+)\.channel_mixer\.l1\.(weight|bias)$"),
        r"model.layers.\1.channel_mixer.gate_proj.\2",
    ),
    (
        re.compile(r"^model\.layers\.(\d+)\.channel_mixer\.l2\.(weight|bias)$"),
        r"model.layers.\1.channel_mixer.up_proj.\2",
    ),
    (
        re.compile(r"^model\.layers\.(\d+)\.channel_mixer\.l3\.(weight|bias)$"),
        r"model.layers.\1.channel_mixer.down_proj.\2",
    ),
    (re.compile(r"^(model\.layers\.\d+\.token_mixer\.(?:qkvu_proj|out_proj)\.(?:weight|bias))$"), r"\1"),
    (re.compile(r"^(model\.embed_tokens\.weight|lm_head\.weight)$"), r"\1"),
]
_LRPE = re.compile(r"^model\.layers\.(\d+)\.token_mixer\.lrpe\.theta$")


def config_from_tnl(tnl: dict[str, Any]) -> LightningConfig:
    """Map a TransNormerLLM ``config.json`` dict to a ``LightningConfig``; unsupported choices raise ValueError."""
    norm = tnl.get("norm_type", "simplermsnorm")
    if norm != "simplermsnorm":
        raise ValueError(f"norm_type={norm!r} is not supported; only 'simplermsnorm' (parameter-free) converts")
    act = tnl.get("linear_act_fun", "silu")
    if act not in ("silu", "swish"):
        raise ValueError(f"linear_act_fun={act!r} is not supported; this model applies SiLU to q and k")
    d = tnl["decoder_embed_dim"]
    heads = tnl["decoder_attention_heads"]
    inner = tnl.get("hidden_dim", d)
    if inner % heads:
        raise ValueError(f"hidden_dim={inner} is not divisible by decoder_attention_heads={heads}")
    glu = tnl.get("glu_dim", -1)
    return LightningConfig(
        vocab_size=tnl["vocab_size"],
        hidden_size=d,
        intermediate_size=d if glu in (-1, None) else glu,
        num_hidden_layers=tnl["decoder_layers"],
        num_attention_heads=heads,
        head_dim=inner // heads,
        embed_scale=1.0 if tnl.get("no_scale_embedding", False) else math.sqrt(d),
        bias=bool(tnl.get("bias", False)),
        pad_token_id=tnl.get("pad_token_id"),
        bos_token_id=tnl.get("bos_token_id"),
        eos_token_id=tnl.get("eos_token_id"),
        tie_word_embeddings=bool(tnl.get("tie_word_embeddings", False)),
    )


def convert_state_dict(
    state: dict[str, torch.Tensor], allow_lrpe_drop: bool = True
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename TNL keys to this model's; returns (new state dict, dropped keys). Unknown keys raise KeyError."""
    out: dict[str, torch.Tensor] = {}
    dropped: list[str] = []
    for key, tensor in state.items():
        if _LRPE.match(key):
            if not allow_lrpe_drop:
                raise ValueError(f"{key}: LRPE has no counterpart in this model; pass allow_lrpe_drop=True to drop it")
            dropped.append(key)
            continue
        for pattern, target in _RENAMES:
            if pattern.match(key):
                out[pattern.sub(target, key)] = tensor
                break
        else:
            raise KeyError(f"unexpected TransNormerLLM weight {key!r}; expected embed/qkvu/out_proj/l1-l3/lm_head keys")
    return out, dropped


def convert(
    tnl_config: dict[str, Any], state: dict[str, torch.Tensor], allow_lrpe_drop: bool = True
) -> tuple[LightningForCausalLM, list[str]]:
    """Build the model from a TNL config and state dict; returns (model, dropped keys). Shapes are checked strictly."""
    config = config_from_tnl(tnl_config)
    new_state, dropped = convert_state_dict(state, allow_lrpe_drop)
    if "lm_head.weight" not in new_state:
        config.tie_word_embeddings = True
    with torch.device("meta"):
        model = LightningForCausalLM(config)
    expected = {k: v.shape for k, v in model.state_dict().items()}
    if config.tie_word_embeddings:
        expected.pop("lm_head.weight", None)
    missing = sorted(set(expected) - set(new_state))
    if missing:
        raise KeyError(f"checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}")
    for key, shape in expected.items():
        if new_state[key].shape != shape:
            raise ValueError(f"{key}: checkpoint shape {tuple(new_state[key].shape)} != model shape {tuple(shape)}")
    model.load_state_dict(new_state, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    return model.eval(), dropped


def load_tnl_folder(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read ``config.json`` and ``*.safetensors`` (or ``pytorch_model*.bin``) from a local checkpoint folder."""
    folder = Path(path)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(
            f"{folder}/config.json not found; download the checkpoint first (huggingface-cli download "
            "OpenNLPLab/TransNormerLLM-1B --local-dir DIR) and pass DIR"
        )
    tnl_config = json.loads((folder / "config.json").read_text())
    state: dict[str, torch.Tensor] = {}
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        from safetensors.torch import load_file

        for shard in shards:
            state.update(load_file(shard))
    else:
        for shard in sorted(folder.glob("pytorch_model*.bin")):
            state.update(torch.load(shard, map_location="cpu", weights_only=True))
    if not state:
        raise FileNotFoundError(f"no *.safetensors or pytorch_model*.bin weights in {folder}")
    return tnl_config, state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Convert a TransNormerLLM checkpoint folder to LightningForCausalLM.")
    parser.add_argument("source", help="local folder of the TransNormerLLM checkpoint (config.json + weights)")
    parser.add_argument("target", help="output folder (save_pretrained)")
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--no-lrpe-drop", action="store_true", help="refuse checkpoints that use LRPE")
    args = parser.parse_args(argv)
    tnl_config, state = load_tnl_folder(args.source)
    model, dropped = convert(tnl_config, state, allow_lrpe_drop=not args.no_lrpe_drop)
    model.to(getattr(torch, args.dtype)).save_pretrained(args.target)
    copied = []
    for pattern in ("tokenizer*", "*.model", "special_tokens_map.json", "vocab*"):
        for file in Path(args.source).glob(pattern):
            shutil.copy(file, Path(args.target) / file.name)
            copied.append(file.name)
    print(
        f"saved {args.target}; tokenizer files copied: {copied or 'none'}; dropped (approximated): {dropped or 'none'}"
    )


if __name__ == "__main__":
    main()
