"""A small client of Quackback's REST API v1 (``<portal>/api/v1``), standard library only.

- Auth by ``Authorization: Bearer qb_…``; the key lives in a :class:`Secret` and is never logged.
- Rate limits and server errors are retried with exponential backoff (``Retry-After`` honoured, capped) up to
  ``max_retries`` times, then :class:`QuackbackAPIError` is raised with the attempts made. Only idempotent
  requests (GET, PATCH of a full tag set) are retried after a 5xx or a lost connection; a POST is retried only
  on 429, which Quackback answers before doing anything.
- Lists are paged with ``cursor`` until ``hasMore`` is false.

Example:
    >>> client = QuackbackClient("https://feedback.example.com", Secret("qb_x"))
    >>> client                                      # the key never shows
    QuackbackClient('https://feedback.example.com/api/v1')
"""

from __future__ import annotations

import datetime
import email.utils
import http.client
import json
import logging
import math
import numbers
import random
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from email.message import Message
from typing import Any

from ...errors import quoted
from ._errors import QuackbackAPIError, QuackbackAuthError, QuackbackError
from ._secrets import Secret

__all__ = ["QuackbackClient"]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_USER_AGENT = "feedback-nlp-quackback/1.0"
_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")  # type-prefixed ids such as post_01h…; nothing that could alter a path


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit holds for "²" too, which float() refuses
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP-dates are always GMT (RFC 9110, 5.6.7): a date without a zone (or "-0000") was read as the
        # machine's local time, so that east of Greenwich a wait of seconds became none, west of it hours (capped)
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


#: The most posts one pull reads unless told otherwise (``max_posts``): a portal (or anyone posing as one) that
#: answers ``hasMore: true`` with ever new posts was paged, and its posts held in memory, without any end.
DEFAULT_MAX_POSTS = 1_000_000

#: Pages in a row that bring no new post, while the answer says more are coming, before a pull gives up.
_MAX_STALLED_PAGES = 3

#: The largest response body read: a page of 100 posts is well under a megabyte.
MAX_RESPONSE_BYTES = 64 << 20


class _NotJSON(QuackbackAPIError):
    """A 2xx whose body is not JSON (cut short, or a proxy's page): tried again for an idempotent request."""


def _origin(url: urllib.parse.SplitResult) -> tuple[str, str | None, int | None]:
    """Scheme, host and port, the port made explicit: a portal given as ``https://host:443`` that redirected to
    ``https://host/…`` (the same origin) was refused as another one."""
    try:
        port = url.port
    except ValueError:  # a Location with a port that is no number: no origin of ours
        port = -1
    return url.scheme, url.hostname, port if port is not None else {"http": 80, "https": 443}.get(url.scheme)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only within the portal's origin: urllib copies the Authorization header to wherever a
    redirect points, so a portal (or anyone on its path) answering 302 to another host, or to plain http,
    received the API key."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if _origin(old) != _origin(new):
            raise QuackbackAPIError(f"Quackback redirected {urllib.parse.urlunsplit(old[:3] + ('', ''))} to another "
                                    f"origin ({new.scheme}://{new.hostname}); the API key is not sent there: use the "
                                    "address it moved to as the portal URL, if you trust it", status=code)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameOriginRedirects)


def _bounded_read(resp: Any, method: str, url: str, deadline: float | None = None, timeout: float = 0.0) -> bytes:
    # read1: at most one read from the socket a call, so the deadline is checked between reads. The socket's
    # timeout bounds each read only: a portal that sent a byte every few seconds held one request for hours.
    read = getattr(resp, "read1", None) or resp.read
    parts: list[bytes] = []
    size = 0
    while size <= MAX_RESPONSE_BYTES:
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"the answer took longer than the {timeout:g} s timeout")
        chunk = read(min(1 << 16, MAX_RESPONSE_BYTES + 1 - size))
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    body = b"".join(parts)
    if len(body) > MAX_RESPONSE_BYTES:
        raise QuackbackAPIError(f"{method} {urllib.parse.urlsplit(url).path}: the answer is longer than "
                                f"{MAX_RESPONSE_BYTES >> 20} MB: not the Quackback API", status=getattr(resp, "status", 0))
    length = (getattr(resp, "headers", None) or {}).get("Content-Length", "")
    if length.isascii() and length.isdigit() and len(body) < int(length):
        # read(n) returns what came before the connection dropped: a cut answer was "not JSON" and failed for good
        raise http.client.IncompleteRead(body, int(length) - len(body))
    return body


