"""What `czarina controller run` shows on a terminal: one screen refreshed every second
with the workers, the hosts, what is in flight (the step running, intents not yet
finished), the last step's outcome, the time to the next step and, with `--for`, the
time left; the latest log lines at the bottom. Without a terminal (or with
`--log-format json`) the controller writes plain log lines instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.text import Text

from czarina_fleet.cli.render import console, table
from czarina_fleet.controller.runtime.compose import Fleet
from czarina_fleet.controller.runtime.scheduler import Controller
from czarina_fleet.model.states import HOST_ALIVE

LOG_LINES = 8


class _Recent(logging.Handler):
    """Keeps the last log lines for the screen instead of writing them over it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: deque[str] = deque(maxlen=LOG_LINES)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def capture_logs() -> _Recent:
    """Route log lines to the live view (root logger, INFO)."""
    handler = _Recent()
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler


class LiveView:
    def __init__(self, fleet: Fleet, controller: Controller, logs: _Recent,
                 ends_at: float | None) -> None:
        self.fleet, self.controller, self.logs = fleet, controller, logs
        self.ends_at = ends_at  # time.monotonic() when --for stops the controller

    async def show(self, done: asyncio.Event) -> None:
        """Refresh every second until `done`; the last screen stays."""
        with Live(self.render(), console=console(), auto_refresh=False,
                  transient=False) as live:
            while not done.is_set():
                try:
                    await asyncio.wait_for(done.wait(), 1.0)
                except TimeoutError:
                    pass
                live.update(self.render(), refresh=True)

    def render(self) -> Group:
        store = self.fleet.store
        now = self.fleet.clock.now()
        workers = store.workers()
        hosts = [h for h in store.hosts() if h.state in HOST_ALIVE or h.host_id == "local"]
        parts: list[Any] = [Text(self._header(), style="bold")]
        parts.append(table("Workers", ["Worker", "State", "Host", "For", "Last error"], [
            (w.worker_id, str(w.state), w.host_id, _ago(now - w.state_since),
             (w.last_error or "")[:80]) for w in sorted(workers, key=lambda w: w.worker_id)]))
        parts.append(table("Hosts", ["Host", "Provider", "State", "Workers", "For"], [
            (h.host_id, h.provider, str(h.state),
             f"{sum(1 for w in workers if w.host_id == h.host_id)}/{h.slots}",
             _ago(now - h.state_since)) for h in hosts]))
        parts.append(Text(self._in_flight()))
        if self.logs.lines:
            parts.append(Text("\n".join(self.logs.lines), style="dim"))
        return Group(*parts)

    def _header(self) -> str:
        bits = [f"czarina controller run: fleet {self.fleet.cfg.fleet_name}"]
        job = self.controller.scheduler.get_job("reconcile")
        if self.controller.stepping:
            bits.append("step in progress")
        elif job is not None and job.next_run_time is not None:
            wait = (job.next_run_time - datetime.now(UTC)).total_seconds()
            bits.append(f"next step in {max(0, wait):.0f}s")
        if self.ends_at is not None:
            bits.append(f"stops in {_ago(max(0.0, self.ends_at - time.monotonic()))}")
        bits.append("Ctrl-C stops")
        return " | ".join(bits)

    def _in_flight(self) -> str:
        lines = []
        for intent in self.fleet.store.open_intents():
            what = intent.payload.get("host_id") or intent.payload.get("worker_id") or ""
            lines.append(f"  in flight: {intent.kind} {what} (attempt {intent.attempts})")
        last = self.controller.last
        if last is not None:
            lines.append(f"last step: {len(last.actions)} actions, {len(last.failed)} failed"
                         + (f", {len(last.errors)} warnings" if last.errors else ""))
            lines += [f"  failed: {r.action.describe()}: {r.error}" for r in last.failed[:5]]
        return "\n".join(lines) or "no step yet"


def _ago(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
