"""The proof: a scripted clinic day on two replicas of every part, with faults injected throughout,
then the invariants counted from the database and from every text the patients' phones received.

Load: 20 cancellations, 60 waitlisted patients answering their offers in their own words (yes, no,
"try me next week", STOP, questions), concurrent yeses for one slot, duplicate MessageSids.
Faults: kill -9 of a backend, an action server and a Rasa server (twice each, at scripted moments;
the launcher's Supervisor restarts them), the database frozen with SIGSTOP for 10 s, Twilio answering
500 and 429 for a while, Twilio slow (10 s) and timing out while taking the text (the "in doubt" case),
duplicate, replayed and out-of-order status callbacks. Contact hours close part-way through.

The counts are printed and written to results/faults/report.json.
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from twilio.request_validator import RequestValidator

from launcher.stack import ROOT, SIMULATOR_AUTH_TOKEN
from tests.faults.cluster import STAFF_TOKEN, Cluster, start_cluster

SEED = 20261126
PATIENTS = 80
CANCELLATIONS = 20
REPLIES_WANTED = 220
OFFER_PREFIX = "Riverside Clinic: an earlier appointment"
NOTICE_PREFIXES = (OFFER_PREFIX, "That opening on")
# contact hours close this long after the cluster is configured (it takes a minute or two to start)
CLOSE_AFTER = timedelta(minutes=5, seconds=30)
LOAD_AFTER_CLOSE = 40  # seconds of replies after the close
SETTLE_TIMEOUT = 200  # seconds for holds to run out and unsent offers to be released
REPORT = ROOT / "results" / "faults" / "report.json"


def clinic_zone(now: datetime) -> ZoneInfo:
    """A fixed-offset zone in which it is about noon now, so the contact window can close a few
    minutes from now without crossing midnight, whatever hour the suite runs at."""
    offset = (12 - now.hour) % 24
    if offset > 14:
        offset -= 24
    name = "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    return ZoneInfo(name)


class Driver:
    """The staff and the patients of the scripted day."""

    def __init__(self, cluster: Cluster, rng: random.Random) -> None:
        self.cluster, self.rng = cluster, rng
        self.staff = httpx.Client(headers={"Authorization": f"Bearer {STAFF_TOKEN}"}, timeout=60)
        self.sim = httpx.Client(base_url=cluster.simulator_url, timeout=60)
        self.backends = itertools.cycle(cluster.backend_urls)
        self.numbers = itertools.count(1000)
        self.phones: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []  # every inbound text: phone, body, sid, status
        self.stops: set[str] = set()
        self.seen: set[str] = set()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.zone = ZoneInfo("UTC")

    # --- staff
    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """Staff use whichever backend answers (two replicas, one may be restarting)."""
        last: Exception | None = None
        for _ in range(30):
            try:
                answer = self.staff.request(method, next(self.backends) + "/api/v1" + path, **kwargs)
                if answer.status_code < 500:
                    assert answer.status_code < 300, (answer.status_code, answer.text)
                    return answer.json()
            except httpx.HTTPError as error:
                last = error
            time.sleep(1)
        raise AssertionError(f"no backend answered {method} {path}: {last}")

    def setup_clinic(self) -> int:
        provider = self.api("POST", "/providers", json={"name": "Dr. Lee", "provider_type": "derm"})
        for _ in range(PATIENTS):
            phone = f"+1202556{next(self.numbers):04d}"
            patient = self.api(
                "POST",
                "/patients",
                json={"phone": phone, "display_name": "Ivo", "preferred_language": "en"},
            )
            self.phones[phone] = patient["id"]
            self.api(
                "POST",
                "/waitlist",
                json={"patient_id": patient["id"], "provider_type": "derm", "urgent": False},
            )
        return int(provider["id"])

    def cancel(self, provider: int, n: int) -> None:
        start = (datetime.now(UTC) + timedelta(days=2, hours=n)).replace(second=0, microsecond=0)
        self.api(
            "POST",
            "/cancellations",
            json={
                "provider_id": provider,
                "location": "Main Street",
                "slot_start": start.isoformat(),
                "slot_end": (start + timedelta(minutes=30)).isoformat(),
            },
        )

    # --- patients
    def outbound(self) -> list[dict[str, Any]]:
        messages = self.sim.get("/simulator/messages").json()
        return [m for m in messages if m["direction"].startswith("outbound")]

    def text(self, phone: str, body: str, sid: str | None = None) -> None:
        """A patient's text through Twilio (the simulator), as often as a patient would retry it
        when Twilio could not reach us at all (both Rasa servers down)."""
        # a retry is the same text (same MessageSid), as Twilio's fallback would deliver it
        sid = sid or f"SM{self.rng.getrandbits(128):032x}"
        payload: dict[str, Any] = {"from": phone, "body": body, "message_sid": sid}
        for _ in range(10):
            answer = self.sim.post("/simulator/inbound", json=payload).json()
            with self.lock:
                self.sent.append({"phone": phone, "body": body, **answer})
            if answer.get("status") == 200:
                if body.upper() == "STOP" or "stop texting" in body:
                    self.stops.add(phone)
                return
            time.sleep(3)

    def later(self, delay: float, action: Callable[[], None]) -> None:
        def run() -> None:
            time.sleep(delay)
            action()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def answer_new_texts(self) -> int:
        """Each patient reacts to each new offer in their own words; returns texts scheduled."""
        scheduled = 0
        fresh = [m for m in self.outbound() if m["sid"] not in self.seen]
        for message in fresh:
            self.seen.add(message["sid"])
            phone = message["to"]
            if not message["body"].startswith(OFFER_PREFIX) or phone in self.stops:
                continue
            roll = self.rng.random()
            if roll < 0.15:
                continue  # never answers; the hold runs out
            if roll < 0.25:
                # everyone holding this slot says yes at the same moment
                rivals = [
                    m["to"] for m in fresh if m["body"] == message["body"] and m["to"] != phone
                ]
                for rival in [phone, *rivals]:
                    self.later(1.0, lambda p=rival: self.text(p, "YES"))
                    scheduled += 1
                continue
            body = self.rng.choice(
                ["yes!", "Yes please, I'll take it", "no thanks", "can't make it, try me next week",
                 "STOP", "please stop texting me", "where is it?", "no", "yes"]
            )
            delay = self.rng.uniform(0.5, 4)
            if self.rng.random() < 0.1:
                # Twilio delivering one text twice: same MessageSid
                sid = f"SM{self.rng.getrandbits(128):032x}"
                self.later(delay, lambda p=phone, b=body, s=sid: self.text(p, b, s))
                self.later(delay + 1.5, lambda p=phone, b=body, s=sid: self.text(p, b, s))
            else:
                self.later(delay, lambda p=phone, b=body: self.text(p, b))
            scheduled += 1
        return scheduled

    def fault(self, **fault: Any) -> None:
        self.sim.post("/simulator/faults", json=fault).raise_for_status()

    def replay_some_callbacks(self) -> None:
        offers = [m for m in self.outbound() if m["body"].startswith(OFFER_PREFIX)]
        for message in self.rng.sample(offers, min(3, len(offers))):
            order = self.rng.choice(["same", "reverse"])
            self.sim.post(
                f"/simulator/messages/{message['sid']}/replay_callbacks", json={"order": order}
            )


def fault_schedule(cluster: Cluster, driver: Driver) -> list[tuple[float, str, Callable[[], None]]]:
    """(seconds after the load starts, what, how)."""
    return [
        (10, "Twilio answers 500 for 25 s", lambda: driver.fault(kind="http_500", seconds=25)),
        (30, "kill -9 backend 1", lambda: cluster.crash(0, "backend")),
        (45, "Twilio answers 429 for 10 s", lambda: driver.fault(kind="http_429", seconds=10)),
        (55, "kill -9 action server 2", lambda: cluster.crash(1, "actions")),
        (70, "database frozen (SIGSTOP) 10 s", lambda: cluster.database.freeze(10)),
        (85, "Twilio slow (10 s) x4", lambda: driver.fault(kind="slow", delay_seconds=10, count=4)),
        (95, "kill -9 Rasa 1", lambda: cluster.crash(0, "rasa")),
        (110, "Twilio takes the text but answers after the client gave up (20 s) x2",
         lambda: driver.fault(kind="slow", delay_seconds=20, count=2)),
        (125, "duplicate status callbacks x10",
         lambda: driver.fault(kind="duplicate_callbacks", count=10)),
        (126, "out-of-order status callbacks x10",
         lambda: driver.fault(kind="out_of_order_callbacks", count=10)),
        (140, "kill -9 backend 2 and action server 1",
         lambda: (cluster.crash(1, "backend"), cluster.crash(0, "actions"))),
        (160, "kill -9 Rasa 2", lambda: cluster.crash(1, "rasa")),
    ]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    configured = datetime.now(UTC)
    zone = clinic_zone(configured)
    close_local = (configured + CLOSE_AFTER).astimezone(zone)
    close_local = (close_local + timedelta(minutes=1)).replace(second=0, microsecond=0)
    settings = {
        "CLINIC_TIMEZONE": zone.key,
        "CONTACT_HOURS": f"00:00-{close_local:%H:%M}",
        "HOLD_MINUTES": "1",
        "SWEEP_SECONDS": "1",
        "OFFER_SEND_DEADLINE_MINUTES": "2",
        "DAILY_OFFER_CAP": "50",
        "WEEKLY_OFFER_CAP": "100",
        "SIMULATOR_STATUS_DELAY": "0.1",
        "BATCH_SIZE": "3",
    }
    started = time.monotonic()
    cluster = start_cluster(tmp_path_factory.mktemp("faults"), settings)
    cluster.close_at = close_local.astimezone(UTC)  # type: ignore[attr-defined]
    print(f"cluster up in {time.monotonic() - started:.0f} s; contact hours close at {close_local}")
    yield cluster
    cluster.stop()


def test_invariants_hold_under_faults(cluster: Cluster) -> None:
    rng = random.Random(SEED)
    driver = Driver(cluster, rng)
    driver.zone = ZoneInfo(cluster.env["CLINIC_TIMEZONE"])
    close_at: datetime = cluster.close_at  # type: ignore[attr-defined]
    provider = driver.setup_clinic()
    load_started = time.monotonic()
    load_until = load_started + max(
        200.0, (close_at - datetime.now(UTC)).total_seconds() + LOAD_AFTER_CLOSE
    )
    schedule = fault_schedule(cluster, driver)
    injected: list[str] = []
    created = 0
    replies = 0
    next_replay = 20.0
    while time.monotonic() < load_until:
        elapsed = time.monotonic() - load_started
        while schedule and schedule[0][0] <= elapsed:
            _, what, how = schedule.pop(0)
            threading.Thread(target=how, daemon=True).start()
            injected.append(f"{elapsed:5.0f} s  {what}")
        if created < CANCELLATIONS and elapsed >= created * 7:
            driver.cancel(provider, created)
            created += 1
        if elapsed >= next_replay:
            driver.replay_some_callbacks()
            next_replay += 20
        try:
            replies += driver.answer_new_texts()
        except httpx.HTTPError:
            pass
        if replies < REPLIES_WANTED and rng.random() < 0.45:
            # patients also text about other things, whatever the offers say
            phone = rng.choice(list(driver.phones))
            body = rng.choice(["HELP", "thanks!", "where is it?", "who is this?"])
            driver.later(0, lambda p=phone, b=body: driver.text(p, b))
            replies += 1
        time.sleep(0.5)
    for thread in driver.threads:
        thread.join(timeout=60)
    settled = settle(cluster, timeout=SETTLE_TIMEOUT)
    report = count_invariants(cluster, driver, close_at)
    report.update(
        {
            "cancellations": created,
            "patient_texts_sent": len({t.get("message_sid") for t in driver.sent}),
            "settled": settled,
            "faults": injected,
            "seconds": round(time.monotonic() - load_started),
        }
    )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, default=str))
    print(json.dumps(report, indent=2, default=str))
    zeros = [
        "double_bookings",
        "lost_opt_outs",
        "patients_who_lost_a_slot_to_an_outage",
        "offers_texted_twice",
        "texts_outside_contact_hours",
        "inbound_messages_left_unanswered",
        "offers_not_resolved",
    ]
    assert {name: report[name] for name in zeros} == {name: 0 for name in zeros}
    assert report["patient_texts_sent"] >= 180 and created == CANCELLATIONS
    assert report["filled"] >= 5, "the load must exercise claims"


def settle(cluster: Cluster, timeout: float) -> bool:
    """Wait until no offer is pending and no inbound text is unfinished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = sql(
            cluster,
            "SELECT (SELECT count(*) FROM offers WHERE state = 'pending'),"
            " (SELECT count(*) FROM inbound_messages WHERE status <> 'done')",
        )
        if rows and rows[0] == (0, 0):
            return True
        time.sleep(2)
    return False


