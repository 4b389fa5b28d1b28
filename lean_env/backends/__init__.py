"""Whole-proof Lean backends behind one interface; built-ins are lazy registry entries, plugins register the same way.

LeanDojo is step-wise only (theorems of a traced repository): see ``lean_env.backends.dojo.DojoStepEnv``.
"""

from lean_env.backends.base import Backend, shift_lines
from pure_rl.registry import Registry

BACKENDS = Registry(
    "lean backend",
    lazy={
        "repl": "lean_env.backends.repl:ReplBackend",
        "kimina": "lean_env.backends.kimina:KiminaBackend",
        "cli": "lean_env.backends.cli:CliBackend",
    },
)

__all__ = ["BACKENDS", "Backend", "shift_lines"]
