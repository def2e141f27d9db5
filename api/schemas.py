"""The schemas of every request and answer of the API, built once per application from the
task catalogue and the settings (task type names, the longest HTTP timeout).

Requests are checked against these exact dictionaries (``api/openapi.py``'s ``@doc``), and the
OpenAPI document publishes them: the document cannot drift from what the API enforces.
"""

from __future__ import annotations

from typing import Any

from core import catalogue, httpspec
from core import schedule as schedules
from core.errors import ValidationError
from core.schema import Checker, Schema, Variants, enum, integer, number, obj, string
from core.settings import Settings
from core.statuses import TASK_STATES, WORKFLOW_STATES, ProcessStatus

NULLABLE_TIME = {"type": ["string", "null"], "maxLength": 64,
                 "description": "ISO 8601 date-time; without an offset it is read in 'timezone'"}

CLIENT_NAME = string(200, 1, "the client the request is for; a client key may only name its own client "
                             "(left out: the key's client)", pattern=r"\S",
                     **{"x-describe": "a non-empty string of at most 200 characters"})
RETRIES = integer(0, 20, "retries after a failed attempt (default TASKER_RETRIES)")
RETRY_BASE = number(0, 86400, "base of the exponential backoff, in seconds", exclusive_low=True)
RETRY_MAX = number(0, 86400, "cap of the backoff, in seconds", exclusive_low=True)
ERROR: Schema = obj({"error": obj({"message": string(description="what went wrong and what to fix")},
                                  ("message",), additional=True)}, ("error",), additional=True)


def schedule_fields() -> dict[str, Schema]:
    """When a task runs (see core/schedule.py); the seeds' aliases are accepted too."""
    return {
        "run_at": NULLABLE_TIME,
        "delay": {"type": ["number", "string", "null"], "maxLength": 32,
                  "description": "seconds, or a string like '30s', '5m', '2h', '1d'"},
        "interval": {"type": ["number", "null"], "exclusiveMinimum": 0,
                     "description": "seconds between periodic runs (anchored to start_at)"},
        "cron": {"type": ["string", "null"], "maxLength": 200,
                 "description": "a 5-field cron expression, read in 'timezone'"},
        "timezone": {"type": ["string", "null"], "maxLength": 64, "description": "IANA name, default UTC"},
        "start_at": NULLABLE_TIME,
        "end_at": NULLABLE_TIME,
        "max_runs": {"type": ["integer", "null"], "minimum": 1, "description": "periodic runs at most"},
        "misfire": {"type": ["string", "null"], "enum": [*schedules.MISFIRE, None],
                    "description": "after downtime: run once for the missed window, or skip it"},
        "task_type": {"type": ["string", "null"], "enum": ["one_time", "periodic", None],
                      "description": "the seeds' kind of schedule"},
        "frequency": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "alias of interval"},
        "run_datetime": {**NULLABLE_TIME, "description": "alias of run_at"},
        "start_datetime": {**NULLABLE_TIME, "description": "alias of start_at"},
        "end_datetime": {**NULLABLE_TIME, "description": "alias of end_at"},
    }


def _common(with_schedule: bool = True) -> dict[str, Schema]:
    out = {"client_name": CLIENT_NAME, "retries": RETRIES, "retry_base_s": RETRY_BASE, "retry_max_s": RETRY_MAX}
    return {**out, **(schedule_fields() if with_schedule else {})}


def _task_variant(data: dict[str, Any], missing: str) -> str:
    """The variant named by a body's ``task``: a known task type, else a 400 naming them."""
    task = data.get("task")
    if task is None:
        raise ValidationError(f"missing 'task': {missing}")
    if not isinstance(task, str):
        raise ValidationError(f"'task' must be a string: one of {', '.join(catalogue.names())}")
    catalogue.get(task)  # unknown -> 400 naming the known ones
    return f"task:{task}"


