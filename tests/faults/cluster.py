"""The product as a clinic would run it on two machines, for the fault-injection suite.

Two backends and two Rasa servers (each with its action server) share one PostgreSQL, one Redis
lock store and one Twilio (the simulator), behind one public origin that fails over between
replicas. The launcher's own Supervisor restarts whatever dies. The PostgreSQL server is this suite's
own (pgserver, under a temporary folder), so that it can be frozen with SIGSTOP without touching
anything else on the machine.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from launcher.stack import Stack, compose_env, prepare_database, rasa_db_settings
from launcher.supervisor import Supervisor
from tests.e2e.public_origin import PublicOrigin

log = logging.getLogger("faults")

STAFF_TOKEN = "faults-staff-token-0123456789abcdef"
SHARED = {
    "STAFF_API_TOKEN": STAFF_TOKEN,
    "ACTIONS_API_TOKEN": "faults-actions-token-0123456789abcdef",
    "RASA_API_TOKEN": "faults-rasa-token-0123456789abcdef",
    "ACTION_SERVER_TOKEN": "faults-action-server-token-0123456789",
}
REPLICA_PORTS = (
    {"BACKEND_PORT": "28000", "RASA_PORT": "25005", "ACTIONS_PORT": "25055"},
    {"BACKEND_PORT": "28001", "RASA_PORT": "25006", "ACTIONS_PORT": "25056"},
)
SIMULATOR_PORT = "28088"
PUBLIC_PORT = "28443"


class FrozenDatabase:
    """A PostgreSQL server of the suite's own, which can be frozen (SIGSTOP) and thawed."""

    def __init__(self, folder: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(folder / "pgdata", cleanup_mode="stop")
        admin = self.server.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "waitlist_faults"')
        self.url = make_url(admin).set(database="waitlist_faults").render_as_string(
            hide_password=False
        )

    def pids(self) -> list[int]:
        postmaster = int(self.server.get_pid())
        children = subprocess.run(
            ["pgrep", "-P", str(postmaster)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [postmaster, *(int(pid) for pid in children)]

    def freeze(self, seconds: float) -> None:
        """Every PostgreSQL process stops (SIGSTOP) for `seconds`, as a stalled disk or VM would."""
        pids = self.pids()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass

    def stop(self) -> None:
        self.server.cleanup()


@dataclass
class Cluster:
    replicas: list[Stack]
    origin: PublicOrigin
    database: FrozenDatabase
    env: dict[str, str]
    supervisors: list[Supervisor] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def backend_urls(self) -> list[str]:
        return [stack.env["BACKEND_URL"] for stack in self.replicas]

    @property
    def simulator_url(self) -> str:
        return f"http://127.0.0.1:{SIMULATOR_PORT}"

    def crash(self, replica: int, name: str) -> None:
        """kill -9, as a crash would; the launcher's Supervisor brings it back."""
        process = self.replicas[replica].services[name].process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

    def supervise(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                for supervisor in self.supervisors:
                    supervisor.tick()
                time.sleep(0.5)

        threading.Thread(target=loop, name="supervisor", daemon=True).start()

    def healthy(self) -> bool:
        return all(
            stack.is_healthy(name) for stack in self.replicas for name in stack.services
        )

    def stop(self) -> None:
        self._stop.set()
        time.sleep(1)
        for stack in reversed(self.replicas):
            stack.stop_all()
        self.origin.stop()
        self.database.stop()


def start_cluster(folder: Path, settings: dict[str, str]) -> Cluster:
    database = FrozenDatabase(folder)
    public = f"http://127.0.0.1:{PUBLIC_PORT}"
    replicas: list[Stack] = []
    env: dict[str, str] = {}
    for index, ports in enumerate(REPLICA_PORTS):
        env = compose_env(
            {
                **SHARED,
                **ports,
                **settings,
                "SIMULATOR_PORT": SIMULATOR_PORT,
                "DATABASE_URL": database.url,
                "PUBLIC_BASE_URL": public,
                "SIMULATOR_INBOUND_URL": f"{public}/webhooks/twilio/webhook",
                "TWILIO_ACCOUNT_SID": "",
                "RASA_ENDPOINTS": "endpoints-replicas.yml",
                "LOCK_STORE_KEY_PREFIX": f"faults-{os.getpid()}-",
            }
        )
        if index == 0:
            prepare_database(env)
        env.update(rasa_db_settings(database.url))
        stack = Stack.build(env, folder / f"logs-{index}")
        if index > 0:
            del stack.services["simulator"]  # one Twilio for both replicas
        replicas.append(stack)
    origin = PublicOrigin(
        int(PUBLIC_PORT),
        [stack.env["BACKEND_URL"] for stack in replicas],
        [stack.env["RASA_URL"] for stack in replicas],
    )
    origin.start()
    cluster = Cluster(replicas, origin, database, env)
    try:
        for stack in replicas:
            for name in stack.services:
                if name != "rasa":
                    stack.start(name, timeout=120)
        for stack in replicas:  # the two Rasa servers load their models side by side
            stack.spawn("rasa")
        for stack in replicas:
            stack.wait_healthy("rasa", timeout=400)
    except Exception:
        cluster.stop()
        raise
    cluster.supervisors = [Supervisor(stack, list(stack.services)) for stack in replicas]
    cluster.supervise()
    return cluster
