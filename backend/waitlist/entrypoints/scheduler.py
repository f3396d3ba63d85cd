"""Background jobs: the sweep (holds, lead time, contact hours) and the outbox dispatcher.

APScheduler only decides *when* to look; *what* is due comes from timestamps in the database, so a
restart loses nothing and two backend processes split the work (rows are taken with SKIP LOCKED).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from waitlist import metrics
from waitlist.adapters.messenger import Messenger
from waitlist.config import Settings
from waitlist.service_layer import dispatch, offering
from waitlist.service_layer.clock import Clock
from waitlist.service_layer.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        uow_factory: Callable[[], UnitOfWork],
        messenger: Messenger,
        clock: Clock,
        settings: Settings,
        dispatch_seconds: float = 2.0,
    ) -> None:
        self.uow_factory, self.messenger, self.clock, self.settings = (
            uow_factory,
            messenger,
            clock,
            settings,
        )
        self._last_tick: float | None = None
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.scheduler.add_job(
            self.sweep,
            "interval",
            seconds=settings.sweep_seconds,
            id="sweep",
            max_instances=1,
            coalesce=True,
        )
        self.scheduler.add_job(
            self.dispatch,
            "interval",
            seconds=dispatch_seconds,
            id="dispatch",
            max_instances=1,
            coalesce=True,
        )

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.scheduler.start()
        self.kick()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)

    def kick(self) -> None:
        """Send what is due now instead of at the next tick (e.g. right after an offer commits)."""
        if self.scheduler.running:
            self.scheduler.modify_job("dispatch", next_run_time=datetime.now(UTC))

    def seconds_since_tick(self) -> float | None:
        """How long ago the sweep last completed (None: never), for the readiness check."""
        if self._last_tick is None:
            return None
        return round(time.monotonic() - self._last_tick, 1)

    def sweep(self) -> None:
        try:
            result = offering.sweep(self.uow_factory(), self.clock.now(), self.settings)
            if result["expired"] or result["offered"] or result["released"]:
                log.info("sweep: %s", result)
            self.dispatch()
            self._last_tick = time.monotonic()
            metrics.SCHEDULER_TICK.set_to_current_time()
        except Exception as exc:  # a failed tick must not stop the next one
            # the exception's text may quote SQL; its type is enough to find it in the code
            log.error("sweep failed: %s", type(exc).__name__)

    def dispatch(self) -> None:
        try:
            dispatch.dispatch_due(self.uow_factory(), self.messenger, self.clock, self.settings)
        except Exception as exc:
            log.error("dispatch failed: %s", type(exc).__name__)