def _pick_task(data: dict[str, Any]) -> str:
    """Which variant of a task spec a body is: HTTP when it has a url, else its task type."""
    if "url" in data:
        return "http"
    return _task_variant(data, f"give 'url' for an HTTP task, or 'task' (one of {', '.join(catalogue.names())}) "
                               "and 'params'")


def task_variants(settings: Settings, *, patch: bool = False) -> dict[str, Schema]:
    """A task spec: an HTTP call (``url`` and its fields at the top level) or a built-in task
    (``task`` and its ``params``), plus when it runs and how it is retried."""
    http = httpspec.schema(settings.http_timeout_max_s)
    out: dict[str, Schema] = {}
    http_props = {"task": {"const": "http", "description": "optional for an HTTP task"},
                  **http["properties"], **_common()}
    out["http"] = obj(http_props, () if patch else ("url",), "call a URL")
    for spec in catalogue.all_types():
        props = {"task": {"const": spec.name}, "params": spec.params_schema(), **_common()}
        out[f"task:{spec.name}"] = obj(props, ("task",) if patch else ("task", "params"), spec.description)
    return out


def step_variants(settings: Settings) -> dict[str, Schema]:
    """A workflow step (or fallback): a task spec without its own schedule or client; an HTTP
    step may send the previous step's answer as its body."""
    skip = {*schedule_fields(), "client_name"}
    out = {}
    for key, variant in task_variants(settings).items():
        props = {k: v for k, v in variant["properties"].items() if k not in skip}
        if key == "http":
            props["body_from"] = {"type": "string", "enum": ["previous"],
                                  "description": "send the previous step's answer (parsed when it is JSON) as the body"}
        out[key] = obj(props, tuple(variant.get("required", ())), variant.get("description", ""))
    return out


def workflow_create(settings: Settings) -> Checker:
    http = httpspec.schema(settings.http_timeout_max_s)
    check = obj({**http["properties"],
                 "json_field": string(200, 1, "a dotted path in the JSON answer (a.b.0.c) that must equal 'equals'"),
                 "equals": {"description": "the value json_field must have"}},
                ("url",), "an HTTP call; it passes when the answer's status is one of success_codes (default "
                          "2xx) and, if json_field is given, the field equals 'equals'")
    seconds = {"type": ["number", "string"], "maxLength": 32,
               "description": "seconds, or a string like '30s', '5m', '2h', '1d'"}
    return Checker(obj({
        "client_name": CLIENT_NAME,
        "steps": {"type": "array", "items": {"type": "object"}, "minItems": 1, "maxItems": 20,
                  "description": "task specs run in order (HTTP or built-in, each with its own retries)",
                  "x-describe": "a list of 1 to 20 task specs"},
        "initial_delay": {**seconds, "description": "wait before step 1 (default 0)"},
        "run_at": {"type": "string", "maxLength": 64, "description": "ISO 8601 time of step 1 (instead of initial_delay)"},
        "condition_check": check,
        "condition_check_delay": {**seconds, "description": "wait after a step before its first check (default 0)"},
        "condition_check_retries": integer(0, 1000, "checks after the first before the fallback runs (default 3)"),
        "condition_check_interval": {**seconds, "description": "wait between two checks (default 10 s)"},
        "fallback": {"type": "object", "description": "a task spec run when a step fails or the condition never passes"},
    }, ("steps",)), parts={"steps": "WorkflowStep", "fallback": "WorkflowStep"})


def workflow_answer() -> Schema:
    nullable_time = {"type": ["string", "null"]}
    item = obj({"kind": enum(["step", "check", "fallback"]), "position": integer(0), "attempt": integer(0),
                "task_id": string(), "status": string(), "outcome": {"type": ["string", "null"]},
                "history": {"type": "array", "items": {"type": "object"}}},
               ("kind", "position", "task_id"), additional=True)
    return obj({
        "id": string(), "client_name": string(), "status": enum(WORKFLOW_STATES), "phase": string(),
        "step": integer(0), "checks": integer(0), "message": {"type": ["string", "null"]},
        "next_at": nullable_time, "created_at": string(), "updated_at": string(), "finished_at": nullable_time,
        "spec": {"type": "object"}, "items": {"type": "array", "items": item},
    }, ("id", "client_name", "status", "created_at"), additional=True)


