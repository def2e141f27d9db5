"""Retry decisions as pure functions (table-tested in ``tests/unit/test_retry.py``)."""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base_s: float = 1.0
    max_s: float = 300.0

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def to_json(self) -> dict[str, float | int]:
        return {"retries": self.retries, "base_s": self.base_s, "max_s": self.max_s}

    @classmethod
    def from_json(cls, data: dict[str, float | int] | None, default: RetryPolicy) -> RetryPolicy:
        if not data:
            return default
        return cls(
            retries=int(data.get("retries", default.retries)),
            base_s=float(data.get("base_s", default.base_s)),
            max_s=float(data.get("max_s", default.max_s)),
        )


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one attempt produced, as far as retrying is concerned."""

    succeeded: bool
    retryable: bool = True
    #: a delay the target asked for (``Retry-After``), in seconds
    retry_after_s: float | None = None


#: the longest ``Retry-After`` a target can impose (beyond it the policy's own backoff rules)
RETRY_AFTER_CAP_S = 3600.0


@dataclasses.dataclass(frozen=True)
class RetryDecision:
    delay_s: float


def compute_backoff(
    attempt: int, base_s: float, cap_s: float, jitter: random.Random | None = None
) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))].

    ``attempt`` is the number of the attempt that just failed (1 for the first).
    """
    ceiling = min(cap_s, base_s * (2 ** min(max(attempt - 1, 0), 64)))
    rng = jitter or random
    return rng.uniform(0, ceiling)


def decide_retry(
    outcome: Outcome, policy: RetryPolicy, attempt: int, jitter: random.Random | None = None
) -> RetryDecision | None:
    """Whether attempt number ``attempt`` (1-based) should be followed by another, and when."""
    if outcome.succeeded or not outcome.retryable or attempt >= policy.max_attempts:
        return None
    delay = compute_backoff(attempt, policy.base_s, policy.max_s, jitter)
    if outcome.retry_after_s is not None:
        # the target said when it can take the call again: never earlier than that
        delay = max(delay, min(outcome.retry_after_s, max(policy.max_s, RETRY_AFTER_CAP_S)))
    return RetryDecision(delay_s=delay)
