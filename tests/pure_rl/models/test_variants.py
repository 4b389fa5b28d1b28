"""The lightning-layer options (short convolution, LRPE, learned decay, gate activation) keep the recurrent form exact.

For every option: chunked prefill + one-token decode equal the full forward; the Triton kernels (run by Triton's CPU
interpreter here) give the CPU path's logits and gradients; the cache stays the same size however long the decode;
the native engine's log-probs match the learner's recomputation.
"""

from __future__ import annotations

import re

import pytest
import torch
from transformers import AutoModelForCausalLM

from pure_rl.models import LightningCache, LightningConfig
from pure_rl.models import ops
from pure_rl.models.configuration_lightning import override_error
from pure_rl.models.ops import causal_depthwise_conv, decay_grad_carrier, lrpe_features
from tests.pure_rl.models.tiny import tiny_model

VARIANTS = {
    "conv4": {"conv_size": 4},
    "conv2": {"conv_size": 2},
    "lrpe0": {"lrpe_layers": [0]},
    "learned_decay": {"decay": "learned"},
    "sigmoid_gate": {"gate_act": "sigmoid"},
    "all": {"conv_size": 3, "lrpe_layers": [0, 2], "decay": "learned", "gate_act": "silu"},
    "conv_hybrid": {"conv_size": 4, "layer_types": ["linear_attention", "full_attention", "linear_attention"]},
}


def variant_model(name: str, seed: int = 0, **kwargs):
    model = tiny_model(seed=seed, **VARIANTS[name], **kwargs)
    # Move the non-Linear parameters off their neutral init, so the test sees each option actually act.
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name_, p in model.named_parameters():
            if name_.endswith(("conv_weight", "lrpe_theta", "log_slope")):
                p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return model


def recurrence(q, k, v, log_decay, h0):
    """Differentiable fp32 token loop S_t = lam S_{t-1} + k_t^T v_t, o_t = q_t S_t (decay gradient included)."""
    lam = log_decay.exp()[None, :, None, None]  # [1, H, 1, 1]
    state, outs = h0, []
    for t in range(q.shape[1]):
        state = lam * state + k[:, t, :, :, None] * v[:, t, :, None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t], state))
    return torch.stack(outs, dim=1), state


def test_causal_conv_matches_its_formula_and_carries_across_splits():
    B, T, C, W = 2, 11, 5, 4
    x, weight = torch.randn(B, T, C), torch.randn(C, W)
    y, tail = causal_depthwise_conv(x, weight)
    want = torch.zeros(B, T, C)
    for t in range(T):
        for i in range(W):
            if t - i >= 0:
                want[:, t] += weight[:, W - 1 - i] * x[:, t - i]
    torch.testing.assert_close(y, want)
    torch.testing.assert_close(tail, x[:, -(W - 1) :])
    y1, past = causal_depthwise_conv(x[:, :6], weight)
    parts = [y1]
    for t in range(6, T):
        y_t, past = causal_depthwise_conv(x[:, t : t + 1], weight, past)
        parts.append(y_t)
    torch.testing.assert_close(torch.cat(parts, dim=1), y)


def test_lrpe_scores_depend_only_on_the_distance():
    q, k = torch.randn(1, 6, 2, 8), torch.randn(1, 6, 2, 8)
    theta = torch.rand(2, 8)
    pos = torch.arange(6)
    scores = torch.einsum("bthd,bshd->bhts", lrpe_features(q, pos, theta), lrpe_features(k, pos, theta))
    shifted = torch.einsum("bthd,bshd->bhts", lrpe_features(q, pos + 17, theta), lrpe_features(k, pos + 17, theta))
    torch.testing.assert_close(shifted, scores, rtol=1e-4, atol=1e-4)
    dist = (pos[:, None] - pos[None, :]).float()  # [T, S]
    want = torch.einsum("bthd,bshd,htsd->bhts", q, k, torch.cos(dist[None, :, :, None] * theta[:, None, None, :]))
    torch.testing.assert_close(scores, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("chunk", [4, 64])
def test_decay_carrier_gives_the_exact_decay_gradient_and_unchanged_values(chunk):
    B, T, H, K, V = 2, 13, 3, 4, 5
    q, k, v = (torch.randn(B, T, H, d) for d in (K, K, V))
    h0 = torch.randn(B, H, K, V)
    g = (-torch.rand(H) * 0.5).requires_grad_()
    ref_o, ref_s = recurrence(q, k, v, g, h0)
    cq, ck, factor = decay_grad_carrier(q, k, g)
    assert torch.equal(cq, q) and torch.equal(ck, k) and torch.equal(factor, torch.ones(H))
    o, s = ops.batched_chunk_lightning_attn(cq, ck, v, g.detach(), h0, True, chunk_size=chunk)
    s = s * factor[None, :, None, None]
    torch.testing.assert_close(o, ref_o, rtol=1e-5, atol=1e-5)
    w_o, w_s = torch.randn_like(o), torch.randn_like(s)
    (got,) = torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), g)
    (want,) = torch.autograd.grad((ref_o * w_o).sum() + (ref_s * w_s).sum(), g)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", VARIANTS)
