"""``tasker api``: the Flask app under an HTTP server.

Two servers, chosen by ``TASKER_API_SERVER``: ``granian`` (the default: its HTTP layer is
Rust; measured here it spends about 0.25 ms of CPU per request where gunicorn's threaded
worker spends 0.8 ms, which on a 2-core machine is the difference between the API or the
database being the bottleneck) and ``gunicorn`` (the classic choice; the compose file uses it).
Both run ``TASKER_API_WORKERS`` processes with ``TASKER_API_THREADS`` threads each.
"""

from __future__ import annotations

import contextlib
from typing import Any

from gunicorn.app.base import BaseApplication

from core.settings import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api.app import create_app

        return create_app(self.settings)


def serve(settings: Settings) -> None:
    if settings.api_server == "granian":
        serve_granian(settings)
    else:
        serve_gunicorn(settings)


def serve_granian(settings: Settings) -> None:
    import os

    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    os.environ.update(settings.env())  # the workers build their settings from the environment
    Granian(
        "api.wsgi:create",
        factory=True,
        address=settings.api_host,
        port=settings.api_port,
        interface=Interfaces.WSGI,
        workers=settings.api_processes,
        blocking_threads=settings.api_threads,
        backlog=2048,
        log_level=LogLevels.warning,
        log_access=False,
        respawn_failed_workers=True,
        # a worker that has not finished its requests this long after SIGTERM is killed
        workers_kill_timeout=5,
    ).serve()
    _reap_children()


def _reap_children(grace_s: float = 5.0) -> None:
    """granian occasionally returns while a worker process is still shutting down; never leave
    one behind (it would hold database connections with nobody to stop it)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def serve_gunicorn(settings: Settings) -> None:
    options = {
        "bind": f"{settings.api_host}:{settings.api_port}",
        "workers": settings.api_processes,
        "worker_class": "gthread",
        "threads": settings.api_threads,
        "keepalive": 30,
        "timeout": 60,
        "graceful_timeout": 20,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "tasker-api",
        "backlog": 2048,
        # above TASKER_MAX_URL_LENGTH / _REQUEST_HEADERS / _HEADER_BYTES, so a client meets the
        # API's JSON 414 and 431 answers rather than gunicorn's plain-text 400
        "limit_request_line": 8190,
        "limit_request_fields": 1000,
        "limit_request_field_size": 65536,
    }
    _Gunicorn(settings, options).run()
