"""Signed calls: what a target checks with verify_signature."""

from __future__ import annotations

import pytest

from core.signing import sign, verify_signature

SECRET = "s3cr3t"


def test_a_signature_verifies_with_the_same_secret_and_body() -> None:
    header = sign(SECRET, b'{"a": 1}', timestamp=1_000_000)
    assert header.startswith("t=1000000,v1=")
    assert verify_signature(SECRET, header, b'{"a": 1}', now=1_000_100)


@pytest.mark.parametrize(
    ("secret", "body", "now"),
    [
        ("other", b'{"a": 1}', 1_000_100),  # wrong secret
        (SECRET, b'{"a": 2}', 1_000_100),  # tampered body
        (SECRET, b'{"a": 1}', 1_000_301),  # too old (replay)
        (SECRET, b'{"a": 1}', 999_699),  # from the future
    ],
    ids=["wrong-secret", "tampered-body", "too-old", "too-new"],
)
def test_a_signature_fails_when_anything_differs(secret: str, body: bytes, now: float) -> None:
    header = sign(SECRET, b'{"a": 1}', timestamp=1_000_000)
    assert not verify_signature(secret, header, body, tolerance_s=300, now=now)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=x,v1=abc", "t=1000000", "garbage"])
def test_malformed_headers_do_not_verify(header: str | None) -> None:
    assert not verify_signature(SECRET, header, b"", now=1_000_000)
