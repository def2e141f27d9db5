"""The limiter's pure logic: block sizes, Retry-After, spending blocks, caching counts."""

from __future__ import annotations

import threading

import pytest

from api.limits import (
    BLOCK_TTL_S,
    QUOTA_CACHE_S,
    QuotaTracker,
    RateLimiter,
    block_size,
    retry_after,
    seconds_until_token,
)
from db.store.limits import Grant, QuotaState


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "burst", "expected"),
    [
        (1000, 2000, 50),  # the defaults: a twentieth of a second's tokens
        (1001, 2000, 51),  # rounded up
        (10, 2000, 1),  # at least one
        (0.5, 10, 1),
        (100_000, 20, 20),  # never more than the bucket holds
        (40, 1, 1),
    ],
)
def test_block_size(rate: float, burst: int, expected: int) -> None:
    assert block_size(rate, burst) == expected


@pytest.mark.parametrize(
    ("tokens", "rate", "wait", "header"),
    [
        (0.0, 1.0, 1.0, 1),
        (0.5, 0.25, 2.0, 2),
        (0.0, 0.3, 1 / 0.3, 4),  # rounded up
        (0.999, 1000.0, 0.000001, 1),  # never 0
        (1.0, 5.0, 0.0, 1),
    ],
)
def test_retry_after_is_the_time_until_one_token_in_whole_seconds(
    tokens: float, rate: float, wait: float, header: int
) -> None:
    assert seconds_until_token(tokens, rate) == pytest.approx(wait)
    assert retry_after(seconds_until_token(tokens, rate)) == header


class Bucket:
    """An in-memory stand-in for the shared bucket (no refill unless a test adds tokens)."""

    def __init__(self, tokens: float) -> None:
        self.tokens = tokens
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def take(self, client_id: int, want: int, rate: float, burst: int) -> Grant:
        with self.lock:
            self.calls.append(want)
            took = min(want, int(self.tokens)) if self.tokens >= 1 else 0
            self.tokens -= took
            return Grant(taken=took, tokens=self.tokens)


def test_a_process_spends_a_block_locally_with_one_round_trip_per_block() -> None:
    bucket, clock = Bucket(100), Clock()
    limiter = RateLimiter(bucket.take, clock)
    assert [limiter.acquire(1, rate=100, burst=100) for _ in range(12)] == [None] * 12
    assert bucket.calls == [5, 5, 5]  # ceil(100 / 20) per round trip
    assert bucket.tokens == 85


def test_an_unused_block_lapses_after_a_second() -> None:
    bucket, clock = Bucket(100), Clock()
    limiter = RateLimiter(bucket.take, clock)
    assert limiter.acquire(1, rate=100, burst=100) is None
    clock.now += BLOCK_TTL_S - 0.01
    assert limiter.acquire(1, rate=100, burst=100) is None
    assert len(bucket.calls) == 1
    clock.now += 0.02
    assert limiter.acquire(1, rate=100, burst=100) is None
    assert len(bucket.calls) == 2  # the 3 tokens left of the first block were dropped


def test_a_partial_block_is_taken_when_less_is_left() -> None:
    bucket, clock = Bucket(2.5), Clock()
    limiter = RateLimiter(bucket.take, clock)
    assert limiter.acquire(1, rate=100, burst=100) is None
    assert limiter.acquire(1, rate=100, burst=100) is None
    assert bucket.calls == [5]
    assert limiter.acquire(1, rate=100, burst=100) == pytest.approx(0.5 / 100)


def test_a_denial_is_remembered_until_a_token_is_due_without_asking_again() -> None:
    bucket, clock = Bucket(0.0), Clock()
    limiter = RateLimiter(bucket.take, clock)
    assert limiter.acquire(1, rate=2, burst=4) == pytest.approx(0.5)
    clock.now += 0.2
    assert limiter.acquire(1, rate=2, burst=4) == pytest.approx(0.3)
    assert bucket.calls == [1]
    clock.now += 0.3
    bucket.tokens = 1.0  # refilled meanwhile
    assert limiter.acquire(1, rate=2, burst=4) is None
    assert bucket.calls == [1, 1]


