"""Property: a signature verifies exactly the bytes and timestamp it was made for."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_adapter.webhook import sign, verify

secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=512)
timestamps = st.integers(min_value=0, max_value=10**11).map(str)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, ts=timestamps, body=bodies)
def test_any_body_and_secret_round_trip(secret: bytes, ts: str, body: bytes) -> None:
    signature = sign(secret, ts, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(secret, ts, body, signature)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, ts=timestamps, body=bodies.filter(bool), data=st.data())
def test_any_single_byte_change_fails(secret: bytes, ts: str, body: bytes,
                                      data: st.DataObject) -> None:
    signature = sign(secret, ts, body)
    i = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != body[i]))
    changed = body[:i] + bytes([new]) + body[i + 1:]
    assert not verify(secret, ts, changed, signature)


@settings(max_examples=100, deadline=None)
@given(secret=secrets, other=secrets, ts=timestamps, later=timestamps, body=bodies)
def test_other_secret_or_timestamp_fails(secret: bytes, other: bytes, ts: str, later: str,
                                         body: bytes) -> None:
    signature = sign(secret, ts, body)
    if other.rstrip(b"\0") != secret.rstrip(b"\0"):   # HMAC pads short keys with zeros
        assert not verify(other, ts, body, signature)
    if later != ts:
        assert not verify(secret, later, body, signature)
