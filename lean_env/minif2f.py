"""miniF2F in Lean 4: the JSONL loader and a per-problem pass@k report (pass@k itself: ``pure_rl.core.metrics``).

Records follow DeepSeek-Prover-V1.5's ``datasets/minif2f.jsonl``: ``name, split, informal_prefix,
formal_statement, header`` (and ``goal``); 244 ``valid`` + 244 ``test``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lean_env.types import Status, VerifyResult
from pure_rl.core.metrics import pass_at_k

REQUIRED_FIELDS = ("name", "split", "informal_prefix", "formal_statement", "header")
SPLITS = ("valid", "test")


def default_data_path() -> Path:
    """``<repo>/../shared/data/minif2f/minif2f.jsonl``: the shared data folder beside the repository."""
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "minif2f" / "minif2f.jsonl"


def load_minif2f(source: str | Path | None = None, split: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Records of ``source`` (a JSONL path, a folder holding ``minif2f.jsonl``, or a hub dataset id).

    ``split`` is ``valid``, ``test`` or None for both; ``limit`` keeps the first N after filtering.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"miniF2F split must be one of {SPLITS} or None, got {split!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = Path(source) if source is not None else default_data_path()
    if path.is_dir():
        path = path / "minif2f.jsonl"
    if path.is_file():
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif source is not None and "/" in str(source) and not str(source).startswith((".", "/")):
        records = _load_hub(str(source))
    else:
        raise FileNotFoundError(f"miniF2F data not found at {path}; pass a JSONL path, a folder or a hub dataset id")
    for i, record in enumerate(records):
        missing = [f for f in REQUIRED_FIELDS if f not in record]
        if missing:
            raise ValueError(f"miniF2F record {i} ({record.get('name', '?')}) lacks field(s) {missing}; need {REQUIRED_FIELDS}")
    if split is not None:
        records = [r for r in records if r["split"] == split]
    return records[:limit] if limit is not None else records


def _load_hub(dataset_id: str) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as exc:
        raise ImportError("loading miniF2F from the hub needs the `datasets` package") from exc
    try:
        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:
        raise RuntimeError(
            f"could not load hub dataset {dataset_id!r} (offline? set HF_HUB_OFFLINE=0 and check the id, "
            f"or pass a local JSONL path): {exc}"
        ) from exc
    return [dict(row) for part in loaded.values() for row in part]


@dataclass
class ProblemReport:
    name: str
    n: int  # samples checked (infrastructure failures excluded)
    proved: int
    infra: int  # samples masked because infrastructure failed
    statuses: dict[str, int]
    first_proof: str | None  # one accepted proof, for inspection


def report(results: Iterable[tuple[str, str, VerifyResult]], ks: Sequence[int] = (1, 8, 32)) -> dict[str, Any]:
    """Per-problem counts and mean pass@k from ``(problem_name, proof, result)`` triples.

    Infrastructure failures are left out of n (never counted as wrong); a k larger than a problem's n is
    reported only over problems with enough samples.
    """
    per: dict[str, ProblemReport] = {}
    for name, proof, result in results:
        rep = per.setdefault(name, ProblemReport(name, 0, 0, 0, defaultdict(int), None))
        rep.statuses[result.status.value] += 1
        if result.reward is None:
            rep.infra += 1
            continue
        rep.n += 1
        if result.status is Status.PROVED:
            rep.proved += 1
            rep.first_proof = rep.first_proof or proof
    summary: dict[str, Any] = {"problems": len(per), "solved_any": sum(r.proved > 0 for r in per.values())}
    for k in ks:
        eligible = [r for r in per.values() if r.n >= k]
        if eligible:
            summary[f"pass@{k}"] = sum(pass_at_k(r.n, r.proved, k) for r in eligible) / len(eligible)
            summary[f"pass@{k}_problems"] = len(eligible)
    summary["per_problem"] = [
        {"name": r.name, "n": r.n, "proved": r.proved, "infra": r.infra, "statuses": dict(r.statuses),
         "first_proof": r.first_proof}
        for r in sorted(per.values(), key=lambda r: r.name)
    ]
    return summary
