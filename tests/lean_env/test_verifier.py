"""LeanVerifier as the project's Verifier: Verdict mapping, registry wiring, configuration errors."""

import sys

import pytest

from evals.minif2f import MiniF2FTask
from lean_env.backends.dojo import import_lean_dojo
from lean_env.project import mathlib_revision, repl_command, resolve_project
from lean_env.testing import fake_repl
from lean_env.types import LeanSetupError, Status, VerifyResult
from lean_env.verifier import LeanVerifier, to_verdict
from pure_rl.core.interfaces import Problem, Verifier
from pure_rl.core.registry import VERIFIERS

FAKE = [sys.executable, fake_repl.__file__]


@pytest.fixture
def verifier():
    v = LeanVerifier("repl", argv=FAKE, size=2, timeout_s=2)
    yield v
    v.close()


def test_satisfies_the_verifier_protocol_and_registry(verifier):
    assert isinstance(verifier, Verifier)
    built = VERIFIERS.build("lean", backend="repl", argv=FAKE, size=1)
    assert isinstance(built, LeanVerifier)
    built.close()


def test_verdicts_on_minif2f_problems(verifier):
    problems = MiniF2FTask().load("test", limit=3)
    completions = [
        "  norm_num\n```\nextra text the model wrote after the block",  # DeepSeek-style continuation
        "  sorry\n```",
        "  FAKE_SLEEP\n```",
    ]
    verdicts = verifier.verify_batch(problems, completions)
    assert [v.correct for v in verdicts] == [True, False, None]
    assert [v.reward for v in verdicts] == [1.0, 0.0, None]
    assert verdicts[0].info["status"] == "PROVED" and verdicts[1].info["status"] == "FORBIDDEN"
    assert verdicts[2].info["status"] == "TIMEOUT" and verdicts[2].info["infra"]
    single = verifier(problems[0], "  norm_num\n```")
    assert single.correct is True


def test_chat_style_whole_file_completion(verifier):
    (problem,) = MiniF2FTask(prompt_style="chat").load("valid", limit=1)
    meta = problem.meta
    completion = (f"Plan: expand and simplify.\n\n```lean4\n{meta['header']}{meta['formal_statement']}  simp\n```\n")
    assert verifier(problem, completion).correct is True
    changed = completion.replace(":= by", "∨ True := by")
    verdict = verifier(problem, changed)
    assert verdict.correct is False and "statement differs" in verdict.info["reasons"][0]


def test_bad_batches_are_clear_errors(verifier):
    with pytest.raises(ValueError, match="2 problems but 1 completions"):
        verifier.verify_batch([Problem("a", "q", "p"), Problem("b", "q", "p")], ["x"])
    with pytest.raises(ValueError, match="formal_statement"):
        verifier.verify_batch([Problem("a", "q", "p")], ["x"])
    with pytest.raises(ValueError, match="timeout_s"):
        LeanVerifier("repl", argv=FAKE, timeout_s=0)


def test_to_verdict_masks_infrastructure():
    assert to_verdict(VerifyResult.infra_error("down")) .correct is None
    assert to_verdict(VerifyResult(Status.TIMEOUT)).reward == 0.0  # deterministic heartbeat limit: the proof's fault
    assert to_verdict(VerifyResult.wall_timeout(3)).reward is None


def test_missing_project_names_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("LEAN_PROJECT", raising=False)
    with pytest.raises(LeanSetupError, match="LEAN_PROJECT is unset.*elan.*mathlib.*repl"):
        LeanVerifier("repl")
    with pytest.raises(LeanSetupError, match="not a directory"):
        LeanVerifier("cli", project=tmp_path / "missing")
    with pytest.raises(LeanSetupError, match="no lakefile"):
        resolve_project(tmp_path)


def test_project_commands(monkeypatch, tmp_path):
    (tmp_path / "lakefile.toml").write_text('name = "proofs"\n')
    (tmp_path / "lake-manifest.json").write_text('{"packages": [{"name": "mathlib", "rev": "2f65ba7f"}]}')
    assert resolve_project(str(tmp_path)) == tmp_path.resolve()
    assert mathlib_revision(tmp_path) == "2f65ba7f"
    monkeypatch.setenv("LEAN_REPL_CMD", "/opt/repl --flag")
    assert repl_command(tmp_path) == ["/opt/repl", "--flag"]
    monkeypatch.delenv("LEAN_REPL_CMD")
    monkeypatch.setenv("PATH", str(tmp_path))  # no lake here
    with pytest.raises(LeanSetupError, match="`lake` is not on PATH"):
        repl_command(tmp_path)


def test_backend_plugins_by_import_string():
    v = LeanVerifier("lean_env.backends.repl:ReplBackend", argv=FAKE, size=1)
    assert v.check("theorem t : True := by\n", "  trivial").status is Status.PROVED
    v.close()


def test_dojo_backend_explains_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "lean_dojo", None)  # as if lean-dojo were not installed
    with pytest.raises(LeanSetupError, match="pip install 'lean-dojo"):
        import_lean_dojo()


def test_missing_executables_are_setup_errors(tmp_path):
    with pytest.raises(LeanSetupError, match="the REPL command: '/no/such/repl'"):
        LeanVerifier("repl", argv=["/no/such/repl"])
    with pytest.raises(LeanSetupError, match="the lean command"):
        LeanVerifier("cli", lean_cmd=[str(tmp_path / "lean")])


class _BrokenBackend:
    name = "broken"

    def version(self):
        return "x"

    def run(self, items, timeout_s):
        raise RuntimeError("boom")

    def close(self):
        pass


def test_a_crashing_backend_fails_its_items_as_infrastructure():
    results = LeanVerifier(_BrokenBackend()).check_batch([("theorem t : True := by\n", "  trivial")] * 2
                                                         + [("theorem t : True := by\n", "  sorry")])
    assert [r.status for r in results] == [Status.INFRA_ERROR, Status.INFRA_ERROR, Status.FORBIDDEN]
    assert "boom" in results[0].reasons[0] and results[0] is not results[1]


def test_non_string_items_are_a_clear_error(verifier):
    with pytest.raises(TypeError, match="check item 1: .* got NoneType"):
        verifier.check_batch([("theorem t : True := by\n", "  trivial"), (None, "  trivial")])
