"""TVM training data: sample N solutions per problem from a policy, grade them, label every token.

Any rollout engine samples (``RolloutEngine.generate``), the project's verifier grades the final answers, and
``token_value_labels`` turns each problem's N graded paths (the response token ids, EOS included) into soft
per-token labels. A path whose verdict is an infrastructure failure (``correct is None``) is dropped from its
problem's trie rather than counted wrong. Samples are stored as JSON lines so the GPU-scale recipe can generate
once and train under ``accelerate launch`` later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from prm.tvm.labels import token_value_labels
from pure_rl.core.interfaces import Problem, SamplingParams, Verifier

log = logging.getLogger(__name__)


@dataclass
class LabelledPath:
    problem_id: str
    prompt_ids: list[int]  # the prompt's tokens, padding removed
    response_ids: list[int]  # the sampled tokens, EOS included when generated
    labels: list[float]  # [len(response_ids)] TVM label per response token
    correct: bool
    response: str  # decoded text, for inspection


def unpad(ids: torch.Tensor, mask: torch.Tensor) -> list[int]:
    return ids[mask.bool()].tolist()


def sample_and_label(engine: Any, verifier: Verifier, problems: Sequence[Problem], n: int, sampling: SamplingParams,
                     problems_per_call: int = 16) -> tuple[list[LabelledPath], dict[str, float]]:
    """Sample ``n`` responses per problem, grade them, and label their tokens; returns (paths, stats)."""
    paths: list[LabelledPath] = []
    graded = correct = failed = 0
    for start in range(0, len(problems), problems_per_call):
        chunk = list(problems[start : start + problems_per_call])
        seed = None if sampling.seed is None else sampling.seed + start
        batch = engine.generate(chunk, n, SamplingParams(**{**asdict(sampling), "seed": seed}))
        verdicts = verifier.verify_batch(batch.problems, batch.responses)
        for g, problem in enumerate(chunk):
            rows = [r for r in range(g * n, (g + 1) * n) if verdicts[r].correct is not None]
            failed += n - len(rows)
            group = [unpad(batch.response_ids[r], batch.response_mask[r]) for r in rows]
            outcome = [bool(verdicts[r].correct) for r in rows]
            for r, ids, ok, labels in zip(rows, group, outcome, token_value_labels(group, outcome)):
                prompt_ids = unpad(batch.prompt_ids[r], batch.prompt_mask[r])
                paths.append(LabelledPath(problem.id, prompt_ids, ids, labels, ok, batch.responses[r]))
            graded += len(rows)
            correct += sum(outcome)
    stats = {"paths": float(graded), "accuracy": correct / max(graded, 1), "verifier_failures": float(failed)}
    log.info("TVM data: %d labelled paths, sample accuracy %.3f, %d verifier failures", graded, stats["accuracy"], failed)
    return paths, stats


def save_paths(paths: Iterable[LabelledPath], file: str | Path) -> None:
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(file.suffix + ".tmp")
    with tmp.open("w") as f:
        for p in paths:
            f.write(json.dumps(asdict(p)) + "\n")
    tmp.replace(file)


def load_paths(file: str | Path) -> list[LabelledPath]:
    out = []
    with Path(file).open() as f:
        for line_no, line in enumerate(f, 1):
            try:
                out.append(LabelledPath(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as exc:
                raise ValueError(f"{file}:{line_no} is not a TVM labelled path ({exc})") from exc
    return out


def collate(paths: Sequence[LabelledPath], pad_token_id: int, max_length: int | None = None
            ) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels (0 off-response) and label_mask (response tokens).

    A row longer than ``max_length`` keeps its last tokens (labels live on the response, at the end).
    """
    seqs = []
    for p in paths:
        ids, labels = p.prompt_ids + p.response_ids, [0.0] * len(p.prompt_ids) + p.labels
        lab_mask = [False] * len(p.prompt_ids) + [True] * len(p.response_ids)
        if max_length is not None and len(ids) > max_length:
            ids, labels, lab_mask = ids[-max_length:], labels[-max_length:], lab_mask[-max_length:]
        seqs.append((ids, labels, lab_mask))
    width = max(len(s[0]) for s in seqs)
    batch = {
        "input_ids": torch.full((len(seqs), width), pad_token_id, dtype=torch.long),
        "attention_mask": torch.zeros(len(seqs), width, dtype=torch.long),
        "labels": torch.zeros(len(seqs), width, dtype=torch.float32),
        "label_mask": torch.zeros(len(seqs), width, dtype=torch.bool),
    }
    for i, (ids, labels, lab_mask) in enumerate(seqs):
        n = len(ids)
        batch["input_ids"][i, :n] = torch.tensor(ids)
        batch["attention_mask"][i, :n] = 1
        batch["labels"][i, :n] = torch.tensor(labels)
        batch["label_mask"][i, :n] = torch.tensor(lab_mask)
    return batch
