"""Lean 4 verification for RL rewards and miniF2F: hygiene policy, source assembly, REPL pool, backends, cache.

    from lean_env import LeanVerifier
    with LeanVerifier("repl", project="~/lean/mathlib-repl") as verifier:
        result = verifier.check(formal_statement, "  nlinarith [sq_nonneg (a - b)]")
        result.status, result.reward
"""

from lean_env.assemble import DEFAULT_HEADER, Assembled, AssemblyError, assemble
from lean_env.cache import ResultCache, cache_key
from lean_env.extract import extract_proof
from lean_env.minif2f import load_minif2f, pass_at_k, report
from lean_env.policy import ALLOWED_AXIOMS, POLICY_VERSION, classify, find_violations
from lean_env.types import LeanMessage, LeanSetupError, Status, VerifyResult
from lean_env.verifier import LeanVerifier

__all__ = [
    "ALLOWED_AXIOMS", "DEFAULT_HEADER", "POLICY_VERSION", "Assembled", "AssemblyError", "LeanMessage",
    "LeanSetupError", "LeanVerifier", "ResultCache", "Status", "VerifyResult", "assemble", "cache_key", "classify",
    "extract_proof", "find_violations", "load_minif2f", "pass_at_k", "report",
]
