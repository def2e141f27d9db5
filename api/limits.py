"""Per-client limits: a request rate that holds across every API process, and a quota of
pending and scheduled tasks. Both answer 429.

**Rate.** Each client has a token bucket in PostgreSQL (``rate_buckets``), refilled at its
rate up to its burst from the database's clock, so every API process draws from the same
bucket. To keep PostgreSQL off the hot path, a process takes tokens in blocks (a twentieth of
a second's worth, see :func:`block_size`) in one atomic statement, spends them locally, and
lets what it has not spent lapse after :data:`BLOCK_TTL_S`. A process can only spend tokens
it took, so in any window a client gets at most ``burst + rate * window`` requests plus one
block per process (taken before the window, spent within it). When the bucket is empty the
process answers 429 with ``Retry-After`` and remembers the denial until a token is due, so a
flood of denied requests never reaches PostgreSQL. The limit applies to the caller's API key;
with keys off (``TASKER_INSECURE_NO_AUTH``) there is no caller and no rate limit.

**Quota.** Each process caches a client's count of active tasks for up to
:data:`QUOTA_CACHE_S` (one COUNT over ``ix_tasks_client_active``) and adds what it reserved
itself since; when that figure is within :data:`QUOTA_EXACT_WITHIN` of the quota it counts
again on every reservation. Far from the limit, the quota can be overshot by what the other
API processes create within a second; near it, by what they create during one count.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context

from api import auth
from api.services import services
from core.errors import TooManyRequests
from core.settings import Settings
from db.engine import transaction
from db.store import limits as store
from db.store.clients import Principal

log = logging.getLogger("tasker.api.limits")

#: a block is this fraction of a second's tokens: about 20 round trips a second per busy client
BLOCKS_PER_S = 20
#: tokens of a block not spent within this long lapse (they are not given back)
BLOCK_TTL_S = 1.0
#: how long a process trusts its count of a client's active tasks
QUOTA_CACHE_S = 1.0
#: within this fraction of the quota, every reservation counts again
QUOTA_EXACT_WITHIN = 0.1


def block_size(rate: float, burst: int) -> int:
    """Tokens one process takes per round trip: a twentieth of a second's worth, at least one,
    never more than the bucket holds."""
    return max(1, min(burst, math.ceil(rate / BLOCKS_PER_S)))


def seconds_until_token(tokens: float, rate: float) -> float:
    """How long a bucket holding ``tokens`` (< 1) takes to hold one whole token."""
    return max(0.0, (1.0 - tokens) / rate)


def retry_after(wait_s: float) -> int:
    """``Retry-After`` in whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait_s))


# --- rate ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Tokens:
    """One client's tokens in this process."""

    left: int = 0
    #: monotonic time when ``left`` lapses
    lapses_at: float = 0.0
    #: monotonic time before which the shared bucket is known to be empty
    denied_until: float = 0.0
    #: one round trip per client at a time; the other threads wait and use its block
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


TakeTokens = Callable[[int, int, float, int], store.Grant]


class RateLimiter:
    """Spends tokens taken in blocks from the shared bucket; thread-safe."""

    def __init__(self, take: TakeTokens, clock: Callable[[], float] = time.monotonic) -> None:
        self._take = take
        self._clock = clock
        self._clients: dict[int, _Tokens] = {}
        self._lock = threading.Lock()

    def acquire(self, client_id: int, rate: float, burst: int) -> float | None:
        """Spend one token: None when allowed, else the seconds until the bucket holds one."""
        state = self._clients.get(client_id)
        if state is None:
            with self._lock:
                state = self._clients.setdefault(client_id, _Tokens())
        with state.lock:
            now = self._clock()
            if state.left > 0 and now < state.lapses_at:
                state.left -= 1
                return None
            if now < state.denied_until:
                return state.denied_until - now
            grant = self._take(client_id, block_size(rate, burst), rate, burst)
            now = self._clock()
            if grant.taken == 0:
                wait = seconds_until_token(grant.tokens, rate)
                state.left, state.denied_until = 0, now + wait
                return wait
            state.left, state.lapses_at = grant.taken - 1, now + BLOCK_TTL_S
            return None


# --- quota ---------------------------------------------------------------------------------


@dataclasses.dataclass
class _Count:
    """What this process knows of one client's active tasks."""

    name: str = ""
    quota: int = 0
    overridden: bool = False
    #: active tasks PostgreSQL counted at ``counted_at``
    base: int = 0
    #: reserved by this process since (just before) that count
    added: int = 0
    counted_at: float = -math.inf
    #: reserved by requests that have not ended yet (their rows may not be committed)
    inflight: int = 0
    #: every reservation ever made here (tells which were made while a count ran)
    reserved: int = 0


@dataclasses.dataclass(frozen=True)
class Exceeded:
    name: str
    quota: int
    overridden: bool
    active: int
    wanted: int


CountActive = Callable[[int], store.QuotaState]


