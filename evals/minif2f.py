"""miniF2F (Lean 4) as a Task: whole-proof generation checked by ``lean_env.LeanVerifier``.

Problems carry the trusted ``formal_statement`` and ``header`` in ``meta``; the verifier splices the model's
proof under them, so a model cannot change what it proves. ``answer`` is the formal statement (the ground
truth a proof is checked against), so the trainer treats these problems as verifiable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.base import TaskDefaults
from lean_env.extract import extract_proof
from lean_env.minif2f import SPLITS, load_minif2f
from pure_rl.core.configio import ConfigError
from pure_rl.core.interfaces import Problem

# DeepSeek-Prover-V1.5 (non-CoT): the prompt opens a lean4 block and ends right after ``:= by``, so the
# completion is the tactic body, cut at the closing fence.
PROMPT_STYLES = {
    "deepseek": "Complete the following Lean 4 code:\n\n```lean4\n{header}{informal_prefix}{formal_statement}",
    "deepseek_cot": (
        "Complete the following Lean 4 code with explanatory comments preceding each line of code:\n\n"
        "```lean4\n{header}{informal_prefix}{formal_statement}"
    ),
    # Chat provers (Goedel-Prover-V2 style) restate the whole file in a fenced block after reasoning.
    "chat": (
        "Complete the following Lean 4 code:\n\n```lean4\n{header}{informal_prefix}{formal_statement}  sorry\n```\n\n"
        "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed proof plan "
        "outlining the main proof steps and strategies. Then write the complete Lean 4 file in one ```lean4 block."
    ),
}
_SPLIT_ALIASES = {"validation": "valid", "val": "valid"}

__all__ = ["PROMPT_STYLES", "MiniF2FTask", "extract_proof"]


class MiniF2FTask(TaskDefaults):
    """``load(split, limit)`` -> Problems with ``meta`` = formal_statement, header, informal_prefix, split, name.

    ``source``: a JSONL path, a folder, or a hub dataset id; default ``../shared/data/minif2f/minif2f.jsonl``
    beside the repository. ``prompt_style``: ``deepseek`` | ``deepseek_cot`` | ``chat``.
    """

    name = "minif2f"
    train_split = "valid"  # miniF2F has no train split
    eval_splits = ("valid", "test")
    max_new_tokens = 2048
    verifier = "lean"
    sampling_top_p = 0.95  # DeepSeek-Prover's sampling

    @property
    def stop(self) -> list[str]:
        """DeepSeek-style prompts open a lean4 fence: the proof ends at the closing one."""
        return ["```"] if self.prompt_style.startswith("deepseek") else []

    @classmethod
    def cli_arguments(cls, prompt: str | None, shots: int | None, data_path: str | None) -> dict[str, Any]:
        if shots not in (None, 0):
            raise ConfigError(f"task=minif2f prompts are zero-shot, got shots={shots}")
        kwargs: dict[str, Any] = {}
        if prompt is not None:
            kwargs["prompt_style"] = prompt
        if data_path is not None:
            kwargs["source"] = data_path
        return kwargs

    def __init__(self, source: str | Path | None = None, prompt_style: str = "deepseek"):
        if prompt_style not in PROMPT_STYLES:
            raise ValueError(f"prompt_style must be one of {sorted(PROMPT_STYLES)}, got {prompt_style!r}")
        self.source = source
        self.prompt_style = prompt_style

    def load(self, split: str, limit: int | None = None) -> list[Problem]:
        split = _SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            raise ValueError(f"miniF2F has splits {SPLITS} (no train split; train on 'valid'), got {split!r}")
        template = PROMPT_STYLES[self.prompt_style]
        problems = []
        for record in load_minif2f(self.source, split=split, limit=limit):
            problems.append(Problem(
                id=record["name"],
                question=record.get("informal_statement") or record["informal_prefix"],
                prompt=template.format(**record),
                answer=record["formal_statement"],
                meta={
                    "name": record["name"],
                    "split": record["split"],
                    "formal_statement": record["formal_statement"],
                    "header": record["header"],
                    "informal_prefix": record["informal_prefix"],
                    "prompt_ends_in_proof": self.prompt_style.startswith("deepseek"),
                },
            ))
        return problems
