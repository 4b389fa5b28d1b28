"""Decode throughput of the lightning policy's native rollout engine against HF ``generate`` and a softmax peer.

    python -m pure_rl.rollout.bench_decode                      # H100: ~1B models, batch 64, contexts 1K/8K/16K/32K
    python -m pure_rl.rollout.bench_decode --quick              # CPU smoke run with a tiny model (no timing claims)

Rows (same card, same batch, same context, random weights, bf16, sampling at T = 1, N new tokens per row):
- native: ``NativeRolloutEngine`` after a real chunked prefill of the context (fused decode, one CUDA graph per step
  on CUDA); at the first context also with top-p 0.95, with graphs off, and with the model's fp32-state step;
- hf-generate: ``model.generate`` on the same lightning model, continuing from the same prefilled ``LightningCache``;
- qwen2-sdpa-static: a Qwen2-architecture model of the same size (GQA, 2 K/V heads) decoding through ``generate``
  with SDPA and a ``StaticCache`` of context + N; its K/V for the context is filled with random values instead of
  a prefill (decode reads every cached K/V whatever its values, so the cost is the same).
Also printed: rollout-vs-learner log-prob agreement of the engine (bf16 weights on CUDA, fp32 on CPU).
Decode tokens/s = batch * N / decode wall time (prefill excluded), median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import statistics
import time
from types import SimpleNamespace

import torch

from pure_rl.core.interfaces import SamplingParams
from pure_rl.models import LightningConfig, LightningForCausalLM
from pure_rl.models.modeling_lightning import _CACHE_FIELD
from pure_rl.rollout.native import NativeRolloutEngine

# generate() takes its cache under the name the installed transformers speaks (past_key_values before the 5.2x
# rename, cache after); passing the other name leaves it an unused model kwarg, which 5.17 rejects.
CACHE_KWARG = _CACHE_FIELD

ONE_B = {
    "hidden_size": 2048,
    "intermediate_size": 4096,
    "num_hidden_layers": 20,
    "num_attention_heads": 16,
    "vocab_size": 32000,
}
QWEN_1B = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 20,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "vocab_size": 32000,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 256,
}
TINY_QWEN = {
    "hidden_size": 64,
    "intermediate_size": 160,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def n_params(model: torch.nn.Module) -> float:
    return sum(p.numel() for p in model.parameters()) / 1e9


def build_lightning(sizes: dict, dtype: torch.dtype, device: torch.device) -> LightningForCausalLM:
    torch.manual_seed(0)
    config = LightningConfig(**sizes, pad_token_id=0, eos_token_id=None)
    with torch.device(device):
        return LightningForCausalLM(config).to(dtype=dtype).eval()


def build_qwen(sizes: dict, dtype: torch.dtype, device: torch.device):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(**sizes, max_position_embeddings=1 << 17, pad_token_id=0, attn_implementation="sdpa")
    with torch.device(device):
        return Qwen2ForCausalLM(config).to(dtype=dtype).eval()


def native_engine(model, device: torch.device, graphs: bool | None, fused: bool | None = None) -> NativeRolloutEngine:
    # No EOS: every row decodes exactly N tokens, so rows/s are comparable across engines.
    tokenizer = SimpleNamespace(pad_token_id=0, eos_token_id=None)
    engine = NativeRolloutEngine(model, tokenizer, device=device, cuda_graphs=graphs, fused_decode=fused)
    engine.eos_ids = engine.eos_ids[:0]
    return engine


def native_decode_s(engine: NativeRolloutEngine, prefilled, new_tokens: int, repeats: int, top_p: float) -> float:
    """Decode wall seconds from one prefill (the engine's decode leaves the prefilled cache unchanged)."""
    sampling = SamplingParams(temperature=1.0, top_p=top_p, max_new_tokens=new_tokens, seed=0)

    def run():
        with torch.no_grad():
            engine._decode(prefilled, sampling)

    return timed(run, engine.device, repeats)


def hf_generate_s(model, cache, ids: torch.Tensor, new_tokens: int, repeats: int) -> float:
    """``generate`` continuing from a cache that holds all but the last context token."""

    def run():
        with torch.no_grad():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                pad_token_id=0,
                **{CACHE_KWARG: copy.deepcopy(cache)},
            )

    return timed(run, ids.device, repeats)


