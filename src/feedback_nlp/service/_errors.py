"""Errors as JSON bodies that name the problem (and the limit, if one was hit), never a stack trace or the
request's texts; unexpected exceptions are logged by type and code location only, with the request id."""

from __future__ import annotations

import logging
import traceback
from typing import Any

__all__ = ["ApiError", "TextRejected", "loc_path", "log_unexpected"]

log = logging.getLogger("feedback_nlp.service")


class ApiError(Exception):
    """An error reply: HTTP status, a stable machine-readable ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra


class TextRejected(Exception):
    """Texts of a request that cannot be used: ``problems`` holds (position, reason) pairs."""

    def __init__(self, problems: list[tuple[int, str]], max_chars: int) -> None:
        super().__init__(f"{len(problems)} unusable texts")
        self.problems, self.max_chars = problems, max_chars


def loc_path(loc: tuple | list) -> str:
    """A pydantic error location as a path: ``("body", "items", 3, "text")`` → ``body.items[3].text``. A name
    is cut at 80 characters: an unknown field is named by the key the client sent, and a key of 100,000
    characters was echoed twice (message and details) in one error body.

    >>> loc_path(("body", "items", 3, "text")), loc_path(("body", "k" * 200))[-3:]
    ('body.items[3].text', 'kk…')
    """
    out = ""
    for part in loc:
        if isinstance(part, str) and len(part) > 80:
            part = part[:80] + "…"
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def log_unexpected(exc: BaseException, request_id: str) -> None:
    """Log an unexpected exception without its message (it may quote a text): type and code locations."""
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    where = " <- ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in reversed(frames))
    log.error("request %s failed: %s at %s", request_id, type(exc).__name__, where)
