"""Errors a user can cause, and the exit codes the CLI maps them to.

Anything a user can fix (a config typo, a bad flag) is a `UserError`: the CLI prints its
message (which names the file, line or field and what to change) and exits 2, never with
a traceback. Operational failures (a host unreachable, a cloud call refused) are
`FleetError`: exit 1.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class FleetError(Exception):
    """An operational failure: the request was valid but could not be carried out."""


class MissingTool(FleetError):
    """A program czarina-fleet runs on this machine (git, tmux, ssh) is not on PATH."""

    PACKAGES = {"ssh": "openssh-client"}

    def __init__(self, tool: str) -> None:
        self.tool = tool
        pkg = self.PACKAGES.get(tool, tool)
        brew = "openssh" if tool == "ssh" else tool
        self.install_hint = (f"install it: Debian/Ubuntu: sudo apt-get install -y {pkg}; "
                             f"Fedora/RHEL: sudo dnf install -y {pkg}; macOS: brew install "
                             f"{brew}")
        super().__init__(f"{tool} is not installed on this machine (not found on PATH); "
                         f"{self.install_hint}. Then run the command again")


class NotYetAvailable(FleetError):
    """A verb or capability that has not landed yet. Says so plainly; never invents data."""


class UserError(Exception):
    """A mistake in the user's input. `where` is `FILE:LINE` or a JSON path."""

    def __init__(self, message: str, where: str | None = None) -> None:
        self.where = where
        self.detail = message
        super().__init__(f"{where}: {message}" if where else message)


class ConfigError(UserError):
    """One or more problems in a configuration file, reported together."""

    def __init__(self, problems: list[UserError]) -> None:
        self.problems = problems
        Exception.__init__(self, "\n".join(str(p) for p in problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A '; did you mean "x"?' suffix for a near-miss spelling, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


# A repository URL may carry a token (https://x-access-token:TOKEN@github.com/...), and
# git echoes the URL in its errors: hide the user-info part of such URLs before any text
# reaches a message, a log line, an event or JSON output.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/@\s]+)@")


def redact_credentials(text: str) -> str:
    """`text` with the password (or, for http(s), any user-info: it is often a bare
    token) of each URL replaced by `***`. `ssh://git@host` keeps its user name."""
    def hide(m: re.Match[str]) -> str:
        scheme, userinfo = m.group(1), m.group(2)
        user, colon, _secret = userinfo.partition(":")
        if colon:
            return f"{scheme}{user}:***@"
        return f"{scheme}***@" if scheme.lower().startswith("http") else m.group(0)
    return _URL_USERINFO.sub(hide, text)


# What a terminal would act on rather than show: escape sequences (CSI, OSC such as
# OSC 52, which writes the clipboard, and two-byte ones), C0 controls but tab and
# newline, DEL and C1 controls, and the bidi overrides that make text read otherwise
# than it is. Pane text, commit subjects and error text come from hosts and agents.
_ESCAPE_SEQ = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]"        # CSI
                         r"|\][^\x07\x1b]*(?:\x07|\x1b\\)?"     # OSC
                         r"|[PX^_][^\x1b]*(?:\x1b\\)?"           # DCS, SOS, PM, APC
                         r"|[ -/]*[0-~])?")                      # the rest (ESC c, ESC ( B)
_UNSHOWN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                      "\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without anything a terminal would interpret (see above); newlines and
    tabs stay."""
    return _UNSHOWN.sub("", _ESCAPE_SEQ.sub("", text))