class QuotaTracker:
    """Reserve room for new tasks against each client's quota; thread-safe."""

    def __init__(self, count: CountActive, clock: Callable[[], float] = time.monotonic) -> None:
        self._count = count
        self._clock = clock
        self._clients: dict[int, _Count] = {}
        self._lock = threading.Lock()

    def reserve(self, client_id: int, n: int) -> Exceeded | None:
        """Count ``n`` new tasks as created, or say why they do not fit (nothing reserved)."""
        with self._lock:
            entry = self._clients.setdefault(client_id, _Count())
            if self._clock() - entry.counted_at < QUOTA_CACHE_S and self._far(entry, n):
                self._add(entry, n)
                return None
        self._recount(entry, client_id)
        with self._lock:
            active = entry.base + entry.added
            if entry.quota and active + n > entry.quota:
                return Exceeded(entry.name, entry.quota, entry.overridden, active, n)
            self._add(entry, n)
            return None

    def finish(self, client_id: int, n: int, created: bool) -> None:
        """A reserving request ended; if it created nothing, its reservation is given back."""
        with self._lock:
            entry = self._clients[client_id]
            entry.inflight -= n
            if not created:
                entry.added = max(0, entry.added - n)

    @staticmethod
    def _far(entry: _Count, n: int) -> bool:
        return entry.quota == 0 or entry.base + entry.added + n <= entry.quota * (1 - QUOTA_EXACT_WITHIN)

    @staticmethod
    def _add(entry: _Count, n: int) -> None:
        entry.added += n
        entry.inflight += n
        entry.reserved += n

    def _recount(self, entry: _Count, client_id: int) -> None:
        # Reservations in flight when the count starts may or may not be in it: count them as
        # not (at worst a request is refused while another is committing); those made while
        # it runs are not in it.
        with self._lock:
            started, inflight, reserved = self._clock(), entry.inflight, entry.reserved
        state = self._count(client_id)
        with self._lock:
            if started >= entry.counted_at:
                entry.name, entry.quota, entry.overridden = state.name, state.quota, state.overridden
                entry.base = state.active or 0
                entry.added = inflight + (entry.reserved - reserved)
                entry.counted_at = started


# --- the API's side ------------------------------------------------------------------------


class Limits:
    """The limits of one API process."""

    def __init__(self, settings: Settings, engine: Any) -> None:
        self.settings = settings
        self.engine = engine
        self.rate = RateLimiter(self._take_tokens)
        self.quota = QuotaTracker(self._count_active)

    def _take_tokens(self, client_id: int, want: int, rate: float, burst: int) -> store.Grant:
        with transaction(self.engine) as conn:
            return store.take_tokens(conn, client_id, want, rate, burst)

    def _count_active(self, client_id: int) -> store.QuotaState:
        with transaction(self.engine) as conn:
            return store.quota_state(conn, client_id, self.settings.quota_active_tasks)

    def check_rate(self, who: Principal) -> None:
        rate = self.settings.rate_limit_per_s if who.rate_limit_per_s is None else who.rate_limit_per_s
        if rate <= 0:
            return
        burst = self.settings.rate_limit_burst if who.rate_limit_burst is None else who.rate_limit_burst
        wait = self.rate.acquire(who.client_id, rate, burst)
        if wait is None:
            return
        seconds = retry_after(wait)
        own = who.rate_limit_per_s is not None or who.rate_limit_burst is not None
        source = "set for this client by `tasker clients limits`" if own else "TASKER_RATE_LIMIT_PER_S"
        raise TooManyRequests(
            f"rate limit exceeded: client {who.name!r} may make {rate:g} requests per second "
            f"(burst {burst}, {source}); retry in {seconds} s",
            retry_after=seconds,
        )


def _limits() -> Limits:
    found: Any = current_app.extensions["tasker_limits"]
    return found  # type: ignore[no-any-return]


def check_quota(client: str | int, n: int = 1) -> None:
    """Make room for ``n`` new tasks of ``client`` (a name or an id) in this request, or raise
    :class:`TooManyRequests` naming the quota. Call it once per client, before storing the
    tasks: all ``n`` fit or none is reserved. The reservation ends with the request; if the
    request fails, it is given back."""
    assert has_request_context(), "a reservation ends with its request"
    client_id = services().client_id(client) if isinstance(client, str) else client
    assert client_id is not None
    limits = _limits()
    exceeded = limits.quota.reserve(client_id, n)
    if exceeded is None:
        g.setdefault("quota_reservations", []).append((client_id, n))
        return
    log.info("quota exceeded", extra={"action": "quota_exceeded", "client": exceeded.name,
                                      "active": exceeded.active, "quota": exceeded.quota})
    source = "set for this client by `tasker clients limits`" if exceeded.overridden else "TASKER_QUOTA_ACTIVE_TASKS"
    adding = "" if n == 1 else f"; these {n} would make {exceeded.active + n}"
    raise TooManyRequests(
        f"quota exceeded: client {exceeded.name!r} already has {exceeded.active} pending or scheduled "
        f"tasks (quota {exceeded.quota}, {source}){adding}; let some finish or cancel some"
    )


def install(app: Flask) -> None:
    """Rate-limit every authenticated request (after ``auth.install``'s check) and settle the
    quota reservations of each request when it ends."""
    app.extensions["tasker_limits"] = Limits(app.extensions["tasker"].settings, app.extensions["tasker"].engine)

    @app.before_request
    def limit_rate() -> None:
        who = auth.principal()
        if who is not None:  # None: a public path, or keys are off
            _limits().check_rate(who)

    @app.after_request
    def note_outcome(response: Response) -> Response:
        if "quota_reservations" in g:
            g.quota_created = response.status_code < 400
        return response

    @app.teardown_request
    def settle_quota(exc: BaseException | None) -> None:
        reservations = g.pop("quota_reservations", None)
        if not reservations:
            return
        created = exc is None and bool(g.pop("quota_created", False))
        tracker = _limits().quota
        for client_id, n in reservations:
            tracker.finish(client_id, n, created)
