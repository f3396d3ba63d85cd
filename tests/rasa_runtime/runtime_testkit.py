"""Helpers for the tests of our Rasa and action server entry points: free ports, a server
process started as the launcher starts it, and this machine's non-loopback addresses."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class ActionServer:
    url: str
    port: int
    token: str
    pid: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def non_loopback_addresses() -> list[str]:
    """Addresses of this machine other than loopback (`hostname -I`), only those we can bind to,
    which proves they are ours: a connection to them never leaves the machine."""
    try:
        output = subprocess.run(
            ["hostname", "-I"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    addresses = []
    for address in output.split():
        if address.startswith(("127.", "fe80:")) or address == "::1":
            continue
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        try:
            with socket.socket(family) as sock:
                sock.bind((address, 0))
        except OSError:
            continue
        addresses.append(address)
    return addresses


def accepts_connections(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def server_env(**settings: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # the servers under test get exactly the tokens a test gives them
        if key not in ("RASA_API_TOKEN", "ACTION_SERVER_TOKEN", "SANIC_REQUEST_MAX_SIZE")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        RASA_TELEMETRY_ENABLED="false",
        SQLALCHEMY_SILENCE_UBER_WARNING="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.update(settings)
    return env


@contextlib.contextmanager
def running_server(
    module: str,
    env: Mapping[str, str],
    health_url: str,
    log_path: Path,
    args: Sequence[str] = (),
    timeout: float = 240,
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m <module>` in this (the Rasa) environment, until `health_url` answers 200."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{module} exited with {process.returncode}:\n{log_path.read_text()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(health_url, timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"{module} did not answer:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def command_line(pid: int) -> str:
    """What `ps` shows for a process: its whole argv."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
