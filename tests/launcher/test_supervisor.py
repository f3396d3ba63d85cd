"""Supervision in `make run`: a process that dies is logged and restarted with backoff; each
child's output goes to its own rotated log."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from launcher.stack import Service, Stack
from launcher.supervisor import Backoff, Supervisor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def eventually(check: Callable[[], object], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def web_stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack of one tiny HTTP server standing in for a real service."""
    port = free_port()
    (tmp_path / "www").mkdir()
    stack = Stack(env={}, log_dir=tmp_path / "logs")
    stack.services["web"] = Service(
        "web",
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(tmp_path / "www"),
        ],
        f"http://127.0.0.1:{port}/",
    )
    try:
        yield stack
    finally:
        stack.stop_all()


def test_backoff_doubles_to_30_s_and_resets_after_60_s_healthy() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(healthy_for=1) for _ in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.next_delay(healthy_for=59) == 30
    assert backoff.next_delay(healthy_for=60) == 1
    assert backoff.next_delay(healthy_for=None) == 2


def test_a_killed_service_comes_back_healthy_and_the_restart_is_logged(
    web_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    web_stack.start("web", timeout=30)
    first = web_stack.services["web"].process
    assert first is not None
    supervisor = Supervisor(web_stack, ["web"], backoff=lambda: Backoff(initial=0.2))
    supervisor.tick()
    assert supervisor.watches["web"].state == "running"

    with caplog.at_level(logging.INFO, logger="launcher"):
        os.killpg(first.pid, signal.SIGKILL)  # a crash, not a stop asked for
        first.wait()

        def back() -> bool:
            supervisor.tick()
            return supervisor.watches["web"].state == "running"

        eventually(back)
    second = web_stack.services["web"].process
    assert second is not None and second.pid != first.pid
    assert web_stack.is_healthy("web")
    assert "web exited with code -9; restarting in 0.2 s (restart 1)" in caplog.messages
    assert "web is healthy again (restart 1)" in caplog.messages
    # both lives of the process wrote into the same log, through the launcher
    log_text = (web_stack.log_dir / "web.log").read_text()
    assert log_text.count("Serving HTTP on 127.0.0.1") == 2


def test_a_service_that_keeps_failing_waits_longer_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    stack = Stack(env={}, log_dir=tmp_path)
    stack.services["broken"] = Service(
        "broken", [sys.executable, "-c", "raise SystemExit(3)"], "http://127.0.0.1:9/"
    )
    stack.spawn("broken")
    supervisor = Supervisor(stack, ["broken"], clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="launcher"):
        for _ in range(4):
            process = stack.services["broken"].process
            assert process is not None
            process.wait()
            supervisor.tick()  # notices the exit, schedules a restart
            now[0] += supervisor.watches["broken"].due - now[0]
            supervisor.tick()  # the delay has passed: spawns again
    stack.stop_all()
    assert [m for m in caplog.messages if "restarting" in m] == [
        f"broken exited with code 3; restarting in {delay} s (restart {n})"
        for n, delay in enumerate([1, 2, 4, 8], start=1)
    ]


def test_a_start_that_never_answers_is_killed_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    stack = Stack(env={}, log_dir=tmp_path)
    stack.services["mute"] = Service(
        "mute", [sys.executable, "-c", "import time; time.sleep(60)"], "http://127.0.0.1:9/"
    )
    supervisor = Supervisor(stack, ["mute"], start_timeout=5, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="launcher"):
        supervisor.tick()  # never started: counts as dead
        now[0] = 1.0
        supervisor.tick()  # spawned
        process = stack.services["mute"].process
        assert process is not None and process.poll() is None
        now[0] = 6.5
        supervisor.tick()  # no answer within 5 s
    assert process.poll() is not None
    assert "mute did not answer within 5 s; restarting in 2 s (restart 2)" in caplog.messages
    stack.stop_all()


def test_child_output_is_rotated(tmp_path: Path) -> None:
    stack = Stack(env={"LOG_MAX_BYTES": "2000", "LOG_BACKUPS": "2"}, log_dir=tmp_path)
    script = "for n in range(400): print(f'line {n:04d} ' + 'x' * 40)"
    stack.services["chatty"] = Service("chatty", [sys.executable, "-c", script], "")
    stack.spawn("chatty")
    process = stack.services["chatty"].process
    assert process is not None
    process.wait()
    stack.stop_all()  # waits for the last lines
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert (tmp_path / "chatty.log").read_text().splitlines()[-1].startswith("line 0399 ")
