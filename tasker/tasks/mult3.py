from __future__ import annotations

from typing import Any


def run(params: dict[str, Any]) -> Any:
    return params["first"] * params["second"] * params["third"]
