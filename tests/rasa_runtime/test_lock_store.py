"""AtomicRedisLockStore against a real Redis, with several stores standing in for several servers.

"Servers" are either separate store instances (each with its own Redis connections) in one
event loop, or real child processes, which is what several Rasa servers are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import redis
from rasa.core.lock_store import InMemoryLockStore, LockError, LockStore, RedisLockStore
from rasa.core.utils import AvailableEndpoints, number_of_sanic_workers
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig

from rasa_runtime.lock_store import AtomicRedisLockStore

ROOT = Path(__file__).resolve().parents[2]
REDIS_HOST = os.environ.get("LOCK_STORE_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("LOCK_STORE_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("LOCK_STORE_TEST_REDIS_DB", "1"))
STORE_PATH = "rasa_runtime.lock_store.AtomicRedisLockStore"
# short polls keep the tests fast; Rasa itself polls once a second
POLL = 0.005


def _redis_answers() -> str | None:
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).ping()
    except redis.RedisError as error:
        return str(error)
    return None


_REDIS_ERROR = _redis_answers()
pytestmark = pytest.mark.skipif(
    _REDIS_ERROR is not None,
    reason=f"Redis does not answer at {REDIS_HOST}:{REDIS_PORT}: {_REDIS_ERROR}",
)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix of this test's own; every key starting with it is deleted afterwards."""
    value = f"t{uuid.uuid4().hex[:12]}"
    yield value
    keys = list(redis_client.scan_iter(match=f"{value}*"))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def conversation_id() -> str:
    return f"+1555{uuid.uuid4().int % 10_000_000:07d}"


StoreFactory = Callable[..., AtomicRedisLockStore]


@pytest_asyncio.fixture
async def make_store(prefix: str) -> AsyncIterator[StoreFactory]:
    """Builds stores that share Redis but nothing else, as separate servers would."""
    stores: list[AtomicRedisLockStore] = []

    def build(**settings: Any) -> AtomicRedisLockStore:
        store = AtomicRedisLockStore(
            host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, key_prefix=prefix, **settings
        )
        stores.append(store)
        return store

    yield build
    for store in stores:
        await store.close()


def _ticket_count(store: LockStore, conversation_id: str) -> int:
    lock = store.get_lock(conversation_id)
    return 0 if lock is None else len(lock.tickets)


async def _until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# ---- 1. mutual exclusion ----


@pytest.mark.asyncio
async def test_fifty_messages_on_three_stores_never_overlap(
    make_store: StoreFactory, conversation_id: str
) -> None:
    stores = [make_store() for _ in range(3)]
    counter = 0
    inside = 0
    most_inside = 0
    trace: list[tuple[str, int]] = []

    async def message(number: int) -> None:
        nonlocal counter, inside, most_inside
        async with stores[number % len(stores)].lock(conversation_id, wait_time_in_seconds=POLL):
            inside += 1
            most_inside = max(most_inside, inside)
            trace.append(("enter", number))
            value = counter
            await asyncio.sleep(0)  # another task gets the loop in the middle of the update
            counter = value + 1
            trace.append(("exit", number))
            inside -= 1

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(message(n) for n in range(50))), 60)
    elapsed = time.monotonic() - started

    assert counter == 50
    assert most_inside == 1
    # every enter is directly followed by the exit of the same message
    assert all(
        trace[i] == ("enter", trace[i + 1][1]) and trace[i + 1][0] == "exit"
        for i in range(0, len(trace), 2)
    )
    assert _ticket_count(stores[0], conversation_id) == 0  # nothing left behind
    print(f"50 messages on 3 stores: {elapsed:.2f} s")


