"""Proof hygiene: the lexical deny-list on model-written text and the classification of Lean's answer.

Two independent layers. ``find_violations`` rejects text before it reaches Lean (meta-code can run arbitrary IO,
so ``#eval`` must never be elaborated). ``classify`` turns a REPL-schema response plus the ``#print axioms`` probe
into a status; it alone catches what the lexer cannot see (an axiom smuggled in through a lemma of the library,
``Lean.ofReduceBool`` from a tactic's implementation, a sorry produced by error recovery).
"""

from __future__ import annotations

import re
from typing import Any

from lean_env.lexer import lex
from lean_env.types import LeanMessage, Status

POLICY_VERSION = "2026-11-25.1"  # part of every cache key: bump it whenever a rule changes

ALLOWED_AXIOMS = frozenset({"propext", "Classical.choice", "Quot.sound"})

# Name components that never belong in a model-written proof. A component matches whole (``sorry_free`` and
# ``axiomatic_foo`` are different identifiers and pass).
DENIED_NAMES: dict[str, str] = {
    **dict.fromkeys(["sorry", "admit", "stop", "sorryAx"], "leaves the goal unproved"),
    **dict.fromkeys(["axiom", "opaque", "lcProof", "unsafeCast"], "introduces an unchecked constant"),
    **dict.fromkeys(
        ["native_decide", "native", "ofReduceBool", "ofReduceNat", "reduceBool", "reduceNat", "trustCompiler"],
        "trusts the compiler instead of the kernel",
    ),
    **dict.fromkeys(["implemented_by", "extern", "csimp", "unsafe", "partial"], "swaps in unchecked code"),
    **dict.fromkeys(
        ["set_option", "skipKernelTC", "maxHeartbeats", "maxRecDepth", "debug"], "changes checker options"
    ),
    **dict.fromkeys(
        ["run_cmd", "run_tac", "run_elab", "run_meta", "elab", "elab_rules", "by_elab", "macro", "macro_rules",
         "syntax", "declare_syntax_cat", "notation", "infix", "infixl", "infixr", "prefix", "postfix",
         "initialize", "builtin_initialize", "unsafeIO", "unsafeBaseIO", "unsafeEIO"],
        "runs or defines meta-code",
    ),
    **dict.fromkeys(
        ["import", "theorem", "lemma", "def", "example", "abbrev", "structure", "inductive", "class", "instance",
         "attribute", "local", "scoped", "namespace", "section", "end", "mutual", "noncomputable", "private",
         "protected", "universe", "variable", "export", "deriving", "omit", "include"],
        "is a top-level command (the statement is trusted; the proof may not add declarations or change scope)",
    ),
}
# First components that reach the meta level (elaborator, IO) from inside a term.
DENIED_ROOTS = frozenset({"Lean", "IO", "System", "EIO", "BaseIO"})
# Every ``#command`` is denied; these are also denied inside terms where ``#`` is not at a line start.
DENIED_HASH = frozenset(
    {"#eval", "#exit", "#print", "#check", "#reduce", "#synth", "#guard", "#guard_msgs", "#help", "#where",
     "#time", "#count_heartbeats", "#simp", "#norm_num", "#conv", "#lint", "#find", "#check_failure",
     "#compile", "#widget", "#html", "#long_instances"}
)

SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")
HEARTBEAT_TIMEOUT = re.compile(r"\(deterministic\) timeout")
_AXIOMS = re.compile(
    r"^['`«]?(?P<name>[^\s'`»]+)['`»]?\s+(?:depends on axioms:\s*\[(?P<axioms>[^\]]*)\]|(?P<none>does not depend on any axioms))",
    re.DOTALL,
)


def find_violations(proof: str) -> list[str]:
    """Deny-list check of model-written Lean text; an empty list means clean.

    Comments and string literals are skipped the way Lean skips them, so ``-- sorry`` passes and ``"--" sorry``
    does not; identifiers match by whole dotted component, so ``sorry_free`` passes and ``Foo.sorry`` does not.
    """
    lexed = lex(proof)
    found: list[str] = list(lexed.problems)
    lines = proof.splitlines()
    tokens = lexed.tokens
    for idx, tok in enumerate(tokens):
        where = f"at {tok.line}:{tok.col}"
        if tok.kind == "hash":
            at_line_start = not lines[tok.line - 1][: tok.col].strip()
            if tok.text in DENIED_HASH or at_line_start:
                found.append(f"`{tok.text}` {where}: commands may not appear in a proof")
        elif tok.kind == "ident":
            parts = tok.text.split(".")
            if parts[0] in DENIED_ROOTS:
                found.append(f"`{tok.text}` {where}: reaches the meta level ({parts[0]}.*)")
                continue
            for part in parts:
                if part in DENIED_NAMES:
                    found.append(f"`{part}` {where}: {DENIED_NAMES[part]}")
                    break
        elif tok.text == "@" and idx + 1 < len(tokens) and tokens[idx + 1].text == "[":
            found.append(f"`@[` {where}: attributes may not appear in a proof")
    return found


