"""The few side-effect-free commands a config.sh's `$(...)` may use, done in Python
instead of run (cd, pwd, dirname, basename, echo, realpath and readlink -f), and the
`${V%pat}` / `${V#pat}` trimming, with the coreutils and bash results."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from typing import TypeVar

from czarina_fleet.config.shell_tokens import Op, Token, Word

_U = TypeVar("_U")  # what expanding a word gives when it has no known value


def evaluate_commands(tokens: list[Token], cwd: str,
                      expand: Callable[[Word], str | _U]) -> str | _U | None:
    """The output of a `$(...)`'s commands (joined by `&&`, `;` or newlines), each one
    of the builtins below with arguments `expand` can give; None when any is not,
    and the unknown value itself when an argument has none."""
    outputs = []
    for command, joiner in split_commands(tokens):
        if joiner not in ("", "&&", ";", "NL") or not command:
            return None
        if not all(isinstance(t, Word) for t in command):
            return None
        args: list[str] = []
        for word in command:
            value = expand(word)  # type: ignore[arg-type]
            if not isinstance(value, str):
                return value
            args.append(value)
        result = run_builtin(args, cwd)
        if result is None:
            return None
        cwd, out = result
        if out is not None:
            outputs.append(out)
    return "\n".join(outputs)


def split_commands(tokens: list[Token]) -> list[tuple[list[Token], str]]:
    """Commands with the separator that preceded each ("" for the first)."""
    out: list[tuple[list[Token], str]] = []
    current: list[Token] = []
    joiner = ""
    for tok in tokens:
        if isinstance(tok, Op):
            if current:
                out.append((current, joiner))
            elif tok.text != "NL":
                return [([], tok.text)]
            current, joiner = [], tok.text if tok.text != "NL" else joiner or ";"
        else:
            current.append(tok)
    if current:
        out.append((current, joiner))
    return out


def run_builtin(args: list[str], cwd: str) -> tuple[str, str | None] | None:
    """(new cwd, output) of the few side-effect-free commands we evaluate; else None."""
    name, rest = args[0], [a for a in args[1:] if not a.startswith("-") or a == "-"]
    options = [a for a in args[1:] if a.startswith("-") and a != "-"]
    try:
        if name == "cd" and len(rest) <= 1 and set(options) <= {"-P", "-L"}:
            target = rest[0] if rest else os.path.expanduser("~")
            return os.path.normpath(os.path.join(cwd, target)), None
        if name == "pwd" and set(options) <= {"-P", "-L"} and not rest:
            return cwd, cwd
        if name == "dirname" and len(rest) == 1 and not options:
            return cwd, dirname(rest[0])
        if name == "basename" and 1 <= len(rest) <= 2 and not options:
            base = os.path.basename(rest[0].rstrip("/")) or "/"
            if len(rest) == 2 and base.endswith(rest[1]) and base != rest[1]:
                base = base[: -len(rest[1])]
            return cwd, base
        if name == "echo" and set(options) <= {"-n"}:
            return cwd, " ".join(rest)
        if (name == "realpath" and not options or name == "readlink" and options == ["-f"]) \
                and len(rest) == 1:
            return cwd, os.path.realpath(os.path.join(cwd, rest[0]))
    except (ValueError, OSError):  # a NUL byte or an impossible path
        return None
    return None


def dirname(path: str) -> str:
    """coreutils dirname: "a/b/" -> "a", "b" -> ".", "/" -> "/"."""
    stripped = path.rstrip("/")
    if not stripped:
        return "/" if path else "."
    head = stripped.rpartition("/")[0] if "/" in stripped else "."
    return head.rstrip("/") or "/" if head != "." else "."


def trim(value: str, rest: str) -> str:
    """${V%pat} ${V%%pat} (suffix) and ${V#pat} ${V##pat} (prefix), glob patterns."""
    longest = rest[:2] in ("%%", "##")
    pattern = rest[2:] if longest else rest[1:]
    n = len(value)
    if rest[0] == "%":  # suffix value[cut:]; shortest first means cut from n downwards
        for cut in (range(n + 1) if longest else range(n, -1, -1)):
            if fnmatch.fnmatchcase(value[cut:], pattern):
                return value[:cut]
        return value
    for cut in (range(n, -1, -1) if longest else range(n + 1)):
        if fnmatch.fnmatchcase(value[:cut], pattern):
            return value[cut:]
    return value
