"""Settings of one service process: where its data lives, which models it serves, and its limits.

Every limit has a name (``max_body_bytes``, ``max_items``, ``max_text_chars``, ``max_k``); error bodies
name the limit that was hit, so a client can tell which setting to ask an operator about.

Example:
    >>> cfg = ServiceConfig(data_dir="data", max_items=64)
    >>> cfg.limits()["max_items"]
    64
"""

from __future__ import annotations

import ipaddress
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..cleaning import MAX_TEXT_CHARS
from ..errors import InvalidInputError, quoted

__all__ = ["ServiceConfig"]


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+")


@dataclass
class ServiceConfig:
    """Configuration of :func:`~feedback_nlp.service.create_app`.

    Args:
        data_dir: folder of the SQLite store, its ANN index file and the instance lock.
        store: ``None`` for SQLite under ``data_dir``, or a ``postgresql://`` URL (pgvector).
        models: tag models by name; a value is a saved model folder or a bundled name. The first is the
            default of ``/v1/tag``. Empty: the bundled ``request-type`` model.
        themes: a saved :class:`~feedback_nlp.ThemeModel` folder for ``/v1/themes``, or ``None``.
        sentiment: the model of ``/v1/sentiment`` (a folder or a bundled name; default: the bundled
            ``sentiment`` model when this install has it), or ``None`` for no sentiment endpoint.
        embedding_model, backend: the embedder of the backlog (see :class:`~feedback_nlp.Embedder`).
        max_body_bytes: largest request body (413 above it).
        max_items: most items in one request (413 above it).
        max_text_chars: longest text after cleaning (422 above it).
        max_k: most matches one duplicate query may ask for.
        max_batch: most texts the embedder takes in one forward pass across requests.
        max_wait_ms: how long the batcher waits for more requests once it has seen concurrent traffic.
        cors_origins: origins allowed by CORS; empty (default) sends no CORS headers at all.
        duplicate_threshold: score from which a match is flagged ``duplicate`` (default: Deduper's).
        keep_metadata: metadata fields whose string values are stored as given. Every other string value of a
            backlog item's metadata is PII-redacted like its text (``{"email": "ann@example.com"}`` is stored
            and returned as ``{"email": "<EMAIL>"}``); numbers, booleans and keys are stored as given.
        auth: ``False`` only for in-process tests; the CLI always enforces API keys.
    """

    data_dir: str | Path = "feedback-nlp-data"
    store: str | None = None
    models: dict[str, str] = field(default_factory=dict)
    themes: str | None = None
    sentiment: str | None = "sentiment"
    embedding_model: str | None = None
    backend: str | None = None
    max_body_bytes: int = 1 << 20
    max_items: int = 256
    max_text_chars: int = MAX_TEXT_CHARS
    max_k: int = 100
    max_batch: int = 64
    max_wait_ms: float = 2.0
    cors_origins: tuple[str, ...] = ()
    duplicate_threshold: float | None = None
    keep_metadata: tuple[str, ...] = ()
    auth: bool = True

    def __post_init__(self) -> None:
        for name in ("max_body_bytes", "max_items", "max_text_chars", "max_k", "max_batch"):
            if int(getattr(self, name)) < 1:
                raise InvalidInputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.max_wait_ms >= 0 or self.max_wait_ms == float("inf"):  # NaN passed "< 0" and ran the server
            raise InvalidInputError(f"max_wait_ms must be a finite number >= 0, got {self.max_wait_ms}")
        t = self.duplicate_threshold  # NaN flagged no match, -1 every match, 85 (a percentage) none
        if t is not None and (isinstance(t, bool) or not isinstance(t, numbers.Real) or not 0 < t <= 1):
            raise InvalidInputError(f"duplicate_threshold must be a cosine similarity in (0, 1], got {t!r}")
        if "*" in self.cors_origins:
            raise InvalidInputError("CORS origin '*' is refused: list the origins that may call the API")
        for origin in self.cors_origins:
            # "null" is the origin of sandboxed frames and file:// pages: allowing it lets any page call the API;
            # "https://app.acme.com/" (a slash, a path) never equals the Origin a browser sends, so calls fail
            if not _ORIGIN.fullmatch(origin):
                raise InvalidInputError(f"CORS origin {quoted(origin)} is not scheme://host[:port] (no path, no "
                                        "trailing slash; 'null' is refused)")
        if isinstance(self.keep_metadata, str):  # ("email") is a string: one field, not five letters
            self.keep_metadata = (self.keep_metadata,)
        self.keep_metadata = tuple(self.keep_metadata)
        self.data_dir = Path(self.data_dir)
        if not self.models:
            self.models = {"request-type": "request-type"}

    def limits(self) -> dict[str, int]:
        """The request limits by name, as error bodies and ``GET /v1/limits`` report them."""
        return {"max_body_bytes": self.max_body_bytes, "max_items": self.max_items,
                "max_text_chars": self.max_text_chars, "max_k": self.max_k}


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("localhost")
    (True, False, True)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
