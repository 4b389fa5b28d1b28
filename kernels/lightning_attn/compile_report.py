"""Registers, spills and shared memory of the lightning kernels on sm_90a, without a GPU.

Triton's CUDA backend compiles on a CPU-only machine; ptxas (shipped with Triton) reports per-kernel resources.
Pointer arguments get the 16-byte divisibility attribute the JIT gives real tensors, so loads vectorise and
pipeline as they do on the device.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import tempfile
from typing import Any

__all__ = ["compile_report", "lightning_attn_report"]


def compile_report(kernel, types: dict[str, str], constexprs: dict[str, Any], **options) -> dict[str, Any]:
    """Compile ``kernel`` for sm_90a; returns registers, spill bytes, shared memory and wgmma/mma counts."""
    import triton
    from triton.backends import nvidia
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    params = list(inspect.signature(kernel.fn).parameters)
    signature, attrs = {}, {}
    for i, name in enumerate(params):
        if name in constexprs:
            signature[name] = "constexpr"
        else:
            signature[name] = types[name]
            if types[name].startswith("*"):
                attrs[(i,)] = [["tt.divisibility", 16]]
    src = ASTSource(
        fn=kernel,
        signature=signature,
        constexprs={(params.index(k),): v for k, v in constexprs.items()},
        attrs=attrs,
    )
    compiled = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=options)
    ptx = compiled.asm["ptx"]
    ptxas = os.path.join(os.path.dirname(nvidia.__file__), "bin", "ptxas")
    with tempfile.NamedTemporaryFile("w", suffix=".ptx", delete=False) as f:
        f.write(ptx)
    try:
        out = subprocess.run(
            [ptxas, "-arch=sm_90a", "-v", f.name, "-o", os.devnull], capture_output=True, text=True, check=False
        )
    finally:
        os.unlink(f.name)
    text = out.stderr + out.stdout
    number = lambda pattern: int(m.group(1)) if (m := re.search(pattern, text)) else None
    return {
        "registers": number(r"Used (\d+) registers"),
        "spill_stores_bytes": number(r"(\d+) bytes spill stores"),
        "spill_loads_bytes": number(r"(\d+) bytes spill loads"),
        "shared_bytes": compiled.metadata.shared,
        "wgmma": ptx.count("wgmma.mma_async"),
        "mma_sync": ptx.count("mma.sync"),
    }


def lightning_attn_report(heads: int = 32, dim: int = 128) -> list[dict[str, Any]]:
    """ptxas resources of the chunk, segment-sum and decode kernels at the benchmark shape, printed and returned."""
    from .chunk import _chunk_attn_kernel
    from .decode import _consistent_step_kernel
    from .norms import _add_srms_kernel, _srms_gate_kernel
    from .segments import _segment_sum_kernel

    ptr = {n: "*bf16" for n in ("q", "k", "v", "o", "Sr", "kbuf", "vbuf", "vmask")}
    ptr.update({n: "*fp32" for n in ("g", "h0", "ht", "contrib", "S")})
    ptr.update(cu_seqlens="*i64", pos="*i32", scale="fp32", h0_shift="fp32", T="i32", seg_len="i32", NSEG="i32")
    ptr.update(stride_q="i32", stride_k="i32", stride_v="i32", stride_u="i32", eps="fp32")
    ptr.update({n: "*bf16" for n in ("h", "d", "h_out", "n_out", "u", "y")})
    base = {"H": heads, "DA": dim, "DC": dim, "BA": dim, "C": 64, "REVERSE": False, "VARLEN": False, "F32_DOT": False}
    chunk = dict(base, HAS_H0=False, STORE_HT=False, SEGMENTED=False, PAD=False)
    cases = [
        ("chunk C64 BV64 w4 s2", _chunk_attn_kernel, dict(chunk, BV=64, NV=2), {"num_warps": 4, "num_stages": 2}),
        ("chunk C64 BV64 w4 s3", _chunk_attn_kernel, dict(chunk, BV=64, NV=2), {"num_warps": 4, "num_stages": 3}),
        ("chunk C32 BV64 w4 s3", _chunk_attn_kernel, dict(chunk, C=32, BV=64, NV=2), {"num_warps": 4, "num_stages": 3}),
        ("chunk C64 BV128 w8 s2", _chunk_attn_kernel, dict(chunk, BV=128, NV=1), {"num_warps": 8, "num_stages": 2}),
        (
            "chunk C64 BV64 w4 s2 reverse+h0 (backward)",
            _chunk_attn_kernel,
            dict(chunk, BV=64, NV=2, REVERSE=True, HAS_H0=True, SEGMENTED=True),
            {"num_warps": 4, "num_stages": 2},
        ),
        ("segment sums BV128 w8", _segment_sum_kernel, dict(base, BV=128, NV=1), {"num_warps": 8, "num_stages": 2}),
        (
            "consistent decode step BV32 w4",
            _consistent_step_kernel,
            {
                "H": heads,
                "DA": dim,
                "DC": dim,
                "BA": dim,
                "BV": 32,
                "NV": dim // 32,
                "C": 64,
                "HAS_VMASK": True,
                "F32_DOT": False,
            },
            {"num_warps": 4, "num_stages": 1},
        ),
        ("add + SRMSNorm D2048", _add_srms_kernel, {"D": 2048, "BD": 2048, "HAS_D": True}, {"num_warps": 4}),
        ("SRMSNorm * gate D2048", _srms_gate_kernel, {"D": 2048, "BD": 2048}, {"num_warps": 4}),
    ]
    rows = []
    for name, kernel, constexprs, options in cases:
        row = {"kernel": name, **options, **compile_report(kernel, ptr, constexprs, **options)}
        print(row, flush=True)
        rows.append(row)
    return rows
