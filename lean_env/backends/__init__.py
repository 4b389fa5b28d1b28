"""Whole-proof Lean backends behind one interface; built-ins are lazy entries of ``pure_rl.core.registry.LEAN_BACKENDS``,
plugins register the same way.

LeanDojo is step-wise only (theorems of a traced repository): see ``lean_env.backends.dojo.DojoStepEnv``.
"""

from lean_env.backends.base import Backend, shift_lines

__all__ = ["Backend", "shift_lines"]
