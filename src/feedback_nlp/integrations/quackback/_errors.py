"""Errors of the Quackback integration, under :class:`feedback_nlp.FeedbackNLPError`."""

from __future__ import annotations

from ...errors import FeedbackNLPError, InvalidInputError


class QuackbackError(FeedbackNLPError):
    """Base class of the Quackback integration's errors."""


class QuackbackAPIError(QuackbackError):
    """Quackback's REST API answered with an error, or could not be reached after the retries.

    ``status`` is the HTTP status (0 when no answer came), ``code`` Quackback's error code
    (``RATE_LIMITED``, ``NOT_FOUND``, ...), ``attempts`` how many requests were made.
    """

    def __init__(self, message: str, *, status: int = 0, code: str = "", attempts: int = 1) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.attempts = attempts

    @property
    def retryable(self) -> bool:
        """True for failures worth trying again later (rate limits, server errors, no answer)."""
        return self.status in (0, 429) or self.status >= 500


class QuackbackAuthError(QuackbackAPIError):
    """The API key was missing, invalid or lacks a permission (401/403)."""


class SignatureError(QuackbackError):
    """A webhook delivery failed verification; ``reason`` is for logs only, never for the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EventError(QuackbackError, InvalidInputError):
    """A signed webhook body is not a Quackback event (not JSON, no ``id`` or ``type``, wrong types)."""