# A stand-in for one Rasa server: its own process, its own store built from an endpoint
# config exactly as Rasa builds it, and a counter in Redis updated across an await.
WORKER = r"""
import asyncio, json, sys, time

import redis.asyncio
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig


async def main(cfg):
    store = LockStore.create(EndpointConfig(**cfg["endpoint"]))
    conversation_id = cfg["conversation_id"]
    if cfg["mode"] == "hold":
        # take the lock and never give it back, as a server killed mid-message
        held = store.lock(conversation_id, lock_lifetime=cfg["lifetime"])
        await held.__aenter__()
        print("held", flush=True)
        await asyncio.sleep(3600)
    if cfg["mode"] == "wait":
        # queue up behind the holder and stay there until killed
        print("waiting", flush=True)
        async with store.lock(conversation_id, wait_time_in_seconds=cfg["poll"]):
            print("acquired", flush=True)
        return

    shared = redis.asyncio.Redis(**cfg["redis"])
    print("ready", flush=True)
    while not await shared.exists(cfg["go_key"]):
        await asyncio.sleep(0.001)

    async def message():
        # one line per message as it happens, so a server that hangs still reports
        try:
            async with store.lock(
                conversation_id, lock_lifetime=cfg["lifetime"], wait_time_in_seconds=cfg["poll"]
            ):
                entered = time.monotonic_ns()
                value = int(await shared.get(cfg["counter_key"]) or 0)
                await asyncio.sleep(0)
                await shared.set(cfg["counter_key"], value + 1)
                print(json.dumps({"interval": [entered, time.monotonic_ns()]}), flush=True)
        except LockError as error:
            print(json.dumps({"error": str(error)}), flush=True)

    await asyncio.gather(*(message() for _ in range(cfg["messages"])))
    await shared.close()


asyncio.run(main(json.loads(sys.argv[1])))
"""


def _endpoint(store_type: str, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": store_type,
        "url": REDIS_HOST,
        "port": REDIS_PORT,
        "db": REDIS_DB,
        "key_prefix": prefix,
        **extra,
    }