def test_chunked_prefill_then_decode_equals_full_forward(name):
    model = variant_model(name)
    ids = torch.randint(0, 101, (3, 45))
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        cache = LightningCache(model.config)
        parts = [model(ids[:, :20], cache=cache).logits, model(ids[:, 20:37], cache=cache).logits]
        parts += [model(ids[:, t : t + 1], cache=cache).logits for t in range(37, 45)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_left_padding_does_not_change_real_positions(name):
    model = variant_model(name)
    ids = torch.randint(3, 101, (1, 17))
    padded = torch.cat([torch.full((1, 6), 5, dtype=torch.long), ids], dim=1)  # a real token id as the pad
    mask = torch.cat([torch.zeros(1, 6), torch.ones(1, 17)], dim=1).long()
    with torch.no_grad():
        ref = model(ids).logits
        out = model(padded, attention_mask=mask).logits[:, 6:]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["conv4", "lrpe0", "learned_decay", "all"])
def test_triton_interpreter_path_matches_the_cpu_path_with_gradients(name, monkeypatch):
    ids = torch.randint(0, 101, (2, 37))
    results = []
    for triton in (False, True):
        monkeypatch.setattr(ops, "_use_triton", lambda t, on=triton: on)
        model = variant_model(name).train()
        logits = model(ids).logits
        (logits * torch.linspace(-1, 1, logits.shape[-1])).sum().backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        model.eval()
        with torch.no_grad():
            cache = LightningCache(model.config)
            steps = [model(ids[:, :30], cache=cache).logits]
            steps += [model(ids[:, t : t + 1], cache=cache).logits for t in range(30, 37)]
        results.append((logits.detach(), grads, torch.cat(steps, dim=1)))
    (ref_logits, ref_grads, ref_steps), (tri_logits, tri_grads, tri_steps) = results
    torch.testing.assert_close(tri_logits, ref_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(tri_steps, ref_logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ref_steps, ref_logits, rtol=1e-5, atol=1e-5)
    for n, g in ref_grads.items():
        torch.testing.assert_close(tri_grads[n], g, rtol=1e-3, atol=1e-4, msg=lambda m, n=n: f"{n}: {m}")
    if name in ("learned_decay", "all"):
        assert ref_grads["model.layers.0.token_mixer.log_slope"].abs().sum() > 0


@pytest.mark.parametrize("name", ["conv4", "lrpe0", "all"])
def test_decode_cache_does_not_grow(name):
    model = variant_model(name)
    cache = LightningCache(model.config)
    with torch.no_grad():
        model(torch.randint(0, 101, (2, 9)), cache=cache)
        sizes = []
        for t in range(40):
            model(torch.randint(0, 101, (2, 1)), cache=cache)
            if t in (4, 39):
                sizes.append([(x.shape, x.data_ptr()) for x in cache._tensors()])
    assert sizes[0] == sizes[1]  # same shapes and the same storage: updated in place, O(1) per token


def test_learned_decay_trains_and_stays_fp32_when_loaded_in_bf16(tmp_path):
    model = variant_model("learned_decay").train()
    before = model.model.layers[0].token_mixer.log_slope.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ids = torch.randint(0, 101, (2, 20))
    model(ids, labels=ids).loss.backward()
    opt.step()
    assert not torch.equal(model.model.layers[0].token_mixer.log_slope.detach(), before)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16)
    slope = loaded.model.layers[0].token_mixer.log_slope
    assert slope.dtype == torch.float32 and loaded.model.layers[0].token_mixer.qkvu_proj.weight.dtype == torch.bfloat16
    torch.testing.assert_close(slope.detach(), model.model.layers[0].token_mixer.log_slope.detach())


