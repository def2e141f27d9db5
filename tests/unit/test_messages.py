"""Unit tests of ``core/messages.py``: the SQS message format and batching of runs."""

from __future__ import annotations

import json

import pytest

from core.messages import VERSION, BadMessage, Message, RunRef, chunk, decode, encode

MESSAGES = [
    Message("sum2", ()),
    Message("sum2", (RunRef("r1", 1),)),
    Message("mult3", (RunRef("r1", 1), RunRef("r2", 2), RunRef("r3", 7))),
    Message("surprise", tuple(RunRef(f"run-{i}", i % 4 + 1) for i in range(100))),
    Message("my.tasks:ünïcode", (RunRef("0190f0e2-7c5b-7aa8-9bd6-3c2f6b0e4a11", 3),)),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{m.task_type}-{len(m.runs)}")
def test_encode_then_decode_round_trips(message: Message) -> None:
    assert decode(encode(message)) == message


def test_encode_writes_compact_versioned_json() -> None:
    body = encode(Message("sum2", (RunRef("a", 1), RunRef("b", 2))))
    assert body == '{"v":1,"type":"sum2","runs":[["a",1],["b",2]]}'
    assert json.loads(body)["v"] == VERSION


def test_decode_accepts_a_hand_written_body() -> None:
    body = '{"runs": [["x", 2]], "type": "mult3", "v": 1, "extra": true}'
    assert decode(body) == Message("mult3", (RunRef("x", 2),))


@pytest.mark.parametrize(
    "body",
    [
        "",
        "not json",
        "{",
        "[]",
        "[1, 2]",
        "null",
        "42",
        '"a string"',
        "{}",
        '{"v": 2, "type": "sum2", "runs": []}',
        '{"v": 0, "type": "sum2", "runs": []}',
        '{"v": "1", "type": "sum2", "runs": []}',
        '{"v": null, "type": "sum2", "runs": []}',
        '{"type": "sum2", "runs": []}',
        '{"v": 1, "runs": []}',
        '{"v": 1, "type": "sum2"}',
        '{"v": 1, "type": "sum2", "runs": null}',
        '{"v": 1, "type": "sum2", "runs": 5}',
        '{"v": 1, "type": "sum2", "runs": [["r1"]]}',
        '{"v": 1, "type": "sum2", "runs": [[]]}',
        '{"v": 1, "type": "sum2", "runs": [["r1", "one"]]}',
        '{"v": 1, "type": "sum2", "runs": [["r1", null]]}',
        '{"v": 1, "type": "sum2", "runs": [5]}',
        '{"v": 1, "type": "sum2", "runs": [null]}',
    ],
)
def test_decode_of_a_body_that_is_not_ours_raises_bad_message(body: str) -> None:
    with pytest.raises(BadMessage):
        decode(body)


@pytest.mark.parametrize(("version", "shown"), [(2, "2"), (0, "0"), ("1", "'1'"), (None, "None")])
def test_decode_of_a_wrong_version_names_the_version(version: object, shown: str) -> None:
    body = json.dumps({"v": version, "type": "sum2", "runs": []})
    with pytest.raises(BadMessage, match=f"unsupported message version {shown}"):
        decode(body)


def test_bad_message_is_a_value_error() -> None:
    assert issubclass(BadMessage, ValueError)


REFS = [RunRef(f"r{i}", 1) for i in range(7)]


@pytest.mark.parametrize(
    ("runs", "size", "lengths"),
    [
        ([], 1, []),
        ([], 100, []),
        (REFS[:1], 1, [1]),
        (REFS, 1, [1] * 7),
        (REFS, 2, [2, 2, 2, 1]),
        (REFS, 3, [3, 3, 1]),
        (REFS, 7, [7]),
        (REFS, 100, [7]),
        (REFS[:6], 3, [3, 3]),
    ],
)
def test_chunk_splits_runs_by_size_preserving_order(
    runs: list[RunRef], size: int, lengths: list[int]
) -> None:
    chunks = chunk(runs, size)
    assert [len(c) for c in chunks] == lengths
    assert all(isinstance(c, tuple) for c in chunks)
    assert [r for c in chunks for r in c] == runs


def test_chunks_become_messages_that_round_trip() -> None:
    messages = [Message("sum2", group) for group in chunk(REFS, 3)]
    decoded = [decode(encode(m)) for m in messages]
    assert [r for m in decoded for r in m.runs] == REFS
