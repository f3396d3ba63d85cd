"""A conversation lock store that stays correct when several Rasa servers share it.

Rasa 3.6's ``RedisLockStore`` keeps each conversation's ticket queue as one JSON value that
every server reads, changes and writes back with no WATCH and no script. Two servers can
both read an empty queue, both issue themselves ticket 0 and both process a message of the
same conversation at once; the tracker store then saves events from a stale count.

``AtomicRedisLockStore`` does every step of the protocol inside one Lua script, so Redis
runs it as a single atomic operation whichever server sends it. Per conversation it keeps:

- ``holder``: a hash (token, ticket) with a PX expiry of the lock lifetime. It exists only
  while a message is being processed, so a killed server's lock frees itself.
- ``seq``: an INCR counter handing out ticket numbers (first come, first served).
- ``queue``: waiters' tokens scored by ticket number; the lowest one is next.
- ``alive``: waiters' tokens scored by the time their server last asked; a waiter whose
  server stopped asking (killed while waiting) is dropped instead of blocking the queue.
- ``wake:<token>``: a list the releaser pushes to, so that the next waiter, blocked in
  BLPOP, takes over at once instead of at its next poll (Rasa polls once a second).

The lock is released by comparing the caller's token inside the script, so a holder whose
lock has already expired can never delete the lock of the message that came after it.

Selected in ``endpoints.yml`` by module path::

    lock_store:
      type: rasa_runtime.lock_store.AtomicRedisLockStore
      url: <redis host>
      port: 6379
      db: 1
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio
from rasa.core.lock import Ticket, TicketLock

# `_get_lock_lifetime` is private, but it is exactly how Rasa reads TICKET_LOCK_LIFETIME;
# reusing it keeps both stores on the same default (Rasa is pinned, so it cannot vanish).
from rasa.core.lock_store import (
    DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
    LOCK_LIFETIME,
    LockError,
    LockStore,
    _get_lock_lifetime,
)
from rasa.utils.endpoints import EndpointConfig
from redis.commands.core import AsyncScript

from sms_common.phones import mask_phone

logger = logging.getLogger(__name__)

# a namespace of its own: these keys have another shape than RedisLockStore's `lock:<id>`
KEY_NAMESPACE = "convlock:"
# no braces (they would move the hash tag) and no spaces; ':' and '-' are common in prefixes
_KEY_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]+$")

# Rasa polls every `wait_time_in_seconds`; a value of 0 would hammer Redis in a busy loop,
# and BLPOP reads a timeout of 0 as "forever". (Redis ends BLPOPs on its own clock, every
# 100 ms at the default hz 10, so shorter polls are rounded up to that anyway.)
MIN_POLL_INTERVAL_SECONDS = 0.01
# a wake-up nobody popped (its waiter just left) must not linger
WAKE_LIST_TTL_SECONDS = 10.0
# A waiter that has not asked for STALE_AFTER_POLLS poll intervals plus this grace is taken
# for dead. A live waiter merely paused longer (a blocked event loop) only re-joins the queue
# with its old ticket number, so erring short costs order at worst, never exclusion.
STALE_WAITER_GRACE_SECONDS = 1.0
STALE_AFTER_POLLS = 3

# KEYS: holder, seq, queue, alive
# ARGV: token, ticket ("" for a new one), lifetime ms, stale-after ms, queue keys' TTL ms
# Returns {ticket, 1 if the lock was taken else 0}.
_ACQUIRE_LUA = """
local holder, seq, queue, alive = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token = ARGV[1]
local lifetime_ms = tonumber(ARGV[3])
local stale_ms = tonumber(ARGV[4])
local ttl_ms = tonumber(ARGV[5])

-- the server's clock, so that servers whose clocks disagree still agree on staleness
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local ticket = tonumber(ARGV[2])
if not ticket then
  ticket = redis.call('INCR', seq)
end

-- drop waiters whose server stopped asking (killed while waiting)
local dead = redis.call('ZRANGEBYSCORE', alive, '-inf', '(' .. now)
for _, member in ipairs(dead) do
  redis.call('ZREM', queue, member)
  redis.call('ZREM', alive, member)
end

-- (re-)join with the same ticket number, so a waiter dropped while alive keeps its place
redis.call('ZADD', queue, ticket, token)
redis.call('ZADD', alive, now + stale_ms, token)

local taken = 0
if redis.call('EXISTS', holder) == 0 then
  local head = redis.call('ZRANGE', queue, 0, 0)
  if head[1] == token then
    redis.call('HSET', holder, 'token', token, 'ticket', ticket)
    redis.call('PEXPIRE', holder, lifetime_ms)
    redis.call('ZREM', queue, token)
    redis.call('ZREM', alive, token)
    taken = 1
  end
