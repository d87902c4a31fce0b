"""Errors a user can cause, and the exit codes the CLI maps them to.

Anything a user can fix (a config typo, a bad flag) is a `UserError`: the CLI prints its
message (which names the file, line or field and what to change) and exits 2, never with
a traceback. Operational failures (a host unreachable, a cloud call refused) are
`FleetError`: exit 1.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class FleetError(Exception):
    """An operational failure: the request was valid but could not be carried out."""


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
