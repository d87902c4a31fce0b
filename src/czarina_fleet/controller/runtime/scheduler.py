"""The scheduled controller: APScheduler (3.x, AsyncIOScheduler) runs the reconcile job
every `interval_s` (never overlapping itself, missed runs coalesced). More jobs (cost
accrual, ...) join with `Controller.add_job`. SIGINT/SIGTERM let the current step
and every job run in progress finish (the caller closes the store and SSH pool right
after, and another controller may take the lock), then the lock is released and
`run()` returns 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from czarina_fleet.controller.runtime.metrics import Metrics
from czarina_fleet.controller.runtime.reconciler import Reconciler, ReconcileResult
from czarina_fleet.controller.state.lock import ControllerLock

log = logging.getLogger("czarina_fleet.controller")


class Controller:
    def __init__(self, reconciler: Reconciler, *, interval_s: float = 15.0,
                 metrics: Metrics | None = None) -> None:
        self.reconciler = reconciler
        self.interval_s = interval_s
        self.metrics = metrics or Metrics()
        self._stop = asyncio.Event()
        self.stopped_by: str | None = None  # SIGINT or SIGTERM, when one stopped it
        self._busy = asyncio.Lock()
        self._running: set[asyncio.Task[Any]] = set()
        self.scheduler = AsyncIOScheduler()
        self.last: ReconcileResult | None = None
        self.add_job(self.reconcile, interval_s, "reconcile")
        self._finals: list[tuple[Callable[[], Awaitable[Any]], float]] = []

    def add_job(self, fn: Callable[[], Awaitable[Any]], interval_s: float, job_id: str) -> None:
        """Run `fn` every `interval_s`; one at a time, missed runs coalesced; none
        started once a stop is asked for, and `run()` waits for the one in progress."""
        async def tracked() -> None:
            if self._stop.is_set():
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await fn()
            finally:
                self._running.discard(task)

        self.scheduler.add_job(tracked, "interval", seconds=interval_s, id=job_id,
                               max_instances=1, coalesce=True, misfire_grace_time=None)

    async def reconcile(self) -> ReconcileResult | None:
        if self._stop.is_set():
            return None
        async with self._busy:  # a stop waits for the step in progress
            t0 = time.perf_counter()
            result = await self.reconciler.reconcile_once()
            seconds = time.perf_counter() - t0
        self.metrics.record(result, self.reconciler.store, seconds)
        log.info("reconciled", extra={"actions": len(result.actions),
                                      "failed": len(result.failed), "seconds": seconds})
        for err in result.errors:
            log.warning("observe: %s", err)
        self.last = result
        return result

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        self.stopped_by = sig.name  # the CLI says what was left running
        self.stop()

    def add_final(self, fn: Callable[[], Awaitable[Any]], timeout_s: float) -> None:
        """Run `fn` once when the controller stops (a signal, `--for` ending, after the
        step of `--once`), still holding the lock, bounded by `timeout_s`."""
        self._finals.append((fn, timeout_s))

    async def _run_finals(self) -> None:
        for fn, timeout_s in self._finals:
            try:
                await asyncio.wait_for(fn(), timeout_s)
            except Exception as e:  # the stop itself must not fail
                log.warning("on stop: %s", str(e) or type(e).__name__)

    @property
    def stepping(self) -> bool:
        """A reconcile step is in progress (for the live view)."""
        return self._busy.locked()

    async def run(self, lock: ControllerLock, *, once: bool = False,
                  metrics_port: int | None = None) -> int:
        """Hold `lock` (raises LockHeld if another controller has it) and reconcile
        until stopped. Returns the exit code (0)."""
        with lock:
            if once:
                await self.reconcile()
                await self._run_finals()
                return 0
            if metrics_port is not None:
                self.metrics.serve(metrics_port)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._on_signal, sig)
            try:
                self.scheduler.start()
                await self.reconcile()  # first step now, not one interval from now
                await self._stop.wait()
                # Let the step and the other jobs in progress (a push, an accrual)
                # finish first: the scheduler's shutdown cancels running jobs.
                self.scheduler.pause()
                async with self._busy:
                    pass
                await asyncio.gather(*self._running, return_exceptions=True)
                await self._run_finals()
            finally:
                if self.scheduler.running:  # also when the first step raised
                    self.scheduler.shutdown(wait=False)
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        return 0
