"""One controller acts at a time: an exclusive `flock` on a file beside the store.

The kernel releases a flock when its holder dies, even by SIGKILL, so a crashed
controller never leaves a stale lock behind. The file also holds who took it (pid,
hostname, since) so a second controller can say who is in its way.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from czarina_fleet.clock import Clock, SystemClock
from czarina_fleet.errors import FleetError


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int
    hostname: str
    since: float

    def describe(self) -> str:
        return f"pid {self.pid} on {self.hostname} (since {local_time(self.since)})"


def local_time(ts: float, *, clock_only: bool = False) -> str:
    """`2026-11-27 11:02:03 CET` (or `11:02:03 CET`): this machine's local time, as a
    person reads it."""
    from datetime import datetime

    fmt = "%H:%M:%S %Z" if clock_only else "%Y-%m-%d %H:%M:%S %Z"
    return datetime.fromtimestamp(ts).astimezone().strftime(fmt)


class LockHeld(FleetError):
    """Another controller holds the lock. `holder` is None if it has not said who it is."""

    def __init__(self, path: Path, holder: LockHolder | None) -> None:
        self.path = path
        self.holder = holder
        who = holder.describe() if holder else "another process"
        super().__init__(
            f"another controller is running: {who} holds {path}; stop that process "
            "first (or wait for it to exit)"
        )


def lock_path_for(db_path: Path) -> Path:
    """The lock file that guards the store at `db_path`."""
    return db_path.with_name(db_path.name + ".lock")


class ControllerLock:
    """`with ControllerLock(path): ...` holds the controller lock or raises `LockHeld`."""

    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or SystemClock()
        self._fd: int | None = None

    def acquire(self) -> ControllerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_holder(self.path)) from None
        info = {"pid": os.getpid(), "hostname": socket.gethostname(),
                "since": self._clock.now()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # nobody holds it: say so before letting go
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> ControllerLock:
        return self.acquire()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def read_holder(path: Path) -> LockHolder | None:
    """Who the file says holds the lock (None if empty or unreadable). Advisory only:
    use `ControllerLock.acquire` to know for sure."""
    try:
        data = json.loads(Path(path).read_text() or "null")
        if not data:
            return None
        return LockHolder(int(data["pid"]), str(data["hostname"]), float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
