"""Keeps `make run`'s processes up: a process that dies is restarted, with backoff.

The main loop calls `Supervisor.tick()` about twice a second. Nothing here blocks for long: a
restarted process is spawned, then probed on later ticks until it answers, so one slow start
(Rasa loads its model for a minute) does not stop the others from being watched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from launcher.stack import Stack

log = logging.getLogger("launcher")


@dataclass
class Backoff:
    """1 s doubling to 30 s; back to 1 s once the process has stayed healthy 60 s."""

    initial: float = 1.0
    maximum: float = 30.0
    reset_after: float = 60.0
    current: float = field(init=False)

    def __post_init__(self) -> None:
        self.current = self.initial

    def next_delay(self, healthy_for: float | None) -> float:
        """The wait before the next restart, given how long the process had been healthy."""
        if healthy_for is not None and healthy_for >= self.reset_after:
            self.current = self.initial
        delay = self.current
        self.current = min(self.current * 2, self.maximum)
        return delay


@dataclass
class Watch:
    backoff: Backoff
    state: str = "running"  # running -> waiting (to restart) -> starting -> running
    restarts: int = 0
    due: float = 0.0  # waiting: when to restart; starting: deadline to answer
    healthy_since: float | None = None


class Supervisor:
    def __init__(
        self,
        stack: Stack,
        names: Iterable[str],
        *,
        backoff: Callable[[], Backoff] = Backoff,
        start_timeout: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.start_timeout = start_timeout
        self.clock = clock
        now = clock()
        # the names were started and found healthy before supervision begins
        self.watches = {name: Watch(backoff(), healthy_since=now) for name in names}

    def tick(self) -> None:
        now = self.clock()
        for name, watch in self.watches.items():
            try:
                self._tick(name, watch, now)
            except Exception:  # one service's trouble must not stop the others' supervision
                log.exception("supervising %s failed", name)
                self._schedule_restart(name, watch, now, "could not be started")

    def _tick(self, name: str, watch: Watch, now: float) -> None:
        process = self.stack.services[name].process
        exited = process is None or process.poll() is not None
        code = None if process is None else process.returncode
        if watch.state == "running":
            if exited:
                self._schedule_restart(name, watch, now, f"exited with code {code}")
        elif watch.state == "waiting":
            if now >= watch.due:
                self.stack.spawn(name)
                watch.state, watch.due = "starting", now + self.start_timeout
        elif watch.state == "starting":
            if exited:
                self._schedule_restart(name, watch, now, f"exited with code {code}")
            elif self.stack.is_healthy(name):
                watch.state, watch.healthy_since = "running", now
                log.info("%s is healthy again (restart %d)", name, watch.restarts)
            elif now >= watch.due:
                self.stack.kill(name)
                self._schedule_restart(
                    name, watch, now, f"did not answer within {self.start_timeout:g} s"
                )

    def _schedule_restart(self, name: str, watch: Watch, now: float, what: str) -> None:
        healthy_for = None if watch.healthy_since is None else now - watch.healthy_since
        delay = watch.backoff.next_delay(healthy_for)
        watch.restarts += 1
        watch.state, watch.due, watch.healthy_since = "waiting", now + delay, None
        log.error("%s %s; restarting in %g s (restart %d)", name, what, delay, watch.restarts)
