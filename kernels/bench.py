"""Kernel benchmarks: `python -m kernels.bench lightning_attn [--out FILE.json] [--sweep | --compile-report]`.

Times (triton.testing.do_bench medians, ms) our lightning-attention kernels against the physical floor and, when
installed, fla (`fla-core`), the official `lightning-attn` package and SDPA flash attention, all in one run on one
GPU, and writes the table to JSON. Shapes follow issue 8: B * T = 65,536 tokens, H = 32, D = 128, bf16.
`--compile-report` needs no GPU: it compiles the kernels for sm_90a and prints ptxas' registers and spills.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from collections.abc import Callable
from typing import Any

import torch


def _do_bench(fn: Callable[[], Any], grad_to_none=None, rep: int = 100) -> float:
    import triton.testing

    return float(triton.testing.do_bench(fn, warmup=25, rep=rep, grad_to_none=grad_to_none, return_mode="median"))


def copy_bandwidth(device: torch.device) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written (1 GiB buffers)."""
    src = torch.randn(256 * 1024 * 1024, device=device)
    dst = torch.empty_like(src)
    ms = _do_bench(lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / (ms * 1e-3)


def _peer_fns(q, k, v, g, scale):
    """(name, fwd_fn, fwd_bwd_fn) for each installed peer; missing peers are reported, not fatal."""
    peers, missing = [], []
    try:
        from fla.ops.simple_gla import chunk_simple_gla

        def fla_fwd():
            return chunk_simple_gla(q, k, v, g_gamma=g, scale=scale)[0]

        peers.append(("fla", fla_fwd))
    except ImportError as e:  # optional comparison
        missing.append(f"fla: {e}")
    try:
        from lightning_attn.ops import lightning_attn_func

        qh, kh, vh = (t.transpose(1, 2).contiguous().detach().requires_grad_() for t in (q, k, v))
        slope = (-g).reshape(-1, 1, 1).contiguous()

        def la_fwd():
            return lightning_attn_func(qh, kh, vh, slope)

        peers.append(("lightning_attn", la_fwd))
    except ImportError as e:
        missing.append(f"lightning_attn: {e}")
    from torch.nn.attention import SDPBackend, sdpa_kernel

    qs, ks, vs = (t.transpose(1, 2).detach().requires_grad_() for t in (q, k, v))

    def sdpa_fwd():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return torch.nn.functional.scaled_dot_product_attention(qs, ks, vs, is_causal=True)

    peers.append(("sdpa_flash", sdpa_fwd))
    return peers, missing


def _time_fwd_bwd(fwd: Callable[[], torch.Tensor], leaves) -> tuple[float, float]:
    with torch.no_grad():
        t_fwd = _do_bench(fwd)
    out = fwd()
    do = torch.randn_like(out)
    del out

    def step():
        fwd().backward(do)

    return t_fwd, _do_bench(step, grad_to_none=leaves)


def bench_lightning_attn(args) -> dict[str, Any]:
    from kernels.lightning_attn import chunk as chunk_mod
    from kernels.lightning_attn import chunk_lightning_attn, fused_recurrent_lightning_attn_step, lightning_slopes

    dev = torch.device("cuda")
    torch.manual_seed(0)
    bw = copy_bandwidth(dev)
    H, D = args.heads, args.dim
    scale = D**-0.5
    g = lightning_slopes(H, 0, 24).to(dev)
    rows, missing = [], []
    res: dict[str, Any] = {
        "op": "lightning_attn",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(dev),
        "versions": _versions(),
        "copy_bandwidth_TBps": bw / 1e12,
        "shape": {"tokens": args.tokens, "H": H, "D": D, "dtype": "bfloat16", "scale": scale},
        "tuning": dict(chunk_mod.TUNING),
        "rows": rows,
    }
    for T in args.seqlens:
        B = args.tokens // T
        q, k, v = (torch.randn(B, T, H, D, device=dev, dtype=torch.bfloat16).requires_grad_() for _ in range(3))
        floor_ms = 8 * B * H * T * D / bw * 1e3
        row: dict[str, Any] = {
            "T": T,
            "B": B,
            "floor_fwd_ms": floor_ms,
            "floor_fwd_ms_3TBps": 8 * B * H * T * D / 3e12 * 1e3,
        }
        ours = lambda q=q, k=k, v=v: chunk_lightning_attn(q, k, v, g, scale)[0]
        row["ours_fwd_ms"], row["ours_fwd_bwd_ms"] = _time_fwd_bwd(ours, [q, k, v])
        row["ours_fraction_of_floor"] = floor_ms / row["ours_fwd_ms"]
        row["ours_achieved_TBps"] = 8 * B * H * T * D / (row["ours_fwd_ms"] * 1e-3) / 1e12
        plan = chunk_mod.forward_plan(q, v)
        row["plan"] = plan
        if plan["segments"] > 1:  # the extra k, v read of the segment split, timed on its own
            seg = plan["segment_len"]
            with torch.no_grad():
                row["ours_segment_sums_ms"] = _do_bench(lambda k=k, v=v, seg=seg: chunk_mod.segment_sums(k, v, g, seg))
        if not args.no_peers:
            peers, missing = _peer_fns(q, k, v, g, scale)
            for name, fwd in peers:
                if name == "sdpa_flash" and T > args.sdpa_max_t:
                    continue
                try:
                    row[f"{name}_fwd_ms"], row[f"{name}_fwd_bwd_ms"] = _time_fwd_bwd(fwd, None)
                except Exception as e:  # noqa: BLE001 - a peer failing on this stack must not lose our numbers
                    row[f"{name}_error"] = f"{type(e).__name__}: {str(e)[:200]}"
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write(args.out, res)  # a run cut short by a time limit keeps the rows it finished
        q = k = v = None  # free before the next shape
        torch.cuda.empty_cache()
    # Decode: one token for B sequences, fp32 states updated in place.
    Bd = args.decode_batch
    state = torch.randn(Bd, H, D, D, device=dev)
    qd, kd, vd = (torch.randn(Bd, H, D, device=dev, dtype=torch.bfloat16) for _ in range(3))
    step_ms = _do_bench(lambda: fused_recurrent_lightning_attn_step(qd, kd, vd, g, state, scale))
    decode = {"B": Bd, "H": H, "D": D, "step_ms": step_ms, "floor_ms": 8 * Bd * H * D * D / bw * 1e3}
    decode["ratio_to_floor"] = step_ms / decode["floor_ms"]
    # The chunk-consistent step (rollout decode): reads the bf16 state and the open chunk's k, v; times C steps so
    # the chunk-closing update is in the mean.
    from kernels.lightning_attn.decode import ChunkDecodeState, chunk_consistent_step

    cstate = ChunkDecodeState(Bd, H, D, D, torch.bfloat16, dev)
    cstate.load(state)
    cstate.kbuf.normal_()
    cstate.vbuf.normal_()
    pos = torch.zeros(1, dtype=torch.int32, device=dev)
    flat = [t.reshape(Bd, H * D) for t in (qd, kd, vd)]
    C = cstate.chunk

    def chunk_of_steps():
        for _ in range(C):
            chunk_consistent_step(*flat, g, cstate, pos, scale)
            pos.add_(1).remainder_(C)

    cons_ms = _do_bench(chunk_of_steps) / C
    # per step: Sr (2 B/elem), the open chunk's k and v (on average half of C rows), and every C steps S read and
    # written in fp32 plus Sr written
    cons_bytes = Bd * H * D * D * 2 + Bd * H * (C / 2) * 2 * D * 2 + Bd * H * D * D * (4 + 4 + 2) / C
    decode.update(consistent_step_ms=cons_ms, consistent_floor_ms=cons_bytes / bw * 1e3)
    decode["consistent_ratio_to_floor"] = cons_ms / decode["consistent_floor_ms"]
    fwd = [r["ours_fwd_ms"] for r in rows]
    both = [r["ours_fwd_bwd_ms"] for r in rows]
    res.update(
        decode=decode,
        fwd_max_over_min=max(fwd) / min(fwd),
        fwd_bwd_max_over_min=max(both) / min(both),
        missing_peers=missing,
    )
    return res


def _write(path: str, res: Any) -> None:
    with open(path, "w") as f:
        json.dump(res, f, indent=1)


def sweep_lightning_attn(args) -> list[dict[str, Any]]:
    """Time the forward under several block/launch settings at the shortest and longest T."""
    from kernels.lightning_attn import chunk as chunk_mod
    from kernels.lightning_attn import chunk_lightning_attn, lightning_slopes

    dev = torch.device("cuda")
    H, D = args.heads, args.dim
    g = lightning_slopes(H, 0, 24).to(dev)
    default = dict(chunk_mod.TUNING)
    configs = []
    for c, bv, warps, stages, pps, nreg in [
        (64, 64, 4, 2, 2, 0),
        (64, 64, 4, 2, 1, 0),
        (64, 64, 4, 2, 3, 0),
        (64, 64, 4, 3, 2, 0),
        (64, 64, 4, 2, 2, 232),
        (64, 128, 8, 2, 2, 0),
        (64, 128, 8, 2, 1, 0),
        (64, 128, 8, 3, 1, 0),
        (32, 64, 4, 3, 2, 0),
    ]:
        configs.append(
            dict(default, chunk=c, block_v=bv, num_warps=warps, num_stages=stages, programs_per_sm=pps, maxnreg=nreg)
        )
    results = []
    for T in (min(args.seqlens), max(args.seqlens)):
        B = args.tokens // T
        q, k, v = (torch.randn(B, T, H, D, device=dev, dtype=torch.bfloat16).requires_grad_() for _ in range(3))
        for cfg in configs:
            if T == min(args.seqlens) and cfg["programs_per_sm"] != default["programs_per_sm"]:
                continue  # no segments at short T: programs_per_sm has no effect there
            chunk_mod.TUNING.update(cfg)
            try:
                with torch.no_grad():
                    fwd = _do_bench(lambda q=q, k=k, v=v: chunk_lightning_attn(q, k, v, g, D**-0.5)[0])
                res = dict(cfg, T=T, fwd_ms=fwd, segments=chunk_mod.forward_plan(q, v)["segments"])
            except Exception as e:  # noqa: BLE001 - a config that fails to compile is a result, not a crash
                res = dict(cfg, T=T, error=f"{type(e).__name__}: {str(e)[:160]}")
            print(json.dumps(res), flush=True)
            results.append(res)
        q = k = v = None
        torch.cuda.empty_cache()
    chunk_mod.TUNING.update(default)
    return results


def _versions() -> dict[str, str]:
    import triton

    out = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": str(torch.version.cuda),
    }
    for name in ("fla", "lightning_attn"):
        try:
            mod = __import__(name)
            out[name] = getattr(mod, "__version__", "installed")
        except ImportError:
            pass
    return out


