"""``model.init=random``: shipped architecture configs, the stand-in tokenizer, and random-weight policies and PRMs."""

from __future__ import annotations

import json

import pytest
import torch

from pure_rl.models.config import ModelConfig
from pure_rl.models.loading import load_model
from pure_rl.models.random_init import CONFIGS_DIR, config_dir, shipped_configs
from pure_rl.models.standin_tokenizer import train_standin

# name -> (Auto class, parameter count of the published checkpoint, rounded), counted on the meta device
SHIPPED = {
    "qwen2.5-math-1.5b": ("AutoModelForCausalLM", 1.54e9),
    "qwen2.5-math-7b": ("AutoModelForCausalLM", 7.62e9),
    "pure-prm-7b": ("AutoModelForTokenClassification", 7.07e9),
    "qwen2.5-0.5b": ("AutoModelForCausalLM", 0.494e9),
    "tnl-1b": ("AutoModelForCausalLM", 1.185e9),
}
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def tiny_folder(path, arch="Qwen2ForCausalLM", model_type="qwen2", vocab_size=768, spec_size=700, **extra):
    """A 2-layer config folder with a stand-in tokenizer spec: what a shipped config is, at test size."""
    path.mkdir(parents=True, exist_ok=True)
    config = {"architectures": [arch], "model_type": model_type, "hidden_size": 64, "intermediate_size": 128,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": vocab_size,
              "max_position_embeddings": 512, "eos_token_id": spec_size - len(SPECIALS), **extra}
    spec = {"vocab_size": spec_size, "special_tokens": SPECIALS, "eos_token": SPECIALS[0], "pad_token": SPECIALS[0]}
    (path / "config.json").write_text(json.dumps(config))
    (path / "tokenizer_spec.json").write_text(json.dumps(spec))
    return path


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_has_the_published_size(name):
    import transformers
    from transformers import AutoConfig

    import pure_rl.models  # noqa: F401  (registers the lightning policy)

    auto_name, params = SHIPPED[name]
    config = AutoConfig.from_pretrained(CONFIGS_DIR / name)
    with torch.device("meta"):
        model = getattr(transformers, auto_name).from_config(config)
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - params) / params < 0.01, (name, count)
    spec = json.loads((CONFIGS_DIR / name / "tokenizer_spec.json").read_text())
    assert spec["vocab_size"] <= config.vocab_size and spec["eos_token"] in spec["special_tokens"]


def test_hub_ids_map_to_shipped_folders_and_unknown_names_fail_with_the_list():
    assert config_dir("Qwen/Qwen2.5-Math-1.5B") == CONFIGS_DIR / "qwen2.5-math-1.5b"
    assert config_dir("jinachris/PURE-PRM-7B") == CONFIGS_DIR / "pure-prm-7b"
    assert set(SHIPPED) <= set(shipped_configs())
    with pytest.raises(ValueError, match=r"model.name='org/nope' with init=random needs a config.*qwen2.5-math-1.5b"):
        config_dir("org/nope")


@pytest.mark.parametrize("first", [False, True])
def test_standin_tokenizer_has_the_exact_size_and_real_tokens(first):
    spec = {"vocab_size": 900, "special_tokens": SPECIALS, "specials_first": first, "eos_token": SPECIALS[0],
            "pad_token": SPECIALS[0]}
    tok = train_standin(spec)
    assert len(tok) == 900
    assert tok.convert_tokens_to_ids(SPECIALS[0]) == (0 if first else 900 - len(SPECIALS))
    assert tok.eos_token_id == tok.pad_token_id == tok.convert_tokens_to_ids(SPECIALS[0])
    text = "Let $x = 12$.\n\nSo the answer is \\boxed{12}."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(tok("\n\n", add_special_tokens=False)["input_ids"]) == 1  # the step separator is one token
    regular = [i for i in range(900) if tok.convert_ids_to_tokens(i) not in SPECIALS]
    sampled = torch.tensor(regular)[torch.randperm(len(regular), generator=torch.Generator().manual_seed(0))[:300]]
    text = tok.decode(sampled.tolist())
    assert 0.8 * 300 <= len(tok(text, add_special_tokens=False)["input_ids"]) <= 1.6 * 300  # re-tokenizes ~1:1


def test_random_policy_is_seeded_built_from_the_config_and_generates(tmp_path, monkeypatch):
    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path / "cache"))
    folder = tiny_folder(tmp_path / "policy")
    cfg = ModelConfig(path=str(folder), init="random")
    model, tok = load_model(cfg, seed=3)
    again, _ = load_model(cfg, seed=3)
    other, _ = load_model(cfg, seed=4)
    assert type(model).__name__ == "Qwen2ForCausalLM" and model.config.num_hidden_layers == 2
    assert len(tok) == 700 and model.get_input_embeddings().num_embeddings == 768
    w = model.get_input_embeddings().weight
    assert torch.equal(w, again.get_input_embeddings().weight) and not torch.equal(w, other.get_input_embeddings().weight)
    enc = tok(["What is 2 + 3?"], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=5, do_sample=True, pad_token_id=tok.pad_token_id)
    assert out.shape[0] == 1 and enc["input_ids"].shape[1] < out.shape[1] <= enc["input_ids"].shape[1] + 5


def test_random_lightning_policy_and_a_too_small_vocab(tmp_path, monkeypatch):
    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path / "cache"))
    folder = tiny_folder(tmp_path / "lightning", arch="LightningForCausalLM", model_type="pure_lightning")
    model, _ = load_model(ModelConfig(path=str(folder), init="random", dtype="bfloat16"))
    assert type(model).__name__ == "LightningForCausalLM" and next(model.parameters()).dtype == torch.bfloat16
    small = tiny_folder(tmp_path / "small", vocab_size=600)
    with pytest.raises(ValueError, match="tokenizer has 700 tokens but the config's vocab_size is 600"):
        load_model(ModelConfig(path=str(small), init="random"))


def test_random_prm_scores_in_range_and_counts_its_tokens(tmp_path, monkeypatch):
    from prm.hf_classifier import HFTokenClassifierPRM

    monkeypatch.setenv("PURE_RL_CACHE", str(tmp_path / "cache"))
    folder = tiny_folder(tmp_path / "prm", arch="Qwen2ForTokenClassification", num_labels=2)
    prm = HFTokenClassifierPRM(path=str(folder), init="random", device="cpu", dtype="float32", batch_size=2)
    scores = prm.score_steps(["What is 2 + 3?", "Compute 4 * 5."], [["2 + 3 = 5", "The answer is 5."], ["20"]])
    assert [len(s) for s in scores] == [2, 1]
    assert all(-1 <= x <= 1 for s in scores for x in s)
    assert 0 < prm.runner.tokens_scored <= prm.runner.tokens_padded
    with pytest.raises(ValueError, match="init='warm' is not valid"):
        HFTokenClassifierPRM(path=str(folder), init="warm", device="cpu")
