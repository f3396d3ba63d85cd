"""Process management for the whole product; used by `make run` and by the end-to-end tests."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
BACKEND_PY = ROOT / ".venv-backend" / "bin" / "python"
RASA_BIN = ROOT / ".venv-rasa" / "bin" / "rasa"
MODEL = ROOT / "models" / "waitlist.tar.gz"

log = logging.getLogger("launcher")

# Used only when TWILIO_ACCOUNT_SID is not set: the built-in simulator stands in for Twilio.
SIMULATOR_ACCOUNT_SID = "AC" + "0" * 32
SIMULATOR_AUTH_TOKEN = "simulator-auth-token"
SIMULATOR_FROM_NUMBER = "+12025550100"

DEFAULTS = {
    "BACKEND_PORT": "8000",
    "RASA_PORT": "5005",
    "ACTIONS_PORT": "5055",
    "SIMULATOR_PORT": "8088",
    "STAFF_API_TOKEN": "dev-staff-token",
    "ACTIONS_API_TOKEN": "dev-actions-token",
    "RASA_API_TOKEN": "dev-rasa-token",
    "CLINIC_TIMEZONE": "America/New_York",
}


def load_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blank lines skipped)."""
    if not path.exists():
        return {}
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


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


def compose_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every process gets: defaults < .env < real environment < overrides."""
    merged = {**load_dotenv(ROOT / ".env"), **os.environ, **(overrides or {})}
    # an empty value means "use the default", as in .env.example
    env = {**DEFAULTS, **{key: value for key, value in merged.items() if value != ""}}
    env["BACKEND_URL"] = env.get("BACKEND_URL") or f"http://127.0.0.1:{env['BACKEND_PORT']}"
    env["RASA_URL"] = env.get("RASA_URL") or f"http://127.0.0.1:{env['RASA_PORT']}"
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{env['BACKEND_PORT']}")
    if not env.get("TWILIO_ACCOUNT_SID"):
        env.update(
            TWILIO_ACCOUNT_SID=SIMULATOR_ACCOUNT_SID,
            TWILIO_AUTH_TOKEN=SIMULATOR_AUTH_TOKEN,
            TWILIO_FROM_NUMBER=env.get("TWILIO_FROM_NUMBER") or SIMULATOR_FROM_NUMBER,
            TWILIO_API_BASE_URL=f"http://127.0.0.1:{env['SIMULATOR_PORT']}",
            USE_SMS_SIMULATOR="1",
        )
    env["ACTION_ENDPOINT_URL"] = env.get("ACTION_ENDPOINT_URL") or (
        f"http://127.0.0.1:{env['ACTIONS_PORT']}/webhook"
    )
    env["SIMULATOR_INBOUND_URL"] = env.get("SIMULATOR_INBOUND_URL") or (
        f"http://127.0.0.1:{env['RASA_PORT']}/webhooks/twilio/webhook"
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


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    services: dict[str, Service] = field(default_factory=dict)
    quiet: bool = True

    @classmethod
    def build(cls, env: dict[str, str], log_dir: Path) -> Stack:
        stack = cls(env=env, log_dir=log_dir)
        e = env
        stack.services = {
            "simulator": Service(
                "simulator",
                [str(BACKEND_PY), "-m", "sms_simulator"],
                f"http://127.0.0.1:{e['SIMULATOR_PORT']}/simulator/messages",
            ),
            "backend": Service(
                "backend",
                [str(BACKEND_PY), "-m", "waitlist"],
                f"http://127.0.0.1:{e['BACKEND_PORT']}/health",
            ),
            "actions": Service(
                "actions",
                [
                    str(RASA_BIN),
                    "run",
                    "actions",
                    "--port",
                    e["ACTIONS_PORT"],
                    "--actions",
                    "actions",
                ],
                f"http://127.0.0.1:{e['ACTIONS_PORT']}/health",
            ),
            "rasa": Service(
                "rasa",
                [
                    str(RASA_BIN),
                    "run",
                    "--enable-api",
                    "--auth-token",
                    e["RASA_API_TOKEN"],
                    "--model",
                    str(MODEL),
                    "--port",
                    e["RASA_PORT"],
                    "--credentials",
                    "credentials.yml",
                    "--endpoints",
                    "endpoints.yml",
                ],
                f"http://127.0.0.1:{e['RASA_PORT']}/status?token={e['RASA_API_TOKEN']}",
            ),
        }
        return stack

    def start(self, name: str, timeout: float = 180) -> None:
        service = self.services[name]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service.log_path = self.log_dir / f"{name}.log"
        log_file = open(service.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        service.process = subprocess.Popen(
            service.command,
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us; we stop the children in order
        )
        self.wait_healthy(name, timeout)

    def wait_healthy(self, name: str, timeout: float) -> None:
        service = self.services[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if service.process is not None and service.process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {service.process.returncode}; see {service.log_path}"
                )
            try:
                if httpx.get(service.health_url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(
            f"{name} did not become healthy in {timeout:.0f} s; see {service.log_path}"
        )

    def stop(self, name: str, timeout: float = 15) -> None:
        service = self.services[name]
        process = service.process
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        service.process = None

    def kill(self, name: str) -> None:
        """Stop abruptly, as a crash would."""
        process = self.services[name].process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self.services[name].process = None

    def stop_all(self) -> None:
        for name in reversed(list(self.services)):
            try:
                self.stop(name)
            except Exception:  # keep stopping the rest
                log.exception("stopping %s failed", name)


def prepare_database(env: dict[str, str]) -> str:
    """DATABASE_URL, or an embedded server under .data/; migrated to the latest schema."""
    sys.path.insert(0, str(ROOT / "backend"))
    from waitlist.adapters import database, migrations

    url = env.get("DATABASE_URL") or database.start_embedded_postgres(
        str(ROOT / env.get("DATA_DIR", ".data"))
    )
    migrations.upgrade(url)
    return url