end

-- the queue's keys live while someone keeps asking, then clean themselves up
redis.call('PEXPIRE', seq, ttl_ms)
redis.call('PEXPIRE', queue, ttl_ms)
redis.call('PEXPIRE', alive, ttl_ms)
return {ticket, taken}
"""

# KEYS: holder, queue, alive, this token's wake-up list
# ARGV: token, prefix of wake-up lists, wake-up list TTL ms
# Returns 1 if this token held the lock and released it, else 0.
_RELEASE_LUA = """
local holder, queue, alive, own_wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local token, wake_prefix, wake_ttl_ms = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- leaving the queue too covers a waiter that gives up or is cancelled
redis.call('ZREM', queue, token)
redis.call('ZREM', alive, token)
redis.call('DEL', own_wake)
local released = 0
if redis.call('HGET', holder, 'token') == token then
  redis.call('DEL', holder)
  released = 1
end
-- wake the next waiter now rather than at its next poll. Its list is not in KEYS (its
-- name is only known here) but shares the conversation's hash tag, so the same slot.
-- Only a hint: a lost wake-up costs one poll interval, never exclusion.
if redis.call('EXISTS', holder) == 0 then
  local head = redis.call('ZRANGE', queue, 0, 0)
  if head[1] then
    local wake = wake_prefix .. head[1]
    redis.call('RPUSH', wake, '1')
    redis.call('PEXPIRE', wake, wake_ttl_ms)
  end
