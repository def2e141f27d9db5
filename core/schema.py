"""JSON Schema as the one description of what the API accepts: requests are checked against
these schemas, and ``GET /openapi.json`` publishes the very same dictionaries.

Checking is done by a compiled validator (``jsonschema_rs``: well under a microsecond for a
seed request), and the first violation becomes a :class:`ValidationError` whose message names
the field and says what it must be, e.g. ``'retries' must be an integer between 0 and 20``.
Rules a schema cannot say (a cron expression that never fires, a blocked address) stay in
code and answer 400 the same way.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema_rs

from core.errors import ValidationError

Schema = dict[str, Any]


# --- building blocks ------------------------------------------------------------------------

def obj(properties: Mapping[str, Schema], required: tuple[str, ...] = (), description: str = "",
        additional: bool = False) -> Schema:
    """A JSON object with these properties; unknown fields are refused unless ``additional``."""
    out: Schema = {"type": "object", "properties": dict(properties)}
    if required:
        out["required"] = list(required)
    if not additional:
        out["additionalProperties"] = False
    if description:
        out["description"] = description
    return out


def _bounded(kind: str, low: float | None, high: float | None, description: str, exclusive_low: bool,
             extra: dict[str, Any]) -> Schema:
    out: Schema = {"type": kind, **extra}
    if low is not None:
        out["exclusiveMinimum" if exclusive_low else "minimum"] = low
    if high is not None:
        out["maximum"] = high
    if description:
        out["description"] = description
    return out


def integer(low: int | None = None, high: int | None = None, description: str = "", **extra: Any) -> Schema:
    return _bounded("integer", low, high, description, False, extra)


def number(low: float | None = None, high: float | None = None, description: str = "",
           exclusive_low: bool = False, **extra: Any) -> Schema:
    return _bounded("number", low, high, description, exclusive_low, extra)


def string(max_length: int | None = None, min_length: int | None = None, description: str = "",
           **extra: Any) -> Schema:
    out: Schema = {"type": "string", **extra}
    if min_length is not None:
        out["minLength"] = min_length
    if max_length is not None:
        out["maxLength"] = max_length
    if description:
        out["description"] = description
    return out


def enum(values: list[str] | tuple[str, ...], description: str = "") -> Schema:
    out: Schema = {"type": "string", "enum": list(values)}
    if description:
        out["description"] = description
    return out


# --- checking -------------------------------------------------------------------------------

class Checker:
    """A compiled schema. ``check(data)`` returns the data or raises a ValidationError.

    ``published()`` is the schema as the OpenAPI document shows it: the same dictionary, with
    the fields named in ``parts`` pointing at the schema that checks them."""

    def __init__(self, schema: Schema, prefix: str = "", task: str | None = None,
                 parts: Mapping[str, str] | None = None) -> None:
        self.schema = schema
        self.prefix = prefix
        self.task = task
        #: fields whose value (or items, for a list) the view checks with another named schema
        #: (a task spec inside a batch or a workflow): published as a reference to it
        self.parts = dict(parts or {})
        self._validator = jsonschema_rs.validator_for(schema)

    def published(self, ref: Callable[[str], Schema]) -> Schema:
        if not self.parts:
            return self.schema
        out = copy.deepcopy(self.schema)
        for field, name in self.parts.items():
            prop = out["properties"][field]
            if prop.get("type") == "array":
                prop["items"] = ref(name)
            else:
                out["properties"][field] = {**ref(name), **({"description": prop["description"]}
                                                             if "description" in prop else {})}
        return out

    def check(self, data: Any) -> Any:
        if self._validator.is_valid(data):
            return data
        error = next(iter(self._validator.iter_errors(data)))
        raise ValidationError(self.prefix + explain(self.schema, error, self.task))


def _dotted(path: list[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _subschema(schema: Schema, schema_path: list[Any]) -> Any:
    node: Any = schema
    for part in schema_path:
        node = node[part]
    return node


def _literal(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else json.dumps(value)


def _n(value: Any) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def describe(s: Any) -> str:
    """What a value must be, in words: 'an integer between 0 and 20'."""
    if not isinstance(s, dict):
        return "valid"
    if "x-describe" in s:
        return str(s["x-describe"])
    if "const" in s:
        return _literal(s["const"])
    if "enum" in s:
        values = [_literal(v) for v in s["enum"] if v is not None]
        return " or ".join(values) if len(values) == 2 else "one of " + ", ".join(values)
    kind = s.get("type")
    if isinstance(kind, list):
        return " or ".join(describe({**s, "type": k}) for k in kind)
    low = s.get("minimum", s.get("exclusiveMinimum"))
    high = s.get("maximum")
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a number"
        if low is not None and high is not None:
            if "exclusiveMinimum" in s:
                return f"{noun} greater than {_n(low)} and at most {_n(high)}"
            return f"{noun} between {_n(low)} and {_n(high)}"
        if low is not None:
            return f"{noun} greater than {_n(low)}" if "exclusiveMinimum" in s else f"{noun} of at least {_n(low)}"
        if high is not None:
            return f"{noun} of at most {_n(high)}"
        return noun
    if kind == "string":
        lo, hi = s.get("minLength"), s.get("maxLength")
        if lo and hi:
            return f"a string of {lo} to {hi} characters"
        if hi:
            return f"a string of at most {hi} characters"
        if lo:
            return "a non-empty string"
        return "a string"
    if kind == "boolean":
        return "true or false"
    if kind == "array":
        items = s.get("items")
        lo, hi = s.get("minItems"), s.get("maxItems")
        what = f"a list of {describe(items)} values" if isinstance(items, dict) and items else "a list"
        if lo and hi:
            return f"{what} ({lo} to {hi} items)"
        if hi:
            return f"{what} (at most {hi} items)"
        return what
    if kind == "object":
        return "a JSON object"
    if "anyOf" in s or "oneOf" in s:
        options: list[Any] = s.get("anyOf") or s.get("oneOf") or []
        return " or ".join(describe(x) for x in options)
    return "valid"


def explain(schema: Schema, error: Any, task: str | None = None) -> str:
    """A client-facing message for one jsonschema_rs error: which field, what it must be.
    Inside a task's ``params`` the message names the param and the task type."""
    kind = type(error.kind).__name__
    path = list(error.instance_path)
    rule_path = list(error.schema_path)
    owner = _subschema(schema, rule_path[:-1]) if rule_path else schema
    in_params = task is not None and path[:1] == ["params"]
    where = _dotted(path[1:] if in_params else path)
    if in_params:
        field = f"param '{where}' of {task}" if where else f"params of {task}"
    else:
        field = f"'{where}'" if where else "the request body"
    if kind == "Required":
        missing = error.kind.property
        if task is not None and missing == "params" and not path:
            fields = ", ".join(owner.get("properties", {}).get("params", {}).get("properties", {}))
            return f"missing 'params': params of {task} must be a JSON object" + (f" with {fields}" if fields else "")
        if in_params and not where:
            expected = ", ".join(owner.get("properties", {}))
            return f"missing param '{missing}' for {task}; expected {expected}"
        prop = owner.get("properties", {}).get(missing, {}) if isinstance(owner, dict) else {}
        inside = f" in '{where}'" if where else ""
        hint = f": {prop['description']}" if isinstance(prop, dict) and prop.get("description") else ""
        return f"missing '{missing}'{inside}{hint}"
    if kind == "AdditionalProperties":
        unknown = sorted(error.kind.unexpected)[0]
        expected = ", ".join(owner.get("properties", {})) if isinstance(owner, dict) else ""
        if owner.get("x-unknown") == "task":
            return f"unknown task '{unknown}'; known tasks: {expected}"
        if in_params and not where:
            return f"unknown param '{unknown}' for {task}; expected {expected}"
        inside = f" in '{where}'" if where else ""
        return f"unknown field '{unknown}'{inside}; expected {expected}"
    if kind == "Type" and owner.get("type") == "object":
        if not path:
            return "request body must be a JSON object"
        if in_params and not where:
            return f"params of {task} must be a JSON object with {', '.join(owner.get('properties', {}))}"
    if kind == "MinProperties":
        return str(owner.get("x-empty", f"{field} must have at least {owner.get('minProperties')} entries"))
    if kind == "MaxProperties":
        return f"{field} has more than {owner.get('maxProperties')} entries"
    if kind == "Pattern" and "x-describe" not in owner:
        return f"{field} must match the pattern {owner.get('pattern')}"
    return f"{field} must be {describe(owner)}"


# --- variants --------------------------------------------------------------------------------

class Variants:
    """A body whose shape depends on one of its fields (the task type): ``pick`` names the
    variant, whose schema is then checked. Published as a ``oneOf`` of the variants."""

    def __init__(self, variants: Mapping[str, Schema], pick: Callable[[dict[str, Any]], str],
                 prefix: str = "") -> None:
        self.variants = dict(variants)
        self.pick = pick
        self._checkers = {name: Checker(s, prefix, _task_of(s)) for name, s in self.variants.items()}

    def check(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("request body must be a JSON object")
        return self._checkers[self.pick(data)].check(data)


def _task_of(variant: Schema) -> str | None:
    task = variant.get("properties", {}).get("task", {})
    return task.get("const") if isinstance(task, dict) and "params" in variant.get("properties", {}) else None
