from __future__ import annotations

import uuid


def new_id() -> str:
    """A request / task / run id: 32 lowercase hex characters (a random UUID)."""
    return uuid.uuid4().hex
