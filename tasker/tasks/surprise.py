from __future__ import annotations

from typing import Any

from core import song


def run(params: dict[str, Any]) -> Any:
    return song.LINES[params["first"] - 1]