class QuackbackClient:
    """Client of one Quackback portal's REST API v1.

    Args:
        url: the portal's address (``https://feedback.acme.com``); ``/api/v1`` is appended unless present.
        api_key: the API key as a :class:`Secret` (see :func:`read_secret`).
        timeout: seconds per request, for the whole answer (a portal that sends it byte by byte is cut off).
        max_retries: retries after the first attempt for 429/5xx/lost connections (0 disables them).
        backoff: first backoff in seconds; doubled at each retry, with jitter, capped by ``max_backoff``.
        allow_insecure: allow plain ``http://`` to a host other than loopback (the key would travel in clear).
    """

    def __init__(self, url: str, api_key: Secret, *, timeout: float = 10.0, max_retries: int = 4,
                 backoff: float = 0.5, max_backoff: float = 30.0, allow_insecure: bool = False,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        try:
            parts = urllib.parse.urlsplit(url.strip())
        except ValueError:  # "https://[::1" ("Invalid IPv6 URL") escaped as a bare ValueError
            raise QuackbackError(f"Quackback URL must be http(s)://host[:port], got {quoted(url)}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise QuackbackError(f"Quackback URL must be http(s)://host[:port], got {quoted(url)}")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url.strip()):
            # "https://host\r\nX: 1" was looked up as a host name ("Name or service not known")
            raise QuackbackError(f"the Quackback URL holds white space or a control character: {quoted(url)}")
        try:  # "host:abc" failed at the first request as an http.client.InvalidURL; "host:99999" as a DNS error
            port = parts.port
        except ValueError:
            port = 0
        if port == 0 and ":" in parts.netloc.rpartition("]")[2]:
            raise QuackbackError(f"the Quackback URL's port is not a number in 1-65535: {quoted(url)}")
        if parts.query or parts.fragment or url.strip().endswith(("?", "#")):  # dropped without a word
            raise QuackbackError(f"the Quackback URL holds a query or fragment: give the portal's address alone, "
                                 f"got {quoted(url)}")
        if parts.username is not None or parts.password is not None:  # was looked up with them as the host name
            raise QuackbackError("the Quackback URL holds a user name or password: give the portal's address "
                                 "alone; the API key comes from --key-file")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK and not allow_insecure:
            raise QuackbackError(f"refusing to send the API key in clear to {parts.hostname}: use https:// "
                                 "(or allow_insecure=True on a trusted network)")
        if not isinstance(api_key, Secret):
            raise QuackbackError("api_key must be a Secret (read it with read_secret(file=...))")
        if not all(33 <= ord(ch) <= 126 for ch in api_key.reveal()):
            # a key pasted with curly quotes, a BOM or an inner space failed each request with a UnicodeEncodeError
            # (or was sent as a broken header); the value itself is never shown
            raise QuackbackError("the API key holds a character other than printable ASCII (quotes pasted with it, "
                                 "a space, a byte-order mark?): an HTTP header cannot carry it")
        if max_retries < 0 or not 0 <= backoff < math.inf or not 0 <= max_backoff < math.inf:  # NaN: sleep(nan)
            raise QuackbackError("max_retries, backoff and max_backoff must be finite numbers >= 0")
        if not 0 < timeout < math.inf:  # -1 failed each request with a ValueError; NaN and 0 never waited
            raise QuackbackError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        path = parts.path.rstrip("/")
        if "/api/v1/" in path + "/" and not path.endswith("/api/v1"):
            # ".../api/v1/posts" became ".../api/v1/posts/api/v1", and every call a 404
            raise QuackbackError(f"the Quackback URL names an API endpoint: give the portal's address (or its "
                                 f"/api/v1), got {quoted(url)}")
        if not path.endswith("/api/v1"):
            path += "/api/v1"
        self.base_url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))
        self._key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        self.requests_made = 0

    def __repr__(self) -> str:
        return f"QuackbackClient({self.base_url!r})"

    # --- transport ------------------------------------------------------------------------------
    def _once(self, method: str, url: str, body: bytes | None) -> tuple[int, Message, bytes]:
        req = urllib.request.Request(url, data=body, method=method, headers={
            "Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json",
            "User-Agent": _USER_AGENT, **({"Content-Type": "application/json"} if body is not None else {})})
        self.requests_made += 1
        deadline = time.monotonic() + self.timeout  # for the whole answer, not each read of it
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:  # scheme checked in __init__
                return resp.status, resp.headers, _bounded_read(resp, method, url, deadline, self.timeout)
        except urllib.error.HTTPError as err:
            return err.code, err.headers, _bounded_read(err, method, url, deadline, self.timeout)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = min(self.max_backoff, self.backoff * (2 ** attempt))
        return base * (0.5 + random.random() / 2)  # jitter so that many workers do not retry in step

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json_body: Any = None, idempotent: bool | None = None) -> dict[str, Any]:
        """One API call with retries; returns the decoded envelope (``{"data": …, "meta"?: …}``)."""
        idempotent = method in ("GET", "PUT", "PATCH", "DELETE") if idempotent is None else idempotent
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = self.base_url + path + (f"?{query}" if query else "")
        body = None if json_body is None else json.dumps(json_body).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            try:
                status, headers, raw = self._once(method, url, body)
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as exc:
                # HTTPException: an answer that is not HTTP (BadStatusLine from a port that speaks another protocol,
                # a cut chunked body, endless headers) escaped as itself, and the event failed for good
                reason = getattr(exc, "reason", exc)
                if isinstance(exc, http.client.HTTPException):  # its text is whatever the server sent: cut short
                    reason = f"{type(exc).__name__}: {str(exc).strip()[:80]!r}"
                if not idempotent or attempt == self.max_retries:
                    raise QuackbackAPIError(f"{method} {path}: no answer from Quackback ({reason})",
                                            attempts=attempt + 1) from None
                delay = self._delay(attempt, None)
                logger.info("quackback %s %s: no answer (%s); retry %d in %.2fs", method, path, reason, attempt + 1, delay)
                self._sleep(delay)
                continue
            if status < 300:
                try:
                    return self._decode(method, path, status, raw)
                except _NotJSON:
                    # an answer cut short by a connection closed early, with no Content-Length to tell (a proxy,
                    # a flaky network): a page of a pull failed the whole pull for good at once
                    if not idempotent or attempt == self.max_retries:
                        raise
                delay = self._delay(attempt, None)
                logger.info("quackback %s %s: HTTP %d but not JSON; retry %d in %.2fs", method, path, status,
                            attempt + 1, delay)
                self._sleep(delay)
                continue
            retry = status == 429 or (idempotent and status in RETRY_STATUSES)
            if retry and attempt < self.max_retries:
                delay = self._delay(attempt, _retry_after(headers.get("Retry-After")))
                logger.info("quackback %s %s: HTTP %d; retry %d in %.2fs", method, path, status, attempt + 1, delay)
                self._sleep(delay)
                continue
            raise self._error(method, path, status, raw, attempt + 1)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _decode(method: str, path: str, status: int, raw: bytes) -> dict[str, Any]:
        if status == 204 or not raw.strip():
            return {"data": None}
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
            raise _NotJSON(f"{method} {path}: HTTP {status} but the body is not JSON", status=status) from None
        if not isinstance(doc, dict) or "data" not in doc:
            raise QuackbackAPIError(f"{method} {path}: HTTP {status} without a 'data' envelope", status=status)
        return doc

    def _error(self, method: str, path: str, status: int, raw: bytes, attempts: int) -> QuackbackAPIError:
        code, message = "", ""
        try:
            err = json.loads(raw).get("error") or {}
            code, message = str(err.get("code", ""))[:50], str(err.get("message", ""))
        except (ValueError, AttributeError, RecursionError):
            pass
        # A server (or a proxy before it) that echoes the Authorization header in its error message put the key in
        # the exception, hence in the log and in the failed event's stored error: it is masked before the cut,
        # so that no prefix of it survives either.
        key = self._key.reveal()
        code, message = code.replace(key, "***"), message.replace(key, "***")[:200]
        text = f"{method} {path}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
        if attempts > 1:
            text += f" (after {attempts} attempts)"
        if status in (401, 403):
            hint = " — check the API key file" if status == 401 else " — the key lacks a permission"
            return QuackbackAuthError(text + hint, status=status, code=code, attempts=attempts)
        return QuackbackAPIError(text, status=status, code=code, attempts=attempts)

    # --- endpoints ------------------------------------------------------------------------------
    def iter_posts(self, *, limit: int = 100, max_posts: int | None = DEFAULT_MAX_POSTS,
                   on_page: Callable[[Mapping[str, Any]], None] | None = None,
                   **filters: Any) -> Iterator[dict[str, Any]]:
        """Every post matching ``filters`` (``boardId``, ``status``, ``tagIds``, ``search``, ``dateFrom``,
        ``dateTo``, ``sort``), fetched ``limit`` per page by cursor.

        Pages that bring no post not seen before while ``hasMore`` says more are coming (empty pages, or the same
        posts under ever new cursors) end the loop with :class:`QuackbackAPIError` after a few, and so does a
        cursor the portal gave before: such a server was paged for ever. A portal still saying ``hasMore`` after
        ``max_posts`` distinct posts (default a million; None: no bound) ends it with :class:`QuackbackAPIError`
        too, naming the bound: raise it for a larger portal. ``on_page`` is called with each page's
        ``meta.pagination`` (``{}`` when it has none), after the page's posts."""
        if not _integer(limit) or not 1 <= limit <= 100:
            # True passed the range check as 1; 2.5 was sent as limit=2.5, which Quackback refuses with a 400
            raise QuackbackError(f"limit must be an integer in 1..100, got {limit!r}")
        if max_posts is not None and (not _integer(max_posts) or max_posts < 1):
            raise QuackbackError(f"max_posts must be an integer >= 1 (or None for no bound), got {max_posts!r}")
        limit = int(limit)
        if isinstance(filters.get("tagIds"), (list, tuple)):
            filters["tagIds"] = ",".join(filters["tagIds"])
        cursor: str | None = None
        cursors: set[str] = set()
        ids: set[str] = set()
        stalled = 0
        while True:
            doc = self.request("GET", "/posts", params={**filters, "limit": limit, "cursor": cursor})
            page = doc.get("data")
            if not isinstance(page, list):
                raise QuackbackAPIError("GET /posts: 'data' is not a list")
            new = {p["id"] for p in page if isinstance(p, Mapping) and isinstance(p.get("id"), str)} - ids
            ids |= new
            yield from page
            meta = doc.get("meta")
            pagination = meta.get("pagination") if isinstance(meta, Mapping) else None
            if on_page is not None:
                on_page(pagination if isinstance(pagination, Mapping) else {})
            if not isinstance(pagination, Mapping) or not pagination.get("hasMore"):
                return
            cursor = pagination.get("cursor")
            if not isinstance(cursor, str) or not cursor:  # a server bug must not loop for ever
                raise QuackbackAPIError(f"GET /posts: hasMore is true but the cursor did not advance (no cursor: {cursor!r:.80})",
                                        status=200)
            if cursor in cursors:
                raise QuackbackAPIError(f"GET /posts: hasMore is true but the cursor did not advance: the portal gave "
                                        f"{quoted(cursor)} again (after {len(cursors) + 1} pages)", status=200)
            cursors.add(cursor)
            stalled = 0 if new else stalled + 1
            if stalled >= _MAX_STALLED_PAGES:
                raise QuackbackAPIError(f"GET /posts: {stalled} pages in a row brought no post not seen before, yet "
                                        "hasMore is true: the portal's pagination does not advance", status=200)
            if max_posts is not None and len(ids) >= max_posts:
                raise QuackbackAPIError(f"GET /posts: {len(ids)} posts read in {len(cursors)} pages and the portal "
                                        f"still says more are coming: stopped at max_posts={max_posts} (raise it, "
                                        "`quackback pull --max-posts N`, for a larger portal)", status=200)

    def get_post(self, post_id: str) -> dict[str, Any]:
        data = self.request("GET", f"/posts/{_segment(post_id)}")["data"]
        if not isinstance(data, Mapping):  # null or a list failed the event for good as an AttributeError
            raise QuackbackAPIError(f"GET /posts/{post_id}: 'data' is not a post (an object)", status=200)
        return dict(data)

    def set_post_tags(self, post_id: str, tag_ids: Sequence[str]) -> dict[str, Any]:
        """Replace the post's tags by ``tag_ids`` (callers pass a union; see :class:`WriteBack`)."""
        return self.request("PATCH", f"/posts/{_segment(post_id)}", json_body={"tagIds": list(tag_ids)})["data"]

    def merge_post(self, post_id: str, canonical_post_id: str) -> dict[str, Any]:
        return self.request("POST", f"/posts/{_segment(post_id)}/merge",
                            json_body={"canonicalPostId": canonical_post_id})["data"]

    def _list(self, path: str) -> list[dict[str, Any]]:
        data = self.request("GET", path)["data"]
        if not isinstance(data, list):  # None or an object failed later, far from the answer, as a TypeError
            # a 2xx (status 200): not retried, and a pull goes on without the statuses it could not read
            raise QuackbackAPIError(f"GET {path}: 'data' is not a list", status=200)
        return data

    def list_tags(self) -> list[dict[str, Any]]:
        return self._list("/tags")

    def create_tag(self, name: str, color: str = "#6b7280", description: str | None = None) -> dict[str, Any]:
        if not isinstance(name, str) or not 1 <= len(name.encode("utf-16-le")) // 2 <= 50:
            # counted as Quackback (JavaScript) counts, in UTF-16 code units: an emoji is two
            raise QuackbackError(f"a Quackback tag name has 1 to 50 characters (UTF-16 code units): {quoted(name)}")
        body = {"name": name, "color": color, **({"description": description[:200]} if description else {})}
        return self.request("POST", "/tags", json_body=body)["data"]

    def list_statuses(self) -> list[dict[str, Any]]:
        return self._list("/statuses")


def _integer(value: Any) -> bool:
    """An integer (numpy's too) that is not a bool: ``True`` is an int to Python, and no page size."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _segment(value: str) -> str:
    """An id as one safe path segment (ids come from webhook bodies: ``../`` must not change the route)."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise QuackbackError(f"invalid Quackback id: {quoted(value)}")
    return value
