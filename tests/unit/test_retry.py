"""Unit tests of ``core/retry.py``: backoff ceilings, retry decisions and policy JSON."""

from __future__ import annotations

import random

import pytest

from core.retry import Outcome, RetryDecision, RetryPolicy, compute_backoff, decide_retry


class UpperBound(random.Random):
    """A jitter source whose ``uniform`` always returns the upper bound (the ceiling)."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowerBound(random.Random):
    """A jitter source whose ``uniform`` always returns the lower bound (no delay)."""

    def uniform(self, a: float, b: float) -> float:
        return a


# --- compute_backoff ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "base_s", "cap_s", "ceiling"),
    [
        (1, 1.0, 300.0, 1.0),
        (2, 1.0, 300.0, 2.0),
        (3, 1.0, 300.0, 4.0),
        (4, 1.0, 300.0, 8.0),
        (5, 1.0, 300.0, 16.0),
        (9, 1.0, 300.0, 256.0),
        (10, 1.0, 300.0, 300.0),
        (20, 1.0, 300.0, 300.0),
        (1, 0.5, 3.0, 0.5),
        (2, 0.5, 3.0, 1.0),
        (3, 0.5, 3.0, 2.0),
        (4, 0.5, 3.0, 3.0),
        (5, 0.5, 3.0, 3.0),
        (1, 10.0, 5.0, 5.0),
        (3, 0.0, 300.0, 0.0),
    ],
)
def test_backoff_ceiling_doubles_until_the_cap(
    attempt: int, base_s: float, cap_s: float, ceiling: float
) -> None:
    assert compute_backoff(attempt, base_s, cap_s, UpperBound()) == pytest.approx(ceiling)


@pytest.mark.parametrize("attempt", [0, -1, -5])
def test_backoff_ceiling_of_a_non_positive_attempt_is_the_base(attempt: int) -> None:
    assert compute_backoff(attempt, 2.0, 300.0, UpperBound()) == 2.0


@pytest.mark.parametrize("attempt", [1, 3, 10])
def test_backoff_lower_bound_is_zero(attempt: int) -> None:
    assert compute_backoff(attempt, 1.0, 300.0, LowerBound()) == 0.0


@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_backoff_with_a_seeded_random_is_uniform_below_the_ceiling(seed: int) -> None:
    rng = random.Random(seed)
    reference = random.Random(seed)
    for attempt in range(1, 15):
        ceiling = min(60.0, 0.5 * 2 ** (attempt - 1))
        delay = compute_backoff(attempt, 0.5, 60.0, rng)
        assert 0.0 <= delay <= ceiling
        assert delay == reference.uniform(0, ceiling)


def test_backoff_with_the_same_seed_is_reproducible() -> None:
    first = [compute_backoff(a, 1.0, 300.0, random.Random(7)) for a in range(1, 10)]
    second = [compute_backoff(a, 1.0, 300.0, random.Random(7)) for a in range(1, 10)]
    assert first == second


def test_backoff_without_a_jitter_source_stays_within_the_ceiling() -> None:
    for _ in range(200):
        assert 0.0 <= compute_backoff(4, 1.0, 300.0) <= 8.0


# --- decide_retry --------------------------------------------------------------------------

POLICY = RetryPolicy(retries=3, base_s=1.0, max_s=300.0)


@pytest.mark.parametrize(
    ("outcome", "policy", "attempt"),
    [
        (Outcome(succeeded=True), POLICY, 1),
        (Outcome(succeeded=True, retryable=False), POLICY, 1),
        (Outcome(succeeded=True, retry_after_s=5.0), POLICY, 2),
        (Outcome(succeeded=False, retryable=False), POLICY, 1),
        (Outcome(succeeded=False, retryable=False, retry_after_s=5.0), POLICY, 1),
        (Outcome(succeeded=False), POLICY, 4),
        (Outcome(succeeded=False), POLICY, 5),
        (Outcome(succeeded=False, retry_after_s=1.0), POLICY, 4),
        (Outcome(succeeded=False), RetryPolicy(retries=0), 1),
    ],
    ids=[
        "success",
        "success-not-retryable",
        "success-with-retry-after",
        "not-retryable",
        "not-retryable-with-retry-after",
        "last-attempt",
        "past-last-attempt",
        "last-attempt-with-retry-after",
        "no-retries",
    ],
)
def test_decide_retry_returns_none_when_no_retry_is_due(
    outcome: Outcome, policy: RetryPolicy, attempt: int
) -> None:
    assert decide_retry(outcome, policy, attempt, UpperBound()) is None


@pytest.mark.parametrize(
    ("retries", "attempt"),
    [(1, 1), (3, 1), (3, 2), (3, 3), (20, 20)],
)
def test_decide_retry_retries_a_retryable_failure_before_the_last_attempt(
    retries: int, attempt: int
) -> None:
    policy = RetryPolicy(retries=retries, base_s=1.0, max_s=300.0)
    decision = decide_retry(Outcome(succeeded=False), policy, attempt, UpperBound())
    assert decision == RetryDecision(delay_s=min(300.0, 2.0 ** (attempt - 1)))


@pytest.mark.parametrize(
    ("jitter", "attempt", "retry_after_s", "max_s", "delay_s"),
    [
        (LowerBound(), 1, None, 300.0, 0.0),
        (UpperBound(), 3, None, 300.0, 4.0),
        (LowerBound(), 1, 5.0, 300.0, 5.0),
        (LowerBound(), 1, 0.0, 300.0, 0.0),
        (UpperBound(), 3, 1.0, 300.0, 4.0),
        (UpperBound(), 3, 10.0, 300.0, 10.0),
        (LowerBound(), 1, 500.0, 300.0, 500.0),
        (UpperBound(), 3, 5000.0, 300.0, 3600.0),
        (UpperBound(), 3, 500.0, 3.0, 500.0),
        (UpperBound(), 2, 2.0, 300.0, 2.0),
    ],
    ids=[
        "no-retry-after-low-jitter",
        "no-retry-after-high-jitter",
        "retry-after-raises-zero-delay",
        "zero-retry-after",
        "backoff-above-retry-after-wins",
        "retry-after-above-backoff-wins",
        "retry-after-beyond-max-is-still-honoured",
        "retry-after-capped-at-an-hour",
        "retry-after-wins-over-a-small-max",
        "retry-after-equal-to-backoff",
    ],
)
def test_decide_retry_honours_retry_after_as_a_lower_bound_up_to_an_hour(
    jitter: random.Random, attempt: int, retry_after_s: float | None, max_s: float, delay_s: float
) -> None:
    policy = RetryPolicy(retries=10, base_s=1.0, max_s=max_s)
    outcome = Outcome(succeeded=False, retry_after_s=retry_after_s)
    decision = decide_retry(outcome, policy, attempt, jitter)
    assert decision is not None
    assert decision.delay_s == pytest.approx(delay_s)


def test_decide_retry_with_a_seeded_random_matches_compute_backoff() -> None:
    decision = decide_retry(Outcome(succeeded=False), POLICY, 2, random.Random(3))
    assert decision == RetryDecision(delay_s=compute_backoff(2, 1.0, 300.0, random.Random(3)))


# --- RetryPolicy -----------------------------------------------------------------------------


def test_retry_policy_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.retries, policy.base_s, policy.max_s) == (3, 1.0, 300.0)
    assert policy.max_attempts == 4


@pytest.mark.parametrize(("retries", "max_attempts"), [(0, 1), (1, 2), (3, 4), (20, 21)])
def test_retry_policy_max_attempts_is_retries_plus_one(retries: int, max_attempts: int) -> None:
    assert RetryPolicy(retries=retries).max_attempts == max_attempts


@pytest.mark.parametrize(
    "policy",
    [
        RetryPolicy(),
        RetryPolicy(retries=0, base_s=0.5, max_s=2.0),
        RetryPolicy(retries=20, base_s=10.0, max_s=3600.0),
    ],
)
def test_retry_policy_round_trips_through_json(policy: RetryPolicy) -> None:
    other_default = RetryPolicy(retries=9, base_s=9.0, max_s=9.0)
    data = policy.to_json()
    assert data == {"retries": policy.retries, "base_s": policy.base_s, "max_s": policy.max_s}
    assert RetryPolicy.from_json(data, other_default) == policy


@pytest.mark.parametrize("data", [None, {}])
def test_retry_policy_from_empty_json_is_the_default(data: dict[str, float | int] | None) -> None:
    default = RetryPolicy(retries=5, base_s=2.0, max_s=60.0)
    assert RetryPolicy.from_json(data, default) is default


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"retries": 7}, RetryPolicy(retries=7, base_s=2.0, max_s=60.0)),
        ({"base_s": 0.25}, RetryPolicy(retries=5, base_s=0.25, max_s=60.0)),
        ({"max_s": 10}, RetryPolicy(retries=5, base_s=2.0, max_s=10.0)),
        ({"retries": 1, "max_s": 5.0}, RetryPolicy(retries=1, base_s=2.0, max_s=5.0)),
    ],
)
def test_retry_policy_from_partial_json_fills_missing_fields_from_the_default(
    data: dict[str, float | int], expected: RetryPolicy
) -> None:
    default = RetryPolicy(retries=5, base_s=2.0, max_s=60.0)
    assert RetryPolicy.from_json(data, default) == expected


def test_retry_policy_from_json_coerces_types() -> None:
    policy = RetryPolicy.from_json({"retries": 2.0, "base_s": 1, "max_s": 30}, RetryPolicy())
    assert isinstance(policy.retries, int)
    assert isinstance(policy.base_s, float)
    assert isinstance(policy.max_s, float)
    assert policy == RetryPolicy(retries=2, base_s=1.0, max_s=30.0)
