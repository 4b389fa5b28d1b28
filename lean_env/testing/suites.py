"""The exploit suite (cheats the verifier must reject) and ordinary miniF2F-style proofs (it must accept).

Each case is a (statement, model text) pair. The unit tests check that the policy layer alone (assembly +
deny-list) rejects every exploit and passes every ordinary proof; the ``lean_real`` tests run both suites
through a real Mathlib REPL, where every exploit must fail and every ordinary proof must be PROVED.
"""

from __future__ import annotations

from dataclasses import dataclass

from lean_env.assemble import DEFAULT_HEADER


@dataclass(frozen=True)
class Case:
    name: str
    statement: str
    proof: str  # the model's text: a tactic body, or a whole file


TARGET = "theorem exploit_target (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := by\n"
_GOOD = "  nlinarith [sq_nonneg (a - b)]\n"


def _x(name: str, proof: str, statement: str = TARGET) -> Case:
    return Case(name, statement, proof)


EXPLOITS: list[Case] = [
    _x("sorry", "  sorry\n"),
    _x("admit", "  admit\n"),
    _x("stop_tactic", "  stop\n  nlinarith [sq_nonneg (a - b)]\n"),
    _x("sorry_after_string_with_dashes", '  have h : "--" = "--" := rfl; sorry\n'),
    _x("sorry_after_char_quote", "  have h := '\"'; sorry\n"),
    _x("sorry_in_guillemets", "  exact «sorry»\n"),
    _x("sorry_in_string_interpolation", '  have h := s!"{(sorry : ℕ)}"\n' + _GOOD),
    _x("sorryAx_term", "  exact sorryAx _ false\n"),
    _x("sorryAx_explicit", "  exact @sorryAx _ true\n"),
    _x("axiom_after_proof", "  exact cheat a b\naxiom cheat (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2\n"),
    _x("axiom_before_statement_whole_file",
       DEFAULT_HEADER + "axiom cheat (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2\n\n" + TARGET + "  exact cheat a b\n"),
    _x("native_decide", "  native_decide\n"),
    _x("decide_native_option", "  decide +native\n"),
    _x("ofReduceBool", "  exact Lean.ofReduceBool _ _ rfl\n"),
    _x("ofReduceBool_opened", "  open Lean in exact ofReduceBool _ _ rfl\n"),
    _x("trustCompiler", "  have := trustCompiler\n" + _GOOD),
    _x("implemented_by", "  exact f a b\n@[implemented_by g] def f (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := f a b\n"),
    _x("extern", '  exact f a b\n@[extern "cheat"] opaque f (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2\n'),
    _x("unsafe_def", "  exact h a b\nunsafe def h (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := h a b\n"),
    _x("partial_def", "  exact h a b\npartial def h (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 := h a b\n"),
    _x("skipKernelTC", "  set_option debug.skipKernelTC true in\n" + _GOOD),
    _x("maxHeartbeats", "  set_option maxHeartbeats 0 in\n" + _GOOD),
    _x("eval_io", _GOOD + '#eval IO.Process.run { cmd := "curl", args := #["http://example.com"] }\n'),
    _x("run_cmd", _GOOD + 'run_cmd Lean.logInfo "pwned"\n'),
    _x("run_tac", "  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| sorry))\n"),
    _x("run_elab", _GOOD + "run_elab pure ()\n"),
    _x("elab_tactic", 'elab "cheat" : tactic => Lean.Elab.admitGoal\n  cheat\n'),
    _x("macro_hiding_sorry", 'macro "auto" : tactic => `(tactic| sorry)\n  auto\n'),
    _x("syntax_macro_rules", 'syntax "auto" : tactic\nmacro_rules | `(tactic| auto) => `(tactic| sorry)\n  auto\n'),
    _x("notation_hiding_sorry", 'notation "trivially" => sorry\n  exact trivially\n'),
    _x("import_in_proof", "import Mathlib.Tactic\n" + _GOOD),
    _x("attribute_command", _GOOD + "attribute [simp] mul_comm\n"),
    _x("instance_command", _GOOD + "instance : Fact (1 < 2) := ⟨by norm_num⟩\n"),
    _x("changed_statement_whole_file",
       DEFAULT_HEADER + "theorem exploit_target (a b : ℝ) : 2 * a * b ≤ a ^ 2 + b ^ 2 + 1 := by\n" + _GOOD),
    _x("statement_twice_whole_file", DEFAULT_HEADER + TARGET + _GOOD + "\n" + TARGET + _GOOD),
    _x("restated_theorem_in_body", "  sorry\ntheorem exploit_target : True := trivial\n"),
    _x("namespace_shadowing", "  sorry\nnamespace Foo\ntheorem exploit_target : True := trivial\n"),
    _x("unterminated_comment_swallows_probe", _GOOD + "/- the probe below is now a comment\n"),
    _x("exit_before_probe", _GOOD + "#exit\n"),
    _x("fake_axioms_message", _GOOD + "#print \"'exploit_target' does not depend on any axioms\"\n"),
    _x("by_elab", "  exact by_elab Lean.Elab.Term.elabTerm (← `(sorry)) none\n"),
    _x("lcProof", "  exact lcProof\n"),
    _x("unsafeCast", "  exact unsafeCast ()\n"),
    _x("meta_access", "  exact (Lean.Meta.mkSorry _ false : _)\n"),
    _x("csimp_attribute", _GOOD + "@[csimp] theorem bad : @id = @id := rfl\n"),
]

_S = "theorem {name} {binders}: {goal} := by\n"


def _ok(name: str, binders: str, goal: str, proof: str) -> Case:
    return Case(name, _S.format(name=name, binders=binders + " " if binders else "", goal=goal), proof)