def test_clients_have_separate_local_blocks() -> None:
    bucket, clock = Bucket(1), Clock()
    limiter = RateLimiter(bucket.take, clock)
    assert limiter.acquire(1, rate=1, burst=1) is None
    assert limiter.acquire(1, rate=1, burst=1) is not None
    bucket.tokens = 1
    assert limiter.acquire(2, rate=1, burst=1) is None


def test_threads_never_spend_more_than_was_taken() -> None:
    bucket = Bucket(500)
    limiter = RateLimiter(bucket.take)
    allowed: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        mine = sum(limiter.acquire(7, rate=200, burst=1000) is None for _ in range(200))
        with lock:
            allowed.append(mine)

    workers = [threading.Thread(target=hammer) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    assert sum(allowed) == 500
    assert bucket.tokens == 0


class Counts:
    """A stand-in for the COUNT of a client's active tasks."""

    def __init__(self, active: int, quota: int) -> None:
        self.active, self.quota, self.calls = active, quota, 0

    def __call__(self, client_id: int) -> QuotaState:
        self.calls += 1
        return QuotaState(name="alice", quota=self.quota, overridden=False, active=self.active)


def test_far_from_the_quota_a_process_counts_once_a_second() -> None:
    counts, clock = Counts(active=10, quota=1000), Clock()
    tracker = QuotaTracker(counts, clock)
    for _ in range(50):
        assert tracker.reserve(1, 1) is None
    assert counts.calls == 1
    clock.now += QUOTA_CACHE_S
    assert tracker.reserve(1, 1) is None
    assert counts.calls == 2


def test_near_the_quota_every_reservation_counts_again() -> None:
    counts, clock = Counts(active=895, quota=1000), Clock()
    tracker = QuotaTracker(counts, clock)
    assert tracker.reserve(1, 5) is None  # 900: at the edge of the last 10%
    assert counts.calls == 1
    for _ in range(3):
        tracker.finish(1, 5, created=True)
        counts.active += 5  # what was created is now committed
        assert tracker.reserve(1, 5) is None
    assert counts.calls == 4


def test_locally_created_tasks_count_until_the_next_count() -> None:
    counts, clock = Counts(active=0, quota=10), Clock()
    tracker = QuotaTracker(counts, clock)
    for _ in range(10):
        assert tracker.reserve(1, 1) is None
        tracker.finish(1, 1, created=True)
        counts.active += 1
    exceeded = tracker.reserve(1, 1)
    assert exceeded is not None and (exceeded.active, exceeded.quota, exceeded.name) == (10, 10, "alice")


def test_a_batch_fits_entirely_or_reserves_nothing() -> None:
    counts, clock = Counts(active=7, quota=10), Clock()
    tracker = QuotaTracker(counts, clock)
    exceeded = tracker.reserve(1, 4)
    assert exceeded is not None and exceeded.wanted == 4
    assert tracker.reserve(1, 3) is None
    assert tracker.reserve(1, 1) is not None


def test_a_failed_request_gives_its_reservation_back() -> None:
    counts, clock = Counts(active=9, quota=10), Clock()
    tracker = QuotaTracker(counts, clock)
    assert tracker.reserve(1, 1) is None
    tracker.finish(1, 1, created=False)
    assert tracker.reserve(1, 1) is None


def test_a_reservation_still_in_flight_counts_across_a_recount() -> None:
    counts, clock = Counts(active=8, quota=10), Clock()
    tracker = QuotaTracker(counts, clock)
    assert tracker.reserve(1, 2) is None  # not committed yet: the count will not see it
    assert tracker.reserve(1, 1) is not None  # recounted: 8 + 2 in flight


def test_finished_tasks_free_the_quota_at_the_next_count() -> None:
    counts, clock = Counts(active=10, quota=10), Clock()
    tracker = QuotaTracker(counts, clock)
    assert tracker.reserve(1, 1) is not None
    counts.active = 4
    assert tracker.reserve(1, 6) is None


def test_an_unlimited_quota_is_not_counted_more_than_once_a_second() -> None:
    counts, clock = Counts(active=0, quota=0), Clock()
    tracker = QuotaTracker(counts, clock)
    for _ in range(20):
        assert tracker.reserve(1, 100) is None
    assert counts.calls == 1
