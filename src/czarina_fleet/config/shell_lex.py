"""Tokens of the bash subset that real config.sh files use.

The lexer understands quoting, `$VAR`, `${...}`, `$(...)`, backticks, comments,
`NAME=value` and `NAME=( ... )` arrays spanning lines (with comments inside), and
here-documents (skipped). It never runs anything; `shell_parse` evaluates the tokens.
Syntax bash itself would refuse (an unclosed quote or array) raises `UserError`.
"""

from __future__ import annotations

import re

from czarina_fleet.config.shell_tokens import Assign, Op, Token, Word, WordBuilder
from czarina_fleet.errors import UserError

META = frozenset(";&|()<> \t\n")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Runs of characters with no meaning inside "..." are taken whole (one regex match, not
# a Python step per character): a config of 100,000 workers is mostly such text.
_DQ_RUN = re.compile(r'[^"\\$`\n]+')
_OPS = ("<<<", "<<-", ";;", "&&", "||", "<<", ">>", ">&", "<&", "&>", ";", "&", "|", "(", ")",
        "<", ">")
_ANSI = {"n": "\n", "t": "\t", "r": "\r", "e": "\x1b", "E": "\x1b", "a": "\a", "b": "\b",
         "\\": "\\", "'": "'", '"': '"', "v": "\v", "f": "\f"}

class Lexer:
    def __init__(self, text: str, line: int = 1) -> None:
        self.s = text
        self.i = 0
        self.line = line
        self._heredocs: list[tuple[str, bool]] = []

    def error(self, message: str, line: int | None = None) -> UserError:
        return UserError(message, where=str(line if line is not None else self.line))

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def tokens(self) -> list[Token]:
        out: list[Token] = []
        while self.i < len(self.s):
            c = self.peek()
            if c in " \t\r":
                self.i += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
                self.line += 1
            elif c == "\n":
                out.append(Op("NL", self.line))
                self.i += 1
                self.line += 1
                self._skip_heredocs()
            elif c == "#":
                self._skip_comment()
            elif c in META:
                out.append(self._op())
            else:
                out.append(self._word_or_assign())
        return out

    def _skip_comment(self) -> None:
        end = self.s.find("\n", self.i)
        self.i = len(self.s) if end < 0 else end

    def _op(self) -> Op:
        line = self.line
        for op in _OPS:
            if self.s.startswith(op, self.i):
                self.i += len(op)
                if op in ("<<", "<<-"):
                    self._heredoc_delimiter(strip_tabs=op == "<<-")
                return Op(op, line)
        raise self.error(f'unexpected "{self.peek()}"')  # unreachable: META chars are all ops

    def _heredoc_delimiter(self, strip_tabs: bool) -> None:
        while self.peek() in (" ", "\t"):
            self.i += 1
        if not self.peek() or self.peek() in META:
            raise self.error("a here-document (<<) needs a delimiter word")
        word = self._word()
        text = "".join(p[1] if p[0] == "lit" else "" for p in word.parts)
        self._heredocs.append((text, strip_tabs))

    def _skip_heredocs(self) -> None:
        for delimiter, strip_tabs in self._heredocs:
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                body = self.s[self.i:end]
                self.i = min(end + 1, len(self.s))
                self.line += 1
                if (body.lstrip("\t") if strip_tabs else body) == delimiter:
                    break
        self._heredocs = []

    def _word_or_assign(self) -> Token:
        m = _ASSIGN.match(self.s, self.i)
        if not m:
            return self._word()
        line = self.line
        self.i = m.end()
        if self.peek() == "(":
            return Assign(m.group(1), bool(m.group(2)), None, self._array(), line)
        value = self._word()
        return Assign(m.group(1), bool(m.group(2)), value, None, line)

    def _array(self) -> tuple[Word, ...]:
        start = self.line
        self.i += 1
        items: list[Word] = []
        while True:
            c = self.peek()
            if c == "":
                raise self.error("this array is never closed; add the missing )", start)
            if c in " \t\r":
                self.i += 1
            elif c == "\n":
                self.i += 1
                self.line += 1
            elif c == "\\" and self.peek(1) == "\n":
                self.i += 2
                self.line += 1
            elif c == "#":
                self._skip_comment()
            elif c == ")":
                self.i += 1
                return tuple(items)
            elif c in META:
                raise self.error(f'unexpected "{c}" inside an array; quote the element')
            else:
                items.append(self._word())

    def _word(self) -> Word:
        w = WordBuilder(self.line)
        start = self.i
        while self.i < len(self.s):
            c = self.peek()
            if c in META or c == "\r":  # a CRLF file's \r ends the word, as whitespace
                break
            if c == "\\":
                nxt = self.peek(1)
                if nxt == "\n":
                    self.line += 1
                else:
                    w.lit(nxt or "\\")
                w.plain = False
                self.i += 2
            elif c == "'":
                self._single_quote(w)
            elif c == '"':
                self.i += 1
                self._double_quote(w, closing=True)
            elif c == "$":
                self._dollar(w)
            elif c == "`":
                self._backtick(w)
            elif c == "~" and self.i == start and (self.peek(1) in ("/", "") or self.peek(1)
                                                   in META):
                w.part(("home",))
                self.i += 1
            else:
                w.lit(c)
                self.i += 1
        return w.build()

    def _single_quote(self, w: WordBuilder) -> None:
        end = self.s.find("'", self.i + 1)
        if end < 0:
            raise self.error("unterminated single quote ('); close it")
        text = self.s[self.i + 1:end]
        w.lit(text)
        w.plain = False
        self.line += text.count("\n")
        self.i = end + 1

    def _double_quote(self, w: WordBuilder, closing: bool) -> None:
        """Inside "..." (or a ${...} default when not `closing`) up to the closing quote."""
        start = self.line
        w.plain = False
        while True:
            c = self.peek()
            if c == "":
                if closing:
                    raise self.error('unterminated double quote ("); close it', start)
                return
            if c == '"' and closing:
                self.i += 1
                return
            run = _DQ_RUN.match(self.s, self.i)
            if run is not None:
                w.lit(run.group(0))
                self.i = run.end()
                continue
            if c == "\\" and self.peek(1) in ('$', '`', '"', "\\", "\n"):
                if self.peek(1) == "\n":
                    self.line += 1
                else:
                    w.lit(self.peek(1))
                self.i += 2
            elif c == "$":
                self._dollar(w)
            elif c == "`":
                self._backtick(w)
            else:
                w.lit(c)
                self.line += c == "\n"
                self.i += 1

    def _dollar(self, w: WordBuilder) -> None:
        nxt = self.peek(1)
        w.plain = False
        if nxt == "(":
            arith = self.peek(2) == "("
            inner = self._balanced(self.i + 1, "(", ")")
            w.part(("arith", inner[1:-1]) if arith else ("cmd", inner))
        elif nxt == "{":
            w.part(("var", self._balanced(self.i + 1, "{", "}")))
        elif nxt == "'":
            self.i += 1
            self._ansi_c(w)
        elif nxt == '"':
            self.i += 2
            self._double_quote(w, closing=True)
        elif (m := _NAME.match(self.s, self.i + 1)) is not None:
            w.part(("var", m.group(0)))
            self.i = m.end()
        elif nxt and (nxt.isdigit() or nxt in "@*#?$!-"):
            w.part(("var", nxt))
            self.i += 2
        else:
            w.lit("$")
            self.i += 1

    def _balanced(self, start: int, open_: str, close: str) -> str:
        """Text between the bracket at `start` and its match, quote-aware; moves past it."""
        depth, j, line0 = 0, start, self.line
        while j < len(self.s):
            c = self.s[j]
            if c == "\\":
                j += 1
            elif c == "'" and open_ == "(":
                end = self.s.find("'", j + 1)
                j = len(self.s) if end < 0 else end
            elif c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    inner = self.s[start + 1:j]
                    self.line += self.s.count("\n", self.i, j)
                    self.i = j + 1
                    return inner
            j += 1
        raise self.error(f'unterminated "${open_}"; add the missing "{close}"', line0)

    def _backtick(self, w: WordBuilder) -> None:
        j = self.i + 1
        while j < len(self.s) and self.s[j] != "`":
            j += 2 if self.s[j] == "\\" else 1
        if j >= len(self.s):
            raise self.error("unterminated backquote (`); close it")
        inner = self.s[self.i + 1:j].replace("\\`", "`")
        w.part(("cmd", inner))
        w.plain = False
        self.line += inner.count("\n")
        self.i = j + 1

    def _ansi_c(self, w: WordBuilder) -> None:
        j = self.i + 1
        out: list[str] = []
        while j < len(self.s) and self.s[j] != "'":
            if self.s[j] == "\\" and j + 1 < len(self.s):
                nxt = self.s[j + 1]
                out.append(_ANSI.get(nxt, "\\" + nxt))
                j += 2
            else:
                out.append(self.s[j])
                j += 1
        if j >= len(self.s):
            raise self.error("unterminated $'...' string; close it")
        text = "".join(out)
        self.line += self.s.count("\n", self.i, j)
        w.lit(text)
        self.i = j + 1


def lex_default(text: str, line: int) -> Word:
    """A `${VAR:-default}` default: expansions and quotes as inside double quotes."""
    lexer = Lexer(text, line)
    w = WordBuilder(line)
    lexer._double_quote(w, closing=False)
    return w.build()