def parse_axioms(data: str) -> tuple[str, list[str]] | None:
    """``"'t' depends on axioms: [propext, sorryAx]"`` -> ``("t", ["propext", "sorryAx"])``; None if not a probe line."""
    match = _AXIOMS.match(data.strip())
    if not match:
        return None
    if match.group("none"):
        return match.group("name"), []
    axioms = [a.strip() for a in match.group("axioms").replace("\n", " ").split(",") if a.strip()]
    return match.group("name"), axioms


def messages_of(response: dict[str, Any]) -> list[LeanMessage]:
    """REPL-schema ``messages`` as ``LeanMessage``s, positions unchanged."""
    out = []
    for raw in response.get("messages") or []:
        pos = raw.get("pos") or {}
        out.append(LeanMessage(str(raw.get("severity", "error")), str(raw.get("data", "")), pos.get("line"), pos.get("column")))
    return out


def classify(
    response: dict[str, Any] | None,
    theorem_name: str,
    *,
    axioms_line: int | None = None,
    allowed_axioms: frozenset[str] = ALLOWED_AXIOMS,
) -> tuple[Status, list[str] | None, list[str]]:
    """Status of one REPL-schema command response -> ``(status, axioms, reasons)``.

    Rules, first match wins: no response or a protocol ``{"message"}`` -> INFRA_ERROR (``Lean error:`` -> LEAN_ERROR);
    a ``(deterministic) timeout`` error -> TIMEOUT; any other error -> LEAN_ERROR; a ``sorries`` entry or a
    "declaration uses sorry" warning in either quote style -> SORRY; no ``#print axioms`` answer for
    ``theorem_name`` (at ``axioms_line`` when given) -> FORBIDDEN; ``sorryAx`` among the axioms -> SORRY; any
    axiom outside ``allowed_axioms`` -> FORBIDDEN; else PROVED.
    """
    if response is None:
        return Status.INFRA_ERROR, None, ["no response"]
    if "message" in response and "messages" not in response and "env" not in response:
        text = str(response["message"])
        if text.startswith("Lean error"):
            return Status.LEAN_ERROR, None, [text.splitlines()[0][:200]]
        return Status.INFRA_ERROR, None, [f"REPL protocol error: {text[:200]}"]
    messages = messages_of(response)
    errors = [m for m in messages if m.severity == "error"]
    if any(HEARTBEAT_TIMEOUT.search(m.data) for m in errors):
        return Status.TIMEOUT, None, ["Lean's deterministic heartbeat limit was reached"]
    if errors:
        return Status.LEAN_ERROR, None, [f"error: {m.data.splitlines()[0][:160]}" for m in errors[:3]]
    if response.get("sorries"):
        return Status.SORRY, None, [f"{len(response['sorries'])} sorry placeholder(s) in the proof"]
    if any(SORRY_WARNING.search(m.data) for m in messages):
        return Status.SORRY, None, ["Lean warned: declaration uses sorry"]
    probes = []
    for m in messages:
        parsed = parse_axioms(m.data)
        if parsed and (axioms_line is None or m.line == axioms_line):
            probes.append(parsed)
    named = [axioms for name, axioms in probes if name == theorem_name]
    if len(named) != 1:
        seen = ", ".join(name for name, _ in probes) or "nothing"
        return Status.FORBIDDEN, None, [f"expected one #print axioms answer for {theorem_name!r}, got {seen}"]
    axioms = named[0]
    if "sorryAx" in axioms:
        return Status.SORRY, axioms, ["the proof depends on sorryAx"]
    extra = sorted(set(axioms) - allowed_axioms)
    if extra:
        return Status.FORBIDDEN, axioms, [f"axioms outside {sorted(allowed_axioms)}: {extra}"]
    return Status.PROVED, axioms, []
