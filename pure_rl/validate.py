"""The trainer's boundary with its components: building them, and checking what PRMs and verifiers return.

A PRM's ``score_steps`` must return one row per response (else ``PluginOutputError``: a broken contract that no
masking can absorb); a row must be None (unscored) or hold one real, finite number per step inside the declared
``score_range``. Any other row is masked, never clamped or scored 0, and counted: ``malformed`` (wrong length,
not numbers, NaN / inf) and ``out_of_range``. A verifier must return one ``Verdict`` per response; anything else
in a row, or a graded verdict with a non-finite reward, masks that row (``bad_verdicts``).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Sequence
from typing import Any

from pure_rl.core.configio import ConfigError
from pure_rl.core.interfaces import Outcome, Verdict

log = logging.getLogger(__name__)


class PluginOutputError(ValueError):
    """A PRM or verifier returned output of the wrong structure (row count, type)."""


def build_component(registry: Any, name: str, kwargs: dict[str, Any], key: str) -> Any:
    """``registry.build(name, **kwargs)``; a constructor that refuses (a bad argument, a missing file or model, no
    Lean project, an unreachable server) becomes one ``ConfigError`` line naming ``key``."""
    try:
        return registry.build(name, **kwargs)
    except (TypeError, ValueError, OSError, RuntimeError, ImportError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{key}={name}: {first}") from exc


def check_score_range(prm: Any, key: str = "reward.prm") -> tuple[float, float]:
    """The PRM's declared ``score_range`` as (lo, hi), checked when the PRM is built: two finite numbers, lo < hi."""
    declared = getattr(prm, "score_range", None)
    if declared is None:
        raise ConfigError(f"{key}: {type(prm).__name__} declares no score_range; set score_range = (lo, hi), the range "
                          "its step scores lie in, e.g. (0.0, 1.0) for probabilities")
    try:
        if isinstance(declared, (str, bytes)):
            raise TypeError(declared)
        lo, hi = (float(x) for x in declared)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: score_range must be two numbers (lo, hi), got {declared!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"{key}: score_range must be finite with lo < hi, got {declared!r}")
    return lo, hi


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def check_prm_rows(raw: Any, step_counts: Sequence[int], score_range: tuple[float, float],
                   who: str = "reward.prm") -> tuple[list[list[float] | None], dict[str, int]]:
    """(rows, counts): each row as floats, or None where it is masked; counts of malformed / out-of-range rows.

    A score may sit on the range's ends up to a relative 1e-6 (float round-off of a sigmoid or a softmax).
    """
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence):
        raise PluginOutputError(f"{who}: score_steps returned a {type(raw).__name__}, not a list with one row per response")
    if len(raw) != len(step_counts):
        raise PluginOutputError(f"{who}: score_steps returned {len(raw)} rows for {len(step_counts)} responses "
                                "(it must return one row, or None, per response, in order)")
    lo, hi = score_range
    slack = 1e-6 * (hi - lo)
    rows: list[list[float] | None] = []
    counts = {"malformed": 0, "out_of_range": 0}
    for row, n in zip(raw, step_counts):
        if row is None:
            rows.append(None)
            continue
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or len(row) != n \
                or not all(_number(x) and math.isfinite(x) for x in row):
            counts["malformed"] += 1
            rows.append(None)
            continue
        if not all(lo - slack <= x <= hi + slack for x in row):
            counts["out_of_range"] += 1
            rows.append(None)
            continue
        rows.append([float(x) for x in row])
    return rows, counts


def check_verdicts(verdicts: Any, n: int, who: str = "reward.verifier") -> tuple[list[Verdict], int]:
    """(verdicts, bad): one ``Verdict`` per response; a row that is not one, or whose reward is not finite, becomes
    an INFRA verdict (masked) and is counted."""
    if isinstance(verdicts, (str, bytes)) or not isinstance(verdicts, Sequence):
        raise PluginOutputError(f"{who}: verify_batch returned a {type(verdicts).__name__}, not a list of Verdicts")
    if len(verdicts) != n:
        raise PluginOutputError(f"{who}: verify_batch returned {len(verdicts)} verdicts for {n} responses")
    out, bad = [], 0
    for v in verdicts:
        if not isinstance(v, Verdict):
            reason = f"not a Verdict: {type(v).__name__}"
        elif v.outcome.graded and not (_number(v.reward) and math.isfinite(v.reward)):
            reason = f"non-finite reward {v.reward!r}"
        else:
            out.append(v)
            continue
        bad += 1
        out.append(Verdict(None, None, {"reason": f"invalid verdict ({reason})"}, outcome=Outcome.INFRA))
    return out, bad


class WarnOnce:
    """Warnings a run prints once, however many steps hit them (the counts go to metrics.jsonl every step)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, key: str, message: str, *args: Any) -> None:
        if key not in self.seen:
            self.seen.add(key)
            log.warning(message + " (warned once per run; metrics.jsonl counts it per step)", *args)
