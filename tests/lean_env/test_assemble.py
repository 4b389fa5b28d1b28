"""Source assembly: trusted header + statement + proof, whole-file acceptance rules, line mapping."""

import json
from pathlib import Path

import pytest

from lean_env.assemble import DEFAULT_HEADER, AssemblyError, assemble, theorem_name
from lean_env.minif2f import default_data_path

STATEMENT = "theorem mathd_algebra_10 (x : ℝ) (h₀ : 2 * x = 4) : x = 2 := by\n"


def first_record():
    return json.loads(Path(default_data_path()).read_text().splitlines()[0])


def test_body_is_statement_then_proof_then_probe():
    a = assemble(STATEMENT, "  linarith\n")
    assert a.header == DEFAULT_HEADER
    assert a.body.startswith(STATEMENT + "  linarith\n")
    assert a.body.rstrip().endswith("#print axioms _root_.mathd_algebra_10")
    assert a.body.splitlines()[a.axioms_line - 1] == "#print axioms _root_.mathd_algebra_10"
    assert a.proof_start_line == 2 and a.proof_line(2) == 1 and a.proof_line(1) == 0
    assert a.text == a.header + a.body and a.header_lines == DEFAULT_HEADER.count("\n")


def test_heartbeat_option_is_trusted_prefix():
    a = assemble(STATEMENT, "  linarith\n", heartbeats=200000)
    assert a.body.startswith("set_option maxHeartbeats 200000 in\n" + STATEMENT)
    assert a.proof_start_line == 3
    assert a.proof == "  linarith\n"


def test_term_mode_statement_gets_a_space():
    a = assemble("theorem t : True :=", "trivial", header="")
    assert a.body.startswith("theorem t : True := trivial")
    assert a.proof_start_line == 1


def test_minif2f_record_assembles():
    record = first_record()
    a = assemble(record["formal_statement"], "  simp\n", header=record["header"])
    assert a.theorem_name == record["name"]
    assert a.text.startswith(record["header"] + record["formal_statement"])


def test_whole_file_with_trusted_header_and_docstring_is_accepted():
    record = first_record()
    whole = record["header"] + record["informal_prefix"] + record["formal_statement"] + "  simp\n"
    a = assemble(record["formal_statement"], whole, header=record["header"])
    assert a.proof.strip() == "simp"
    assert a.body.count(f"theorem {record['name']}") == 1


def test_whole_file_with_rewrapped_statement_is_accepted():
    rewrapped = "import Mathlib\n" + STATEMENT.replace(" (h₀", "\n    (h₀") + "  linarith\n"
    assert assemble(STATEMENT, rewrapped).proof.strip() == "linarith"


def test_whole_file_with_a_subset_of_the_header_is_accepted():
    assert assemble(STATEMENT, "import Mathlib\nimport Aesop\n" + STATEMENT + "  linarith")
    with pytest.raises(AssemblyError, match="not part of the trusted header"):
        assemble(STATEMENT, "import Mathlib\nimport Aesop\n" + STATEMENT + "  linarith", header="import Mathlib\n")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("import Mathlib\n" + STATEMENT.replace("x = 2", "x = 2 ∨ True") + "  simp", "statement differs"),
        ("import Mathlib\nlemma helper : True := trivial\n" + STATEMENT + "  linarith", "not part of the trusted header"),
        (STATEMENT + "  linarith\n" + STATEMENT + "  linarith", "declared 2 times"),
        ("theorem mathd_algebra_10 : True := trivial", "statement differs"),
    ],
)
def test_whole_file_rejections(text, match):
    with pytest.raises(AssemblyError, match=match):
        assemble(STATEMENT, text)


def test_theorem_name_skips_comments_and_modifiers():
    assert theorem_name("/-- theorem fake : True -/\ntheorem real_one (n : ℕ) : n = n := by\n") == "real_one"
    assert theorem_name("lemma «weird name» : True := by\n") == "«weird name»"
    with pytest.raises(AssemblyError, match="declares no theorem"):
        theorem_name("def f := 1")
    with pytest.raises(AssemblyError, match="empty"):
        assemble("  ", "simp")
