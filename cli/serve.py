"""``tasker api``: the Flask app under gunicorn (threaded workers, keep-alive)."""

from __future__ import annotations

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
    options = {
        "bind": f"{settings.api_host}:{settings.api_port}",
        "workers": settings.api_workers,
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
    }
    _Gunicorn(settings, options).run()