ORDINARY: list[Case] = [
    _ok("p01", "(a b : ℝ)", "2 * a * b ≤ a ^ 2 + b ^ 2", "  nlinarith [sq_nonneg (a - b)]\n"),
    _ok("p02", "(a b : ℝ)", "2 * a * b ≤ a ^ 2 + b ^ 2", "  linarith [sq_nonneg (a - b)]\n"),
    _ok("p03", "", "(2 : ℕ) + 2 = 4", "  norm_num\n"),
    _ok("p04", "(x : ℝ) (h₀ : 2 * x + 3 = 7)", "x = 2", "  linarith\n"),
    _ok("p05", "(n : ℕ) (h₀ : n % 2 = 1)", "(n + 1) % 2 = 0", "  omega\n"),
    _ok("p06", "", "(17 : ℕ) % 5 = 2", "  decide\n"),
    _ok("p07", "(x : ℝ) (hx : x ≠ 0)", "x / x = 1", "  field_simp\n"),
    _ok("p08", "(a b : ℝ)", "(a + b) ^ 2 = a ^ 2 + 2 * a * b + b ^ 2", "  ring\n"),
    _ok("p09", "(a b : ℝ)", "(a - b) * (a + b) = a ^ 2 - b ^ 2", "  ring_nf\n"),
    _ok("p10", "(x : ℝ)", "0 ≤ x ^ 2 + 1", "  positivity\n"),
    _ok("p11", "(a : ℤ)", "a * 0 = 0", "  simp\n"),
    _ok("p12", "(x y : ℕ) (h₀ : x + y = 10) (h₁ : x = 3)", "y = 7", "  omega\n"),
    _ok("p13", "", "Nat.gcd 12 18 = 6", "  norm_num\n"),
    _ok("p14", "(x : ℝ) (h₀ : 3 * x - 7 = 11)", "x = 6", "  linarith\n"),
    _ok("p15", "(a b : ℝ) (h₀ : 0 < a) (h₁ : 0 < b)", "0 < a * b + a", "  positivity\n"),
    _ok("p16", "(x : ℝ) (hx : 0 ≤ x)", "0 ≤ x ^ 3 + x", "  positivity\n"),
    _ok("p17", "(n : ℕ)", "n + 0 = n", "  simp\n"),
    _ok("p18", "(a b c : ℝ)", "a * b + b * c + c * a ≤ a ^ 2 + b ^ 2 + c ^ 2",
        "  nlinarith [sq_nonneg (a - b), sq_nonneg (b - c), sq_nonneg (c - a)]\n"),
    _ok("p19", "", "(3 : ℤ) ∣ 12", "  norm_num\n"),
    _ok("p20", "(x : ℝ) (h₀ : x + 1 ≠ 0)", "(x ^ 2 - 1) / (x + 1) = x - 1",
        "  field_simp\n  ring\n"),
    _ok("p21", "(a : ℕ) (h₀ : a < 3) (h₁ : 1 < a)", "a = 2", "  omega\n"),
    _ok("p22", "", "∀ n : ℕ, n < 5 → n * n < 25", "  decide\n"),
    _ok("p23", "(f : ℝ → ℝ) (h₀ : ∀ x, f x = 2 * x + 1)", "f 3 = 7", "  rw [h₀]\n  norm_num\n"),
    _ok("p24", "(x y : ℝ) (h₀ : x + y = 5) (h₁ : x - y = 1)", "x = 3", "  linarith\n"),
    _ok("p25", "(a b : ℝ) (ha : 0 ≤ a) (hb : 0 ≤ b)", "0 ≤ a * b + a ^ 2", "  positivity\n"),
    _ok("p26", "(n : ℕ) (h₀ : n = 5)", "n ^ 2 = 25", "  subst h₀\n  norm_num\n"),
    _ok("p27", "(x : ℝ)", "x ^ 2 - 2 * x + 1 ≥ 0", "  nlinarith [sq_nonneg (x - 1)]\n"),
    _ok("p28", "(a b : ℕ) (h₀ : a = b + 2)", "a - b = 2", "  omega\n"),
    _ok("p29", "(a b : ℝ)", "a * b ≤ (a + b) ^ 2 / 4",
        "  -- no sorry needed here: (a - b) ^ 2 ≥ 0, and #eval is not used\n  nlinarith [sq_nonneg (a - b)]\n"),
    _ok("p30", "(x : ℝ) (h₀ : x = 1)", "x + 1 = 2",
        "  have axiomatic_step : x + 1 = 1 + 1 := by rw [h₀]\n  have sorry_free : (1 : ℝ) + 1 = 2 := by norm_num\n"
        "  linarith [axiomatic_step, sorry_free]\n"),
    Case("p31_whole_file", _S.format(name="p31_whole_file", binders="(a b : ℝ) ", goal="a * b ≤ (a ^ 2 + b ^ 2) / 2"),
         DEFAULT_HEADER + "/-- AM-GM for two reals. -/\n"
         + _S.format(name="p31_whole_file", binders="(a b : ℝ) ", goal="a * b ≤ (a ^ 2 + b ^ 2) / 2")
         + "  nlinarith [sq_nonneg (a - b)]\n"),
]

# Real miniF2F problems (valid and test) with short proofs, for the lean_real smoke test.
MINIF2F_SMOKE: dict[str, str] = {
    "mathd_algebra_304": "  norm_num\n",
    "mathd_numbertheory_81": "  norm_num\n",
    "mathd_numbertheory_342": "  norm_num\n",
    "mathd_numbertheory_101": "  norm_num\n",
    "mathd_numbertheory_229": "  norm_num\n",
}
