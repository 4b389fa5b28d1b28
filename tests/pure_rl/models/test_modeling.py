"""The lightning policy: incremental decoding equals the full forward, padding, HF integration (Auto, generate, beam
search, save/load, peft LoRA, gradient checkpointing), and the fp32 state under bf16 weights."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from kernels.lightning_attn import naive_recurrent_lightning_attn
from pure_rl.models import LightningCache, LightningConfig, LightningForCausalLM
from pure_rl.models.ops import batched_chunk_lightning_attn, lightning_attention, lightning_decode_step
from tests.pure_rl.models.tiny import HYBRID, tiny_config, tiny_model

ARCHS = {"lightning": None, "hybrid": HYBRID}


@pytest.mark.parametrize("arch", ARCHS)
def test_chunked_prefill_then_decode_equals_full_forward(arch):
    model = tiny_model(layer_types=ARCHS[arch])
    ids = torch.randint(0, 101, (3, 45))  # 45: not a multiple of chunk_size=16
    with torch.no_grad():
        full = model(ids, use_cache=False).logits
        cache = LightningCache(model.config)
        parts = [model(ids[:, :20], cache=cache).logits, model(ids[:, 20:37], cache=cache).logits]
        parts += [model(ids[:, t : t + 1], cache=cache).logits for t in range(37, 45)]
    assert cache.get_seq_length() == 45
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_left_padding_does_not_change_real_positions(arch):
    model = tiny_model(layer_types=ARCHS[arch])
    ids = torch.randint(3, 101, (1, 17))
    padded = torch.cat([torch.zeros(1, 6, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 6), torch.ones(1, 17)], dim=1).long()
    with torch.no_grad():
        ref = model(ids).logits
        out = model(padded, attention_mask=mask).logits[:, 6:]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_decode_step_is_the_fp32_recurrence():
    B, H, K, V = 2, 3, 8, 5
    q, k, v = (torch.randn(B, 7, H, d) for d in (K, K, V))
    log_decay = -torch.rand(H)
    state0 = torch.randn(B, H, K, V)
    ref_o, ref_state = naive_recurrent_lightning_attn(
        q, k, v, log_decay, initial_state=state0.clone(), output_final_state=True
    )
    state = state0.clone()
    outs = [
        lightning_decode_step(q[:, t : t + 1], k[:, t : t + 1], v[:, t : t + 1], log_decay, state) for t in range(7)
    ]
    torch.testing.assert_close(torch.cat(outs, dim=1), ref_o, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, ref_state, rtol=1e-5, atol=1e-5)
    chunk_o, chunk_state = lightning_attention(q, k, v, log_decay, state0.clone(), True, chunk_size=4)
    torch.testing.assert_close(chunk_o, ref_o, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(chunk_state, ref_state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("T", "chunk"), [(70, 16), (5, 64), (64, 64)])
def test_batched_chunk_path_matches_the_recurrence_with_gradients(T, chunk):
    B, H, K, V = 3, 4, 8, 6
    q, k, v = (torch.randn(B, T, H, d, requires_grad=True) for d in (K, K, V))
    h0 = torch.randn(B, H, K, V, requires_grad=True)
    log_decay = -2 * torch.rand(H)
    o, s = batched_chunk_lightning_attn(q, k, v, log_decay, h0, True, chunk_size=chunk)
    ro, rs = naive_recurrent_lightning_attn(q, k, v, log_decay, initial_state=h0, output_final_state=True)
    torch.testing.assert_close(o, ro, rtol=1e-5, atol=2e-5)
    torch.testing.assert_close(s, rs, rtol=1e-5, atol=2e-5)
    weights = torch.randn_like(o)
    grads = torch.autograd.grad((o * weights).sum() + s.sum(), (q, k, v, h0))
    ref = torch.autograd.grad((ro * weights).sum() + rs.sum(), (q, k, v, h0))
    for got, want in zip(grads, ref):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_greedy_matches_a_manual_argmax_loop(arch):
    model = tiny_model(layer_types=ARCHS[arch])
    ids = torch.randint(3, 101, (2, 9))
    out = model.generate(ids, max_new_tokens=7, do_sample=False, pad_token_id=0)
    seq = ids
    with torch.no_grad():
        for _ in range(7):
            nxt = model(seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)


def test_left_padded_generate_equals_unpadded_generate():
    model = tiny_model(layer_types=HYBRID)
    ids = torch.randint(3, 101, (1, 12))
    padded = torch.cat([torch.zeros(1, 4, dtype=torch.long), ids], dim=1)
    mask = torch.cat([torch.zeros(1, 4), torch.ones(1, 12)], dim=1).long()
    plain = model.generate(ids, max_new_tokens=6, do_sample=False, pad_token_id=0)[:, 12:]
    left = model.generate(padded, attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0)[:, 16:]
    assert torch.equal(plain, left)


def test_beam_search_runs_and_reorder_selects_rows():
    model = tiny_model(layer_types=HYBRID)
    out = model.generate(torch.randint(3, 101, (2, 6)), max_new_tokens=5, num_beams=3, do_sample=False, pad_token_id=0)
    assert out.shape == (2, 11)
    cache = LightningCache(model.config)
    with torch.no_grad():
        model(torch.randint(3, 101, (3, 5)), cache=cache)
    before = [s.clone() for s in cache.states if s is not None] + [k.clone() for k in cache.keys if k is not None]
    cache.reorder_cache(torch.tensor([2, 2, 0]))
    after = [s for s in cache.states if s is not None] + [k for k in cache.keys if k is not None]
    for b, a in zip(before, after):
        assert torch.equal(a, b[[2, 2, 0]])


def test_cache_refuses_crop_and_wrong_layer_use():
    cache = LightningCache(tiny_config(layer_types=HYBRID))
    with pytest.raises(NotImplementedError, match="cannot crop"):
        cache.crop(-1)
    with pytest.raises(ValueError, match="lightning layer"):
        cache.update(torch.zeros(1, 2, 1, 16), torch.zeros(1, 2, 1, 16), layer_idx=0)
    with pytest.raises(ValueError, match="no recurrent state"):
        cache.set_state(1, torch.zeros(1, 4, 16, 16))


def test_save_and_load_through_the_auto_classes(tmp_path):
    model = tiny_model(layer_types=HYBRID, tie_word_embeddings=True)
    ids = torch.randint(0, 101, (2, 12))
    model.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), LightningConfig)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, LightningForCausalLM)
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layer_types": ["linear_attention", "softmax"]}, "layer_types"),
        ({"layer_types": ["linear_attention"] * 2, "num_hidden_layers": 3}, "one type per layer"),
        ({"num_key_value_heads": 3}, "multiple of num_key_value_heads"),
        ({"chunk_size": 48}, "power of 2"),
    ],
)
def test_config_rejects_bad_values_with_a_clear_message(overrides, message):
    with pytest.raises(Exception, match=message):
        LightningConfig(**{"num_hidden_layers": 2, **overrides})


def test_lora_trains_only_adapters():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny_model(layer_types=HYBRID),
        LoraConfig(r=4, target_modules=["qkvu_proj", "out_proj", "q_proj", "v_proj", "gate_proj", "down_proj"]),
    )
    model.train()
    ids = torch.randint(0, 101, (2, 10))
    model(ids, labels=ids).loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all("lora_" in n for n in grads)
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)


def test_gradient_checkpointing_gives_the_same_gradients():
    ids = torch.randint(0, 101, (2, 20))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(layer_types=HYBRID).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(ids, labels=ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert model.model.layers[0].gradient_checkpointing
    torch.testing.assert_close(grads[0], grads[1])


def test_bf16_weights_keep_an_fp32_state_and_decay():
    model = tiny_model().to(torch.bfloat16)
    cache = LightningCache(model.config)
    with torch.no_grad():
        model(torch.randint(0, 101, (2, 8)), cache=cache)
        model(torch.randint(0, 101, (2, 1)), cache=cache)
    assert all(s.dtype == torch.float32 for s in cache.states)
    assert model.model.layers[0].token_mixer._log_decay.dtype == torch.float32


def test_wrong_inputs_fail_with_a_clear_message():
    model = tiny_model()
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
    with pytest.raises(TypeError, match="LightningCache"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=object())
    with pytest.raises(ValueError, match="2-D"):
        model(torch.zeros(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 1, 3, 3))


@pytest.mark.gpu
@pytest.mark.parametrize("arch", ARCHS)
def test_triton_path_matches_the_cpu_reference_path(arch):
    model = tiny_model(layer_types=ARCHS[arch], head_dim=32, chunk_size=64)
    ids = torch.randint(0, 101, (3, 150))
    with torch.no_grad():
        ref = model(ids).logits
        gpu = model.cuda()
        full = gpu(ids.cuda()).logits
        cache = LightningCache(gpu.config)
        parts = [gpu(ids[:, :100].cuda(), cache=cache).logits]
        parts += [gpu(ids[:, t : t + 1].cuda(), cache=cache).logits for t in range(100, 150)]
    torch.testing.assert_close(full.cpu(), ref, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=2e-3, atol=2e-3)


def test_decoding_with_autograd_on_keeps_gradients():
    model = tiny_model()
    ids = torch.randint(0, 101, (2, 9))
    cache = LightningCache(model.config)
    logits = [model(ids[:, :8], cache=cache).logits, model(ids[:, 8:], cache=cache).logits]
    torch.cat(logits, dim=1).sum().backward()
    assert model.model.layers[0].token_mixer.qkvu_proj.weight.grad.abs().sum() > 0
    with torch.no_grad():
        torch.testing.assert_close(torch.cat(logits, dim=1), model(ids).logits, rtol=1e-5, atol=1e-5)
