"""Fixtures: a real PostgreSQL (``TASKER_TEST_DATABASE_URL``, else an embedded one), migrated
once into a template database and cloned per test; a real SQS endpoint (moto's server as a
subprocess, over HTTP); in-process tasker and controller threads."""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

# Tests never inherit the operator's configuration.
for _name in [n for n in os.environ if n.startswith("TASKER_") and n != "TASKER_TEST_DATABASE_URL"]:
    del os.environ[_name]
os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())

import tests.support.plugin_tasks  # noqa: E402,F401  (registers 'sleep' and 'boom')
from cli.embedded import EmbeddedPostgres, LocalSQS  # noqa: E402
from core import catalogue  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.sqs import Transport  # noqa: E402
from db.engine import make_engine  # noqa: E402
from db.migrate import upgrade  # noqa: E402

PLUGINS = "tests.support.plugin_tasks"
#: an admin key present in every test database (created in the template)
ADMIN_KEY = "tk_000000000001_test-admin-key-for-the-test-suite"


def _admin(url: str) -> Any:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL to an existing database on a server where we may create databases."""
    url = os.environ.get("TASKER_TEST_DATABASE_URL")
    if url:
        yield url
        return
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
    pg.start()
    try:
        yield _with_db(pg.url, "postgres")
    finally:
        pg.stop()


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    name = f"tasker_tmpl_{os.getpid()}"
    admin = _admin(pg_admin_url)
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        cur.execute(f"CREATE DATABASE {name}")
    upgrade(_with_db(pg_admin_url, name))
    from db.store import clients

    engine = make_engine(_with_db(pg_admin_url, name))
    with engine.begin() as conn:
        clients.create(conn, "admin", admin=True, key=ADMIN_KEY)
    engine.dispose()
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test (cloned from the template: fast)."""
    name = f"tasker_t_{uuid.uuid4().hex[:12]}"
    admin = _admin(pg_admin_url)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} TEMPLATE {template_db}")
    try:
        yield _with_db(pg_admin_url, name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@pytest.fixture(scope="session")
def sqs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSQS]:
    server = LocalSQS(log_path=tmp_path_factory.mktemp("sqs") / "sqs.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(database_url: str, sqs_server: LocalSQS, tmp_path: Path) -> Settings:
    """Settings for one test: its own database and its own queue names."""
    return Settings(
        database_url=database_url,
        sqs_endpoint=sqs_server.url,
        queue_prefix=f"t{uuid.uuid4().hex[:10]}-",
        data_dir=str(tmp_path / "data"),
        secrets_dir=str(tmp_path / "secret"),
        lease_seconds=10,
        poll_seconds=1,
        controller_interval=0.1,
        dispatch_linger_ms=20,
        receive_linger_ms=20,
        retry_base_s=0.1,
        retry_max_s=0.5,
        worker_concurrency=8,
        task_modules=PLUGINS,
        http_allow="127.0.0.0/8",  # the tests' HTTP targets listen on loopback
    )


@pytest.fixture
def engine(settings: Settings) -> Iterator[Any]:
    eng = make_engine(settings.require_database())
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def transport(settings: Settings) -> Transport:
    return Transport(settings)


@pytest.fixture
def app(settings: Settings, engine: Any) -> Iterator[Any]:
    from api.app import create_app

    application = create_app(settings, engine=engine)
    # processes rows exist once a controller started; tests without one need them too
    from db.engine import transaction
    from db.store import processes

    with transaction(engine) as conn:
        processes.ensure_processes(conn, catalogue.names())
    yield application
    application.extensions["tasker"].dispatcher.stop()


def authed(test_client: Any, key: str = ADMIN_KEY) -> Any:
    """A Flask test client that sends ``Authorization: Bearer <key>`` with every request."""
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return test_client


@pytest.fixture
def client(app: Any) -> Any:
    return authed(app.test_client())


class Threads:
    """Start in-process taskers and controllers; stop them all at the end of the test."""

    def __init__(self, settings: Settings, engine: Any) -> None:
        self.settings = settings
        self.engine = engine
        self.started: list[Any] = []

    def worker(self, queues: list[str] | None = None, **overrides: Any) -> Any:
        import dataclasses

        from tasker.worker import Worker

        s = dataclasses.replace(self.settings, **overrides)
        w = Worker(s, self.engine, Transport(s), queues or catalogue.names())
        w.start()
        self.started.append(w)
        return w

    def controller(self, **overrides: Any) -> Any:
        import dataclasses

        from controller.loop import Controller

        s = dataclasses.replace(self.settings, **overrides)
        c = Controller(s, self.engine, Transport(s), controller_id=f"controller-{uuid.uuid4().hex[:6]}")
        thread = threading.Thread(target=c.run_forever, daemon=True)
        thread.start()
        c.thread = thread  # type: ignore[attr-defined]
        self.started.append(c)
        return c

    def stop_all(self) -> None:
        from controller.loop import Controller

        for item in reversed(self.started):
            if isinstance(item, Controller):
                item.stopping.set()
                item.thread.join(timeout=10)  # type: ignore[attr-defined]
            else:
                item.stop(grace_s=5)


@pytest.fixture
def threads(settings: Settings, engine: Any) -> Iterator[Threads]:
    t = Threads(settings, engine)
    try:
        yield t
    finally:
        t.stop_all()


@pytest.fixture
def target() -> Iterator[Any]:
    from tests.support.target import Target

    t = Target()
    try:
        yield t
    finally:
        t.close()
