"""Static evaluation of a config.sh: the variables it sets, without running it.

Assignments at the top level are evaluated: quotes, `$VAR`/`${VAR}` (with `:-`, `-`,
`:=`, `:+`, `#`, `%`, `##`-style forms), `${BASH_SOURCE[0]}`, and the command
substitutions `$(dirname X)`, `$(basename X)`, `$(pwd)`, `$(cd X && pwd)`, `$(realpath X)`,
`$(echo ...)`. Anything else - other `$(...)`, arithmetic, assignments inside `if`/`for`/
`case`/functions - makes the variable `Unknown`, carrying the reason and line, which is an
error only if the loader needs that variable. The commands are evaluated in
shell_builtins.py; the text is tokenised by shell_lex.py into shell_tokens.py's tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from czarina_fleet.config.shell_builtins import evaluate_commands, trim
from czarina_fleet.config.shell_lex import Lexer, lex_default
from czarina_fleet.config.shell_tokens import Assign, Op, Token, Word
from czarina_fleet.errors import UserError


@dataclass(frozen=True)
class Unknown:
    reason: str
    line: int


Value = str | Unknown


@dataclass(frozen=True)
class ShellVar:
    name: str
    line: int
    value: Value | None = None                       # a scalar
    items: tuple[tuple[Value, int], ...] | None = None  # an array: (element, line)


_SEPARATORS = frozenset({"NL", ";", "&&", "||", "&", "|", ";;"})
_DECLARE = frozenset({"export", "declare", "typeset", "readonly", "local"})
_OPENERS = {"if": "fi", "case": "esac", "for": "done", "while": "done", "until": "done",
            "select": "done", "{": "}"}
_CLOSERS = frozenset({"fi", "esac", "done", "}"})
_PARAM = re.compile(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])(?:\[([^\]]*)\])?(.*)", re.S)
_MAX_DEPTH = 8


def parse_shell(text: str, config_path: Path, cwd: Path | None = None) -> dict[str, ShellVar]:
    """The variables `text` sets. Raises UserError (where = line number) on syntax that
    bash would refuse, such as an unclosed quote or array."""
    return _Evaluator(config_path, cwd).run(Lexer(text).tokens())


class _Evaluator:
    def __init__(self, config_path: Path, cwd: Path | None) -> None:
        self.source = str(config_path.absolute())
        self.cwd = str(cwd or Path.cwd())
        self.vars: dict[str, ShellVar] = {}
        self.stack: list[str] = []

    def run(self, tokens: list[Token]) -> dict[str, ShellVar]:
        command: list[Token] = []
        for tok in [*tokens, Op("NL", 0)]:
            if isinstance(tok, Op) and tok.text in _SEPARATORS:
                self._command(command)
                command = []
            else:
                command.append(tok)
        return self.vars

    # -- statements ----------------------------------------------------------------------

    def _command(self, toks: list[Token]) -> None:
        toks = self._strip_keywords(toks)
        if not toks:
            return
        if self.stack:  # inside a block or function: not run at load time
            for tok in toks:
                if isinstance(tok, Assign):
                    self._set_unknown(tok, f"{tok.name} is set inside an if/for/while/case "
                                      f"block or a function (line {tok.line}), which "
                                      "czarina-fleet does not run; set it at the top level")
            return
        head = toks[0]
        if isinstance(head, Word) and head.plain in _DECLARE:
            for tok in toks[1:]:
                if isinstance(tok, Assign):
                    self._assign(tok)
            return
        if isinstance(head, Word) and head.plain == "unset":
            for tok in toks[1:]:
                if isinstance(tok, Word) and tok.plain and not tok.plain.startswith("-"):
                    self.vars.pop(tok.plain, None)
            return
        if all(isinstance(t, Assign) for t in toks):
            for tok in toks:
                self._assign(tok)  # type: ignore[arg-type]
        # Anything else is a command (or NAME=x before a command, which does not persist).

    def _strip_keywords(self, toks: list[Token]) -> list[Token]:
        """Track if/for/case/{ } nesting and drop the keywords themselves."""
        while toks:
            head = toks[0]
            word = head.plain if isinstance(head, Word) else None
            if isinstance(head, Op) and head.text == "(":
                self.stack.append(")")
                toks = toks[1:]
            elif isinstance(head, Op) and head.text == ")":
                if self.stack and self.stack[-1] == ")":
                    self.stack.pop()
                toks = toks[1:]
            elif word in ("then", "do", "else", "elif", "!", "function"):
                toks = toks[2:] if word == "function" else toks[1:]
            elif word in _OPENERS:
                self.stack.append(_OPENERS[word])
                # the rest is a condition or a case pattern list: only its assignments
                # matter, and they are inside the block
                toks = toks[1:] if word == "{" else [t for t in toks if isinstance(t, Assign)]
            elif word in _CLOSERS:
                if self.stack and self.stack[-1] == word:
                    self.stack.pop()
                toks = toks[1:]
            elif (len(toks) >= 3 and isinstance(toks[1], Op) and toks[1].text == "("
                  and isinstance(toks[2], Op) and toks[2].text == ")"):
                toks = toks[3:]  # NAME() - a function definition; its { } follows
            else:
                break
        return toks

    def _set_unknown(self, tok: Assign, reason: str) -> None:
        self.vars[tok.name] = ShellVar(tok.name, tok.line, value=Unknown(reason, tok.line))

    def _assign(self, tok: Assign) -> None:
        old = self.vars.get(tok.name)
        if tok.items is not None:
            items = tuple(self._array_items(tok.items))
            line = tok.line
            if tok.append and old is not None:
                items, line = self._items_of(old) + items, old.line
            self.vars[tok.name] = ShellVar(tok.name, line, items=items)
            return
        value = self.expand(tok.value) if tok.value is not None else ""
        if tok.append and old is not None:
            if old.items is not None:
                self.vars[tok.name] = ShellVar(tok.name, old.line,
                                               items=old.items + ((value, tok.line),))
                return
            value = _concat([old.value if old.value is not None else "", value])
        self.vars[tok.name] = ShellVar(tok.name, tok.line, value=value)

    def _items_of(self, var: ShellVar) -> tuple[tuple[Value, int], ...]:
        if var.items is not None:
            return var.items
        return ((var.value if var.value is not None else "", var.line),)

    def _array_items(self, words: tuple[Word, ...]) -> list[tuple[Value, int]]:
        out: list[tuple[Value, int]] = []
        for word in words:
            spliced = _splice_name(word)
            if spliced is not None:  # "${OTHER[@]}" inside an array: its elements
                var = self.vars.get(spliced)
                if var is not None:
                    out.extend(self._items_of(var))
                    continue
            out.append((self.expand(word), word.line))
        return out

    # -- expansion -----------------------------------------------------------------------

    def expand(self, word: Word, depth: int = 0) -> Value:
        pieces: list[Value] = []
        for part in word.parts:
            kind = part[0]
            if kind == "lit":
                pieces.append(part[1])
            elif kind == "home":
                pieces.append(self._home(word.line))
            elif kind == "var":
                pieces.append(self._param(part[1], word.line, depth))
            elif kind == "cmd":
                pieces.append(self._command_substitution(part[1], word.line, depth))
            else:
                pieces.append(Unknown(f"$(({_short(part[1])})) on line {word.line} is "
                                      "arithmetic, which is not evaluated; write the number",
                                      word.line))
        return _concat(pieces)

    def _home(self, line: int) -> Value:
        var = self.vars.get("HOME")
        if var is not None and var.value is not None:
            return var.value
        try:
            return str(Path.home())
        except (RuntimeError, KeyError):
            return Unknown("~ is used but no home directory is known", line)

    def _lookup(self, name: str, index: str | None, line: int) -> Value | None:
        if name == "BASH_SOURCE" and index in (None, "0", "@", "*"):
            return self.source
        var = self.vars.get(name)
        if var is None:
            if name == "HOME":
                return self._home(line)
            return self.cwd if name == "PWD" else None
        if var.items is None:
            return var.value if index in (None, "0", "@", "*") else None
        values = [v for v, _ in var.items]
        if index in ("@", "*"):
            return _concat(values, sep=" ")
        position = int(index) if index and index.isdigit() else 0
        return values[position] if position < len(values) else None

    def _param(self, expr: str, line: int, depth: int) -> Value:
        if expr.startswith("#") and len(expr) > 1:  # ${#NAME}: length
            value = self._lookup(expr[1:], None, line)
            return str(len(value)) if isinstance(value, str) else (value or "0")
        m = _PARAM.fullmatch(expr)
        if not m:
            return Unknown(f"${{{_short(expr)}}} on line {line} is not understood", line)
        name, index, rest = m.group(1), m.group(2), m.group(3)
        value = self._lookup(name, index, line)
        if not rest:
            if value is None:
                return Unknown(f"${name} (line {line}) is not set in this file", line)
            return value
        return self._operator(name, value, rest, line, depth)

    def _operator(self, name: str, value: Value | None, rest: str, line: int,
                  depth: int) -> Value:
        for op in (":-", ":=", ":+", "-", "=", "+"):
            if rest.startswith(op):
                arg = rest[len(op):]
                unset = value is None or (op.startswith(":") and value == "")
                if op.endswith("+"):
                    return "" if unset else self._expand_text(arg, line, depth)
                if not unset:
                    return value  # type: ignore[return-value]
                result = self._expand_text(arg, line, depth)
                if op.endswith("="):
                    self.vars[name] = ShellVar(name, line, value=result)
                return result
        if rest[:1] in ("%", "#") and "$" not in rest:
            if value is None:
                return Unknown(f"${name} (line {line}) is not set in this file", line)
            return value if isinstance(value, Unknown) else trim(value, rest)
        return Unknown(f"${{{name}{_short(rest)}}} on line {line} is not evaluated; "
                       "write the value literally", line)

    def _expand_text(self, text: str, line: int, depth: int) -> Value:
        try:
            return self.expand(lex_default(text, line), depth)
        except UserError:
            return Unknown(f'"{_short(text)}" on line {line} is not understood', line)

    def _command_substitution(self, inner: str, line: int, depth: int) -> Value:
        refused = Unknown(f"$({_short(inner.strip())}) on line {line} is not evaluated "
                          "(czarina-fleet runs no code from config files); write the value "
                          "literally", line)
        if depth >= _MAX_DEPTH:
            return refused
        try:
            tokens = Lexer(inner, line).tokens()
        except UserError:
            return refused
        got = evaluate_commands(tokens, self.cwd, lambda word: self.expand(word, depth + 1))
        return refused if got is None else got


def _splice_name(word: Word) -> str | None:
    if len(word.parts) == 1 and word.parts[0][0] == "var":
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]", word.parts[0][1])
        return m.group(1) if m else None
    return None


def _concat(values: list[Value], sep: str = "") -> Value:
    for value in values:
        if isinstance(value, Unknown):
            return value
    return sep.join(values)  # type: ignore[arg-type]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 50 else text[:47] + "..."