def process_variants() -> dict[str, Schema]:
    out = {}
    for spec in catalogue.all_types():
        props = {"task": {"const": spec.name}, "client_name": CLIENT_NAME, "params": spec.params_schema(),
                 "retries": RETRIES}
        out[f"task:{spec.name}"] = obj(props, ("task", "params"), spec.description)
    return out


def _pick_process(data: dict[str, Any]) -> str:
    return _task_variant(data, f"one of {', '.join(catalogue.names())}")


def task_answer() -> Schema:
    nullable_time = {"type": ["string", "null"]}
    return obj({
        "id": string(), "client_name": string(), "task": string(), "params": {},
        "status": enum(TASK_STATES), "schedule": {"type": "object"},
        "next_run_datetime": nullable_time, "run_count": integer(0),
        "last_run": {"type": ["object", "null"]}, "result": {}, "error": {"type": ["string", "null"]},
        "created_at": string(), "updated_at": string(), "finished_at": nullable_time,
    }, ("id", "client_name", "task", "status", "created_at"), additional=True)


def request_answer() -> Schema:
    return obj({
        "rid": string(), "task": string(), "params": {}, "status": enum(TASK_STATES), "cached": {"type": "boolean"},
        "attempts": integer(0), "created_at": string(), "result": {}, "error": {"type": ["string", "null"]},
    }, ("rid", "task", "status"), additional=True)


