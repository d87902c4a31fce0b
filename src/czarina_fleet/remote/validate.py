"""Validation of every name that goes into a remote command.

Worker ids, branches, socket names and repository URLs are checked here before any argv
is built, so none of them can become shell syntax or a command-line option. Each check
raises `ValueError` with a message saying what is wrong and what is allowed; the value is
returned unchanged when it is safe.
"""

from __future__ import annotations

import functools
import re

from czarina_fleet.errors import redact_credentials

SESSION_PREFIX = "czar-worker-"
# Stricter than upstream's ^[a-z0-9-]+$: a leading "-" would read as an option.
_WORKER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
# A conservative subset of what git allows: enough for feat/v1.2-backend, release/2024.1,
# user+topic, and nothing a shell or tmux would treat specially.
_BRANCH_CHARS = re.compile(r"^[A-Za-z0-9._/+@-]+$")
_SOCKET_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REPO_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def check_worker_id(worker_id: str) -> str:
    """Return `worker_id` if it is a safe worker id, else raise ValueError."""
    if not isinstance(worker_id, str) or not _WORKER_ID.match(worker_id):
        raise ValueError(
            f"worker id {worker_id!r} is not allowed: use 1-63 lowercase letters, digits "
            "and '-', starting with a letter or digit"
        )
    return worker_id


def session_name(worker_id: str) -> str:
    """The tmux session of a worker: `czar-worker-<id>`."""
    return SESSION_PREFIX + check_worker_id(worker_id)


def worker_id_of_session(name: str) -> str | None:
    """The worker id of a `czar-worker-<id>` session name, or None for other sessions."""
    if not name.startswith(SESSION_PREFIX):
        return None
    candidate = name[len(SESSION_PREFIX):]
    return candidate if _WORKER_ID.match(candidate) else None


def check_branch(branch: str) -> str:
    """Return `branch` if it is a valid, safe git branch name (git check-ref-format rules
    plus a conservative character set), else raise ValueError."""
    problem = _branch_problem(branch)
    if problem:
        raise ValueError(f"branch {branch!r} is not allowed: {problem}")
    return branch


def _branch_problem(branch: str) -> str | None:
    if not isinstance(branch, str) or not branch:
        return "it is empty"
    if len(branch) > 200:
        return "it is longer than 200 characters"
    if not _BRANCH_CHARS.match(branch):
        return "use only letters, digits and . _ / + @ -"
    if branch.startswith("-"):
        return "it must not start with '-'"
    if branch == "@" or "@{" in branch:
        return "'@' alone and '@{' are reserved by git"
    if ".." in branch or "//" in branch:
        return "'..' and '//' are not allowed in git ref names"
    if branch.startswith("/") or branch.endswith("/") or branch.endswith("."):
        return "it must not start with '/' or end with '/' or '.'"
    for part in branch.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "no path component may start with '.' or end with '.lock'"
    if branch == "HEAD":
        return "HEAD is not a branch"
    return None


def check_socket_name(name: str) -> str:
    if not _SOCKET_NAME.match(name):
        raise ValueError(f"tmux socket name {name!r}: use 1-64 letters, digits, '.', '_', '-'")
    return name


def check_path(path: str, what: str = "path") -> str:
    """A path passed as one argv element: no NUL or newline, no leading '-'."""
    if not path or "\0" in path or "\n" in path or path.startswith("-"):
        raise ValueError(f"{what} {path!r} is not allowed: it must be non-empty, not start "
                         "with '-', and hold no newline or NUL")
    return path


def check_repo_url(url: str) -> str:
    """A repository URL or path for `git clone`: never an option, no `ext::` transport."""
    shown = redact_credentials(url)
    if not url or "\0" in url or "\n" in url or url.startswith("-"):
        raise ValueError(f"repository URL {shown!r} is not allowed: it must be non-empty, "
                         "not start with '-', and hold no newline or NUL")
    if url.lower().startswith(("ext::", "fd::")) or any(c.isspace() for c in url):
        raise ValueError(f"repository URL {shown!r} is not allowed: use an ssh, https, "
                         "git or file URL (or a path) without spaces")
    return url


@functools.lru_cache(maxsize=64)
def repo_name(url: str) -> str:
    """The directory name a clone of `url` gets: the last path part without `.git`.
    Kept per URL: every worker's checkout path is derived from it on every probe."""
    tail = check_repo_url(url).rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    if tail.endswith(".git"):
        tail = tail[:-4]
    name = _REPO_NAME.sub("-", tail).strip(".-")
    return name or "repo"


# Characters a task may hold. It is typed into the agent's pane, where any other control
# character is a keystroke: \x03 is Ctrl-C (kills the agent), \x1b starts an escape.
_TASK_ALLOWED_CONTROLS = frozenset("\n\t")
_CONTROL_NAMES = {"\x03": "Ctrl-C", "\x04": "Ctrl-D", "\x1a": "Ctrl-Z", "\x1b": "Escape",
                  "\r": "carriage return", "\x7f": "Delete", "\x00": "NUL"}


def check_task_text(text: str) -> str:
    """The task as it will be typed (CRLF line ends become LF), or ValueError naming the
    first control character other than newline and tab, and where it is; or saying the
    task is empty."""
    text = text.replace("\r\n", "\n")
    if not text.strip():
        raise ValueError("the task is empty: write what the worker should do")
    for line_no, line in enumerate(text.split("\n"), start=1):
        for col, ch in enumerate(line, start=1):
            if ch in _TASK_ALLOWED_CONTROLS or not _is_control(ch):
                continue
            name = _CONTROL_NAMES.get(ch) or (f"Ctrl-{chr(ord(ch) + 64)}" if ord(ch) < 32
                                              else "a control character")
            raise ValueError(
                f"the task holds a control character, 0x{ord(ch):02x} ({name}), at line "
                f"{line_no} column {col}; remove it: typed into the agent's pane it would "
                "act as a keystroke (only newlines and tabs are allowed)")
    return text


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F
