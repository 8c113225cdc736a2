"""API keys: random 256-bit tokens shown once at creation; stores keep only their SHA-256 and a scope.

Example:
    >>> token, record = create_key(store, "support-bot", "tag")   # doctest: +SKIP
    >>> token.startswith("fnlp_")                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import uuid

from ..errors import InvalidInputError, quoted
from ._store import SCOPES, ApiKey, Store, hash_key, utcnow

__all__ = ["KeyCache", "create_key"]

TOKEN_PREFIX = "fnlp_"
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def create_key(store: Store, name: str, scope: str = "tag") -> tuple[str, ApiKey]:
    """Create a key: returns the token (give it to the client, it cannot be recovered) and its record."""
    if scope not in SCOPES:
        raise InvalidInputError(f"scope must be one of {list(SCOPES)}, got {quoted(scope)}")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidInputError("a key needs a name of 1-100 characters (who or what uses it)")
    if m := _UNPRINTABLE.search(name):  # "ci\nkey_0\tadmin\tactive" forged a line of `keys list`
        raise InvalidInputError(f"a key name may not hold control, bidirectional-override or undecodable "
                                f"characters (U+{ord(m.group()):04X})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey("key_" + uuid.uuid4().hex[:12], name.strip(), scope, hash_key(token), utcnow().isoformat())
    store.add_key(record)
    return token, record


class KeyCache:
    """Looks keys up by hash with a short memory, so a request does not query the store each time; a key
    revoked in another process stops working within ``ttl_s``."""

    def __init__(self, store: Store, ttl_s: float = 5.0, max_entries: int = 10_000) -> None:
        self.store, self.ttl_s, self.max_entries = store, ttl_s, max_entries
        self._seen: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def cached(self, token: str) -> tuple[bool, ApiKey | None]:
        """``(hit, record)`` from memory only; cheap enough for the event loop."""
        entry = self._seen.get(hash_key(token))
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return False, None
        return True, entry[1]

    def lookup(self, token: str) -> ApiKey | None:
        """The valid (not revoked) key for ``token`` or ``None``; blocking, run it in a thread."""
        digest = hash_key(token)
        record = self.store.key_by_hash(digest)
        valid = record if record is not None and not record.revoked else None
        with self._lock:
            if len(self._seen) >= self.max_entries:  # unknown tokens must not grow memory without bound
                self._seen.clear()
            self._seen[digest] = (time.monotonic(), valid)
        return valid