def _start_worker(config: dict[str, Any]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, json.dumps(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@dataclass
class RaceResult:
    count: int
    expected: int
    overlaps: int
    lock_errors: int
    hung_servers: int
    seconds: float

    @property
    def race_observed(self) -> bool:
        return self.overlaps > 0 or self.count != self.expected


def _run_servers(
    redis_client: redis.Redis,
    store_type: str,
    prefix: str,
    conversation_id: str,
    servers: int,
    messages_each: int,
    lifetime: float = 60,
    timeout: float = 60,
) -> RaceResult:
    """Runs `servers` processes, each sending `messages_each` messages of one conversation.

    A server still running after `timeout` seconds is killed and counted as hung.
    """
    counter_key = f"{prefix}:counter"
    go_key = f"{prefix}:go"
    config = {
        "mode": "count",
        "endpoint": _endpoint(store_type, prefix),
        "redis": {"host": REDIS_HOST, "port": REDIS_PORT, "db": REDIS_DB},
        "conversation_id": conversation_id,
        "counter_key": counter_key,
        "go_key": go_key,
        "messages": messages_each,
        "lifetime": lifetime,
        "poll": POLL,
    }
    workers = [_start_worker(config) for _ in range(servers)]
    outputs: list[str] = []
    hung = 0
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        started = time.monotonic()
        redis_client.set(go_key, 1)  # all servers start at once
        for worker in workers:
            try:
                remaining = max(0.1, started + timeout - time.monotonic())
                outputs.append(worker.communicate(timeout=remaining)[0])
            except subprocess.TimeoutExpired:
                hung += 1
                worker.kill()
                outputs.append(worker.communicate()[0])
        seconds = time.monotonic() - started
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    lines = [json.loads(line) for output in outputs for line in output.splitlines()]
    # CLOCK_MONOTONIC is one clock for every process of the machine
    intervals = sorted(tuple(line["interval"]) for line in lines if "interval" in line)
    overlaps = sum(
        1 for before, after in zip(intervals, intervals[1:], strict=False) if after[0] < before[1]
    )
    return RaceResult(
        count=int(redis_client.get(counter_key) or 0),
        expected=servers * messages_each,
        overlaps=overlaps,
        lock_errors=sum(1 for line in lines if "error" in line),
        hung_servers=hung,
        seconds=round(seconds, 2),
    )


def test_three_server_processes_never_overlap(
    redis_client: redis.Redis, prefix: str, conversation_id: str
) -> None:
    result = _run_servers(redis_client, STORE_PATH, prefix, conversation_id, 3, 20)
    print(f"atomic store, 3 processes: {result}")
    assert result.lock_errors == result.hung_servers == result.overlaps == 0
    assert result.count == result.expected == 60


# ---- 6. the reason this class exists ----


def test_rasa_redis_lock_store_lets_two_servers_in_at_once(
    redis_client: redis.Redis, prefix: str, conversation_id: str
) -> None:
    """Evidence: Rasa's own RedisLockStore under the same load breaks exclusion.

    Its read-modify-write of the ticket queue loses updates between processes: two servers
    issue the same ticket and both run (overlap, lost counter update); a finished ticket
    comes back and stalls the conversation until it expires, then waiters get LockError; a
    waiter whose ticket vanished from a queue left empty polls forever (a hung server).
    The race is timing-dependent, so up to five rounds are tried; passing means it was seen.
    A 3 s lifetime and a 15 s limit keep the stalls and hangs short.
    """
    results = []
    for round_number in range(5):
        result = _run_servers(
            redis_client,
            "redis",
            f"{prefix}r{round_number}",
            conversation_id,
            servers=3,
            messages_each=20,
            lifetime=3,
            timeout=15,
        )
        results.append(result)
        print(f"Rasa RedisLockStore, 3 processes, round {round_number}: {result}")
        if result.race_observed:
            break
    assert any(result.race_observed for result in results), results


# ---- 2. order ----


@pytest.mark.asyncio
async def test_messages_on_alternating_stores_are_served_in_ticket_order(
    make_store: StoreFactory, conversation_id: str
) -> None:
    first, second = make_store(), make_store()
    served: list[int] = []
    tickets: list[int] = []
    release_holder = asyncio.Event()

    async def holder() -> None:
        async with first.lock(conversation_id, wait_time_in_seconds=POLL):
            await release_holder.wait()

    async def message(number: int) -> None:
        store = first if number % 2 == 0 else second
        async with store.lock(conversation_id, wait_time_in_seconds=POLL) as ticket_lock:
            served.append(number)
            tickets.append(ticket_lock.tickets[0].number)
            await asyncio.sleep(0)

    holding = asyncio.create_task(holder())
    await _until(lambda: _ticket_count(first, conversation_id) == 1)
    waiting = []
    for number in range(10):
        waiting.append(asyncio.create_task(message(number)))
        # the next message arrives only once this one has its ticket
        await _until(lambda n=number: _ticket_count(second, conversation_id) == n + 2)
    release_holder.set()
    await asyncio.wait_for(asyncio.gather(holding, *waiting), 30)

    assert served == list(range(10))
    assert tickets == sorted(tickets) and len(set(tickets)) == 10


@pytest.mark.asyncio
async def test_release_hands_over_at_once_instead_of_at_the_next_poll(
    make_store: StoreFactory, conversation_id: str
) -> None:
    """Rasa polls once a second; the next waiter is woken by the release instead."""
    first, second = make_store(), make_store()
    release_holder = asyncio.Event()
    served_at: list[float] = []

    async def holder() -> None:
        async with first.lock(conversation_id):
            await release_holder.wait()

    async def message(number: int) -> None:
        store = first if number % 2 == 0 else second
        # Rasa's callers all use the default pause of 1 s; 5 s makes a poll unmistakable
        async with store.lock(conversation_id, wait_time_in_seconds=5):
            served_at.append(time.monotonic())

    holding = asyncio.create_task(holder())
    await _until(lambda: _ticket_count(first, conversation_id) == 1)
    waiting = [asyncio.create_task(message(number)) for number in range(5)]
    await _until(lambda: _ticket_count(first, conversation_id) == 6)
    released_at = time.monotonic()
    release_holder.set()
    await asyncio.wait_for(asyncio.gather(holding, *waiting), 30)

    took = served_at[-1] - released_at
    print(f"5 waiting messages served {took * 1000:.0f} ms after the release")
    assert took < 1.0


# ---- 3. a killed server ----


@pytest.mark.asyncio
async def test_lock_of_a_killed_server_frees_itself_after_the_lifetime(
    make_store: StoreFactory, prefix: str, conversation_id: str
) -> None:
    lifetime = 1.0
    killed = _start_worker(
        {
            "mode": "hold",
            "endpoint": _endpoint(STORE_PATH, prefix),
            "conversation_id": conversation_id,
            "lifetime": lifetime,
        }
    )
    try:
        assert killed.stdout is not None
        line = await asyncio.get_running_loop().run_in_executor(None, killed.stdout.readline)
        held_at = time.monotonic()
        assert line.strip() == "held"
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()

    store = make_store(max_wait_time=10)
    async with store.lock(conversation_id, wait_time_in_seconds=0.02):
        waited = time.monotonic() - held_at
    print(f"lock of a killed server taken over after {waited:.2f} s (lifetime {lifetime} s)")
    # it was really held until it expired, and not much longer
    assert lifetime - 0.1 <= waited <= lifetime + 0.5


@pytest.mark.asyncio
async def test_a_waiter_of_a_killed_server_does_not_block_the_queue(
    make_store: StoreFactory, prefix: str, conversation_id: str
) -> None:
    store = make_store(max_wait_time=10)
    release_holder = asyncio.Event()

    async def holder() -> None:
        async with store.lock(conversation_id, wait_time_in_seconds=POLL):
            await release_holder.wait()

    holding = asyncio.create_task(holder())
    await _until(lambda: _ticket_count(store, conversation_id) == 1)
    dead_poll = 0.05
    killed = _start_worker(
        {
            "mode": "wait",
            "endpoint": _endpoint(STORE_PATH, prefix),
            "conversation_id": conversation_id,
            "poll": dead_poll,
        }
    )
    try:
        await _until(lambda: _ticket_count(store, conversation_id) == 2)
        os.kill(killed.pid, signal.SIGKILL)
    finally:
        killed.kill()
        killed.wait()
    killed_at = time.monotonic()

    async def next_message() -> float:
        async with make_store(max_wait_time=10).lock(conversation_id, wait_time_in_seconds=POLL):
            return time.monotonic() - killed_at

    queued_behind_the_dead = asyncio.create_task(next_message())
    await _until(lambda: _ticket_count(store, conversation_id) == 3)
    release_holder.set()
    await holding
    waited = await asyncio.wait_for(queued_behind_the_dead, 10)
    print(f"waiter behind a killed waiter got the lock {waited:.2f} s after the kill")
    # the dead ticket is dropped after 3 of its polls plus a second of grace
    assert waited <= 3 * dead_poll + 1.0 + 0.5


# ---- 4. an expired holder ----


@pytest.mark.asyncio
async def test_a_holder_whose_lock_expired_cannot_release_the_next_holders_lock(
    make_store: StoreFactory, conversation_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    slow_store, next_store = make_store(), make_store(max_wait_time=5)
    next_inside = asyncio.Event()
    slow_done = asyncio.Event()

    async def slow_message() -> None:
        async with slow_store.lock(conversation_id, lock_lifetime=0.3):
            await next_inside.wait()  # outlives its lock: the next message got in
        slow_done.set()

    async def next_message() -> None:
        async with next_store.lock(conversation_id, wait_time_in_seconds=POLL):
            next_inside.set()
            await slow_done.wait()
            # the slow message's release did not free this lock
            with pytest.raises(LockError):
                async with make_store(max_wait_time=0.3).lock(
                    conversation_id, wait_time_in_seconds=POLL
                ):
                    pass
            assert _ticket_count(next_store, conversation_id) == 1

    with caplog.at_level(logging.WARNING, logger="rasa_runtime.lock_store"):
        slow = asyncio.create_task(slow_message())
        await _until(lambda: _ticket_count(slow_store, conversation_id) == 1)
        await asyncio.wait_for(asyncio.gather(slow, next_message()), 10)

    assert any("expired" in record.getMessage() for record in caplog.records)
    assert conversation_id not in caplog.text  # logs mask the phone number
    assert _ticket_count(slow_store, conversation_id) == 0


# ---- 5. giving up ----


@pytest.mark.asyncio
async def test_a_waiter_gives_up_with_lock_error_after_max_wait_time(
    make_store: StoreFactory, conversation_id: str
) -> None:
    holder_store, waiter_store = make_store(), make_store(max_wait_time=0.5)
    async with holder_store.lock(conversation_id):
        started = time.monotonic()
        with pytest.raises(LockError):
            async with waiter_store.lock(conversation_id, wait_time_in_seconds=0.05):
                pytest.fail("entered a held lock")
        waited = time.monotonic() - started
        # the waiter left the queue: only the holder's ticket is left
        assert _ticket_count(holder_store, conversation_id) == 1
    print(f"waiter gave up after {waited:.2f} s")
    # Redis ends a BLPOP on its 100 ms clock (hz 10), so a wait can run a tick over; asyncio may
    # wake a timer up to its clock resolution early, so a wait can also end a hair under 0.5 s
    assert 0.49 <= waited <= 0.8


@pytest.mark.asyncio
async def test_max_wait_time_defaults_to_the_lock_lifetime(
    make_store: StoreFactory, conversation_id: str
) -> None:
    holder_store, waiter_store = make_store(), make_store()
    async with holder_store.lock(conversation_id, lock_lifetime=5):
        started = time.monotonic()
        with pytest.raises(LockError):
            async with waiter_store.lock(
                conversation_id, lock_lifetime=0.4, wait_time_in_seconds=0.05
            ):
                pass
        assert 0.4 <= time.monotonic() - started <= 0.8


# ---- cancellation (Sanic cancels a handler whose client went away) ----


@pytest.mark.asyncio
async def test_cancelled_waiter_and_cancelled_holder_leave_nothing_behind(
    make_store: StoreFactory, conversation_id: str
) -> None:
    store = make_store(max_wait_time=10)
    entered = asyncio.Event()

    async def hold_forever() -> None:
        async with store.lock(conversation_id, wait_time_in_seconds=POLL):
            entered.set()
            await asyncio.sleep(3600)

    async def wait_forever() -> None:
        async with store.lock(conversation_id, wait_time_in_seconds=POLL):
            pytest.fail("entered a held lock")

    holding = asyncio.create_task(hold_forever())
    await entered.wait()
    waiting = asyncio.create_task(wait_forever())
    await _until(lambda: _ticket_count(store, conversation_id) == 2)

    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert _ticket_count(store, conversation_id) == 1
    holding.cancel()
    await asyncio.gather(holding, return_exceptions=True)
    assert _ticket_count(store, conversation_id) == 0
    assert not store.is_someone_waiting(conversation_id)
    # free at once, not after the 60 s lifetime
    async with make_store(max_wait_time=0.2).lock(conversation_id):
        pass


# ---- 7. loading from endpoints.yml ----


def test_lock_store_create_loads_the_class_from_its_module_path(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = EndpointConfig(
        type=STORE_PATH, url=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, key_prefix=prefix
    )
    store = LockStore.create(config)
    assert isinstance(store, AtomicRedisLockStore)
    assert store.key_prefix.startswith(f"{prefix}:")
    # Rasa allows several Sanic workers only with a lock store other than the in-memory one
    monkeypatch.setenv("SANIC_WORKERS", "2")
    assert number_of_sanic_workers(config) == 2
    assert number_of_sanic_workers(EndpointConfig(type="in_memory")) == 1


ENDPOINTS_YML = """
lock_store:
  type: ${RASA_LOCK_STORE}
  url: ${RASA_LOCK_REDIS_HOST}
  port: ${RASA_LOCK_REDIS_PORT}
  db: ${RASA_LOCK_REDIS_DB}
  password: ${RASA_LOCK_REDIS_PASSWORD}
  key_prefix: waitlist
"""


@pytest.mark.asyncio
async def test_endpoints_yml_with_environment_variables_selects_either_store(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_client: redis.Redis,
    conversation_id: str,
) -> None:
    """The block recommended for endpoints.yml, read the way `rasa run` reads it."""
    path = tmp_path / "endpoints.yml"
    path.write_text(ENDPOINTS_YML)
    monkeypatch.setenv("RASA_LOCK_REDIS_HOST", REDIS_HOST)
    monkeypatch.setenv("RASA_LOCK_REDIS_PORT", str(REDIS_PORT))
    monkeypatch.setenv("RASA_LOCK_REDIS_DB", str(REDIS_DB))
    monkeypatch.setenv("RASA_LOCK_REDIS_PASSWORD", "")

    # Rasa refuses the whole file while a variable it names is unset: launchers must set all
    monkeypatch.delenv("RASA_LOCK_STORE", raising=False)
    with pytest.raises(RasaException):
        AvailableEndpoints.read_endpoints(str(path))

    monkeypatch.setenv("RASA_LOCK_STORE", "in_memory")
    single = LockStore.create(AvailableEndpoints.read_endpoints(str(path)).lock_store)
    assert isinstance(single, InMemoryLockStore)

    monkeypatch.setenv("RASA_LOCK_STORE", STORE_PATH)
    shared = LockStore.create(AvailableEndpoints.read_endpoints(str(path)).lock_store)
    assert isinstance(shared, AtomicRedisLockStore)
    # every value came in as a string and still works
    try:
        async with shared.lock(conversation_id, wait_time_in_seconds=POLL):
            assert shared.is_someone_waiting(conversation_id)
        assert not shared.is_someone_waiting(conversation_id)
    finally:
        await shared.close()
        # the fixed prefix is shared with real use, so only this conversation's keys go
        for key in redis_client.scan_iter(match=f"waitlist:convlock:{{{conversation_id}}}*"):
            redis_client.delete(key)


def test_settings_from_strings_and_the_rasa_lifetime_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKET_LOCK_LIFETIME", "7")
    assert AtomicRedisLockStore().lock_lifetime == 7
    monkeypatch.delenv("TICKET_LOCK_LIFETIME")
    assert AtomicRedisLockStore().lock_lifetime == 60

    store = AtomicRedisLockStore(
        endpoint_config=EndpointConfig(
            url="redis.internal",
            port="6380",
            db="3",
            password="",
            use_ssl="false",
            lock_lifetime="2.5",
            max_wait_time="9",
        )
    )
    assert store.lock_lifetime == 2.5
    assert store.max_wait_time == 9
    assert store.key_prefix == "convlock:"

    assert AtomicRedisLockStore(key_prefix="waitlist-lock:").key_prefix == "waitlist-lock:convlock:"
    with pytest.raises(ValueError):
        AtomicRedisLockStore(key_prefix="wait list")
    with pytest.raises(ValueError):
        AtomicRedisLockStore(key_prefix="{waitlist}")
    with pytest.raises(TypeError):  # a typo in endpoints.yml fails at start-up
        AtomicRedisLockStore(endpoint_config=EndpointConfig(url="x", lock_lifetme=3))


def test_the_unsafe_base_protocol_is_refused() -> None:
    store = AtomicRedisLockStore()
    with pytest.raises(NotImplementedError):
        store.issue_ticket("+15550000000")
    with pytest.raises(NotImplementedError):
        store.cleanup("+15550000000", 0)
    with pytest.raises(NotImplementedError):
        store.delete_lock("+15550000000")


def test_stock_redis_lock_store_is_what_type_redis_selects(prefix: str) -> None:
    # the comparison above is against the class Rasa really uses for `type: redis`
    store = LockStore.create(EndpointConfig(**_endpoint("redis", prefix)))
    assert type(store) is RedisLockStore


# ---- failures around the lock ----


@pytest.mark.asyncio
async def test_unreachable_redis_raises_lock_error(
    conversation_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    store = AtomicRedisLockStore(host="127.0.0.1", port=closed_port, socket_timeout=1)
    with pytest.raises(LockError):
        async with store.lock(conversation_id):
            pytest.fail("entered without a lock store")
    # the release after the failed attempt is logged, not raised over the LockError
    assert "Could not release" in caplog.text
    assert conversation_id not in caplog.text
    await store.close()


@pytest.mark.asyncio
async def test_scripts_are_reloaded_when_redis_forgot_them(
    make_store: StoreFactory, conversation_id: str
) -> None:
    store = make_store()
    async with store.lock(conversation_id):
        pass
    # what a Redis restart does to the script cache, without flushing a shared server
    scripts = store._client_for_running_loop()
    scripts.acquire.sha = scripts.release.sha = "0" * 40
    async with store.lock(conversation_id):
        assert store.is_someone_waiting(conversation_id)
    assert not store.is_someone_waiting(conversation_id)


def test_a_store_survives_a_change_of_event_loop(prefix: str, conversation_id: str) -> None:
    # a store outlives the loop that first used it when Rasa reloads an agent, say
    store = AtomicRedisLockStore(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, key_prefix=prefix)

    async def one_message() -> None:
        async with store.lock(conversation_id):
            pass

    asyncio.run(one_message())
    asyncio.run(one_message())
    assert not store.is_someone_waiting(conversation_id)
