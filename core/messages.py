"""The SQS message format. A message names runs; the tasker re-reads each run from PostgreSQL
when it claims it, so a cancelled or paused run is never executed from a stale message.

One message may name several runs of the same type (up to ``TASKER_RUNS_PER_MESSAGE``): every
SQS call costs far more than a run's bookkeeping, so batching runs per message is what keeps
the queues shallow and the throughput high.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunRef:
    run_id: str
    #: the attempt number this delivery is meant to execute (1 for the first)
    attempt: int


@dataclasses.dataclass(frozen=True)
class Message:
    task_type: str
    runs: tuple[RunRef, ...]


def encode(message: Message) -> str:
    return json.dumps(
        {"v": VERSION, "type": message.task_type, "runs": [[r.run_id, r.attempt] for r in message.runs]},
        separators=(",", ":"),
    )


class BadMessage(ValueError):
    """A message body that is not ours; it is left to the dead-letter queue."""


def decode(body: str) -> Message:
    try:
        data: Any = json.loads(body)
        if data.get("v") != VERSION:
            raise BadMessage(f"unsupported message version {data.get('v')!r}")
        runs = tuple(RunRef(str(r[0]), int(r[1])) for r in data["runs"])
        return Message(task_type=str(data["type"]), runs=runs)
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise BadMessage(f"malformed message: {exc}") from exc


def chunk(runs: list[RunRef], size: int) -> list[tuple[RunRef, ...]]:
    return [tuple(runs[i : i + size]) for i in range(0, len(runs), size)]