def test_fresh_model_starts_from_the_neutral_init():
    """Identity taps and the TNL slopes at init, so each option starts as the baseline layer."""
    from pure_rl.models.ops import layer_log_decay

    model = tiny_model(**VARIANTS["all"])
    mixer = model.model.layers[1].token_mixer
    assert torch.equal(mixer.conv_weight[:, -1], torch.ones(mixer.conv_weight.shape[0]))
    assert mixer.conv_weight[:, :-1].abs().sum() == 0
    torch.testing.assert_close(mixer.log_decay(torch.device("cpu")).detach(), layer_log_decay(4, 1, 3))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"decay": "adaptive"}, "decay='adaptive' is not valid"),
        ({"gate_act": "relu"}, "gate_act='relu' is not valid"),
        ({"conv_size": 1}, "conv_size=1 must be 0"),
        ({"lrpe_layers": [5]}, "lrpe_layers has 5"),
        ({"lrpe_layers": [1], "layer_types": ["linear_attention", "full_attention"]}, "lrpe_layers has 1"),
        ({"conv_sise": 4}, "unknown fields \\['conv_sise'\\]"),
    ],
)
def test_bad_options_give_one_clear_line(overrides, message):
    error = override_error(overrides, num_hidden_layers=2)
    assert error is not None and "\n" not in error
    assert re.search(message, error)
    if "conv_sise" not in overrides:
        with pytest.raises(ValueError, match=message):
            LightningConfig(num_hidden_layers=2, **overrides)
    assert override_error({"conv_size": 4, "decay": "learned"}, num_hidden_layers=2) is None


def native_engine(name: str, tokenizer, device: str = "cpu", **kwargs):
    from pure_rl.rollout.native import NativeRolloutEngine

    model = variant_model(name, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id).to(device)
    return NativeRolloutEngine(model, tokenizer, device=device, **kwargs)


PROMPTS = ["What is 12 + 35?", "Let x = 9; then", "Compute 3 * 4 ="]


def problems():
    from pure_rl.core.interfaces import Problem

    return [Problem(id=f"p{i}", question=p, prompt=p) for i, p in enumerate(PROMPTS)]


def learner_logprobs(model, batch, temperature: float) -> torch.Tensor:
    """log softmax(logits / T) of each response token from one full forward (what the trainer recomputes)."""
    ids, mask = batch.input_ids()
    device = next(model.parameters()).device
    with torch.no_grad():
        logits = model(ids.to(device), attention_mask=mask.to(device), use_cache=False).logits.float().cpu()
    P = batch.prompt_ids.shape[1]
    logp = torch.log_softmax(logits[:, P - 1 : -1] / (temperature or 1.0), dim=-1)
    return logp.gather(-1, batch.response_ids[..., None]).squeeze(-1) * batch.response_mask


@pytest.mark.parametrize("name", VARIANTS)
def test_native_engine_logprobs_agree_with_the_learner(name):
    from pure_rl.core.interfaces import SamplingParams
    from tests.pure_rl.models.tiny import tiny_tokenizer

    engine = native_engine(name, tiny_tokenizer(), prefill_chunk_size=5)  # prompts span several prefill chunks
    sampling = SamplingParams(temperature=0.9, max_new_tokens=24, seed=3)
    batch = engine.generate(problems(), 2, sampling)
    assert batch.response_mask.sum() > 20
    gap = (learner_logprobs(engine.model, batch, sampling.temperature) - batch.old_logprobs).abs().max()
    assert gap <= 1e-4, f"rollout vs learner log-prob gap {gap:.2e} > 1e-4"


@pytest.mark.parametrize("name", ["conv4", "all"])
def test_native_greedy_matches_hf_generate(name):
    from pure_rl.core.interfaces import SamplingParams
    from tests.pure_rl.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    engine = native_engine(name, tokenizer)
    batch = engine.generate(problems()[:1], 1, SamplingParams(temperature=0.0, max_new_tokens=12))
    prompt = batch.prompt_ids[:1]
    ref = engine.model.generate(prompt, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    n = int(batch.response_mask[0].sum())
    assert n > 0 and torch.equal(batch.response_ids[0, :n], ref[0, prompt.shape[1] : prompt.shape[1] + n])


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["conv4", "lrpe0", "all"])
def test_cuda_graph_decode_matches_eager_decode(name):
    from pure_rl.core.interfaces import SamplingParams
    from tests.pure_rl.models.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    sampling = SamplingParams(temperature=0.0, max_new_tokens=32)
    graphed_engine = native_engine(name, tokenizer, device="cuda")
    eager_engine = native_engine(name, tokenizer, device="cuda", cuda_graphs=False)
    graphed = graphed_engine.generate(problems(), 2, sampling)
    eager = eager_engine.generate(problems(), 2, sampling)
    assert graphed.stats["rollout/cuda_graphs"] == 1.0
    assert torch.equal(graphed.response_ids, eager.response_ids)
    torch.testing.assert_close(graphed.old_logprobs, eager.old_logprobs, rtol=0, atol=1e-5)
    assert (learner_logprobs(graphed_engine.model, graphed, 0.0) - graphed.old_logprobs).abs().max() <= 1e-4


def test_every_option_round_trips_through_save_and_auto_load(tmp_path):
    model = variant_model("all")
    ids = torch.randint(0, 101, (2, 12))
    model.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert loaded.config.conv_size == 3 and loaded.config.lrpe_layers == [0, 2] and loaded.config.decay == "learned"
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
