"""Lightning attention (linear attention with a constant per-head decay): torch references and Triton kernels.

The references and the slope schedule import only torch; the Triton kernels load on first use, so importing this
package does not import Triton.
"""

from __future__ import annotations

import importlib
from typing import Any

from .naive import naive_chunk_lightning_attn, naive_recurrent_lightning_attn
from .slopes import alibi_slopes, lightning_slopes

_LAZY = {
    "chunk_lightning_attn": ".chunk",
    "fused_recurrent_lightning_attn": ".fused_recurrent",
    "fused_recurrent_lightning_attn_step": ".fused_recurrent",
}

__all__ = [
    "alibi_slopes",
    "chunk_lightning_attn",
    "fused_recurrent_lightning_attn",
    "fused_recurrent_lightning_attn_step",
    "lightning_slopes",
    "naive_chunk_lightning_attn",
    "naive_recurrent_lightning_attn",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
