"""``@doc`` declares what an endpoint takes and answers; the same declaration checks each request
and builds ``GET /openapi.json``, so the document is generated, never written by hand.

A view decorated with ``@doc(body="TaskCreate")`` finds its checked body in ``g.body`` (and its
checked query in ``g.query``); the schemas are the named ones of ``api/schemas.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, g, jsonify, request

from api.body import json_object, no_nul
from core.schema import Checker, Variants

bp = Blueprint("openapi", __name__)
_PATH_VAR = re.compile(r"<(?:[a-z]+:)?([A-Za-z_]+)>")
_INT = re.compile(r"^-?\d{1,19}$")

#: why each standard error answer can happen
_STANDARD = {
    400: "the request is malformed; the message names the field to fix",
    401: "missing, wrong or revoked API key",
    403: "the key may not do this (another client's task, or an admin-only action)",
    404: "no such task",
    409: "the task's state does not allow this",
    413: "the request body is larger than TASKER_MAX_BODY_BYTES",
    414: "the path and query string are longer than TASKER_MAX_URL_LENGTH",
    429: "a per-client quota or the request rate limit was reached (see Retry-After)",
    431: "more request headers than TASKER_MAX_REQUEST_HEADERS, or larger than TASKER_MAX_HEADER_BYTES",
    503: "the database or the queue is unavailable; retry later",
}


@dataclasses.dataclass(frozen=True)
class Doc:
    summary: str
    tag: str
    responses: dict[int, str | None]
    body: str | None = None
    body_required: bool = True
    query: str | None = None
    #: the seeds send a GET with a JSON body: it is merged over the query string
    query_from_body: bool = False
    public: bool = False
    description: str = ""
    errors: tuple[int, ...] = ()


def doc(summary: str, *, tag: str, responses: dict[int, str | None], body: str | None = None,
        body_required: bool = True, query: str | None = None, query_from_body: bool = False,
        public: bool = False, description: str = "", errors: tuple[int, ...] = ()) -> Callable[..., Any]:
    meta = Doc(summary, tag, responses, body, body_required, query, query_from_body, public, description, errors)

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            schemas = current_app.extensions["tasker_schemas"]
            no_nul("path", kwargs.values())
            if meta.body:
                g.body = schemas[meta.body].check(json_object(required=meta.body_required))
            if meta.query:
                checker = schemas[meta.query]
                raw = dict(request.args.items())
                no_nul("query string", [*raw, *raw.values()])
                if meta.query_from_body:
                    raw.update(json_object(required=False))
                g.query = checker.check(_typed(raw, checker.schema))
            return view(*args, **kwargs)

        checked.__tasker_doc__ = meta  # type: ignore[attr-defined]
        return checked

    return wrap


def _typed(raw: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Query values as the schema's types: '10' -> 10 where an integer is declared (anything
    else stays as it is, and the check names the parameter). An empty value is a value: the
    document says what each parameter must be, and ``limit=`` is not a page size."""
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue
        if props.get(name, {}).get("type") == "integer" and isinstance(value, str) and _INT.match(value):
            out[name] = int(value)
        else:
            out[name] = value
    return out


# --- the document ---------------------------------------------------------------------------

def _schema_of(item: Any, name: str = "") -> dict[str, Any]:
    if isinstance(item, Checker):
        return item.published(_ref)
    if isinstance(item, Variants):
        return {"oneOf": [{"$ref": f"#/components/schemas/{_variant_name(name, k)}"} for k in item.variants]}
    return dict(item)


def _variant_name(parent: str, key: str) -> str:
    return f"{parent}_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _operation(meta: Doc, path_vars: list[str], schemas: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": meta.summary, "tags": [meta.tag]}
    if meta.description:
        op["description"] = meta.description
    params: list[dict[str, Any]] = [
        {"name": v, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
        for v in path_vars
    ]
    if meta.query:
        query_schema = _schema_of(schemas[meta.query])
        for name, prop in query_schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": False, "schema": prop,
                           **({"description": prop["description"]} if "description" in prop else {})})
    if params:
        op["parameters"] = params
    if meta.body:
        op["requestBody"] = {"required": meta.body_required, "content": _json_content(_ref(meta.body))}
    responses: dict[str, Any] = {}
    for status, name in meta.responses.items():
        entry: dict[str, Any] = {"description": "see the schema" if status < 300 else "see Location"}
        if name:
            entry["content"] = _json_content(_ref(name))
        responses[str(status)] = entry
    errors = set(meta.errors) | {414, 431}  # every request: URL length, header count and size
    if meta.body or meta.query:
        errors.add(400)
    if meta.body:
        errors.add(413)
    if path_vars:
        errors.add(404)
    if not meta.public:
        errors |= {401, 403, 429, 503}
    for status in sorted(errors):
        responses[str(status)] = {"description": _STANDARD[status], "content": _json_content(_ref("Error"))}
    op["responses"] = responses
    if meta.public:
        op["security"] = []
    return op


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every documented route of ``app``."""
    schemas: dict[str, Any] = app.extensions["tasker_schemas"]
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        meta: Doc | None = getattr(view, "__tasker_doc__", None)
        if meta is None:
            continue
        path = _PATH_VAR.sub(r"{\1}", rule.rule)
        path_vars = _PATH_VAR.findall(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(meta, path_vars, schemas)
    components: dict[str, Any] = {}
    for name, item in schemas.items():
        components[name] = _schema_of(item, name)
        if isinstance(item, Variants):
            for key, variant in item.variants.items():
                components[_variant_name(name, key)] = variant
    return {
        "openapi": "3.1.0",
        "info": {"title": "Tasker", "version": _version(),
                 "description": "Run tasks now or later, once or on a schedule. Every error is "
                                '`{"error": {"message": "..."}}` with a 4xx status that says what to fix.'},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                                      "description": "Authorization: Bearer <API key>"}}},
        "security": [{"apiKey": []}],
    }


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tasker-service")
    except PackageNotFoundError:
        return "0"


@bp.get("/openapi.json")
@doc("This document", tag="meta", responses={200: None}, public=True)
def openapi_json() -> Any:
    cached = current_app.extensions.get("tasker_openapi")
    if cached is None:
        cached = current_app.extensions["tasker_openapi"] = document(current_app)
    return jsonify(cached)
