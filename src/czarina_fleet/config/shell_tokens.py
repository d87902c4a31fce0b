"""The tokens the config.sh lexer (shell_lex.py) produces and the evaluator
(shell_parse.py) reads: words made of parts, operators and assignments."""

from __future__ import annotations

from dataclasses import dataclass

# A word is a tuple of parts: ("lit", text) | ("var", expr) | ("cmd", inner)
# | ("arith", inner) | ("home",)
Part = tuple[str, ...]


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]
    line: int
    plain: str | None  # the text when written with no quotes or expansions (keywords)


@dataclass(frozen=True)
class Op:
    text: str  # "NL" for a newline
    line: int


@dataclass(frozen=True)
class Assign:
    name: str
    append: bool
    value: Word | None          # scalar assignment
    items: tuple[Word, ...] | None  # array assignment NAME=( ... )
    line: int


Token = Word | Op | Assign


class WordBuilder:
    """A Word being read: literal text gathered into runs, expansions as parts; `plain`
    stays true only for a word written with no quoting at all."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.parts: list[Part] = []
        self.buf: list[str] = []
        self.plain = True

    def lit(self, text: str) -> None:
        self.buf.append(text)

    def part(self, part: Part) -> None:
        self._flush()
        self.parts.append(part)

    def _flush(self) -> None:
        if self.buf:
            self.parts.append(("lit", "".join(self.buf)))
            self.buf = []

    def build(self) -> Word:
        self._flush()
        text = "".join(p[1] for p in self.parts if p[0] == "lit")
        plain = text if self.plain and all(p[0] == "lit" for p in self.parts) else None
        return Word(tuple(self.parts), self.line, plain)
