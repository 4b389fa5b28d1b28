"""Per-head decay schedule of lightning attention (OpenNLPLab / MiniMax ALiBi-slope form)."""

from __future__ import annotations

import math

import torch

__all__ = ["alibi_slopes", "lightning_slopes"]


def alibi_slopes(num_heads: int) -> list[float]:
    """ALiBi slopes s_h = 2^(-8 (h + 1) / H) for h = 0..H-1.

    When H is not a power of two, the slopes of the closest lower power of two P come first, followed by every
    other slope of the 2P schedule (the interleaving of the two neighbouring powers used by ALiBi and MiniMax).
    """
    if num_heads < 1:
        raise ValueError(f"num_heads must be >= 1, got {num_heads}")

    def power_of_two(n: int) -> list[float]:
        start = 2.0 ** (-8.0 / n)
        return [start ** (i + 1) for i in range(n)]

    if num_heads & (num_heads - 1) == 0:
        return power_of_two(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: num_heads - closest]


def lightning_slopes(num_heads: int, layer_idx: int, num_layers: int) -> torch.Tensor:
    """Natural-log decay per head for one layer: log_decay_h = -s_h * f_l, a float32 tensor [H] of values <= 0.

    s_h are the ALiBi slopes (:func:`alibi_slopes`) and f_l = 1 - l / (L - 1) + 1e-5 is the layer factor of the
    OpenNLPLab lightning-attention code (the first layer decays most, the last almost not at all). With a single
    layer, l / (L - 1) is taken as 0. This is *not* fla's g_gamma = -(8 / H)(1 - l / L) h schedule.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    if not 0 <= layer_idx < num_layers:
        raise ValueError(f"layer_idx must be in [0, {num_layers - 1}] for num_layers={num_layers}, got {layer_idx}")
    depth = layer_idx / (num_layers - 1) if num_layers > 1 else 0.0
    factor = 1.0 - depth + 1e-5
    slopes = torch.tensor(alibi_slopes(num_heads), dtype=torch.float64)
    return (-slopes * factor).to(torch.float32)
