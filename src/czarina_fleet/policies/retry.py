"""Backoff for retried steps (bootstrap, launches). Pure: the caller supplies times."""

from __future__ import annotations

MAX_BOOTSTRAP_ATTEMPTS = 3
BOOTSTRAP_BACKOFF_S = 30.0
LAUNCH_BACKOFF_S = 30.0
BACKOFF_CAP_S = 900.0
LAUNCH_FAILURE_WINDOW_S = 1800.0  # failures older than this no longer slow a pool down


def backoff(attempt: int, base: float, cap: float = BACKOFF_CAP_S) -> float:
    """Seconds to wait before try number `attempt + 1` (attempt >= 1): base, 2x, 4x, ..."""
    return min(cap, base * (2 ** max(0, attempt - 1)))