def build(settings: Settings) -> dict[str, Any]:
    """Every named schema: request bodies and queries (checked), answers (published)."""
    names = catalogue.names()
    task = task_answer()
    ids = obj({"ids": {"type": "array", "items": string(64, 1), "minItems": 1, "maxItems": 500,
                       "description": "task ids"}}, ("ids",))
    cursor = integer(1, 2**62, "next_cursor of the previous page")
    settable = [ProcessStatus.ACTIVE.value, ProcessStatus.SUSPENDED.value]  # 'error', 'queue': Tasker's own
    workflow = workflow_answer()
    schemas: dict[str, Any] = {
        # --- request bodies
        "ProcessRequest": Variants(process_variants(), _pick_process),
        "TaskCreate": Variants(task_variants(settings), _pick_task),
        "TaskPatch": Checker(obj({**httpspec.schema(settings.http_timeout_max_s)["properties"],
                                  "task": string(100, description="must be the task's own type"),
                                  "params": {"type": "object", "description": "new params of a built-in task"},
                                  **_common()},
                                 description="the fields to change; the others keep their values")),
        "TaskBatch": Checker(obj({"tasks": {"type": "array", "items": {"type": "object"}, "minItems": 1,
                                            "maxItems": 100, "description": "task specs, as POST /tasks takes",
                                            "x-describe": "a list of 1 to 100 task specs"}},
                                 ("tasks",)), parts={"tasks": "TaskCreate"}),
        "TaskIds": Checker(ids),
        "WorkflowCreate": workflow_create(settings),
        "WorkflowStep": Variants(step_variants(settings), _pick_task),
        "SetProcessesStatus": Checker({**obj({n: enum(settable, "'error' and 'queue' are set by Tasker itself")
                                               for n in names}), "minProperties": 1,
                                       "x-unknown": "task", "x-empty": "name at least one task type and its new "
                                       'status, e.g. {"mult3": "suspended"}',
                                       "description": 'task types and their new status, e.g. {"mult3": "suspended"}'}),
        # --- queries (strings coerced to the declared type first)
        "RequestsQuery": Checker(obj({"client_name": CLIENT_NAME, "limit": integer(1, 500, "page size (default 50)"),
                                      "cursor": cursor})),
        "TasksQuery": Checker(obj({"state": enum([*TASK_STATES, "all"], "default all"),
                                   "limit": integer(1, 500, "page size (default 50)"), "cursor": cursor,
                                   "client": string(200, 1, "'*' (admin): every client's; a name: that client's"),
                                   "client_name": string(200, 1, "alias of client")})),
        "WorkflowsQuery": Checker(obj({"state": enum([*WORKFLOW_STATES, "all"], "default all"),
                                       "limit": integer(1, 500, "page size (default 50)"), "cursor": cursor,
                                       "client": string(200, 1, "'*' (admin): every client's; a name: that client's")})),
        "JobsQuery": Checker(obj({"limit": integer(1, 1000, "tasks per group (default 100)"),
                                  "client": string(200, 1, "'*' (admin): every client's")})),
        # --- answers (published only)
        "Error": ERROR,
        "Task": task,
        "TaskCreated": obj({"id": string(), "message": string(), "status": enum(TASK_STATES),
                            "next_run_datetime": {"type": ["string", "null"]}}, ("id", "status"), additional=True),
        "TaskBatchCreated": obj({"ids": {"type": "array", "items": string()}, "message": string()}, ("ids",),
                                additional=True),
        "TaskList": obj({"count": integer(0), "tasks": {"type": "array", "items": task},
                         "next_cursor": {"type": ["string", "null"]}}, ("count", "tasks"), additional=True),
        "TaskChanged": obj({"id": string(), "status": string(), "message": string(),
                            "next_run_datetime": {"type": ["string", "null"]}}, ("id", "status"), additional=True),
        "BulkResults": obj({"results": {"type": "object", "additionalProperties": obj(
            {"success": {"type": "boolean"}, "error": string()}, ("success",), additional=True)}},
            ("results",), additional=True),
        "TaskHistory": obj({"id": string(), "status": string(), "history": {"type": "array", "items": {"type": "object"}}},
                           ("id", "history"), additional=True),
        "Jobs": obj({k: {"type": "object", "additionalProperties": task} for k in ("running", "scheduled", "history")},
                    ("running", "scheduled", "history"), additional=True),
        "ProcessAnswer": obj({"process": obj({"rid": string(), "cached": {"type": "boolean"}, "success": {"type": "boolean"},
                                              "status": enum(TASK_STATES), "message": string(), "result": {}},
                                             ("rid", "success", "status"), additional=True)}, ("process",), additional=True),
        "RequestsStatus": obj({"get_requests_status": obj({
            "client_name": string(), "requests": {"type": "array", "items": request_answer()},
            "next_cursor": {"type": ["string", "null"]}, "success": {"type": "boolean"}},
            ("requests", "success"), additional=True)}, ("get_requests_status",), additional=True),
        "ProcessesStatus": obj({"get_processes_status": obj({
            "processes": {"type": "object", "additionalProperties": obj(
                {"status": enum([s.value for s in ProcessStatus]), "since": {"type": ["string", "null"]}},
                ("status",), additional=True)},
            "success": {"type": "boolean"}}, ("processes", "success"), additional=True)},
            ("get_processes_status",), additional=True),
        "ProcessesSet": obj({"set_processes_status": obj({"processes": {"type": "object"}, "success": {"type": "boolean"}},
                                                         ("success",), additional=True)},
                            ("set_processes_status",), additional=True),
        "Workflow": workflow,
        "WorkflowCreated": obj({"id": string(), "status": enum(WORKFLOW_STATES), "message": string(),
                                "start_at": string()}, ("id", "status"), additional=True),
        "WorkflowList": obj({"count": integer(0), "workflows": {"type": "array", "items": workflow},
                             "next_cursor": {"type": ["string", "null"]}}, ("count", "workflows"), additional=True),
        "WorkflowCancelled": obj({"id": string(), "status": enum(WORKFLOW_STATES), "message": string()},
                                 ("id", "status", "message"), additional=True),
        "Health": obj({"status": string()}, ("status",), additional=True),
        "Ready": obj({"status": string(), "checks": {"type": "object"}}, ("status",), additional=True),
    }
    return schemas
