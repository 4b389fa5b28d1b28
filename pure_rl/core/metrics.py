"""The shared metrics: outcome of a sample, accuracy, unbiased pass@k, maj@k, 95% confidence intervals.

Public API (stable; ``evals.run``, ``evals.report``, ``lean_env.minif2f`` and the trainer's held-out evaluation use it):

- ``sample_outcome(verdict) -> "correct" | "wrong" | "timeout" | "infra"``: the verifier's ``Verdict.outcome``;
  outcomes that are not ``Outcome.graded`` (timeouts, infrastructure failures) are never wrong answers: they are
  left out of every denominator and counted apart, the same rule the trainer's reward masking reads.
- ``pass_at_k(n, c, k)``: Chen et al. (2021) ``1 - C(n-c, k) / C(n, k)`` (the one implementation).
- ``majority_correct(samples, k) -> bool | None``: maj@k of one problem over its first ``k`` graded samples.
- ``bootstrap_ci(values, confidence=0.95, resamples=2000, seed=0) -> (low, high)``: percentile bootstrap of the mean.
- ``wilson_ci(successes, n, confidence=0.95) -> (low, high)``: Wilson score interval of a proportion.
- ``metric_with_ci(values)``: the mean with a CI: Wilson when every value is 0 or 1 (a proportion: 0/n gets a real
  upper bound instead of the bootstrap's [0, 0]), the bootstrap otherwise (pass@k's fractional values).
- ``summarize(records, ks, group_keys) -> dict``: every metric with its CI, overall and per group (split, subject, level).

A *record* is one problem's line of ``predictions.jsonl``: ``{"id", "gold", "meta", "samples": [{"outcome", "answer_key",
...}]}``; ``answer_key`` is the normalised extracted answer that maj@k votes on (None: no answer, never a vote).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from pure_rl.core.interfaces import Outcome, Verdict

OUTCOMES = tuple(o.value for o in Outcome)
GRADED = tuple(o.value for o in Outcome if o.graded)

__all__ = [
    "OUTCOMES", "bootstrap_ci", "majority_correct", "metric_with_ci", "pass_at_k", "problem_counts", "sample_outcome",
    "summarize", "wilson_ci",
]


def sample_outcome(verdict: Verdict) -> str:
    """The verdict's outcome as a plain string (``correct``, ``wrong``, ``timeout``, ``infra``): decided by the
    verifier (``evals.verifier.math_verdict``, ``lean_env.verifier.lean_outcome``), never re-read from its info."""
    return verdict.outcome.value


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)`` for n samples of which c are correct."""
    if not 0 <= c <= n or k < 1:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and k >= 1, got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def problem_counts(samples: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """(n graded samples, c correct ones) of one problem; timeouts and infra failures are not samples here."""
    graded = [s for s in samples if s["outcome"] in GRADED]
    return len(graded), sum(s["outcome"] == "correct" for s in graded)


def majority_correct(samples: Sequence[Mapping[str, Any]], k: int) -> bool | None:
    """maj@k of one problem: the most frequent ``answer_key`` among its first ``k`` graded samples, and its verdict.

    Samples without an answer cast no vote (all silent -> wrong); ties go to the answer seen first. The verdict of
    the winning answer is that of its first sample (samples with one key were graded alike). None when fewer than
    ``k`` graded samples exist.
    """
    graded = [s for s in samples if s["outcome"] in GRADED][:k]
    if len(graded) < k:
        return None
    votes = Counter(s["answer_key"] for s in graded if s.get("answer_key") is not None)
    if not votes:
        return False
    top = max(votes.values())
    winner = next(s for s in graded if s.get("answer_key") is not None and votes[s["answer_key"]] == top)
    return winner["outcome"] == "correct"


def bootstrap_ci(values: Sequence[float], confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-problem ``values``: resample problems with replacement.

    means[r] = mean(values[idx[r]]), idx[r] ~ Uniform{0..N-1}^N; CI = quantiles (a/2, 1-a/2) of means, a = 1-confidence.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = np.asarray(values, dtype=np.float64)  # [N]
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    step = max(1, 4_000_000 // x.size)  # bound the [step, N] index block's memory
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))  # [R', N]
        means[start:stop] = x[idx].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return (float(low), float(high))


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the proportion p = successes / n (z the normal quantile of the confidence):

    (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n); never [0, 0] at p = 0, inside [0, 1] at any n.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not 0 <= successes <= n or n < 1:
        raise ValueError(f"wilson_ci needs 0 <= successes <= n and n >= 1, got {successes}, {n}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    low = 0.0 if successes == 0 else max(0.0, (centre - half) / scale)  # exact ends, not round-off around them
    high = 1.0 if successes == n else min(1.0, (centre + half) / scale)
    return (low, high)


def metric_with_ci(values: Sequence[float], seed: int = 0) -> dict[str, Any]:
    """``{"value", "ci95": [low, high], "ci_method", "problems"}`` for per-problem values (mean over problems)."""
    if not values:
        return {"value": None, "ci95": None, "problems": 0}
    if all(v in (0.0, 1.0) for v in values):
        low, high = wilson_ci(int(sum(values)), len(values))
        method = "wilson"
    else:
        low, high = bootstrap_ci(values, seed=seed)
        method = "bootstrap"
    return {"value": float(np.mean(values)), "ci95": [low, high], "ci_method": method, "problems": len(values)}


def _metrics(records: Sequence[Mapping[str, Any]], ks: Sequence[int], majority: bool, seed: int) -> dict[str, Any]:
    counts = [problem_counts(r["samples"]) for r in records]
    judged = [(n, c) for n, c in counts if n > 0]
    out: dict[str, Any] = {
        "problems": len(records),
        "problems_judged": len(judged),
        "samples": sum(len(r["samples"]) for r in records),
        "samples_graded": sum(n for n, _ in counts),
        "timeouts": sum(s["outcome"] == "timeout" for r in records for s in r["samples"]),
        "infra_failures": sum(s["outcome"] == "infra" for r in records for s in r["samples"]),
        "solved_any": sum(c > 0 for _, c in judged),
    }
    # accuracy = mean over problems of c/n: greedy accuracy at n=1, the unbiased pass@1 when sampling
    out["accuracy"] = metric_with_ci([c / n for n, c in judged], seed)
    for k in ks:
        # a problem with fewer than k graded samples (timeouts / infra removed) has no unbiased pass@k: left out
        out[f"pass@{k}"] = metric_with_ci([pass_at_k(n, c, k) for n, c in judged if n >= k], seed)
        if majority and k > 1:
            votes = [majority_correct(r["samples"], k) for r in records]
            out[f"maj@{k}"] = metric_with_ci([float(v) for v in votes if v is not None], seed)
    return out


def group_of(record: Mapping[str, Any], key: str) -> str | None:
    value = (record.get("meta") or {}).get(key)
    return None if value is None else str(value)


def summarize(records: Sequence[Mapping[str, Any]], ks: Iterable[int], group_keys: Sequence[str] = (),
              majority: bool = True, seed: int = 0) -> dict[str, Any]:
    """All metrics overall and per value of each ``group_keys`` entry of ``record["meta"]`` (``by_<key>``)."""
    ks = sorted(set(ks))
    out = _metrics(records, ks, majority, seed)
    for key in group_keys:
        groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for record in records:
            value = group_of(record, key)
            if value is not None:
                groups[value].append(record)
        if groups:
            out[f"by_{key}"] = {g: _metrics(rs, ks, majority, seed) for g, rs in sorted(groups.items())}
    return out
