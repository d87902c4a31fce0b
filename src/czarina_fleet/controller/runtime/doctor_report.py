"""What `czarina doctor` reports: each check's outcome per host or pool, which workers
need which subject, and so which workers cannot start. Pure data: the checks are
doctor.py's (hosts) and doctor_pools.py's (cloud pools)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RepoPlan:
    """What hosts clone (`url`), or why there is nothing for them to clone (`why_none`;
    `blocking` False when that is fine: the controller relays git for them)."""

    url: str | None
    why_none: str = ""
    blocking: bool = True


@dataclass(frozen=True)
class Check:
    subject: str            # "host gpu", "pool cpu", "local"
    check: str              # "reachable", "host key", "git", ...
    ok: bool | None
    detail: str


@dataclass
class DoctorReport:
    checks: list[Check] = field(default_factory=list)
    users: dict[str, list[str]] = field(default_factory=dict)  # subject -> worker ids

    @property
    def blocked_workers(self) -> list[str]:
        """Workers that cannot start: they need a host or pool with a failed check."""
        return sorted({w for c in self.checks if c.ok is False
                       for w in self.users.get(c.subject, [])})

    @property
    def blocked(self) -> bool:
        return bool(self.blocked_workers)

    def as_json(self) -> dict[str, Any]:
        return {"ok": not self.blocked, "blocked_workers": self.blocked_workers,
                "checks": [asdict(c) for c in self.checks], "workers": self.users}


@dataclass
class HostChecks:
    """The checks of one subject, in order; `add` says whether the check passed."""

    subject: str
    found: list[Check] = field(default_factory=list)

    def add(self, check: str, ok: bool | None, detail: str) -> bool:
        self.found.append(Check(self.subject, check, ok, detail))
        return ok is True

    def skip(self, *checks: str, because: str) -> None:
        for check in checks:
            self.add(check, None, f"not checked: {because}")