end
return released
"""


def _as_bool(value: bool | str | int) -> bool:
    # `${VAR}` substitution in endpoints.yml hands every value over as a string
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    return bool(value)


def _as_optional_str(value: str | None) -> str | None:
    # an empty `${REDIS_PASSWORD}` means "no password", not the password ""
    return value or None


@dataclass(frozen=True)
class _ConversationKeys:
    holder: str
    seq: str
    queue: str
    alive: str
    wake_prefix: str

    def wake(self, token: str) -> str:
        return f"{self.wake_prefix}{token}"


@dataclass(frozen=True)
class _LoopClient:
    """An asyncio Redis client and its scripts, usable only on the loop that created them."""

    loop: asyncio.AbstractEventLoop
    client: redis.asyncio.Redis
    acquire: AsyncScript
    release: AsyncScript


class AtomicRedisLockStore(LockStore):
    """Redis lock store whose ticket queue is changed only by atomic Lua scripts."""

    def __init__(
        self,
        host: str = "localhost",
        port: int | str = 6379,
        db: int | str = 1,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool | str = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        ssl_ca_certs: str | None = None,
        key_prefix: str | None = None,
        socket_timeout: float | str = DEFAULT_SOCKET_TIMEOUT_IN_SECONDS,
        lock_lifetime: float | str | None = None,
        max_wait_time: float | str | None = None,
        endpoint_config: EndpointConfig | None = None,
    ) -> None:
        """Creates the store; takes the keyword arguments of Rasa's `RedisLockStore`.

        Args:
            host: Redis host (`url` in endpoints.yml).
            port: Redis port.
            db: Redis database number.
            username: Redis ACL user name.
            password: Redis password; empty means none.
            use_ssl: connect with TLS.
            ssl_certfile: client certificate for TLS.
            ssl_keyfile: client key for TLS.
            ssl_ca_certs: CA bundle for TLS.
            key_prefix: prepended to every key, to keep deployments sharing a Redis apart.
            socket_timeout: seconds before a Redis call fails.
            lock_lifetime: seconds a lock lasts unless released; default is Rasa's
                `TICKET_LOCK_LIFETIME` (60 s).
            max_wait_time: seconds a message waits for its turn before `LockError`;
                default is the lock lifetime, as a Rasa ticket expires after it.
            endpoint_config: Rasa builds a store named by module path as
                `cls(endpoint_config=...)`; its `url` and other keys fill the arguments above.
        """
        if endpoint_config is not None:
            # Rasa passes the whole endpoint config for a custom type; unknown keys fail loudly
            self.__init__(  # type: ignore[misc]
                host=endpoint_config.url or host, **endpoint_config.kwargs
            )
            return

        self._connection_kwargs: dict[str, Any] = {
            "host": host,
            "port": int(port),
            "db": int(db),
            "username": _as_optional_str(username),
            "password": _as_optional_str(password),
            "ssl": _as_bool(use_ssl),
            "ssl_certfile": _as_optional_str(ssl_certfile),
            "ssl_keyfile": _as_optional_str(ssl_keyfile),
            "ssl_ca_certs": _as_optional_str(ssl_ca_certs),
            "socket_timeout": float(socket_timeout),
            "socket_connect_timeout": float(socket_timeout),
        }
        if key_prefix and not _KEY_PREFIX_PATTERN.match(key_prefix):
            # Rasa only warns and falls back to its default, which could make two
            # deployments share locks; refusing to start is the safer failure
            raise ValueError(
                f"key_prefix may hold letters, digits and '_.:-' only, got {key_prefix!r}"
            )
        # "waitlist" and "waitlist:" both give "waitlist:convlock:..."
        prefix = (key_prefix or "").rstrip(":")
        self.key_prefix = f"{prefix}:{KEY_NAMESPACE}" if prefix else KEY_NAMESPACE
        self.lock_lifetime = (
            float(lock_lifetime) if lock_lifetime not in (None, "") else _get_lock_lifetime()
        )
        self.max_wait_time = float(max_wait_time) if max_wait_time not in (None, "") else None
        if self.lock_lifetime <= 0:
            raise ValueError("lock_lifetime must be positive")

        self._socket_timeout = float(socket_timeout)
        self._loop_client: _LoopClient | None = None
        self._sync_client: redis.Redis | None = None
        super().__init__()

    # ---- keys and clients ----

    def _keys(self, conversation_id: str) -> _ConversationKeys:
        # the {conversation id} hash tag puts all keys of a conversation in one Redis Cluster
        # slot, which a script touching several keys requires
        base = f"{self.key_prefix}{{{conversation_id}}}"
        return _ConversationKeys(
            holder=f"{base}:holder",
            seq=f"{base}:seq",
            queue=f"{base}:queue",
            alive=f"{base}:alive",
            wake_prefix=f"{base}:wake:",
        )

    def _client_for_running_loop(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        current = self._loop_client
        if current is None or current.loop is not loop:
            # asyncio connections belong to the loop that opened them; a store reused from
            # another loop (a reloaded agent, a test) needs its own client, and the old one
            # cannot be closed from here because its loop may be gone
            client = redis.asyncio.Redis(**self._connection_kwargs)
            current = _LoopClient(
                loop=loop,
                client=client,
                # EVALSHA, falling back to loading the script after a Redis restart
                acquire=client.register_script(_ACQUIRE_LUA),
                release=client.register_script(_RELEASE_LUA),
            )
            self._loop_client = current
        return current

    def _sync(self) -> redis.Redis:
        if self._sync_client is None:
            self._sync_client = redis.Redis(**self._connection_kwargs)
        return self._sync_client

    async def close(self) -> None:
        """Closes the connections (Rasa never calls this; servers just exit)."""
        current = self._loop_client
        if current is not None and current.loop is asyncio.get_running_loop():
            await current.client.close()  # closes its connection pool too
        self._loop_client = None
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    # ---- the lock ----

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Holds the conversation's lock for the body of the `async with`.

        Messages get the lock in the order they asked for it. As in Rasa,
        `wait_time_in_seconds` is the pause between attempts; a message that waits longer
        than `max_wait_time` gets `LockError`.
        """
        lifetime = self.lock_lifetime if lock_lifetime is None else float(lock_lifetime)
        if lifetime <= 0:
            raise ValueError("lock_lifetime must be positive")
        poll = max(float(wait_time_in_seconds), MIN_POLL_INTERVAL_SECONDS)
        max_wait = self.max_wait_time if self.max_wait_time is not None else lifetime
        keys = self._keys(conversation_id)
        # a fresh token per attempt: only this `async with` can release what it took
        token = uuid.uuid4().hex
        acquired = False
        try:
            ticket = await self._acquire(conversation_id, keys, token, lifetime, poll, max_wait)
            acquired = True
            yield TicketLock(conversation_id, deque([Ticket(ticket, time.time() + lifetime)]))
        finally:
            # shielded: a cancelled request (client gone, Sanic timeout) still frees the
            # lock now instead of leaving the conversation blocked for the whole lifetime
            released = await asyncio.shield(self._release(conversation_id, keys, token))
            if acquired and released is False:
                logger.warning(
                    "The lock of conversation %s expired after %.1f s, before its message "
                    "was done; a later message of this conversation may have run beside it",
                    mask_phone(conversation_id),
                    lifetime,
                )

    async def _acquire(
        self,
        conversation_id: str,
        keys: _ConversationKeys,
        token: str,
        lifetime: float,
        poll: float,
        max_wait: float,
    ) -> int:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + max_wait
        stale_ms = _ms(STALE_AFTER_POLLS * poll + STALE_WAITER_GRACE_SECONDS)
        # the queue's keys outlive any waiter that still asks, and any lock still held
        ttl_ms = 2 * stale_ms + _ms(lifetime)
        ticket: int | None = None
        while True:
            try:
                scripts = self._client_for_running_loop()
                number, taken = await scripts.acquire(
                    keys=[keys.holder, keys.seq, keys.queue, keys.alive],
                    args=[token, "" if ticket is None else ticket, _ms(lifetime), stale_ms, ttl_ms],
                )
                ticket = int(number)
                if taken:
                    logger.debug(
                        "Took the lock of conversation %s with ticket %d",
                        mask_phone(conversation_id),
                        ticket,
                    )
                    return ticket

                remaining = give_up_at - loop.time()
                if remaining <= 0:
                    raise LockError(
                        f"Could not acquire lock for conversation_id "
                        f"'{mask_phone(conversation_id)}' within {max_wait:.1f} s."
                    )
                # sleep until the releaser wakes this waiter, or the poll interval ends (a
                # lock that expired instead of being released wakes nobody); BLPOP must
                # return before the socket timeout, or redis-py takes the connection for dead
                wait = min(poll, remaining, self._socket_timeout / 2)
                await scripts.client.blpop(
                    [keys.wake(token)], timeout=max(MIN_POLL_INTERVAL_SECONDS, wait)
                )
            except redis.RedisError as error:
                # callers of Rasa's lock stores expect LockError for any store failure
                raise LockError(
                    f"Could not reach the lock store for conversation "
                    f"'{mask_phone(conversation_id)}': {error}"
                ) from error

    async def _release(
        self, conversation_id: str, keys: _ConversationKeys, token: str
    ) -> bool | None:
        """True if this token's lock was released, False if it held none, None on failure."""
        try:
            scripts = self._client_for_running_loop()
            released = await scripts.release(
                keys=[keys.holder, keys.queue, keys.alive, keys.wake(token)],
                args=[token, keys.wake_prefix, _ms(WAKE_LIST_TTL_SECONDS)],
            )
        except redis.RedisError as error:
            # the work is done and saved; the lock's expiry frees the conversation later
            logger.error(
                "Could not release the lock of conversation %s (it expires by itself): %s",
                mask_phone(conversation_id),
                error,
            )
            return None
        return bool(released)

    # ---- the rest of Rasa's LockStore interface ----

    def get_lock(self, conversation_id: str) -> TicketLock | None:
        """A read-only snapshot: the holder's ticket first, then the live waiters' tickets."""
        keys = self._keys(conversation_id)
        pipe = self._sync().pipeline(transaction=True)
        pipe.hgetall(keys.holder)
        pipe.pttl(keys.holder)
        pipe.zrange(keys.queue, 0, -1, withscores=True)
        pipe.zrange(keys.alive, 0, -1, withscores=True)
        pipe.time()
        holder, holder_ttl_ms, queue, alive, (seconds, micros) = pipe.execute()

        # expiries are turned into this machine's clock, which TicketLock compares with
        redis_now_ms = seconds * 1000 + micros // 1000
        local_now = time.time()
        tickets: list[Ticket] = []
        if holder and holder_ttl_ms > 0:
            tickets.append(Ticket(int(holder[b"ticket"]), local_now + holder_ttl_ms / 1000))
        deadlines = dict(alive)
        for member, number in queue:
            deadline_ms = deadlines.get(member)
            if deadline_ms is not None and deadline_ms >= redis_now_ms:
                expires = local_now + (deadline_ms - redis_now_ms) / 1000
                tickets.append(Ticket(int(number), expires))
        if not tickets:
            return None
        return TicketLock(conversation_id, deque(tickets))

    # The methods below are the read-modify-write protocol this class replaces. Rasa 3.6
    # calls them only from `LockStore.lock`, which is overridden above; anyone else calling
    # them would bring the cross-server race back, so they refuse.

    def save_lock(self, lock: TicketLock) -> None:
        """Not supported: the queue is changed only by the atomic scripts."""
        raise NotImplementedError("AtomicRedisLockStore changes locks only through lock()")

    def delete_lock(self, conversation_id: str) -> None:
        """Not supported: only the holder's token may delete its lock."""
        raise NotImplementedError("AtomicRedisLockStore changes locks only through lock()")

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        """Not supported: tickets are issued inside lock()."""
        raise NotImplementedError("AtomicRedisLockStore issues tickets only inside lock()")

    def update_lock(self, conversation_id: str) -> None:
        """Not supported: stale tickets are dropped inside lock()."""
        raise NotImplementedError("AtomicRedisLockStore changes locks only through lock()")

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        """Not supported: a ticket number alone cannot prove who holds the lock."""
        raise NotImplementedError("AtomicRedisLockStore releases locks only through lock()")

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Not supported: a ticket number alone cannot prove who holds the lock."""
        raise NotImplementedError("AtomicRedisLockStore releases locks only through lock()")


def _ms(seconds: float) -> int:
    # PX refuses 0, and a lifetime below a millisecond means "as short as possible"
    return max(1, int(seconds * 1000))
