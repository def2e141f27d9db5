"""What a request handler needs, built once per API process."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from flask import current_app
from sqlalchemy.engine import Engine

from api.background import BackgroundDispatcher
from core.settings import Settings
from core.sqs import Transport
from db.engine import transaction
from db.store import requests as store


@dataclasses.dataclass
class Services:
    settings: Settings
    engine: Engine
    transport: Transport
    dispatcher: BackgroundDispatcher
    _clients: dict[str, int] = dataclasses.field(default_factory=dict)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def client_id(self, name: str, create: bool = True) -> int | None:
        cached = self._clients.get(name)
        if cached is not None:
            return cached
        with transaction(self.engine) as conn:
            found = store.ensure_client(conn, name) if create else store.client_id(conn, name)
        if found is not None:
            with self._lock:
                self._clients[name] = found
        return found


def services() -> Services:
    svc: Any = current_app.extensions["tasker"]
    return svc  # type: ignore[no-any-return]
