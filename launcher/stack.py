"""Process management for the whole product; used by `make run` and by the end-to-end tests."""

from __future__ import annotations

import ipaddress
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

import httpx
from dotenv import dotenv_values
from sqlalchemy.engine import make_url

from launcher.secrets import ALL_TOKENS, INTERNAL_TOKENS, new_token

ROOT = Path(__file__).resolve().parents[1]
BACKEND_PY = ROOT / ".venv-backend" / "bin" / "python"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
RASA_PY = ROOT / ".venv-rasa" / "bin" / "python"
MODEL = ROOT / "models" / "waitlist.tar.gz"
LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 5

log = logging.getLogger("launcher")

# Used only when TWILIO_ACCOUNT_SID is not set: the built-in simulator stands in for Twilio.
SIMULATOR_ACCOUNT_SID = "AC" + "0" * 32
SIMULATOR_AUTH_TOKEN = "simulator-auth-token"
SIMULATOR_FROM_NUMBER = "+12025550100"

# ACTIONS_API_TOKEN, RASA_API_TOKEN and ACTION_SERVER_TOKEN have no default: launcher/secrets.py
# generates them (make run), or Stack.build does for its own processes only.
DEFAULTS = {
    "BACKEND_PORT": "8000",
    "RASA_PORT": "5005",
    "ACTIONS_PORT": "5055",
    "SIMULATOR_PORT": "8088",
    # every process listens on loopback unless told otherwise
    "BACKEND_HOST": "127.0.0.1",
    "RASA_HOST": "127.0.0.1",
    "ACTIONS_HOST": "127.0.0.1",
    "SIMULATOR_HOST": "127.0.0.1",
    "STAFF_API_TOKEN": "dev-staff-token",
    "CLINIC_TIMEZONE": "America/New_York",
    # the shared lock store of several Rasa servers (endpoints-replicas.yml)
    "REDIS_HOST": "127.0.0.1",
    "REDIS_PORT": "6379",
    "REDIS_DB": "1",
    "REDIS_PASSWORD": "",
    "LOCK_STORE_KEY_PREFIX": "waitlist-lock:",
}

# The tokens each process may see; the others are removed from its environment.
SERVICE_TOKENS = {
    "simulator": frozenset(),
    "backend": frozenset({"STAFF_API_TOKEN", "ACTIONS_API_TOKEN", "RASA_API_TOKEN"}),
    "actions": frozenset({"ACTIONS_API_TOKEN", "ACTION_SERVER_TOKEN"}),
    "rasa": frozenset({"RASA_API_TOKEN", "ACTION_SERVER_TOKEN"}),
}


def load_dotenv(path: Path) -> dict[str, str]:
    """The settings of a .env file, read by python-dotenv (quotes, comments, `export`). A `$` in a
    value stays as written: a generated secret may contain one."""
    if not path.exists():
        return {}
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


def rasa_db_settings(database_url: str) -> dict[str, str]:
    """The tracker store's settings (endpoints.yml) from the same database URL as the backend."""
    url = make_url(database_url)
    host = url.host or str(url.query.get("host", "")) or "127.0.0.1"  # a socket dir is a host too
    return {
        "RASA_DB_HOST": host,
        "RASA_DB_PORT": str(url.port or 5432),
        "RASA_DB_NAME": url.database or "postgres",
        "RASA_DB_USER": url.username or "postgres",
        "RASA_DB_PASSWORD": url.password or "",
    }


def local_url(host: str, port: str) -> str:
    """http://host:port for reaching a process that listens on `host` from this machine."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"  # listening everywhere includes loopback
    elif host == "::":
        host = "::1"
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass  # a name
    return f"http://{host}:{port}"


def compose_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every process gets: defaults < .env < real environment < overrides."""
    merged = {**load_dotenv(ROOT / ".env"), **os.environ, **(overrides or {})}
    # an empty value means "use the default", as in .env.example
    env = {**DEFAULTS, **{key: value for key, value in merged.items() if value != ""}}
    backend = local_url(env["BACKEND_HOST"], env["BACKEND_PORT"])
    rasa = local_url(env["RASA_HOST"], env["RASA_PORT"])
    env["BACKEND_URL"] = env.get("BACKEND_URL") or backend
    env["RASA_URL"] = env.get("RASA_URL") or rasa
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{env['BACKEND_PORT']}")
    if not env.get("TWILIO_ACCOUNT_SID"):
        env.update(
            TWILIO_ACCOUNT_SID=SIMULATOR_ACCOUNT_SID,
            # a token of one's own may replace the published one (a simulator reachable by others)
            TWILIO_AUTH_TOKEN=env.get("TWILIO_AUTH_TOKEN") or SIMULATOR_AUTH_TOKEN,
            TWILIO_FROM_NUMBER=env.get("TWILIO_FROM_NUMBER") or SIMULATOR_FROM_NUMBER,
            TWILIO_API_BASE_URL=local_url(env["SIMULATOR_HOST"], env["SIMULATOR_PORT"]),
            USE_SMS_SIMULATOR="1",
        )
    env["ACTION_ENDPOINT_URL"] = env.get("ACTION_ENDPOINT_URL") or (
        local_url(env["ACTIONS_HOST"], env["ACTIONS_PORT"]) + "/webhook"
    )
    env["SIMULATOR_INBOUND_URL"] = env.get("SIMULATOR_INBOUND_URL") or (
        f"{rasa}/webhooks/twilio/webhook"
    )
    # credentials.yml names these; Rasa refuses to start when one is missing altogether
    for name in ("TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_API_BASE_URL"):
        env.setdefault(name, "")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "backend")])
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # all must answer 200 too before the service counts as healthy
    extra_health_urls: tuple[str, ...] = ()
    # the tokens (of ALL_TOKENS) this process may see
    tokens: frozenset[str] = frozenset()
    reader: threading.Thread | None = None

    @property
    def health_urls(self) -> tuple[str, ...]:
        return (self.health_url, *self.extra_health_urls)


