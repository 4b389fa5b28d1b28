"""Source assembly: trusted header + trusted statement + the model's proof body, never the model's own statement.

The checked text is split in two: the ``header`` (imports and options, run once per warm REPL as environment 0)
and the ``body`` (statement, proof and the ``#print axioms`` probe, run on top of it). Messages come back with
body-relative line numbers and are mapped to proof-relative ones for the policy's feedback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lean_env.lexer import strip_comments

DEFAULT_HEADER = "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\nopen BigOperators Real Nat Topology Rat\n\n"

_DECL = re.compile(
    r"(?:^|\n)[ \t]*(?:@\[[^\]]*\][ \t\n]*)?(?:(?:private|protected|noncomputable)\s+)*(?:theorem|lemma)\s+"
    r"(?P<name>«[^»]+»|[^\s(:{\[⦃]+)"
)


class AssemblyError(ValueError):
    """The model's text cannot be placed under the trusted statement (changed statement, text before it, ...)."""


@dataclass(frozen=True)
class Assembled:
    """One proof ready for Lean."""

    header: str  # trusted imports/options; ends with a newline
    body: str  # statement + proof + axioms probe, checked on top of ``header``
    theorem_name: str
    statement: str  # the trusted formal statement as it appears in ``body``
    proof: str  # the model-written text that went in (what the deny-list checks)
    proof_start_line: int  # body line (1-based) on which the proof begins
    axioms_line: int  # body line of the ``#print axioms`` probe

    @property
    def text(self) -> str:
        """The whole file, for backends that check files rather than commands."""
        return self.header + self.body

    @property
    def header_lines(self) -> int:
        """Add to a body line to get a line of ``text``."""
        return self.header.count("\n")

    def proof_line(self, body_line: int | None) -> int | None:
        """Body line -> proof line (1 = first proof line; <= 0 = inside the trusted statement)."""
        return None if body_line is None else body_line - self.proof_start_line + 1


def theorem_name(formal_statement: str) -> str:
    """Name of the first ``theorem``/``lemma`` declared in ``formal_statement``."""
    match = _DECL.search(strip_comments(formal_statement))
    if not match:
        raise AssemblyError(f"formal_statement declares no theorem: {formal_statement[:80]!r}")
    return match.group("name")


def _statement_pattern(statement: str) -> re.Pattern[str]:
    """The statement as a regex where any run of whitespace matches any run of whitespace."""
    words = statement.split()
    return re.compile(r"\s+".join(re.escape(w) for w in words))


def split_whole_file(text: str, formal_statement: str, header: str, name: str) -> str:
    """If ``text`` is a whole Lean file restating the theorem, return just its proof part; else return ``text``.

    A whole file is accepted only when the trusted statement occurs in it verbatim (up to whitespace) exactly
    once, no other declaration has the theorem's name, and everything before the statement is comments or lines
    of the trusted header (which is used in its place).
    """
    code = strip_comments(text)
    declared = [m for m in _DECL.finditer(code) if m.group("name") == name]
    if not declared:
        return text
    if len(declared) > 1:
        raise AssemblyError(f"theorem {name!r} is declared {len(declared)} times in the model's file")
    hits = list(_statement_pattern(formal_statement).finditer(code))
    if len(hits) != 1:
        raise AssemblyError(
            f"the model's file declares {name!r} but its statement differs from the trusted formal_statement"
            if not hits else f"the trusted statement occurs {len(hits)} times in the model's file"
        )
    header_lines = {line.strip() for line in header.splitlines() if line.strip()}
    for line in code[: hits[0].start()].splitlines():
        if line.strip() and line.strip() not in header_lines:
            raise AssemblyError(f"text before the statement is not part of the trusted header: {line.strip()[:80]!r}")
    return text[hits[0].end():]


def assemble(
    formal_statement: str,
    proof: str,
    *,
    header: str = DEFAULT_HEADER,
    heartbeats: int | None = None,
) -> Assembled:
    """Build the checked source: ``header`` + [heartbeat option] + ``formal_statement`` + proof + axioms probe.

    ``proof`` may be the tactic body or a whole file (see ``split_whole_file``). ``heartbeats`` puts
    ``set_option maxHeartbeats N in`` before the statement, a deterministic limit that overrides the header's.
    """
    if not formal_statement.strip():
        raise AssemblyError("formal_statement is empty")
    name = theorem_name(formal_statement)
    body_proof = split_whole_file(proof, formal_statement, header, name)
    header = header if header.endswith("\n") or not header else header + "\n"
    prefix = f"set_option maxHeartbeats {int(heartbeats)} in\n" if heartbeats is not None else ""
    statement = prefix + formal_statement
    if statement and not statement[-1].isspace() and body_proof[:1] not in ("", "\n", " "):
        statement += " "
    proof_start_line = statement.count("\n") + 1
    body = statement + body_proof
    body = body.rstrip() + "\n\n"
    axioms_line = body.count("\n") + 1
    body += f"#print axioms _root_.{name}\n"
    return Assembled(header, body, name, formal_statement, body_proof, proof_start_line, axioms_line)
