"""Test kit for the SMS simulator: a local HTTP receiver and a simulator subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_SID = "AC" + "ab" * 16
AUTH_TOKEN = "simulator-test-token"
CLINIC_NUMBER = "+15005550006"
PATIENT = "+15551234567"
OTHER_PATIENT = "+15557654321"
PUBLIC_BASE_URL = "https://clinic.example.org"
STATUS_DELAY = 0.05


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    params: list[tuple[str, str]]

    @property
    def form(self) -> dict[str, str]:
        return dict(self.params)


@dataclass
class Receiver:
    """A threaded HTTP server standing in for Rasa's webhook and the backend's status URL."""

    server: ThreadingHTTPServer
    requests: list[Received] = field(default_factory=list)
    # path -> (status, content type, body)
    answers: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.answers.clear()

    def received(self, predicate: Callable[[Received], bool] = lambda _: True) -> list[Received]:
        with self.lock:
            return [request for request in self.requests if predicate(request)]

    def wait_for(
        self,
        count: int,
        predicate: Callable[[Received], bool] = lambda _: True,
        timeout: float = 5.0,
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.received(predicate)


def start_receiver() -> Receiver:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("utf-8")
            record = Received(
                path=self.path,
                headers={key: value for key, value in self.headers.items()},
                params=parse_qsl(body, keep_blank_values=True),
            )
            with receiver.lock:
                receiver.requests.append(record)
                status, content_type, answer = receiver.answers.get(
                    self.path.split("?", 1)[0], (200, "text/xml", "<Response/>")
                )
            payload = answer.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server=server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


@dataclass
class RunningSimulator:
    url: str
    process: subprocess.Popen[bytes]
    inbound_url: str

    def api(self, path: str) -> str:
        return f"{self.url}/2010-04-01/Accounts/{ACCOUNT_SID}{path}"


def start_simulator(inbound_url: str, extra_env: dict[str, str] | None = None) -> RunningSimulator:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "SIMULATOR_HOST": "127.0.0.1",
            "SIMULATOR_PORT": str(port),
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_FROM_NUMBER": CLINIC_NUMBER,
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "SIMULATOR_INBOUND_URL": inbound_url,
            "SIMULATOR_STATUS_DELAY": str(STATUS_DELAY),
            "SIMULATOR_WEBHOOK_TIMEOUT": "5",
        }
    )
    env.pop("TWILIO_MESSAGING_SERVICE_SID", None)
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "sms_simulator"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}")
        try:
            if httpx.get(url + "/simulator/health", timeout=1).status_code == 200:
                return RunningSimulator(url=url, process=process, inbound_url=inbound_url)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("the simulator did not start within 30 s")


def stop_simulator(simulator: RunningSimulator) -> None:
    simulator.process.terminate()
    try:
        simulator.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        simulator.process.kill()
        simulator.process.wait()


def auth() -> tuple[str, str]:
    return (ACCOUNT_SID, AUTH_TOKEN)


def send(simulator: RunningSimulator, timeout: float = 5.0, **form: Any) -> httpx.Response:
    """POST Messages.json with Twilio's parameter names."""
    data = {"From": CLINIC_NUMBER, "To": PATIENT, "Body": "A slot opened: Tue 3:30 PM. Reply YES."}
    data.update(form)
    data = {key: value for key, value in data.items() if value is not None}
    return httpx.post(simulator.api("/Messages.json"), data=data, auth=auth(), timeout=timeout)
