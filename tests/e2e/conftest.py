"""End-to-end fixtures: every process real (simulator, backend, action server, Rasa with its trained
model), talking HTTP on their own ports, against a database created for this run."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from launcher.stack import MODEL, Stack, compose_env, prepare_database, rasa_db_settings
from tests.e2e.public_origin import PublicOrigin

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STAFF_TOKEN = "e2e-staff-token"
NUMBERS = itertools.count(100)  # patient phone numbers, unique across the whole run
PORTS = {
    "BACKEND_PORT": "18000",
    "RASA_PORT": "15005",
    "ACTIONS_PORT": "15055",
    "SIMULATOR_PORT": "18088",
}
# The one origin Twilio (the simulator) talks to: status callbacks to the backend, the rest to Rasa.
PUBLIC_PORT = "18443"
# Every patient of the suite has this name, so the log check can look for it.
DISPLAY_NAME = "Quillon"


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


class Clinic:
    """What a test does: staff calls, patients' texts, and looks at the phones and the database."""

    def __init__(self, stack: Stack, database_url: str) -> None:
        self.stack = stack
        self.public_url = stack.env["PUBLIC_BASE_URL"]
        self.env = stack.env
        self.database_url = database_url
        self.backend = httpx.Client(
            base_url=self.env["BACKEND_URL"],
            timeout=30,
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        self.simulator = httpx.Client(
            base_url=f"http://127.0.0.1:{self.env['SIMULATOR_PORT']}", timeout=60
        )

    # staff
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.backend.request(method, f"/api/v1{path}", **kwargs)
        assert response.status_code < 300, (response.status_code, response.text)
        return response.json()

    def provider(self) -> int:
        return self.api("POST", "/providers", json={"name": "Dr. Lee", "provider_type": "derm"})[
            "id"
        ]

    def patient(self, language: str = "en") -> tuple[int, str]:
        phone = f"+1202555{next(NUMBERS):04d}"
        pid = self.api(
            "POST",
            "/patients",
            json={"phone": phone, "display_name": DISPLAY_NAME, "preferred_language": language},
        )["id"]
        self.api("POST", "/waitlist", json={"patient_id": pid, "provider_type": "derm"})
        return pid, phone

    def cancellation(self, provider_id: int, starts_in: timedelta = timedelta(days=2)) -> dict:
        start = (datetime.now(UTC) + starts_in).replace(second=0, microsecond=0)
        self.last_slot_start = start
        return self.api(
            "POST",
            "/cancellations",
            json={
                "provider_id": provider_id,
                "location": "Main Street",
                "slot_start": start.isoformat(),
                "slot_end": (start + timedelta(minutes=30)).isoformat(),
            },
        )

    def offers(self, cancellation_id: int) -> dict[int, str]:
        view = self.api("GET", f"/cancellations/{cancellation_id}")
        return {o["patient_id"]: o["state"] for o in view["offers"]}

    def offer_text(self, start: datetime | None = None) -> str:
        """The offer SMS as domain.yml words it, for a slot at Main Street."""
        local = (start or self.last_slot_start).astimezone(ZoneInfo("America/New_York"))
        day = f"{local:%a %b} {local.day}"
        clock = f"{local.hour % 12 or 12}:{local:%M %p}"
        return (
            f"Riverside Clinic: an earlier appointment opened on {day} at {clock}, Main Street."
            f" Want it? Reply YES or NO within 7 min. STOP to opt out."
        )

    def slot_words(self) -> tuple[str, str]:
        local = self.last_slot_start.astimezone(ZoneInfo("America/New_York"))
        return f"{local:%a %b} {local.day}", f"{local.hour % 12 or 12}:{local:%M %p}"

    # patients
    def text(self, phone: str, body: str, **extra: Any) -> dict:
        SENT_BODIES.append(body)
        response = self.simulator.post(
            "/simulator/inbound", json={"from": phone, "body": body, **extra}
        )
        return response.json()

    def messages(self, phone: str) -> list[dict]:
        """Every text the clinic sent this phone, as the simulator holds it, oldest first."""
        messages = self.simulator.get("/simulator/messages", params={"to": phone}).json()
        items = messages["messages"] if isinstance(messages, dict) else messages
        return [m for m in items if m.get("direction", "outbound").startswith("outbound")]

    def received(self, phone: str) -> list[str]:
        return [m["body"] for m in self.messages(phone)]

    def wait_for(self, check: Callable[[], Any], timeout: float = 30, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what or check}")

    def wait_for_texts(self, phone: str, count: int, timeout: float = 30) -> list[str]:
        return self.wait_for(
            lambda: (lambda r: r if len(r) >= count else None)(self.received(phone)),
            timeout,
            f"{count} texts to {phone}",
        )

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def fault(self, **body: Any) -> None:
        self.simulator.post("/simulator/faults", json=body).raise_for_status()


# What patients wrote during the run: none of it may appear in a log line.
SENT_BODIES: list[str] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` first")
    name = f"waitlist_e2e_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    public = f"http://127.0.0.1:{PUBLIC_PORT}"
    env = compose_env(
        {
            **PORTS,
            "DATABASE_URL": url,
            "STAFF_API_TOKEN": STAFF_TOKEN,
            "ACTIONS_API_TOKEN": "e2e-actions-token-0123456789abcdef",
            "RASA_API_TOKEN": "e2e-rasa-token-0123456789abcdef",
            "BACKEND_URL": f"http://127.0.0.1:{PORTS['BACKEND_PORT']}",
            "RASA_URL": f"http://127.0.0.1:{PORTS['RASA_PORT']}",
            "PUBLIC_BASE_URL": public,
            "ACTION_ENDPOINT_URL": f"http://127.0.0.1:{PORTS['ACTIONS_PORT']}/webhook",
            "SIMULATOR_INBOUND_URL": f"{public}/webhooks/twilio/webhook",
            "TWILIO_ACCOUNT_SID": "",
            "CONTACT_HOURS": "00:00-23:59",  # the suite may run at any hour
            "SWEEP_SECONDS": "1",
            "CLINIC_TIMEZONE": "America/New_York",
            "SIMULATOR_STATUS_DELAY": "0.1",
        }
    )
    prepare_database(env)
    env.update(rasa_db_settings(url))
    log_dir = Path(tmp_path_factory.mktemp("logs"))
    stack = Stack.build(env, log_dir)
    origin = PublicOrigin(int(PUBLIC_PORT), env["BACKEND_URL"], env["RASA_URL"])
    origin.start()
    try:
        for service in ("simulator", "backend", "actions", "rasa"):
            stack.start(service, timeout=300)
        yield stack
    finally:
        stack.stop_all()
        origin.stop()
        for path in sorted(log_dir.glob("*.log")):
            # kept for a failing run's report; bodies and numbers are masked by the services
            print(f"--- {path.name} (last lines) ---")
            print("\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        leaks = phi_in_logs(log_dir, url)
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        assert not leaks, "PHI in the logs:\n" + "\n".join(leaks[:20])


def phi_in_logs(log_dir: Path, database_url: str) -> list[str]:
    """Log lines that carry a seeded phone number, a patient's name or what a patient wrote."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        phones = [row[0] for row in conn.execute("SELECT phone FROM patients")]
    needles = [*phones, *(p.removeprefix("+") for p in phones), DISPLAY_NAME]
    # a body of a word or two ("yes", "STOP") is indistinguishable from log vocabulary
    needles += [body for body in set(SENT_BODIES) if len(body) >= 12]
    return scan_logs(log_dir, needles)


def scan_logs(log_dir: Path, needles: list[str]) -> list[str]:
    """Where any needle appears in any log file (rotated ones included), with the values cut out
    of the line, so that the report shows which statement leaks without repeating the value."""
    leaks = []
    ordered = sorted(set(needles), key=len, reverse=True)
    for path in sorted(log_dir.glob("*.log*")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(needle in line for needle in ordered):
                for needle in ordered:
                    line = line.replace(needle, "<seeded>")
                leaks.append(f"{path.name}:{number}: {line[:300]}")
    return leaks


@pytest.fixture
def clinic(stack: Stack) -> Iterator[Clinic]:
    clinic = Clinic(stack, stack.env["DATABASE_URL"])
    clinic.simulator.post("/simulator/reset")
    # each test gets fresh patients and its own provider type, so earlier tests do not interfere
    clinic.sql("UPDATE waitlist_entries SET status = 'removed' WHERE status = 'active'")
    clinic.sql("UPDATE cancellations SET status = 'aborted' WHERE status = 'open'")
    clinic.sql("UPDATE offers SET state = 'withdrawn' WHERE state = 'pending'")
    yield clinic