def _pump_lines(stream: IO[bytes], handler: logging.Handler) -> None:
    """Copy a child's output into its rotating log, line by line, until the child closes it."""
    with stream:
        # a bounded read: a line without a newline cannot grow without limit
        for raw in iter(lambda: stream.readline(64 * 1024), b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            handler.handle(logging.makeLogRecord({"msg": text, "levelno": logging.INFO}))


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    services: dict[str, Service] = field(default_factory=dict)
    quiet: bool = True
    log_handlers: dict[str, RotatingFileHandler] = field(default_factory=dict)

    @classmethod
    def build(cls, env: dict[str, str], log_dir: Path) -> Stack:
        # Tokens between our own processes that nobody set: one for this stack's lifetime
        # (`make run` sets them first, from .data/secrets.env).
        for name in INTERNAL_TOKENS:
            if not env.get(name):
                env[name] = new_token()
        stack = cls(env=env, log_dir=log_dir)
        e = env
        rasa = local_url(e.get("RASA_HOST", ""), e["RASA_PORT"])
        stack.services = {
            "simulator": Service(
                "simulator",
                [str(BACKEND_PY), "-m", "sms_simulator"],
                local_url(e.get("SIMULATOR_HOST", ""), e["SIMULATOR_PORT"]) + "/simulator/messages",
            ),
            "backend": Service(
                "backend",
                [str(BACKEND_PY), "-m", "waitlist"],
                local_url(e.get("BACKEND_HOST", ""), e["BACKEND_PORT"]) + "/health",
            ),
            "actions": Service(
                "actions",
                [str(RASA_PY), "-m", "rasa_runtime.action_server"],
                local_url(e.get("ACTIONS_HOST", ""), e["ACTIONS_PORT"]) + "/health",
            ),
            # GET / needs no token and answers only once the model is loaded (Rasa opens its
            # port after loading the agent); the channel's route shows the Twilio webhook is up.
            "rasa": Service(
                "rasa",
                [str(RASA_PY), "-m", "rasa_runtime.rasa_server"],
                f"{rasa}/",
                extra_health_urls=(f"{rasa}/webhooks/twilio/",),
            ),
        }
        for name, service in stack.services.items():
            service.tokens = SERVICE_TOKENS[name]
        return stack

    def child_env(self, service: Service) -> dict[str, str]:
        env = {k: v for k, v in self.env.items() if k not in ALL_TOKENS or k in service.tokens}
        env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach the log as they are written
        return env

    def _log_handler(self, name: str) -> RotatingFileHandler:
        handler = self.log_handlers.get(name)
        if handler is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            handler = RotatingFileHandler(
                self.log_dir / f"{name}.log",
                maxBytes=int(self.env.get("LOG_MAX_BYTES") or LOG_MAX_BYTES),
                backupCount=int(self.env.get("LOG_BACKUPS") or LOG_BACKUPS),
                encoding="utf-8",
            )
            self.log_handlers[name] = handler
        return handler

    def spawn(self, name: str) -> None:
        """Start a service's process without waiting for it to answer."""
        service = self.services[name]
        handler = self._log_handler(name)
        service.log_path = Path(handler.baseFilename)
        process = subprocess.Popen(
            service.command,
            cwd=ROOT,
            env=self.child_env(service),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )
        assert process.stdout is not None
        service.process = process
        service.reader = threading.Thread(
            target=_pump_lines, args=(process.stdout, handler), name=f"log-{name}", daemon=True
        )
        service.reader.start()

    def start(self, name: str, timeout: float = 180) -> None:
        self.spawn(name)
        self.wait_healthy(name, timeout)

    def is_healthy(self, name: str, timeout: float = 2) -> bool:
        try:
            return all(
                httpx.get(url, timeout=timeout).status_code == 200
                for url in self.services[name].health_urls
            )
        except httpx.HTTPError:
            return False

    def wait_healthy(self, name: str, timeout: float) -> None:
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {service.process.returncode}; see {service.log_path}"
                )
            if self.is_healthy(name):
                return
            time.sleep(0.3)
        raise RuntimeError(
            f"{name} did not become healthy in {timeout:.0f} s; see {service.log_path}"
        )

    def _reap(self, service: Service) -> None:
        if service.reader is not None:
            service.reader.join(timeout=5)  # the last lines reach the log before we go on
            service.reader = None
        service.process = None

    def stop(self, name: str, timeout: float = 15) -> None:
        service = self.services[name]
        process = service.process
        if process is None or process.poll() is not None:
            if process is not None:
                self._reap(service)
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._reap(service)

    def kill(self, name: str) -> None:
        """Stop abruptly, as a crash would."""
        service = self.services[name]
        process = service.process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._reap(service)

    def stop_all(self) -> None:
        for name in reversed(list(self.services)):
            try:
                self.stop(name)
            except Exception:  # keep stopping the rest
                log.exception("stopping %s failed", name)
        for handler in self.log_handlers.values():
            handler.close()
        self.log_handlers.clear()


def prepare_database(env: dict[str, str]) -> str:
    """DATABASE_URL, or an embedded server under .data/; migrated to the latest schema."""
    sys.path.insert(0, str(ROOT / "backend"))
    from waitlist.adapters import database, migrations

    url = env.get("DATABASE_URL") or database.start_embedded_postgres(
        str(ROOT / env.get("DATA_DIR", ".data"))
    )
    migrations.upgrade(url)
    return url