def qwen_static_s(model, batch: int, context: int, new_tokens: int, repeats: int, device: torch.device) -> float:
    from transformers import StaticCache

    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    cache = StaticCache(config=cfg, max_cache_len=context + new_tokens)
    cache.early_initialization(batch, cfg.num_key_value_heads, head_dim, model.dtype, device)
    for layer in cache.layers:
        layer.keys[:, :, : context - 1].normal_(std=0.5)
        layer.values[:, :, : context - 1].normal_(std=0.5)
    ids = torch.randint(1, cfg.vocab_size, (batch, context), device=device)

    def run():
        for layer in cache.layers:
            layer.cumulative_length.fill_(context - 1)
        with torch.no_grad():
            model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                pad_token_id=0,
                disable_compile=True,  # eager, like the other rows (generate would auto-compile a static cache)
                **{CACHE_KWARG: cache},
            )

    return timed(run, device, repeats)


def logprob_agreement(
    model, device: torch.device, batch: int, prompt_len: int, new_tokens: int, fused: bool | None = None
) -> tuple[float, float]:
    """(max, mean) |rollout log-prob - learner log-prob| over sampled tokens (learner = one full chunked forward)."""
    engine = native_engine(model, device, graphs=None, fused=fused)
    vocab = model.config.vocab_size
    ids = torch.randint(1, vocab, (batch, prompt_len), device=device)
    mask = torch.ones_like(ids, dtype=torch.bool)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=new_tokens, seed=1)
    with torch.no_grad():
        out_ids, logps, _, _ = engine._decode(engine._prefill(ids, mask), sampling)
        full = model(torch.cat([ids, out_ids], dim=1), use_cache=False).logits.float()
    learner = torch.log_softmax(full[:, prompt_len - 1 : -1], -1).gather(-1, out_ids[..., None]).squeeze(-1)
    diff = (learner - logps).abs()
    return float(diff.max()), float(diff.mean())