def sql(cluster: Cluster, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(cluster.database.url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def count_invariants(cluster: Cluster, driver: Driver, close_at: datetime) -> dict[str, Any]:
    outbound = driver.outbound()
    proactive = [m for m in outbound if m["body"].startswith(NOTICE_PREFIXES)]
    replies_to: Counter[str] = Counter(
        m["to"] for m in outbound if not m["body"].startswith(NOTICE_PREFIXES)
    )
    # "You're booked: Sat Nov 28 at 1:00 PM, ..." must name a slot this patient holds
    held = set()
    for phone, start in sql(
        cluster,
        "SELECT p.phone, c.slot_start FROM offers o JOIN patients p ON p.id = o.patient_id"
        " JOIN cancellations c ON c.id = o.cancellation_id WHERE o.state = 'accepted'",
    ):
        local = start.astimezone(driver.zone)
        held.add((phone, f"{local:%a %b} {local.day} at {local.hour % 12 or 12}:{local:%M %p}"))
    booked = [
        (m["to"], m["body"].removeprefix("You're booked: ").split(",")[0])
        for m in outbound
        if m["body"].startswith("You're booked")
    ]
    told_booked_without_the_slot = sum(1 for text in booked if text not in held)
    slots_won_twice = sql(
        cluster,
        "SELECT count(*) FROM (SELECT cancellation_id FROM offers WHERE state = 'accepted'"
        " GROUP BY cancellation_id HAVING count(*) > 1) t",
    )[0][0]
    opted_out = {
        phone for (phone,) in sql(cluster, "SELECT phone FROM patients WHERE opted_out")
    }
    failed_offers = sql(cluster, "SELECT count(*) FROM offers WHERE state = 'failed'")[0][0]
    twice = sum(1 for count in Counter((m["to"], m["body"]) for m in proactive).values() if count > 1)
    after_close = [
        m for m in proactive if datetime.fromisoformat(m["date_created"]) > close_at + timedelta(seconds=2)
    ]
    acked: dict[str, set[str]] = defaultdict(set)
    for text in driver.sent:
        if text.get("status") == 200:
            acked[text["phone"]].add(text["message_sid"])
    unanswered = sum(max(0, len(sids) - replies_to[phone]) for phone, sids in acked.items())
    unfinished = sql(cluster, "SELECT count(*) FROM inbound_messages WHERE status <> 'done'")[0][0]
    # Twilio could not reach a Rasa server (both restarting): the patient's phone retried it
    refused_attempts = sum(1 for text in driver.sent if text.get("status") != 200)
    states = dict(sql(cluster, "SELECT state, count(*) FROM offers GROUP BY state"))
    delivery = dict(
        sql(
            cluster,
            "SELECT coalesce(delivery_status, 'none'), count(*) FROM outbox"
            " WHERE kind = 'offer' AND status = 'sent' GROUP BY 1",
        )
    )
    filled = sql(cluster, "SELECT count(*) FROM cancellations WHERE status = 'filled'")[0][0]
    return {
        "double_bookings": slots_won_twice + told_booked_without_the_slot,
        # the winner saying yes again hears the booking restated: not a second booking
        "booking_restated": len(booked) - len(set(booked)),
        "lost_opt_outs": len(driver.stops - opted_out),
        "patients_who_lost_a_slot_to_an_outage": failed_offers,
        "offers_texted_twice": twice,
        "texts_outside_contact_hours": len(after_close),
        "inbound_messages_left_unanswered": unanswered + unfinished,
        "offers_not_resolved": states.get("pending", 0) + states.get("failed", 0),
        "webhook_attempts_not_answered_200": refused_attempts,
        "offer_states": states,
        "offer_delivery_reports": delivery,
        "filled": filled,
        "opt_outs": len(driver.stops),
        "proactive_texts": len(proactive),
        "contact_hours_closed_at": close_at.isoformat(),
    }


def test_two_rasa_servers_keep_one_phones_turns_whole_and_in_order(cluster: Cluster) -> None:
    """Texts of one phone delivered alternately to both Rasa servers at once: the shared lock store
    must run one turn at a time, so the tracker holds every turn once, never interleaved."""
    phone = "+12025569999"
    public = cluster.env["PUBLIC_BASE_URL"] + "/webhooks/twilio/webhook"
    servers = [stack.env["RASA_URL"] + "/webhooks/twilio/webhook" for stack in cluster.replicas]
    validator = RequestValidator(SIMULATOR_AUTH_TOKEN)
    sids = [f"SM{n:032x}" for n in range(1, 13)]

    def deliver(n: int) -> int:
        params = {
            "From": phone,
            "To": cluster.env["TWILIO_FROM_NUMBER"],
            "Body": "thanks!" if n % 2 else "HELP",
            "MessageSid": sids[n],
            "NumMedia": "0",
            "AccountSid": cluster.env["TWILIO_ACCOUNT_SID"],
        }
        signature = validator.compute_signature(public, params)
        answer = httpx.post(
            servers[n % 2], data=params, headers={"X-Twilio-Signature": signature}, timeout=60
        )
        return answer.status_code

    results: list[int] = [0] * len(sids)
    threads = [
        threading.Thread(target=lambda n=n: results.__setitem__(n, deliver(n)))
        for n in range(len(sids))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [200] * len(sids)
    tracker = httpx.get(
        f"{cluster.replicas[0].env['RASA_URL']}/conversations/{phone}/tracker",
        params={"token": cluster.env["RASA_API_TOKEN"], "include_events": "ALL"},
        timeout=60,
    ).json()
    events = [e for e in tracker["events"] if e["event"] in ("user", "action")]
    users = [e["message_id"] for e in events if e["event"] == "user"]
    assert sorted(users) == sorted(sids), "every text is one turn, once"
    # a turn is: user, its actions, then action_listen; another user event never comes between
    open_turn = False
    for event in events:
        if event["event"] == "user":
            assert not open_turn, "two turns of one phone ran at once"
            open_turn = True
        elif event["name"] == "action_listen":
            open_turn = False
    assert not open_turn
