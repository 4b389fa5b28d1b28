"""What a run shows while it trains: a progress bar on a terminal, one log line per step everywhere else.

A run whose output goes to a file or a pipe (a batch job, ``nohup``, CI) gets no live bar, whose redraws such a log
cannot show, but a line per step with the same numbers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any

log = logging.getLogger("pure_rl.trainer")
SHOWN = (("reward", "reward", ".3f"), ("accuracy", "acc", ".2f"), ("heldout_accuracy", "held-out", ".3f"),
         ("response_length", "len", ".1f"), ("masked_rows", "masked", "d"))


def step_line(step: int, total: int, metrics: dict[str, Any]) -> str:
    """``step 3/60 reward 0.412 acc 0.62 len 21.4 masked 0``: the per-step numbers, NaN and missing ones left out."""
    parts = [f"step {step}/{total}"]
    for key, label, fmt in SHOWN:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            parts.append(f"{label} {format(int(value) if fmt == 'd' else value, fmt)}")
    return " ".join(parts)


@contextlib.contextmanager
def step_display(enabled: bool, total: int, completed: int) -> Iterator[Callable[[int, dict[str, Any]], None]]:
    """Yields ``show(step, metrics)``: a rich bar when ``enabled`` and stdout is a terminal, else one log line."""
    if not (enabled and sys.stdout.isatty()):
        yield lambda step, metrics: log.info(step_line(step, total, metrics))
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("[bold]PURE"), BarColumn(), TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
               TimeRemainingColumn()]
    with Progress(*columns, transient=True) as progress:
        bar = progress.add_task("train", total=total, completed=completed, info="")

        def show(step: int, metrics: dict[str, Any]) -> None:
            info = f"reward {metrics.get('reward', float('nan')):.3f} acc {metrics.get('accuracy', float('nan')):.2f}"
            progress.update(bar, completed=step, info=info)

        yield show
