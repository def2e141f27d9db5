"""Unit tests of ``core/catalogue.py``: built-in task validation, lookup, keys and handlers."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from core import catalogue, song
from core.errors import ValidationError

FIELDS = {
    "sum2": ("first", "second"),
    "mult3": ("first", "second", "third"),
    "surprise": ("first",),
}


def validate(task: str, params: Any) -> dict[str, Any]:
    return catalogue.get(task).validate(params)


# --- valid params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "params", "expected"),
    [
        ("sum2", {"first": 1, "second": 2}, {"first": 1, "second": 2}),
        ("sum2", {"second": 2, "first": 1}, {"first": 1, "second": 2}),
        ("sum2", {"first": -1.5, "second": 0}, {"first": -1.5, "second": 0}),
        ("sum2", {"first": 10**30, "second": 1e-9}, {"first": 10**30, "second": 1e-9}),
        ("mult3", {"first": 2, "second": 3, "third": 4}, {"first": 2, "second": 3, "third": 4}),
        ("mult3", {"third": 4, "first": 2, "second": 3}, {"first": 2, "second": 3, "third": 4}),
        (
            "mult3",
            {"first": 0.5, "second": -2, "third": 0},
            {"first": 0.5, "second": -2, "third": 0},
        ),
        ("surprise", {"first": 1}, {"first": 1}),
        ("surprise", {"first": 7}, {"first": 7}),
        ("surprise", {"first": len(song.LINES)}, {"first": len(song.LINES)}),
    ],
)
def test_valid_params_are_normalised(
    task: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    result = validate(task, params)
    assert result == expected
    assert list(result) == list(FIELDS[task])


# --- invalid params ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "params", "named"),
    [
        ("sum2", {"first": 1}, "second"),
        ("sum2", {"second": 1}, "first"),
        ("sum2", {}, "first"),
        ("mult3", {"first": 1, "second": 2}, "third"),
        ("mult3", {"first": 1, "third": 2}, "second"),
        ("surprise", {}, "first"),
    ],
)
def test_missing_param_is_rejected_naming_it(task: str, params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=f"missing param '{named}'"):
        validate(task, params)


@pytest.mark.parametrize(
    ("task", "params", "named"),
    [
        ("sum2", {"first": 1, "second": 2, "third": 3}, "third"),
        ("sum2", {"first": 1, "second": 2, "First": 3}, "First"),
        ("mult3", {"first": 1, "second": 2, "third": 3, "fourth": 4}, "fourth"),
        ("surprise", {"first": 1, "last": 2}, "last"),
        ("surprise", {"line": 1}, "line"),
    ],
)
def test_unknown_param_is_rejected_naming_it(task: str, params: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=f"unknown param '{named}'"):
        validate(task, params)


NON_NUMBERS: list[Any] = ["1", "", True, False, None, [1], [], {"n": 1}]


@pytest.mark.parametrize("value", NON_NUMBERS, ids=repr)
@pytest.mark.parametrize(
    ("task", "field"), [("sum2", "first"), ("sum2", "second"), ("mult3", "third")]
)
def test_non_numeric_param_is_rejected_naming_it(task: str, field: str, value: Any) -> None:
    params: dict[str, Any] = {f: 1 for f in FIELDS[task]}
    params[field] = value
    with pytest.raises(ValidationError) as exc:
        validate(task, params)
    message = str(exc.value)
    assert f"'{field}'" in message
    assert "must be a number" in message
    assert json.dumps(value) in message


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=repr)
@pytest.mark.parametrize(("task", "field"), [("sum2", "second"), ("mult3", "first")])
def test_non_finite_float_param_is_rejected_naming_it(task: str, field: str, value: float) -> None:
    params: dict[str, Any] = {f: 1 for f in FIELDS[task]}
    params[field] = value
    with pytest.raises(ValidationError, match=f"param '{field}' of {task} must be a finite number"):
        validate(task, params)


@pytest.mark.parametrize("params", [None, [], [1, 2], "first", 3, 1.5, True], ids=repr)
@pytest.mark.parametrize("task", sorted(FIELDS))
def test_params_that_are_not_an_object_are_rejected_naming_the_params(
    task: str, params: Any
) -> None:
    with pytest.raises(ValidationError) as exc:
        validate(task, params)
    message = str(exc.value)
    assert f"params of {task} must be a JSON object" in message
    for field in FIELDS[task]:
        assert field in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0, "between 1 and 20"),
        (-1, "between 1 and 20"),
        (len(song.LINES) + 1, "between 1 and 20"),
        (1000, "between 1 and 20"),
        (1.5, "must be an integer"),
        (3.0, "must be an integer"),
        ("3", "must be an integer"),
        (True, "must be an integer"),
        (None, "must be an integer"),
        ([3], "must be an integer"),
    ],
    ids=repr,
)
def test_surprise_first_must_be_a_line_number_of_the_song(value: Any, reason: str) -> None:
    assert len(song.LINES) == 20
    with pytest.raises(ValidationError) as exc:
        validate("surprise", {"first": value})
    message = str(exc.value)
    assert "param 'first' of surprise" in message
    assert reason in message


# --- lookup --------------------------------------------------------------------------------


def test_builtin_tasks_are_registered_and_deterministic() -> None:
    assert set(FIELDS) <= set(catalogue.names())
    assert catalogue.names() == sorted(catalogue.names())
    for name in FIELDS:
        task_type = catalogue.get(name)
        assert task_type.name == name
        assert task_type.deterministic
        assert task_type.description
    assert [t.name for t in catalogue.all_types()] == catalogue.names()


@pytest.mark.parametrize("name", ["nope", "", "SUM2", "sum2 "])
def test_get_of_an_unknown_task_raises_listing_known_tasks(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        catalogue.get(name)
    message = str(exc.value)
    assert f"unknown task {name!r}" in message
    assert f"known tasks: {', '.join(catalogue.names())}" in message
    for known in FIELDS:
        assert known in message


# --- params_key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"first": 1, "second": 2}, '{"first":1,"second":2}'),
        ({"second": 2, "first": 1}, '{"first":1,"second":2}'),
        ({"third": 4, "first": 2, "second": 3}, '{"first":2,"second":3,"third":4}'),
        ({"first": 1.5}, '{"first":1.5}'),
        ({}, "{}"),
    ],
)
def test_params_key_is_canonical_compact_json(params: dict[str, Any], key: str) -> None:
    assert catalogue.params_key(params) == key


def test_params_key_does_not_depend_on_key_order() -> None:
    a = {"a": 1, "b": {"y": 2, "x": 1}}
    b = {"b": {"x": 1, "y": 2}, "a": 1}
    assert catalogue.params_key(a) == catalogue.params_key(b) == '{"a":1,"b":{"x":1,"y":2}}'


# --- handlers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "params", "result"),
    [
        ("sum2", {"first": 1, "second": 2}, 3),
        ("sum2", {"first": -1, "second": 1}, 0),
        ("sum2", {"first": 0.5, "second": 0.25}, 0.75),
        ("mult3", {"first": 2, "second": 3, "third": 4}, 24),
        ("mult3", {"first": 2, "second": 0, "third": 4}, 0),
        ("mult3", {"first": -1, "second": 2, "third": 0.5}, -1.0),
        ("surprise", {"first": 1}, "Twinkle, twinkle, little star,"),
        ("surprise", {"first": 2}, "How I wonder what you are!"),
        ("surprise", {"first": 20}, "Twinkle, twinkle, little star."),
    ],
)
def test_resolved_builtin_handler_computes_the_result(
    task: str, params: dict[str, Any], result: Any
) -> None:
    handler = catalogue.resolve_handler(catalogue.get(task).handler)
    assert callable(handler)
    assert handler(validate(task, params)) == result
