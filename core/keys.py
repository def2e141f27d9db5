"""API keys: ``tk_<key id>_<secret>``. Only a SHA-256 of the key is stored; the key id (public)
finds the row, and the hashes are compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_key() -> tuple[str, str, str]:
    """(key id, key, hash of the key)."""
    key_id = secrets.token_hex(6)
    key = f"tk_{key_id}_{secrets.token_urlsafe(32)}"
    return key_id, key, hash_key(key)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(key: str) -> str | None:
    parts = key.split("_")
    if len(parts) < 3 or parts[0] != "tk" or len(parts[1]) != 12 or not (parts[1].isascii() and parts[1].isalnum()):
        return None
    return parts[1]


def matches(key: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), stored_hash)
