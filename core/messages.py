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
    #: when it is due (Unix seconds), if it was sent ahead of its time
    due: float | None = None


@dataclasses.dataclass(frozen=True)
class Message:
    task_type: str
    runs: tuple[RunRef, ...]


def encode(message: Message) -> str:
    return json.dumps(
        {
            "v": VERSION,
            "type": message.task_type,
            "runs": [[r.run_id, r.attempt] if r.due is None else [r.run_id, r.attempt, r.due] for r in message.runs],
        },
        separators=(",", ":"),
    )


class BadMessage(ValueError):
    """A message body that is not ours; it is left to the dead-letter queue."""


def decode(body: str) -> Message:
    try:
        data: Any = json.loads(body)
    except ValueError as exc:
        raise BadMessage(f"malformed message: {exc}") from exc
    if not isinstance(data, dict):
        raise BadMessage("malformed message: not a JSON object")
    version = data.get("v")
    if type(version) is not int or version != VERSION:
        raise BadMessage(f"unsupported message version {version!r}")
    task_type, runs = data.get("type"), data.get("runs")
    if not isinstance(task_type, str) or not isinstance(runs, list):
        raise BadMessage("malformed message: 'type' must be a string and 'runs' a list")
    refs = []
    for item in runs:
        if (
            not isinstance(item, list) or len(item) not in (2, 3)
            or not isinstance(item[0], str) or type(item[1]) is not int
            or (len(item) == 3 and (type(item[2]) not in (int, float)))
        ):
            raise BadMessage(f"malformed message: bad run reference {item!r}")
        refs.append(RunRef(item[0], item[1], float(item[2]) if len(item) == 3 else None))
    return Message(task_type=task_type, runs=tuple(refs))


def chunk(runs: list[RunRef], size: int) -> list[tuple[RunRef, ...]]:
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    return [tuple(runs[i : i + size]) for i in range(0, len(runs), size)]
