"""A small Lean 4 lexer: just enough to see the identifiers and commands Lean will actually read.

Comments (``--``, nested ``/- -/``, doc comments) and string/char literals are skipped exactly as Lean skips them,
so a token hidden inside a comment is inert and is not reported, while a token that only *looks* commented out
(``"--" sorry``, ``'"' sorry``) is. Whether a string is interpolated (``s!"{e}"``, ``dbg_trace "{e}"``) depends on
the parser, not the lexer, so a ``{`` in any non-raw string is reported as a problem: every interpolation hole
opens with one, and no plain-string reading can then hide code.
"""

from __future__ import annotations

from dataclasses import dataclass

# λ, Π and Σ are letters to Python but binder symbols to Lean.
_NOT_IDENT_START = frozenset("λΠΣ")
_IDENT_REST_EXTRA = frozenset("_'!?")


@dataclass(frozen=True)
class Token:
    kind: str  # "ident" (dotted name, «» removed), "hash" (#command), "sym" (anything else)
    text: str
    line: int  # 1-based
    col: int  # 0-based, in characters


@dataclass
class Lexed:
    tokens: list[Token]
    problems: list[str]  # unterminated comments/strings: text Lean would swallow


def _is_ident_start(ch: str) -> bool:
    return (ch.isalpha() or ch == "_" or ch in "₀₁₂₃₄₅₆₇₈₉") and ch not in _NOT_IDENT_START


def _is_ident_rest(ch: str) -> bool:
    return (ch.isalnum() or ch in _IDENT_REST_EXTRA) and ch not in _NOT_IDENT_START


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.i = 0
        self.line = 1
        self.line_start = 0
        self.tokens: list[Token] = []
        self.problems: list[str] = []

    def pos(self, i: int | None = None) -> tuple[int, int]:
        i = self.i if i is None else i
        return self.line, i - self.line_start

    def advance(self, n: int = 1) -> None:
        for _ in range(n):
            if self.i < len(self.text) and self.text[self.i] == "\n":
                self.line += 1
                self.line_start = self.i + 1
            self.i += 1

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.text[j] if j < len(self.text) else ""

    def run(self) -> None:
        while self.i < len(self.text):
            ch = self.peek()
            if ch == "-" and self.peek(1) == "-":
                while self.i < len(self.text) and self.peek() != "\n":
                    self.advance()
            elif ch == "/" and self.peek(1) == "-":
                self.block_comment()
            elif ch == '"':
                self.string(raw_hashes=None)
            elif ch == "r" and (self.peek(1) == '"' or (self.peek(1) == "#" and self._raw_opening())):
                self.advance()
                hashes = 0
                while self.peek() == "#":
                    hashes += 1
                    self.advance()
                self.string(raw_hashes=hashes)
            elif ch == "'" and self._char_literal_ahead():
                self.char_literal()
            elif _is_ident_start(ch) or ch == "«":
                self.identifier()
            elif ch == "#" and _is_ident_start(self.peek(1)):
                line, col = self.pos()
                self.advance()
                start = self.i
                while self.i < len(self.text) and _is_ident_rest(self.peek()):
                    self.advance()
                self.tokens.append(Token("hash", "#" + self.text[start:self.i], line, col))
            elif ch.isspace():
                self.advance()
            else:
                line, col = self.pos()
                self.tokens.append(Token("sym", ch, line, col))
                self.advance()

    def _raw_opening(self) -> bool:
        j = self.i + 1
        while j < len(self.text) and self.text[j] == "#":
            j += 1
        prev = self.text[self.i - 1] if self.i > 0 else " "
        return j < len(self.text) and self.text[j] == '"' and not _is_ident_rest(prev)

    def _char_literal_ahead(self) -> bool:
        prev = self.text[self.i - 1] if self.i > 0 else " "
        if _is_ident_rest(prev):
            return False  # the prime of an identifier such as h'
        if self.peek(1) == "\\":
            return "'" in self.text[self.i + 2 : self.i + 12]
        return self.peek(2) == "'"

    def char_literal(self) -> None:
        self.advance()
        if self.peek() == "\\":
            self.advance(2)
        while self.i < len(self.text) and self.peek() != "'":
            self.advance()
        self.advance()

    def block_comment(self) -> None:
        line, col = self.pos()
        self.advance(2)
        depth = 1
        while self.i < len(self.text):
            if self.peek() == "/" and self.peek(1) == "-":
                depth += 1
                self.advance(2)
            elif self.peek() == "-" and self.peek(1) == "/":
                depth -= 1
                self.advance(2)
                if depth == 0:
                    return
            else:
                self.advance()
        self.problems.append(f"unterminated comment opened at {line}:{col} swallows the rest of the text")

    def string(self, raw_hashes: int | None) -> None:
        line, col = self.pos()
        self.advance()
        braces_reported = False
        while self.i < len(self.text):
            ch = self.peek()
            if raw_hashes is None and ch == "\\":
                self.advance(2)
            elif ch == '"':
                if raw_hashes is None:
                    self.advance()
                    return
                if self.text[self.i + 1 : self.i + 1 + raw_hashes] == "#" * raw_hashes:
                    self.advance(1 + raw_hashes)
                    return
                self.advance()
            elif ch == "{" and raw_hashes is None:
                if not braces_reported:
                    self.problems.append(f"string at {line}:{col} contains `{{`: an interpolation hole would run code")
                    braces_reported = True
                self.advance()
            else:
                self.advance()
        self.problems.append(f"unterminated string opened at {line}:{col} swallows the rest of the text")

    def identifier(self) -> None:
        line, col = self.pos()
        parts: list[str] = []
        while True:
            if self.peek() == "«":
                end = self.text.find("»", self.i)
                if end < 0:
                    self.problems.append(f"unterminated «identifier» at {line}:{col}")
                    self.i = len(self.text)
                    break
                parts.append(self.text[self.i + 1 : end])
                self.advance(end + 1 - self.i)
            else:
                start = self.i
                while self.i < len(self.text) and _is_ident_rest(self.peek()):
                    self.advance()
                parts.append(self.text[start:self.i])
            if self.peek() == "." and (_is_ident_start(self.peek(1)) or self.peek(1) == "«"):
                self.advance()
                continue
            break
        self.tokens.append(Token("ident", ".".join(parts), line, col))


def lex(text: str) -> Lexed:
    """Tokens of ``text`` outside comments and literals, plus any unterminated comment/string problems."""
    scanner = _Scanner(text)
    scanner.run()
    return Lexed(scanner.tokens, scanner.problems)


def strip_comments(text: str) -> str:
    """``text`` with every comment replaced by spaces (newlines kept, so line numbers survive)."""
    out = list(text)
    scanner = _Scanner(text)
    i = 0
    while i < len(text):
        scanner.i, ch = i, text[i]
        if ch == '"':
            scanner.string(raw_hashes=None)
            i = scanner.i
        elif ch == "-" and i + 1 < len(text) and text[i + 1] == "-":
            j = text.find("\n", i)
            j = len(text) if j < 0 else j
            out[i:j] = " " * (j - i)
            i = j
        elif ch == "/" and i + 1 < len(text) and text[i + 1] == "-":
            scanner.block_comment()
            for k in range(i, scanner.i):
                if out[k] != "\n":
                    out[k] = " "
            i = scanner.i
        else:
            i += 1
    return "".join(out)
