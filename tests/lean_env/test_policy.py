"""Hygiene policy: the lexer-aware deny-list and ``classify`` on REPL responses.

The REPL responses below are SCHEMA EXAMPLES written by hand from the REPL's JSON schema (REPL/JSON.lean and
its test/*.expected.out files as described in lean.md section 2), not recordings of a real Lean run.
"""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lean_env.lexer import lex, strip_comments
from lean_env.policy import DENIED_NAMES, classify, find_violations, parse_axioms
from lean_env.types import Status


@pytest.mark.parametrize(
    "text",
    [
        "  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
        "  -- we never use sorry here\n  simp",
        "  /- sorry /- nested -/ still a comment, axiom -/ norm_num",
        "  /-- doc: native_decide is banned -/\n  omega",
        '  have h : "sorry" = "sorry" := rfl\n  simp',
        "  exact sorry_free h",
        "  exact axiomatic_foo",
        "  have h' := h₀\n  simp [h'] at h₁ ⊢",
        "  rcases h with ⟨x, hx⟩ <;> linarith",
        "  exact fun x => by decide",
        "  simp only [Finset.sum_range_succ]; norm_num",
        "  field_simp\n  ring_nf",
        "  have := Nat.le_of_lt_succ h; omega",
        "  exact ⟨1, by norm_num⟩",
        "  simp [#[1, 2].size]",
        "  exact h.symm ▸ rfl",
    ],
)
def test_ordinary_proof_text_is_clean(text):
    assert find_violations(text) == []


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("  sorry", "sorry"),
        ("  exact Foo.sorry", "sorry"),
        ('  exact "--" ++ sorry', "sorry"),  # a string that only looks like a comment opener
        ("  /- /- -/ -/ sorry", "sorry"),  # nested comments closed properly
        ("  exact «sorryAx» _ false", "sorryAx"),
        ("  have := '\"'; sorry", "sorry"),  # a char literal holding a double quote
        ('  have := s!"{sorry}"', "interpolation"),  # interpolated strings run their holes
        ('  dbg_trace "{sorry}"; simp', "interpolation"),  # so does dbg_trace, without any `!`
        ('  have := "{/-"; exact sorry -- -/"', "interpolation"),  # a plain "{" cannot desynchronise the lexer
        ("  have := r#\"x\"#; admit", "admit"),
        ("  decide (config := { native := true })", "native"),
        ("set_option debug.skipKernelTC true in", "set_option"),
        ("  #eval 1", "#eval"),
        ("#check Nat", "#check"),
        ("  exact IO.println", "IO"),
        ("@[implemented_by f] def g := 1", "@["),
    ],
)
def test_hidden_tokens_are_found(text, token):
    found = find_violations(text)
    assert found, text
    assert token in found[0]


def test_strings_without_braces_and_raw_strings_pass():
    assert find_violations('  have h : "a" ≠ "b" := by decide\n  simp') == []
    assert find_violations('  have := r"{raw}"; simp') == []


def test_unterminated_comment_and_string_are_violations():
    assert "unterminated comment" in find_violations("  simp /- swallow the rest")[0]
    assert "unterminated string" in find_violations('  simp "swallow')[0]


def test_violation_reports_position():
    (msg,) = find_violations("  simp\n    exact sorry")
    assert "at 2:10" in msg


@given(st.sampled_from(sorted(DENIED_NAMES)), st.sampled_from(["_free", "_x", "'", "2", "ₐ"]))
def test_identifiers_that_merely_contain_a_denied_word_pass(word, suffix):
    assert find_violations(f"  exact {word}{suffix} h") == []
    assert find_violations(f"  exact my_{word} h") == []


@given(st.sampled_from(sorted(DENIED_NAMES)))
def test_every_denied_word_is_caught_and_hidden_by_comments(word):
    assert find_violations(f"  {word}")
    assert find_violations(f"  simp -- {word}") == []
    assert find_violations(f"  simp /- {word} -/") == []


def test_strip_comments_keeps_lines_and_strings():
    text = 'a -- x\n/- y\n z -/ b "-- not a comment"'
    out = strip_comments(text)
    assert out.count("\n") == text.count("\n")
    assert "x" not in out and "y" not in out and '"-- not a comment"' in out


def test_lexer_identifiers():
    idents = [t.text for t in lex("exact Nat.succ_le_of_lt «foo.bar».baz h'").tokens if t.kind == "ident"]
    assert idents == ["exact", "Nat.succ_le_of_lt", "foo.bar.baz", "h'"]


