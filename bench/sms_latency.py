"""Patients' SMS replies through the whole pipeline: latency at a fixed arrival rate, and where it goes.

Every process is real (SMS simulator, backend, action server, Rasa with the trained model), on its own
ports, against a scratch database. Simulated patients on the waitlist text the clinic through the
simulator's signed Twilio webhook at 5, 10 and 20 messages per second (open loop: message i is sent
at t0 + i / rate whatever happened to the earlier ones), 60 s per rate. Per message we measure the
time from just before the inbound POST until the reply is in the simulator, and count errors.

Then, for the same traffic, the time is split into stages with the timestamps Rasa writes on the
conversation's events, and the single calls each stage makes are timed alone on the idle stack.

    PYTHONPATH=.:backend .venv-backend/bin/python -m bench.sms_latency [--seconds 10] [--rates 5,10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from bench.common import ADMIN_URL, percentile, scratch_database
from launcher.stack import MODEL, RASA_BIN, Stack, compose_env, rasa_db_settings

PORTS = {
    "BACKEND_PORT": "28000",
    "RASA_PORT": "25005",
    "ACTIONS_PORT": "25055",
    "SIMULATOR_PORT": "28088",
}
STAFF_TOKEN = "bench-staff-token"
ACTIONS_TOKEN = "bench-actions-token"
RASA_TOKEN = "bench-rasa-token"
SERVICES = ("simulator", "backend", "actions", "rasa")

# What patients answer. None of them has an open offer, so every reply but "thanks" and HELP goes
# Rasa -> action server -> backend (PostgreSQL) and back: "no open offer", deferral saved, etc.
REPLY_MIX: list[tuple[str, int]] = [
    ("yes", 25),  # action_accept -> POST /replies/accept (or GET /offers/current) -> no open offer
    ("what time is it?", 15),  # action_offer_details -> GET /offers/current
    ("where is it?", 5),  # action_offer_details
    ("no thanks", 10),  # action_decline -> POST /replies/decline
    ("can't make it, try me next week", 10),  # action_defer -> POST /replies/defer
    ("mornings only please", 10),  # action_update_availability -> POST /replies/availability
    ("thanks", 15),  # utter_youre_welcome, no action server
    ("HELP", 10),  # carrier keyword (decided in code), utter_help
]
BACKEND_DOWN_REPLY = "We're having trouble right now"  # utter_backend_down: the backend call failed
POLL_INTERVAL = 0.02
NOT_SENT = "not sent: every patient number had a message in flight"
IDLE_SAMPLES = 30


@dataclass
class Sample:
    """One patient text. Times are wall-clock seconds (time.time(), the same clock Rasa stamps its
    events with on this host); durations between our own marks come from perf_counter."""

    phone: str
    text: str
    sent_at: float  # just before the inbound POST
    lag: float  # how late the send was against its schedule
    sid: str | None = None
    webhook_at: float | None = None  # the simulator answered: Rasa answered the webhook
    reply_at: float | None = None  # the first poll that showed the reply
    reply: str | None = None
    error: str | None = None


@dataclass
class RateResult:
    rate: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def sent(self) -> list[Sample]:
        return [s for s in self.samples if s.error != NOT_SENT]

    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds used during the rate
    wall: float = 0.0  # from the first send until the last reply
    machine_busy: float = 0.0  # % of all cores, other work on the machine included
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------ the stack


def free_port(port: str) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", int(port))) != 0


def stack_env(database_url: str) -> dict[str, str]:
    base = "http://127.0.0.1:"
    env = compose_env(
        {
            **PORTS,
            "DATABASE_URL": database_url,
            "STAFF_API_TOKEN": STAFF_TOKEN,
            "ACTIONS_API_TOKEN": ACTIONS_TOKEN,
            "RASA_API_TOKEN": RASA_TOKEN,
            "BACKEND_URL": base + PORTS["BACKEND_PORT"],
            "RASA_URL": base + PORTS["RASA_PORT"],
            "PUBLIC_BASE_URL": base + PORTS["BACKEND_PORT"],
            "ACTION_ENDPOINT_URL": f"{base}{PORTS['ACTIONS_PORT']}/webhook",
            "SIMULATOR_INBOUND_URL": f"{base}{PORTS['RASA_PORT']}/webhooks/twilio/webhook",
            "TWILIO_ACCOUNT_SID": "",  # the simulator stands in for Twilio
            "CONTACT_HOURS": "00:00-23:59",  # the benchmark may run at any hour
            "CLINIC_TIMEZONE": "America/New_York",
        }
    )
    env.update(rasa_db_settings(database_url))
    return env


class CpuMeter:
    """CPU seconds of each service's process tree, of this database's PostgreSQL backends, of this
    process, and of the whole machine, between start() and stop()."""

    def __init__(self, stack: Stack, database_url: str) -> None:
        self.stack = stack
        self.database = database_url.rsplit("/", 1)[-1].split("?")[0]

    def _tree(self, pid: int) -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _postgres_pids(self) -> list[int]:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)
            ).fetchall()
        return [row[0] for row in rows]

    def _snapshot(self) -> dict[str, dict[int, float]]:
        groups: dict[str, list[psutil.Process]] = {}
        for name in SERVICES:
            process = self.stack.services[name].process
            groups[name] = self._tree(process.pid) if process else []
        groups["postgres"] = []
        for pid in self._postgres_pids():
            try:
                groups["postgres"].append(psutil.Process(pid))
            except psutil.Error:
                pass
        groups["bench"] = [psutil.Process()]
        snap: dict[str, dict[int, float]] = {}
        for name, processes in groups.items():
            snap[name] = {}
            for process in processes:
                try:
                    times = process.cpu_times()
                    snap[name][process.pid] = times.user + times.system
                except psutil.Error:
                    pass
        return snap

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.machine0 = psutil.cpu_times()
        self.before = self._snapshot()

    def stop(self) -> tuple[dict[str, float], float, float]:
        """CPU seconds per group, wall seconds, and % of all cores busy on the machine."""
        after = self._snapshot()
        wall = time.perf_counter() - self.t0
        machine1 = psutil.cpu_times()
        result = {}
        for name, pids in after.items():
            # processes present at both ends (a pooled connection opened meanwhile counts from 0)
            used = sum(cpu - self.before[name].get(pid, 0.0) for pid, cpu in pids.items())
            result[name] = used
        busy = sum(machine1) - machine1.idle - machine1.iowait
        busy0 = sum(self.machine0) - self.machine0.idle - self.machine0.iowait
        total = sum(machine1) - sum(self.machine0)
        return result, wall, 100 * (busy - busy0) / total if total else 0.0


# ------------------------------------------------------------------------------ the traffic


class Bench:
    def __init__(self, env: dict[str, str], patients: int, reply_timeout: float) -> None:
        self.env = env
        self.reply_timeout = reply_timeout
        self.phones = [f"+1202555{2000 + i:04d}" for i in range(patients)]
        limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
        self.sim = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{env['SIMULATOR_PORT']}", timeout=60, limits=limits
        )
        self.staff = httpx.AsyncClient(
            base_url=env["BACKEND_URL"],
            timeout=30,
            headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
        )
        self.rasa = httpx.AsyncClient(
            base_url=env["RASA_URL"], timeout=60, params={"token": RASA_TOKEN}
        )
        self.seen: dict[str, int] = {}  # outbound messages already seen per number since reset

    async def close(self) -> None:
        for client in (self.sim, self.staff, self.rasa):
            await client.aclose()

    async def register_patients(self) -> None:
        response = await self.staff.post(
            "/api/v1/providers", json={"name": "Dr. Lee", "provider_type": "derm"}
        )
        response.raise_for_status()
        semaphore = asyncio.Semaphore(4)

        async def one(phone: str) -> None:
            async with semaphore:
                created = await self.staff.post(
                    "/api/v1/patients",
                    json={"phone": phone, "display_name": "Pat", "preferred_language": "en"},
                )
                created.raise_for_status()
                listed = await self.staff.post(
                    "/api/v1/waitlist",
                    json={"patient_id": created.json()["id"], "provider_type": "derm"},
                )
                listed.raise_for_status()

        await asyncio.gather(*(one(phone) for phone in self.phones))

    async def reset_simulator(self) -> None:
        (await self.sim.post("/simulator/reset")).raise_for_status()
        self.seen = dict.fromkeys(self.phones, 0)

    async def text(self, phone: str, body: str, scheduled: float) -> Sample:
        """One patient text, and its reply.

        Clock: the simulator stamps messages in whole seconds (date_created has no fraction), too
        coarse here, so the end point is this process's own clock when a poll of
        /simulator/messages?to=<number> first shows the reply. Polling starts when the webhook has
        been answered: the connector sends the reply (Messages.json create, awaited) before it
        answers, so the first poll nearly always finds it, and no poller loads the machine while
        the message is processed. This overstates the arrival by Rasa's tracker save, the webhook
        answer and one GET, which the stage table shows separately from Rasa's own timestamps.
        """
        lag = time.perf_counter() - scheduled
        sample = Sample(phone=phone, text=body, sent_at=time.time(), lag=lag)
        p0 = time.perf_counter()

        def wall(now: float) -> float:
            return sample.sent_at + (now - p0)

        try:
            response = await self.sim.post(
                "/simulator/inbound",
                json={"from": phone, "body": body},
                timeout=self.reply_timeout + 10,
            )
            sample.webhook_at = wall(time.perf_counter())
            data = response.json()
            sample.sid = data.get("message_sid")
            status = data.get("status")
            if status is None or not 200 <= int(status) < 300:
                sample.error = f"webhook HTTP {status}"
                return sample
            while True:
                listed = await self.sim.get("/simulator/messages", params={"to": phone})
                now = time.perf_counter()
                messages = listed.json()
                if len(messages) > self.seen[phone]:
                    sample.reply_at = wall(now)
                    sample.reply = messages[self.seen[phone]]["body"]
                    self.seen[phone] = len(messages)
                    if sample.reply.startswith(BACKEND_DOWN_REPLY):
                        sample.error = "backend-down reply"
                    elif now - p0 > self.reply_timeout:
                        sample.error = f"reply later than {self.reply_timeout:.0f} s"
                    return sample
                if now - p0 > self.reply_timeout:
                    sample.error = f"no reply in {self.reply_timeout:.0f} s"
                    return sample
                await asyncio.sleep(POLL_INTERVAL)
        except (httpx.HTTPError, ValueError) as error:
            sample.error = f"{type(error).__name__} (bench -> simulator)"
            return sample

    async def open_loop(self, rate: float, seconds: float, texts: list[str]) -> list[Sample]:
        """Message i leaves at t0 + i / rate, each in its own task; a number is never used by two
        messages at once (Rasa serialises one conversation), so numbers rotate through a queue."""
        free = deque(self.phones)
        random.Random(int(rate)).shuffle(free)
        count = int(rate * seconds)
        tasks: list[asyncio.Task[Sample]] = []
        skipped: list[Sample] = []

        async def run(phone: str, body: str, scheduled: float) -> Sample:
            try:
                return await self.text(phone, body, scheduled)
            finally:
                free.append(phone)

        start = time.perf_counter()
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = texts[i % len(texts)]
            if not free:
                skipped.append(Sample("", body, time.time(), 0.0, error=NOT_SENT))
                continue
            tasks.append(asyncio.create_task(run(free.popleft(), body, scheduled)))
        return [*(await asyncio.gather(*tasks)), *skipped]

    async def closed_loop(self, pairs: list[tuple[str, str]], concurrency: int) -> list[Sample]:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(phone: str, body: str) -> Sample:
            async with semaphore:
                return await self.text(phone, body, time.perf_counter())

        return list(await asyncio.gather(*(one(phone, body) for phone, body in pairs)))

    # -------------------------------------------------------------------- Rasa's own clocks

    async def tracker(self, phone: str) -> dict[str, Any]:
        response = await self.rasa.get(
            f"/conversations/{phone}/tracker", params={"include_events": "ALL"}
        )
        response.raise_for_status()
        return response.json()

    async def event_times(self) -> dict[str, dict[str, Any]]:
        """Per inbound MessageSid: when NLU was done (the user event), when the first action was
        done (its action event), and when the reply had been sent (the next action_listen event)."""
        semaphore = asyncio.Semaphore(4)
        times: dict[str, dict[str, Any]] = {}

        async def one(phone: str) -> None:
            async with semaphore:
                events = (await self.tracker(phone))["events"]
            for index, event in enumerate(events):
                if event.get("event") != "user" or not event.get("message_id"):
                    continue
                entry: dict[str, Any] = {"nlu": event["timestamp"]}
                for later in events[index + 1 :]:
                    if later.get("event") == "user":
                        break
                    if later.get("event") != "action":
                        continue
                    if later["name"] != "action_listen" and "action" not in entry:
                        entry["action"] = later["timestamp"]
                        entry["name"] = later["name"]
                    elif later["name"] == "action_listen" and "action" in entry:
                        entry["listen"] = later["timestamp"]
                        break
                times[event["message_id"]] = entry

        await asyncio.gather(*(one(phone) for phone in self.phones))
        return times


# ------------------------------------------------------------------------------ idle timings


async def timed(call: Callable[[], Awaitable[httpx.Response]], n: int = IDLE_SAMPLES) -> float:
    """Median wall time of n sequential calls, in ms; every call must succeed."""
    durations = []
    for _ in range(n):
        started = time.perf_counter()
        response = await call()
        durations.append(time.perf_counter() - started)
        response.raise_for_status()
    return 1000 * statistics.median(durations)


def client_creation_ms() -> float:
    """Creating an httpx.AsyncClient builds an SSL context (CA bundle load) even for plain HTTP;
    timed in the action server's own environment, whose httpx version may differ from ours."""
    code = (
        "import httpx, statistics, time\n"
        "d = []\n"
        f"for _ in range({IDLE_SAMPLES}):\n"
        "    t = time.perf_counter(); httpx.AsyncClient(timeout=5); d.append(time.perf_counter() - t)\n"
        "print(1000 * statistics.median(d))\n"
    )
    result = subprocess.run(
        [str(RASA_BIN.parent / "python"), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(result.stdout.strip())


async def idle_calls(bench: Bench, texts: list[str]) -> list[tuple[str, float]]:
    """Each stage's call alone, one at a time, on the idle stack."""
    env = bench.env
    phone = bench.phones[0]
    rows: list[tuple[str, float]] = []
    cycle = iter(texts * IDLE_SAMPLES)
    rows.append(
        (
            "NLU alone: POST /model/parse, the same texts",
            await timed(lambda: bench.rasa.post("/model/parse", json={"text": next(cycle)})),
        )
    )
    tracker = await bench.tracker(phone)
    events = tracker["events"]
    rows.append(
        (
            "tracker load + JSON: GET /conversations/{id}/tracker",
            await timed(lambda: bench.rasa.get(f"/conversations/{phone}/tracker")),
        )
    )
    json_domain = {"Accept": "application/json"}
    rows.append(
        (
            "domain as JSON: GET /domain (Rasa rebuilds it for every action call)",
            await timed(lambda: bench.rasa.get("/domain", headers=json_domain)),
        )
    )
    domain = (await bench.rasa.get("/domain", headers=json_domain)).raise_for_status().json()
    # what Rasa 3.6 POSTs for a custom action: the whole tracker and the whole domain
    action_call = {
        "next_action": "action_offer_details",
        "sender_id": phone,
        "tracker": tracker,
        "domain": domain,
        "version": "3.6.21",
    }
    size = len(json.dumps(action_call)) // 1024
    actions_url = f"http://127.0.0.1:{env['ACTIONS_PORT']}/webhook"
    # the action server answers only Rasa's token (endpoints.yml sends it the same way)
    as_rasa = {"Authorization": f"Bearer {env['ACTION_SERVER_TOKEN']}"}
    async with httpx.AsyncClient(timeout=30, headers=as_rasa) as client:
        rows.append(
            (
                f"action server: POST /webhook action_offer_details, incl. backend "
                f"({len(events)} events, {size} KB)",
                await timed(lambda: client.post(actions_url, json=action_call)),
            )
        )
        bare = {**action_call, "domain": {}}
        rows.append(
            (
                "  the same with an empty domain",
                await timed(lambda: client.post(actions_url, json=bare)),
            )
        )
        rows.append(
            (
                "  of which: new httpx.AsyncClient() (the backend client makes one per call)",
                client_creation_ms(),
            )
        )
        auth = {"Authorization": f"Bearer {ACTIONS_TOKEN}"}
        rows.append(
            (
                "backend alone: GET /internal/v1/offers/current",
                await timed(
                    lambda: client.get(
                        f"{env['BACKEND_URL']}/internal/v1/offers/current",
                        params={"phone": phone},
                        headers=auth,
                    )
                ),
            )
        )
        rows.append(
            (
                "backend alone: POST /internal/v1/replies/accept",
                await timed(
                    lambda: client.post(
                        f"{env['BACKEND_URL']}/internal/v1/replies/accept",
                        json={"phone": phone, "message_id": f"bench{uuid.uuid4().hex}"},
                        headers=auth,
                    )
                ),
            )
        )
        account = env["TWILIO_ACCOUNT_SID"]
        rows.append(
            (
                "send alone: POST Messages.json to the simulator",
                await timed(
                    lambda: client.post(
                        f"http://127.0.0.1:{env['SIMULATOR_PORT']}"
                        f"/2010-04-01/Accounts/{account}/Messages.json",
                        data={
                            "To": phone,
                            "From": env["TWILIO_FROM_NUMBER"],
                            "Body": "You're welcome!",
                        },
                        auth=(account, env["TWILIO_AUTH_TOKEN"]),
                    )
                ),
            )
        )
    idle = [bench.phones[i % len(bench.phones)] for i in range(1, 1 + IDLE_SAMPLES)]
    await bench.reset_simulator()
    for label, body in (("utter only", "thanks"), ("custom action", "what time is it?")):
        done = await bench.closed_loop([(p, body) for p in idle], concurrency=1)
        ok = [s for s in done if s.error is None and s.reply_at]
        if ok:
            rows.append(
                (
                    f"whole turn at idle, {label}: {body!r}",
                    1000 * statistics.median(s.reply_at - s.sent_at for s in ok),
                )
            )
    return rows


# ------------------------------------------------------------------------------ report


def ms(values: list[float], p: float | None = None) -> str:
    if not values:
        return "-"
    value = statistics.median(values) if p is None else percentile(values, p)
    return f"{1000 * value:.0f}"


def stage_rows(results: list[RateResult], times: dict[str, dict[str, Any]]) -> list[list[str]]:
    stages: list[tuple[str, Callable[[Sample, dict[str, Any]], float | None]]] = [
        (
            "inbound POST -> NLU done (sim, signature, dedup, lock, tracker load, NLU)",
            lambda s, t: t["nlu"] - s.sent_at,
        ),
        (
            "NLU done -> utter action done (policies, template)",
            lambda s, t: t["action"] - t["nlu"] if t["name"].startswith("utter_") else None,
        ),
        (
            "NLU done -> custom action done (policies, action server + backend)",
            lambda s, t: t["action"] - t["nlu"] if t["name"].startswith("action_") else None,
        ),
        (
            "action done -> reply sent (Messages.json, next policy run)",
            lambda s, t: t["listen"] - t["action"],
        ),
        (
            "reply sent -> webhook answered (tracker save, HTTP)",
            lambda s, t: s.webhook_at - t["listen"],
        ),
        ("webhook answered -> reply seen by poll", lambda s, t: s.reply_at - s.webhook_at),
        ("inbound POST -> reply sent (Rasa's clock), p50", lambda s, t: t["listen"] - s.sent_at),
    ]
    rows = []
    for label, get in stages:
        row = [label]
        for result in results:
            values = []
            for sample in result.samples:
                entry = times.get(sample.sid or "")
                if sample.error or not entry or "listen" not in entry:
                    continue
                value = get(sample, entry)
                if value is not None:
                    values.append(value)
            row.append(ms(values))
        rows.append(row)
    tight = ["inbound POST -> reply sent (Rasa's clock), p95"]
    for result in results:
        values = [
            times[s.sid]["listen"] - s.sent_at
            for s in result.samples
            if not s.error and s.sid in times and "listen" in times[s.sid]
        ]
        tight.append(ms(values, 95))
    rows.append(tight)
    return rows


def print_table(
    header: list[str], rows: list[list[str]], first_width: int, with_header: bool = True
) -> None:
    widths = [first_width] + [max(7, len(h)) for h in header[1:]]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])]
        padded += [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join(padded)

    if with_header:
        print(line(header))
    for row in rows:
        print(line(row))


async def measure(stack: Stack, database_url: str, args: argparse.Namespace) -> None:
    bench = Bench(stack.env, args.patients, args.reply_timeout)
    try:
        await bench.register_patients()
        texts = [text for text, weight in REPLY_MIX for _ in range(weight)]
        random.Random(7).shuffle(texts)
        intents = {}
        for text, _ in REPLY_MIX:
            parsed = (await bench.rasa.post("/model/parse", json={"text": text})).json()
            intents[text] = parsed["intent"]["name"]

        print(
            "SMS reply latency, whole pipeline: simulator -> Rasa (secure Twilio connector) -> "
            "action server -> backend -> PostgreSQL, reply -> simulator"
        )
        print(
            f"{psutil.cpu_count()} CPUs; {len(bench.phones)} waitlisted patients, none with an "
            f"open offer; open-loop arrivals, {args.seconds:.0f} s per rate; reply timeout "
            f"{args.reply_timeout:.0f} s"
        )
        print(
            "reply mix: "
            + ", ".join(f"{weight}% {text!r} ({intents[text]})" for text, weight in REPLY_MIX)
        )

        # warm-up: opens every conversation (action_session_start) and warms every code path
        await bench.reset_simulator()
        warm = [(phone, texts[i % len(texts)]) for i, phone in enumerate(bench.phones)]
        warmed = await bench.closed_loop(warm, concurrency=4)
        bad = [s for s in warmed if s.error]
        if bad:
            print(f"warm-up: {len(bad)} of {len(warmed)} failed, e.g. {bad[0].error}")

        meter = CpuMeter(stack, database_url)
        results: list[RateResult] = []
        print()
        header = [
            "rate",
            "sent",
            "errors",
            "p50 ms",
            "p95 ms",
            "max ms",
            "webhook p50",
            "load 1/5 min",
        ]
        for rate in args.rates:
            await bench.reset_simulator()
            await asyncio.sleep(2)  # let the previous rate's status callbacks drain
            result = RateResult(rate)
            meter.start()
            result.samples = await bench.open_loop(rate, args.seconds, texts)
            result.cpu, result.wall, result.machine_busy = meter.stop()
            result.load = os.getloadavg()
            results.append(result)
            ok = [s for s in result.sent if s.error is None]
            latency = [s.reply_at - s.sent_at for s in ok if s.reply_at]
            webhook = [s.webhook_at - s.sent_at for s in ok if s.webhook_at]
            errors = Counter(s.error for s in result.sent if s.error)
            not_sent = len(result.samples) - len(result.sent)
            lag = max((s.lag for s in result.samples), default=0.0)
            row = [
                f"{rate:g}/s",
                str(len(result.sent)),
                str(sum(errors.values())),
                ms(latency),
                ms(latency, 95),
                f"{1000 * max(latency):.0f}" if latency else "-",
                ms(webhook),
                f"{result.load[0]:.2f} / {result.load[1]:.2f}",
            ]
            print_table(header, [row], 6, with_header=len(results) == 1)
            notes = [f"{n} {kind}" for kind, n in errors.items()]
            if not_sent:
                notes.append(f"{not_sent} of {len(result.samples)} scheduled {NOT_SENT}")
            if lag > 0.05:
                notes.append(f"sender fell behind by up to {1000 * lag:.0f} ms")
            if notes:
                print(f"  {row[0]}: {'; '.join(notes)}")

        answers = Counter(" ".join(s.reply.split()[:4]) for r in results for s in r.sent if s.reply)
        print(
            "replies, by first words: " + "; ".join(f"{n} {t!r}" for t, n in answers.most_common())
        )

        print()
        names = [*SERVICES, "postgres", "bench"]
        print(
            "CPU during each rate, % of one core (postgres: this database's connections; other"
            " work: the rest of the machine; machine: % of all cores busy)"
        )
        cores = psutil.cpu_count() or 1
        print_table(
            ["rate", *names, "other work", "machine"],
            [
                [
                    f"{r.rate:g}/s",
                    *(f"{100 * r.cpu.get(name, 0.0) / r.wall:.0f}" for name in names),
                    f"{max(0.0, r.machine_busy * cores - 100 * sum(r.cpu.values()) / r.wall):.0f}",
                    f"{r.machine_busy:.0f}",
                ]
                for r in results
            ],
            6,
        )
        print("CPU ms per message")
        print_table(
            ["rate", *names, "total"],
            [
                [
                    f"{r.rate:g}/s",
                    *(f"{1000 * r.cpu.get(name, 0.0) / len(r.sent):.0f}" for name in names),
                    f"{1000 * sum(r.cpu.values()) / len(r.sent):.0f}",
                ]
                for r in results
            ],
            6,
        )
        first = results[0]
        per_message = {name: seconds / len(first.sent) for name, seconds in first.cpu.items()}
        print(
            f"  ceilings from the {first.rate:g}/s figures: all {cores} cores to this pipeline "
            f"{cores / sum(per_message.values()):.0f} msg/s; Rasa's process on one core "
            f"{1 / per_message['rasa']:.0f} msg/s"
        )

        times = await bench.event_times()
        print()
        print("where the time goes under load, medians in ms (Rasa's event timestamps, same clock)")
        print_table(["stage", *(f"{r.rate:g}/s" for r in results)], stage_rows(results, times), 72)

        print()
        print(f"each stage's call alone on the idle stack, median of {IDLE_SAMPLES}, ms")
        idle = await idle_calls(bench, [text for text, _ in REPLY_MIX])
        width = max(len(label) for label, _ in idle) + 2
        for label, value in idle:
            print(f"  {label:<{width}}{value:>7.1f}")
        load = os.getloadavg()
        print()
        print(
            f"{psutil.cpu_count()} CPUs; load average at the end {load[0]:.2f} / {load[1]:.2f} / "
            f"{load[2]:.2f} (1/5/15 min)"
        )
    finally:
        await bench.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="duration of each rate")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[5.0, 10.0, 20.0],
        help="messages per second, comma-separated (default 5,10,20)",
    )
    # enough numbers for 30 s of the fastest rate: a number is busy until its reply or the timeout
    parser.add_argument("--patients", type=int, default=600)
    parser.add_argument("--reply-timeout", type=float, default=30)
    args = parser.parse_args()

    if not MODEL.exists():
        sys.exit(f"no trained model at {MODEL.relative_to(MODEL.parents[1])}: run `make train`")
    busy = [port for port in PORTS.values() if not free_port(port)]
    if busy:
        sys.exit(f"ports in use: {', '.join(busy)}")

    log_dir = Path(tempfile.mkdtemp(prefix="sms-latency-logs-"))
    failed = True
    with scratch_database("bench_sms") as database_url:
        stack = Stack.build(stack_env(database_url), log_dir)
        try:
            for service in SERVICES:
                stack.start(service, timeout=300)
            # The load generator must keep its schedule when the machine is saturated, or the
            # arrivals stop being open loop. The services were started at normal priority and
            # keep it; only this process is raised (a no-op where that is not permitted).
            try:
                os.setpriority(os.PRIO_PROCESS, 0, -5)
            except OSError:
                pass
            asyncio.run(measure(stack, database_url, args))
            failed = False
        finally:
            stack.stop_all()
            if failed:
                for path in sorted(log_dir.glob("*.log")):
                    print(f"--- {path.name} (last lines) ---", file=sys.stderr)
                    lines = path.read_text(errors="replace").splitlines()[-15:]
                    print("\n".join(lines), file=sys.stderr)
            shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
