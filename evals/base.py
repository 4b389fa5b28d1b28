"""What every built-in task declares besides its data: the defaults the trainer and ``evals.run`` read from it.

A task owns its conventions so no loop tests a task's name: splits, generation cap, stop strings of its prompt
format, its grader, the top-p its protocol samples with, and how the eval CLI's generic ``prompt`` / ``shots`` /
``data_path`` map onto its constructor arguments.
"""

from __future__ import annotations

from typing import Any

from pure_rl.core.configio import ConfigError


class TaskDefaults:
    """Class attributes of the ``Task`` protocol with the common values; a task overrides what differs."""

    name = ""
    train_split = "train"  # the RL prompts
    eval_split = "test"  # the trainer's held-out split
    eval_splits: tuple[str, ...] = ("test",)  # what evals.run reports by default
    max_new_tokens = 1024  # generation cap of the task's protocol
    verifier = "math"  # registry name of the grader
    sampling_top_p = 1.0  # top-p when sampling several answers per problem
    lm_eval_conventions = False  # also cross-grade with lm-eval's GSM8K extraction (evals.grade)

    @property
    def stop(self) -> list[str]:
        """Stop strings of the task's prompt format (the response keeps the stop string)."""
        return []

    @classmethod
    def cli_arguments(cls, prompt: str | None, shots: int | None, data_path: str | None) -> dict[str, Any]:
        """Constructor arguments for ``evals.run``'s generic ``prompt=``, ``shots=`` and ``data_path=``."""
        if prompt is not None:
            raise ConfigError(f"prompt={prompt!r}: task={cls.name} has no prompt formats")
        if shots not in (None, 0):
            raise ConfigError(f"shots={shots}: only task=gsm8k has few-shot prompts")
        if data_path is not None:
            raise ConfigError(f"data_path={data_path!r}: task={cls.name} generates its problems, it reads no file")
        return {}


_DEFAULTS = TaskDefaults()


def task_attr(task: Any, name: str) -> Any:
    """``task.<name>``, or the common default for a plugin task that does not declare it."""
    return getattr(task, name, getattr(_DEFAULTS, name))