# --- classify on schema examples ------------------------------------------------------------------------------

def _probe(name="t", axioms=None, line=4):
    data = f"'{name}' depends on axioms: [{', '.join(axioms)}]" if axioms else f"'{name}' does not depend on any axioms"
    return {"severity": "info", "pos": {"line": line, "column": 0}, "endPos": {"line": line, "column": 6}, "data": data}


def test_schema_example_proved():
    response = {"env": 1, "messages": [_probe(axioms=["propext", "Classical.choice", "Quot.sound"])]}
    status, axioms, reasons = classify(response, "t", axioms_line=4)
    assert status is Status.PROVED and axioms == ["propext", "Classical.choice", "Quot.sound"] and reasons == []


def test_schema_example_no_axioms_is_proved():
    assert classify({"env": 1, "messages": [_probe()]}, "t", axioms_line=4)[0] is Status.PROVED


@pytest.mark.parametrize("quote", ["'sorry'", "`sorry`"])
def test_schema_example_sorry_warning_in_both_quote_styles(quote):
    warning = {"severity": "warning", "pos": {"line": 1, "column": 8}, "data": f"declaration uses {quote}"}
    response = {"env": 1, "messages": [warning, _probe(axioms=["sorryAx"])]}
    assert classify(response, "t", axioms_line=4)[0] is Status.SORRY


def test_schema_example_sorries_list_alone_fails():
    response = {"env": 1, "sorries": [{"pos": {"line": 2, "column": 2}, "goal": "⊢ False", "proofState": 0}],
                "messages": [_probe()]}
    assert classify(response, "t", axioms_line=4)[0] is Status.SORRY


def test_schema_example_sorryAx_axiom_without_warning_fails():
    assert classify({"env": 1, "messages": [_probe(axioms=["sorryAx"])]}, "t", axioms_line=4)[0] is Status.SORRY


@pytest.mark.parametrize("axiom", ["cheat", "Lean.ofReduceBool", "Lean.trustCompiler", "lcProof"])
def test_schema_example_foreign_axiom_is_forbidden(axiom):
    response = {"env": 1, "messages": [_probe(axioms=["propext", axiom])]}
    status, axioms, reasons = classify(response, "t", axioms_line=4)
    assert status is Status.FORBIDDEN and axiom in axioms and axiom in reasons[0]


def test_schema_example_error_message_fails():
    error = {"severity": "error", "pos": {"line": 2, "column": 2}, "data": "linarith failed to find a contradiction"}
    status, _, reasons = classify({"env": 1, "messages": [error, _probe()]}, "t", axioms_line=4)
    assert status is Status.LEAN_ERROR and "linarith failed" in reasons[0]


def test_schema_example_heartbeat_error_is_deterministic_timeout():
    error = {"severity": "error", "pos": {"line": 2, "column": 2},
             "data": "(deterministic) timeout at `whnf`, maximum number of heartbeats (200000) has been reached"}
    assert classify({"env": 1, "messages": [error]}, "t")[0] is Status.TIMEOUT


def test_schema_example_probe_must_be_ours():
    # An info message elsewhere claiming "no axioms" (e.g. printed by the model) is ignored.
    fake = _probe(line=2)
    status, _, reasons = classify({"env": 1, "messages": [fake]}, "t", axioms_line=4)
    assert status is Status.FORBIDDEN and "expected one #print axioms answer" in reasons[0]


def test_schema_example_probe_for_another_name_is_forbidden():
    assert classify({"env": 1, "messages": [_probe(name="Foo.t")]}, "t", axioms_line=4)[0] is Status.FORBIDDEN


@pytest.mark.parametrize(
    ("response", "status"),
    [
        (None, Status.INFRA_ERROR),
        ({"message": "Unknown environment."}, Status.INFRA_ERROR),
        ({"message": "Could not parse JSON: offset 3"}, Status.INFRA_ERROR),
        ({"message": "Lean error:\n<input>:1:0: unknown tactic"}, Status.LEAN_ERROR),
    ],
)
def test_schema_example_protocol_errors(response, status):
    assert classify(response, "t")[0] is status


def test_parse_axioms_multiline_list():
    assert parse_axioms("'t' depends on axioms: [propext,\n Classical.choice,\n Quot.sound]") == (
        "t", ["propext", "Classical.choice", "Quot.sound"]
    )
    assert parse_axioms("`t` does not depend on any axioms") == ("t", [])
    assert parse_axioms("unsolved goals") is None
