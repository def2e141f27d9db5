"""Schema checks turn the first violation into a message that names the field and says what it
must be (core/schema.py)."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ValidationError
from core.schema import Checker, Variants, integer, number, obj, string

BODY = obj({
    "retries": integer(0, 20),
    "rate": number(0, 10, exclusive_low=True),
    "name": string(20, 1),
    "mode": {"type": "string", "enum": ["a", "b"]},
    "kind": {"type": "string", "enum": ["x", "y", "z"]},
    "flag": {"type": "boolean"},
    "codes": {"type": "array", "items": integer(100, 599), "maxItems": 3},
    "params": obj({"first": {"type": "number"}}, ("first",)),
}, ("retries",))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "request body must be a JSON object"),
        ({}, "missing 'retries'"),
        ({"retries": 1, "colour": "red"}, "unknown field 'colour'; expected retries, rate, name, mode, kind, flag, codes, params"),
        ({"retries": 21}, "'retries' must be an integer between 0 and 20"),
        ({"retries": "3"}, "'retries' must be an integer between 0 and 20"),
        ({"retries": 1, "rate": 0}, "'rate' must be a number greater than 0 and at most 10"),
        ({"retries": 1, "name": ""}, "'name' must be a string of 1 to 20 characters"),
        ({"retries": 1, "mode": "c"}, "'mode' must be 'a' or 'b'"),
        ({"retries": 1, "kind": "w"}, "'kind' must be one of 'x', 'y', 'z'"),
        ({"retries": 1, "flag": "yes"}, "'flag' must be true or false"),
        ({"retries": 1, "codes": [200, 99]}, "'codes[1]' must be an integer between 100 and 599"),
        ({"retries": 1, "codes": [200] * 4}, "'codes' must be a list of an integer between 100 and 599 values (at most 3 items)"),
        ({"retries": 1, "params": {}}, "missing 'first' in 'params'"),
    ],
)
def test_the_message_names_the_field_and_what_it_must_be(data: Any, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Checker(BODY).check(data)
    assert str(raised.value) == message


def test_valid_data_is_returned_unchanged() -> None:
    data = {"retries": 0, "codes": [200], "params": {"first": 1.5}}
    assert Checker(BODY).check(data) is data


def test_inside_a_tasks_params_the_message_names_the_param_and_the_task() -> None:
    variant = obj({"task": {"const": "sum2"}, "params": obj({"first": {"type": "number"}, "second": {"type": "number"}},
                                                             ("first", "second"))}, ("task", "params"))
    checker = Variants({"sum2": variant}, lambda body: "sum2")
    cases = {
        '{"task": "sum2", "params": {"first": 1}}': "missing param 'second' for sum2; expected first, second",
        '{"task": "sum2", "params": {"first": "1", "second": 2}}': "param 'first' of sum2 must be a number",
        '{"task": "sum2", "params": {"first": 1, "second": 2, "x": 0}}': "unknown param 'x' for sum2; expected first, second",
        '{"task": "sum2", "params": 5}': "params of sum2 must be a JSON object with first, second",
        '{"task": "sum2"}': "missing 'params': params of sum2 must be a JSON object with first, second",
    }
    import json

    for raw, message in cases.items():
        with pytest.raises(ValidationError) as raised:
            checker.check(json.loads(raw))
        assert str(raised.value) == message, raw
