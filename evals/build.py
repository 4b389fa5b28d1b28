"""``evals.run``'s building stage: problems, verifier and engine (model through ``pure_rl.models``), with setup
failures turned into one-line ``SetupError``s."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evals.plan import Plan
from pure_rl.core.interfaces import Problem
from pure_rl.core.registry import MODEL_LOADERS, ROLLOUT_ENGINES, TASKS, VERIFIERS
from pure_rl.core.rows import usable_problems

log = logging.getLogger("evals.run")


class SetupError(RuntimeError):
    """The evaluation could not start: a missing file or model, an offline hub, a bad task or engine argument."""


@contextlib.contextmanager
def setup_step(what: str) -> Iterator[None]:
    """Turn the expected failures of one setup step into a one-line ``SetupError`` naming the step."""
    from lean_env.types import LeanSetupError
    from pure_rl.models.loading import ModelLoadError

    try:
        yield
    except (ModelLoadError, LeanSetupError, OSError, ValueError, ImportError, TypeError) as exc:
        raise SetupError(f"{what}: {exc}".splitlines()[0]) from exc
    except RuntimeError as exc:  # datasets' offline error and friends
        raise SetupError(f"{what}: {exc}".splitlines()[0]) from exc


def build_engine(plan: Plan) -> Any:
    """Load the model (local folder, hub id, a ``MODEL_LOADERS`` name or GGUF) and wrap it in the rollout engine."""
    import torch

    from pure_rl.models.config import ModelConfig
    from pure_rl.models.loading import load_model

    factory = ROLLOUT_ENGINES.get(plan.engine)  # an engine that cannot import fails before the model loads
    device = plan.device if plan.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    named = plan.model in MODEL_LOADERS and not Path(plan.model).exists()
    model_cfg = ModelConfig(name=plan.model, dtype=plan.dtype) if named else ModelConfig(
        path=plan.model, gguf_file=plan.gguf_file, dtype=plan.dtype)
    model, tokenizer = load_model(model_cfg, plan.task, plan.task_kwargs, plan.seed)
    model = model.to(device).eval()
    return factory(model=model, tokenizer=tokenizer, device=device, use_chat_template=plan.chat_template,
                   **plan.engine_kwargs)


def build_verifier(plan: Plan) -> Any:
    return VERIFIERS.build(plan.verifier, **plan.verifier_kwargs)


def load_problems(plan: Plan) -> list[tuple[str, Problem]]:
    """(split, problem) pairs of every split, in order; bad rows and problems with an empty prompt or question are
    skipped and counted as the trainer does (``max_bad_row_fraction`` refuses a split with too many)."""
    task = TASKS.build(plan.task, **plan.task_kwargs)
    pairs, seen = [], set()
    for split in plan.splits:
        problems = task.load(split, plan.limit)
        tally = getattr(task, "row_tallies", {}).get(split)
        if problems or (tally is not None and tally.bad):  # limit=0 asks for none: nothing to check
            problems = usable_problems(problems, tally, plan.max_bad_row_fraction, f"task {plan.task} split {split}",
                                       "max_bad_row_fraction")
        for problem in problems:
            key = f"{split}/{problem.id}"
            if key in seen:
                raise ValueError(f"task {plan.task!r} split {split!r} has two problems with id {problem.id!r}")
            seen.add(key)
            pairs.append((split, problem))
    if not pairs:
        raise ValueError(f"task {plan.task!r} has no problems in split(s) {','.join(plan.splits)} (limit={plan.limit})")
    return pairs