def _print_table(res: dict[str, Any]) -> None:
    print(f"\n{res['device']}  {res['date']}  copy {res['copy_bandwidth_TBps']:.2f} TB/s  {res['versions']}")
    cols = [
        "floor_fwd_ms",
        "ours_fwd_ms",
        "ours_fwd_bwd_ms",
        "ours_fraction_of_floor",
        "fla_fwd_ms",
        "fla_fwd_bwd_ms",
        "lightning_attn_fwd_ms",
        "lightning_attn_fwd_bwd_ms",
        "sdpa_flash_fwd_ms",
        "sdpa_flash_fwd_bwd_ms",
    ]
    print("T      B   " + " ".join(f"{c.replace('_ms', ''):>14}" for c in cols))
    for r in res["rows"]:
        cells = [f"{r[c]:14.3f}" if isinstance(r.get(c), float) else f"{'-':>14}" for c in cols]
        print(f"{r['T']:<6} {r['B']:<3} " + " ".join(cells))
    d = res["decode"]
    print(
        f"decode step B={d['B']}: {d['step_ms'] * 1e3:.1f} us, floor {d['floor_ms'] * 1e3:.1f} us, "
        f"x{d['ratio_to_floor']:.2f}; consistent step {d['consistent_step_ms'] * 1e3:.1f} us, floor "
        f"{d['consistent_floor_ms'] * 1e3:.1f} us; fwd max/min {res['fwd_max_over_min']:.3f}, "
        f"fwd+bwd max/min {res['fwd_bwd_max_over_min']:.3f}"
    )
    for r in res["rows"]:
        if "ours_segment_sums_ms" in r:
            print(
                f"T={r['T']}: {r['plan']['segments']} segments, segment sums alone {r['ours_segment_sums_ms']:.3f} ms"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m kernels.bench", description=__doc__.splitlines()[0])
    p.add_argument("op", choices=["lightning_attn"])
    p.add_argument("--out", default="bench_lightning_attn.json", help="JSON file for the table")
    p.add_argument("--tokens", type=int, default=65536, help="B * T, fixed across T")
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument(
        "--seqlens",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1024, 2048, 4096, 8192, 16384, 32768, 65536],
    )
    p.add_argument("--decode-batch", type=int, default=64)
    p.add_argument("--sdpa-max-t", type=int, default=16384, help="skip SDPA above this T (it is quadratic)")
    p.add_argument("--no-peers", action="store_true", help="time only our kernels")
    p.add_argument("--sweep", action="store_true", help="time block/launch settings instead of the table")
    p.add_argument("--compile-report", action="store_true", help="no GPU needed: ptxas registers/spills for sm_90a")
    p.add_argument("--once", action="store_true", help="run our forward once per --seqlens value (for a profiler)")
    p.add_argument(
        "--tuning", type=json.loads, default=None, help='JSON overrides of chunk.TUNING, e.g. {"block_v": 32}'
    )
    args = p.parse_args(argv)
    if args.tuning:
        from kernels.lightning_attn import chunk as chunk_mod

        unknown = set(args.tuning) - set(chunk_mod.TUNING)
        if unknown:
            p.error(f"--tuning keys {sorted(unknown)} unknown; valid: {sorted(chunk_mod.TUNING)}")
        chunk_mod.TUNING.update(args.tuning)
    if args.compile_report:
        from kernels.lightning_attn.compile_report import lightning_attn_report

        res = lightning_attn_report(args.heads, args.dim)
        _write(args.out, res)
        return 0
    if not torch.cuda.is_available():
        print("kernels.bench needs a CUDA GPU (timings on the Triton interpreter mean nothing)", file=sys.stderr)
        return 2
    if args.once:
        from kernels.lightning_attn import chunk_lightning_attn, lightning_slopes

        g = lightning_slopes(args.heads, 0, 24).cuda()
        for T in args.seqlens:
            q, k, v = (
                torch.randn(args.tokens // T, T, args.heads, args.dim, device="cuda", dtype=torch.bfloat16)
                for _ in range(3)
            )
            chunk_lightning_attn(q, k, v, g, args.dim**-0.5)
        torch.cuda.synchronize()
        return 0
    if any(args.tokens % t for t in args.seqlens):
        p.error(f"--tokens {args.tokens} must be a multiple of every --seqlens value {args.seqlens}")
    if args.sweep:
        res: Any = {
            "sweep": sweep_lightning_attn(args),
            "versions": _versions(),
            "device": torch.cuda.get_device_name(0),
        }
    else:
        res = bench_lightning_attn(args)
        _print_table(res)
    _write(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
