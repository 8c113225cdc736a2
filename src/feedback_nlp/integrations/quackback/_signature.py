"""Webhook signatures: ``X-Quackback-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``.

The check runs over the raw request bytes (re-serialised JSON would differ), compares in constant time, and
refuses timestamps outside a replay window. Failures raise :class:`SignatureError` whose reason is meant for
the receiver's logs; the sender only ever sees a bare 401.

Example:
    >>> body = b'{"id":"evt_1","type":"post.created","data":{}}'
    >>> headers = signed_headers("whsec", body, timestamp=1_700_000_000)
    >>> verify_signature("whsec", headers, body, now=1_700_000_030)
    1700000000
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from ._errors import SignatureError
from ._secrets import Secret

__all__ = ["DEFAULT_TOLERANCE_S", "sign", "signed_headers", "verify_signature"]

DEFAULT_TOLERANCE_S = 300  # Quackback's retries arrive with a fresh timestamp, so 5 minutes suffices
SIGNATURE_HEADER = "x-quackback-signature"
TIMESTAMP_HEADER = "x-quackback-timestamp"
EVENT_HEADER = "x-quackback-event"
_PREFIX = "sha256="


def _key(secret: str | Secret) -> bytes:
    return (secret.reveal() if isinstance(secret, Secret) else secret).encode("utf-8")


def sign(secret: str | Secret, timestamp: int | str, body: bytes) -> str:
    """The header value Quackback sends for ``body`` at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(_key(secret), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return _PREFIX + mac.hexdigest()


def signed_headers(secret: str | Secret, body: bytes, *, timestamp: int | None = None,
                   event_type: str = "post.created") -> dict[str, str]:
    """The headers of a signed delivery (for tests and for replaying stored events by hand)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {"Content-Type": "application/json", "X-Quackback-Event": event_type,
            "X-Quackback-Timestamp": str(ts), "X-Quackback-Signature": sign(secret, ts, body)}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify_signature(secret: str | Secret, headers: Mapping[str, str], body: bytes, *,
                     tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> int:
    """Check a delivery's signature and timestamp; return the timestamp or raise :class:`SignatureError`."""
    if not _key(secret).strip():  # anybody can compute an HMAC under an empty key: it authenticates no one
        raise SignatureError("the signing secret is empty: every delivery is refused")
    sig = _header(headers, SIGNATURE_HEADER)
    ts_text = _header(headers, TIMESTAMP_HEADER)
    if not sig or not ts_text:
        raise SignatureError("missing signature or timestamp header")
    ts_text = ts_text.strip()
    # Digits only: int() would also accept "+1_700_000_000" or " 17e8", which the sender never produces.
    if not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
        raise SignatureError("malformed timestamp header")
    ts = int(ts_text)
    now = time.time() if now is None else now
    if not abs(now - ts) <= tolerance_s:  # written so that a NaN window refuses rather than accepts every time
        raise SignatureError(f"timestamp outside the {tolerance_s:g} s replay window")
    expected = sign(secret, ts_text, body)
    # compare_digest on bytes of equal-or-not length is constant-time in the contents.
    if not hmac.compare_digest(expected.encode("ascii"), sig.strip().lower().encode("utf-8", "replace")):
        raise SignatureError("signature mismatch")
    return ts
