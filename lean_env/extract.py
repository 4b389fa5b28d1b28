"""Pull the Lean proof (or a whole Lean file) out of a model's output."""

from __future__ import annotations

import re

_FENCE = re.compile(r"```[ \t]*(?:lean4|lean)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_proof(completion: str, *, continues_prompt: bool = False) -> str:
    """The Lean text to check, from a model output.

    ``continues_prompt``: the prompt ended inside an open ```` ```lean4 ```` block right after ``:= by``
    (DeepSeek-Prover style), so the completion *is* the proof, cut at the first closing fence. Otherwise the
    last fenced block is taken (chat models restate the file and reason before it), or, with no fence, the
    whole output. Whether the result is a tactic body or a whole file is decided by ``assemble``.
    """
    if continues_prompt:
        return completion.split("```", 1)[0].rstrip() + "\n"
    blocks = _FENCE.findall(completion)
    text = blocks[-1] if blocks else completion
    return text.rstrip() + "\n"
