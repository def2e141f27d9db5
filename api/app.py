"""The Flask application factory. ``tasker api`` serves it with gunicorn."""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.engine import Engine

from api import auth, errors, limits, openapi, schemas
from api.background import BackgroundDispatcher
from api.body import check_request_shape
from api.routes import health, seed, tasks, workflows
from api.services import Services
from core import catalogue, httpspec
from core.dispatch import Dispatcher
from core.settings import Settings
from core.sqs import Transport, make_client
from db.engine import make_engine

log = logging.getLogger("tasker.api")


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    transport: Transport | None = None,
) -> Flask:
    settings = settings or Settings.from_env().with_runtime()
    catalogue.load_task_modules(settings.task_module_list)
    httpspec.configure(settings.http_timeout_max_s, settings.http_allow)
    if engine is None:
        engine = make_engine(
            settings.require_database(), pool_size=settings.api_threads + 2, max_overflow=4, pre_ping=False
        )
    if transport is None:
        # short timeouts: the API never waits long for SQS
        transport = Transport(settings, make_client(settings, read_timeout=5))
    dispatcher = Dispatcher(engine, transport, settings, source="api")
    background = BackgroundDispatcher(dispatcher, linger_s=settings.dispatch_linger_ms / 1000)

    app = Flask("tasker")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["tasker"] = Services(settings, engine, transport, background)
    app.extensions["tasker_schemas"] = schemas.build(settings)
    errors.install(app)
    app.before_request(lambda: check_request_shape(settings))
    auth.install(app)
    limits.install(app)
    app.register_blueprint(seed.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(tasks.bp)
    app.register_blueprint(workflows.bp)
    app.register_blueprint(openapi.bp)
    return app