def versions(device: torch.device) -> str:
    import transformers

    try:
        import triton

        triton_v = triton.__version__
    except ImportError:
        triton_v = "absent"
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{card}; torch {torch.__version__}, triton {triton_v}, transformers {transformers.__version__}; {stamp}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny models and contexts (CPU smoke run)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--contexts", default="1024,8192,16384,32768", help="the first also times decode without graphs"
    )
    parser.add_argument("--compare-contexts", default="16384,32768", help="contexts where HF and Qwen2 are timed")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--qwen-new-tokens", type=int, default=32, help="new tokens per Qwen2 run (slow per step)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if args.quick:
        args.batch, args.contexts, args.compare_contexts, args.new_tokens, args.repeats = 4, "64,256", "256", 8, 1
        args.qwen_new_tokens = 8
    sizes, qwen_sizes = (TINY, TINY_QWEN) if args.quick else (ONE_B, QWEN_1B)
    contexts = [int(c) for c in args.contexts.split(",")]
    compare = {int(c) for c in args.compare_contexts.split(",") if c}

    print(f"# {versions(device)}", flush=True)
    model = build_lightning(sizes, dtype, device)
    qwen = build_qwen(qwen_sizes, dtype, device)
    print(f"params: lightning {n_params(model):.2f}B, qwen2 {n_params(qwen):.2f}B", flush=True)
    graphed = native_engine(model, device, graphs=None)
    variants = {}  # extra native rows, timed at the first context only
    if graphed.cuda_graphs:
        variants = {
            "native_eager": native_engine(model, device, graphs=False),
            "native_fp32_state_step": native_engine(model, device, graphs=None, fused=False),
        }
    rows: list[dict] = []
    B, N = args.batch, args.new_tokens
    for ctx in contexts:
        ids = torch.randint(1, sizes["vocab_size"], (B, ctx), device=device)
        mask = torch.ones_like(ids, dtype=torch.bool)
        sync(device)
        t0 = time.perf_counter()
        with torch.no_grad():
            prefilled = graphed._prefill(ids, mask)  # contexts are multiples of the chunk: nothing left to feed
        sync(device)
        row = {"context": ctx, "prefill_s": time.perf_counter() - t0}
        row["native"] = B * N / native_decode_s(graphed, prefilled, N, args.repeats, top_p=1.0)
        if ctx == contexts[0]:
            row["native_top_p_0.95"] = B * N / native_decode_s(graphed, prefilled, N, args.repeats, top_p=0.95)
            for name, engine in variants.items():
                row[name] = B * N / native_decode_s(engine, prefilled, N, args.repeats, top_p=1.0)
        if ctx in compare:
            # The cache holds the whole context, so generate() is fed one more token (the first sampled one).
            next_ids = torch.cat([ids, prefilled.logits.argmax(-1, keepdim=True)], dim=1)
            row["hf_generate"] = B * N / hf_generate_s(model, prefilled.cache, next_ids, N, max(1, args.repeats - 1))
        del prefilled, ids, mask
        if device.type == "cuda":
            torch.cuda.empty_cache()
        rows.append(row)
        print(json.dumps(row), flush=True)
    default = "fused" if device.type == "cuda" else "fp32_state_step"  # the engine's default decode here
    gaps = {default: logprob_agreement(model, device, batch=8, prompt_len=300, new_tokens=64)}
    if device.type == "cuda":
        gaps["fp32_state_step"] = logprob_agreement(model, device, 8, 300, 64, fused=False)
    for name, (mx, mean) in gaps.items():
        print(
            f"log-prob agreement ({dtype}, {name} rollout vs learner): max |diff| {mx:.3e}, mean {mean:.3e}", flush=True
        )
    if dtype != torch.float32:
        fp32_model = build_lightning(sizes, torch.float32, device)
        gaps["fp32_weights"] = logprob_agreement(fp32_model, device, batch=8, prompt_len=300, new_tokens=64)
        print(f"log-prob agreement (fp32 weights): max |diff| {gaps['fp32_weights'][0]:.3e}", flush=True)
        del fp32_model
    for row in rows:
        if row["context"] in compare:
            seconds = qwen_static_s(qwen, B, row["context"], args.qwen_new_tokens, max(1, args.repeats - 1), device)
            row["qwen2_sdpa_static"] = B * args.qwen_new_tokens / seconds
            print(json.dumps(row), flush=True)
    print_table(rows, B, N, gaps, dtype, device)
    if args.json:
        with open(args.json, "w") as f:
            out = {"versions": versions(device), "batch": B, "new_tokens": N, "logprob_gaps": gaps, "rows": rows}
            json.dump(out, f, indent=1)


def print_table(rows: list[dict], batch: int, new_tokens: int, gaps: dict, dtype: torch.dtype, device) -> None:
    native = [r["native"] for r in rows]
    spread = (max(native) - min(native)) / max(native)
    print(f"\n## decode tokens/s, batch {batch}, {new_tokens} new tokens, {dtype}; {versions(device)}\n")
    print("| context | prefill s | native | hf generate | qwen2 sdpa static | native/hf | native/qwen2 |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        hf, qw = r.get("hf_generate"), r.get("qwen2_sdpa_static")
        cells = [
            f"{r['context']}",
            f"{r['prefill_s']:.2f}",
            f"{r['native']:,.0f}",
            f"{hf:,.0f}" if hf else "-",
            f"{qw:,.0f}" if qw else "-",
            f"{r['native'] / hf:.1f}x" if hf else "-",
            f"{r['native'] / qw:.1f}x" if qw else "-",
        ]
        print("| " + " | ".join(cells) + " |")
    first = rows[0]
    for key in sorted(k for k in first if k.startswith("native_")):
        print(f"{key} at {first['context']}: {first[key]:,.0f} tokens/s")
    print(f"\nnative tokens/s spread over contexts: {100 * spread:.1f}% (target <= 10%)")
    for name, (mx, mean) in gaps.items():
        print(f"rollout vs learner log-prob |diff| ({name}): max {mx:.2e}, mean {mean:.2e}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
