"""The webhook receiver and its worker: verify → persist → answer → process asynchronously → write back.

``receive`` is all the HTTP layer calls: it checks the signature and timestamp over the raw body, parses the
event, and commits it to the store (``synchronous=FULL``) before returning, so the 2xx it leads to is a
promise kept across a crash. A single worker thread drains the queue; events that fail for a reason that may
pass (429/5xx/no answer from Quackback, after the client's own retries) go back to the queue with a growing
delay, up to ``max_attempts``, then stay ``failed`` with the error recorded.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Mapping
from typing import Any

from ._errors import EventError, QuackbackError, SignatureError
from ._events import parse_event
from ._processor import Processor, is_retryable
from ._secrets import Secret
from ._signature import DEFAULT_TOLERANCE_S, verify_signature
from ._store import IntegrationStore

__all__ = ["QuackbackIntegration"]

logger = logging.getLogger(__name__)

UNAUTHORIZED = {"error": "unauthorized"}  # the same body for every verification failure
REFUSAL_LOG_INTERVAL_S = 60.0  # the shortest time between two log lines about refused deliveries


class QuackbackIntegration:
    """Receives Quackback deliveries and processes them once each, durably.

    Args:
        processor: the :class:`Processor` that acts on events (its ``store`` is the queue).
        secret: the webhook's signing secret.
        tolerance_s: replay window for ``X-Quackback-Timestamp`` (default 5 minutes).
        max_attempts: tries of an event whose processing keeps failing for a passing reason.
        retry_delay_s: delay before the second try; doubled at each further one (capped at an hour).
        max_body_bytes: largest delivery accepted (413 above).
    """

    def __init__(self, processor: Processor, secret: Secret, *, tolerance_s: float = DEFAULT_TOLERANCE_S,
                 max_attempts: int = 5, retry_delay_s: float = 30.0, max_body_bytes: int = 1 << 20) -> None:
        if not isinstance(secret, Secret):
            raise TypeError("secret must be a Secret (read it with read_secret)")
        if not secret.reveal().strip():  # an HMAC under an empty key is one anybody can compute: no authentication
            raise QuackbackError("the webhook's signing secret is empty: anyone could sign deliveries (read it "
                                 "with read_secret from the file Quackback's webhook settings gave)")
        if not 0 < tolerance_s < math.inf:  # NaN or inf accepted any timestamp: no replay protection at all
            raise QuackbackError(f"the replay window must be a finite number of seconds > 0, got {tolerance_s!r}")
        self.processor = processor
        self.store: IntegrationStore = processor.store
        self._secret = secret
        self.tolerance_s = tolerance_s
        self.max_attempts = max_attempts
        self.retry_delay_s = retry_delay_s
        self.max_body_bytes = max_body_bytes
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self.rejected = 0
        # refusals are logged at most once a minute, with the count since: unsigned requests from anyone who
        # finds the port could otherwise fill the operator's log at line rate
        self._refusal_logged_at = -math.inf
        self._refusals_unlogged = 0

    def __repr__(self) -> str:
        return f"QuackbackIntegration(store={str(self.store.path)!r}, counts={self.store.counts()})"

    # --- the receiving side ---------------------------------------------------------------------
    def receive(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> tuple[int, dict[str, Any]]:
        """Verify and persist one delivery; returns ``(HTTP status, JSON body)`` for the sender."""
        if len(body) > self.max_body_bytes:
            return 413, {"error": "payload too large", "limit": "max_body_bytes"}
        try:
            verify_signature(self._secret, headers, body, tolerance_s=self.tolerance_s, now=now)
        except SignatureError as exc:
            self.rejected += 1
            self._log_refusal(exc.reason)
            return 401, UNAUTHORIZED
        try:
            event = parse_event(body)
        except EventError as exc:
            logger.warning("quackback webhook: signed but unusable body (%s)", exc)
            return 400, {"error": str(exc)}
        new = self.store.accept(event.id, event.type, body)
        logger.info("quackback event %s (%s) %s", event.id, event.type, "accepted" if new else "already seen")
        if new:
            self._wake.set()
        return 202, {"accepted": True, "event": event.id, "duplicate": not new}

    def _log_refusal(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._refusal_logged_at < REFUSAL_LOG_INTERVAL_S:
            self._refusals_unlogged += 1
            return
        more = f" ({self._refusals_unlogged} more refused since the last message)" if self._refusals_unlogged else ""
        logger.warning("quackback webhook refused: %s%s", reason, more)  # for the operator only
        self._refusal_logged_at, self._refusals_unlogged = now, 0

    def wait(self, event_id: str, timeout: float) -> dict[str, Any] | None:
        """The stored event once it is done or failed, or None if still queued after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._done:
            while True:
                row = self.store.event(event_id)
                if row and row["state"] in ("done", "failed"):
                    return row
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._done.wait(min(left, 0.25))

    # --- the processing side --------------------------------------------------------------------
    def process_next(self) -> bool:
        """Process one due event; False when the queue has none."""
        try:
            job = self.store.claim()
        except sqlite3.Error as exc:
            # "database is locked" (another process held the store past the timeout), a full disk: the worker
            # thread died of it, and every event accepted later stayed pending, answered 202, until a restart
            logger.error("quackback: cannot read the event queue (%s); trying again shortly", exc)
            return False
        if job is None:
            return False
        try:
            self._process(job)
        except sqlite3.Error as exc:  # the outcome could not be stored: the event stays claimed
            logger.error("quackback event %s: cannot record its outcome (%s); it is queued again at the next start",
                         job["id"], exc)
        with self._done:
            self._done.notify_all()
        return True

    def _process(self, job: dict[str, Any]) -> None:
        try:
            result = self.processor.process(parse_event(job["body"]))
        except Exception as exc:  # a failing event must not stop the worker
            error = f"{type(exc).__name__}: {exc}"
            if is_retryable(exc) and job["attempts"] < self.max_attempts:
                delay = min(3600.0, self.retry_delay_s * 2 ** (job["attempts"] - 1))
                logger.warning("quackback event %s failed (attempt %d), retry in %.0fs: %s", job["id"],
                               job["attempts"], delay, error)
                self.store.fail(job["id"], error, retry_in=delay)
            else:
                logger.error("quackback event %s failed for good after %d attempt(s): %s", job["id"], job["attempts"], error)
                self.store.fail(job["id"], error, retry_in=None)
        else:
            self.store.complete(job["id"], result)

    def drain(self) -> int:
        """Process every due event now (in the calling thread); returns how many."""
        n = 0
        while self.process_next():
            n += 1
        return n

    def start(self) -> QuackbackIntegration:
        """Recover events a crash left half-done and start the worker thread."""
        recovered = self.store.recover()
        if recovered:
            logger.info("quackback: %d event(s) interrupted by a crash are queued again", recovered)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="quackback-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the event in hand; queued events stay queued for the next start."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_for_work(self, timeout: float = 0.5) -> None:
        """Block until a delivery arrives or ``timeout`` passes (the timeout catches delayed retries)."""
        self._wake.wait(timeout)
        self._wake.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self.process_next():
                self.wait_for_work()
