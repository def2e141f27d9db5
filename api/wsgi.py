"""WSGI entry point for servers that import an app by name (``api.wsgi:app``): settings come
from the ``TASKER_*`` environment."""

from __future__ import annotations

from flask import Flask

from api.app import create_app


def create() -> Flask:
    return create_app()
