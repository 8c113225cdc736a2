"""A fake Quackback portal for the tests: a real HTTP server on loopback implementing REST API v1's posts,
tags, statuses and merge endpoints, with the contract's envelopes, cursor pagination, Bearer auth errors and
scripted failures (429 with Retry-After, 5xx). It records every request it receives."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "qb_test_0123456789abcdef"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    authorized: bool
    status: int = 0
    at: float = field(default_factory=time.time)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class FakeQuackback:
    """``with FakeQuackback() as qb: qb.url`` — a portal with default statuses and whatever posts/tags are added."""

    def __init__(self, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.posts: dict[str, dict[str, Any]] = {}
        self.tags: list[dict[str, Any]] = []
        self.statuses = [
            {"id": f"status_{slug}", "name": name, "slug": slug, "category": cat}
            for name, slug, cat in [("Open", "open", "active"), ("Under Review", "under_review", "active"),
                                    ("Planned", "planned", "active"), ("In Progress", "in_progress", "active"),
                                    ("Complete", "complete", "complete"), ("Closed", "closed", "closed")]]
        self.received: list[Received] = []
        self._failures: list[dict[str, Any]] = []
        self._delays: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._seq = 0

    # --- set-up helpers ---------------------------------------------------------------------------
    def add_tag(self, name: str, color: str = "#112233") -> dict[str, Any]:
        tag = {"id": f"post_tag_{len(self.tags) + 1:04d}", "name": name, "color": color}
        self.tags.append(tag)
        return tag

    def add_post(self, title: str, content: str = "", *, board: str = "feature-requests", tags: tuple[str, ...] = (),
                 status: str = "open", votes: int = 0, created_at: str | None = None, **extra: Any) -> dict[str, Any]:
        self._seq += 1
        pid = extra.pop("id", f"post_{self._seq:06d}")
        by_name = {t["name"]: t for t in self.tags}
        post = {"id": pid, "title": title, "content": content, "voteCount": votes, "commentCount": 0,
                "boardId": f"board_{board}", "boardSlug": board, "boardName": board.replace("-", " ").title(),
                "statusId": f"status_{status}", "authorName": "Ada", "ownerId": None,
                "tags": [dict(by_name[t]) if t in by_name else self.add_tag(t) for t in tags],
                "summaryJson": None, "canonicalPostId": None, "mergedAt": None, "isCommentsLocked": False,
                "createdAt": created_at or _now(), "updatedAt": created_at or _now(), "deletedAt": None, **extra}
        self.posts[pid] = post
        return post

    def fail_next(self, method: str, path: str, status: int = 429, *, times: int = 1, retry_after: str | None = "0") -> None:
        """The next ``times`` requests matching ``method`` and the path prefix get ``status``."""
        self._failures.append({"method": method, "path": path, "status": status, "left": times, "retry_after": retry_after})

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` matching requests are answered only after ``seconds`` (a slow or hung portal)."""
        self._delays.append({"method": method, "path": path, "seconds": seconds, "left": times})

    def requests(self, method: str | None = None, path: str | None = None, *, exact: bool = False) -> list[Received]:
        """Requests received, by method and path prefix (or the exact path)."""
        def match(p: str) -> bool:
            return path is None or (p == path if exact else p.startswith(path))

        return [r for r in self.received if (method is None or r.method == method) and match(r.path)]

    # --- lifecycle --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeQuackback:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeQuackback:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- the API ----------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        authorized = h.headers.get("Authorization") == f"Bearer {self.api_key}"
        rec = Received(h.command, parts.path, parse_qs(parts.query), body, authorized)
        with self._lock:
            self.received.append(rec)
            delay = next((d for d in self._delays if d["left"] > 0 and d["method"] == h.command
                          and parts.path.startswith(d["path"])), None)
            if delay is not None:
                delay["left"] -= 1
        if delay is not None:
            time.sleep(delay["seconds"])
        with self._lock:
            status, payload, headers = self._route(h.command, parts.path, rec.query, body, authorized)
            rec.status = status
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client was killed while waiting (the SIGKILL test)

    @staticmethod
    def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None):
        return status, {"error": {"code": code, "message": message}}, headers or {}

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any, authorized: bool):
        if not path.startswith("/api/v1/"):
            return self._error(404, "NOT_FOUND", "no such route")
        if not authorized:
            return self._error(401, "UNAUTHORIZED", "Invalid or missing API key",
                               {"WWW-Authenticate": 'Bearer realm="Quackback API"'})
        for f in self._failures:
            if f["left"] > 0 and f["method"] == method and path.startswith(f["path"]):
                f["left"] -= 1
                code = "RATE_LIMITED" if f["status"] == 429 else "INTERNAL_ERROR"
                return self._error(f["status"], code, "scripted failure",
                                   {"Retry-After": f["retry_after"]} if f["retry_after"] is not None else {})
        route = path[len("/api/v1"):]
        if route == "/posts" and method == "GET":
            return self._list_posts(query)
        if route == "/posts" and method == "POST":
            return self._create_post(body)
        if route == "/tags" and method == "GET":
            return 200, {"data": self.tags}, {}
        if route == "/tags" and method == "POST":
            return self._create_tag(body)
        if route == "/statuses" and method == "GET":
            return 200, {"data": self.statuses}, {}
        m = re.fullmatch(r"/posts/([^/]+)(/merge)?", route)
        if m:
            post = self.posts.get(m.group(1))
            if post is None or post["deletedAt"]:
                return self._error(404, "NOT_FOUND", "Post not found")
            if m.group(2) and method == "POST":
                return self._merge(post, body)
            if not m.group(2) and method == "GET":
                return 200, {"data": post}, {}
            if not m.group(2) and method == "PATCH":
                return self._patch(post, body)
        return self._error(404, "NOT_FOUND", "no such route")

    def _list_posts(self, query: dict[str, list[str]]):
        q = {k: v[-1] for k, v in query.items()}
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            return self._error(400, "VALIDATION_ERROR", "limit must be an integer")
        if not 1 <= limit <= 100:
            return self._error(400, "VALIDATION_ERROR", "limit must be between 1 and 100")
        posts = [p for p in self.posts.values() if not p["deletedAt"]]
        if "boardId" in q:
            posts = [p for p in posts if p["boardId"] == q["boardId"]]
        if "tagIds" in q:
            want = set(q["tagIds"].split(","))
            posts = [p for p in posts if want & {t["id"] for t in p["tags"]}]
        if "search" in q:
            posts = [p for p in posts if q["search"].lower() in (p["title"] + p["content"]).lower()]
        sort = q.get("sort", "newest")
        posts.sort(key=lambda p: (p["voteCount"] if sort == "votes" else p["createdAt"], p["id"]),
                   reverse=sort != "oldest")
        start = 0
        if "cursor" in q:
            try:
                start = int(base64.urlsafe_b64decode(q["cursor"].encode()).decode())
            except (ValueError, UnicodeDecodeError):
                return self._error(400, "BAD_REQUEST", "invalid cursor")
        page = posts[start:start + limit]
        more = start + limit < len(posts)
        cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode() if more else None
        return 200, {"data": page, "meta": {"pagination": {"cursor": cursor, "hasMore": more}}}, {}

    def _patch(self, post: dict[str, Any], body: Any):
        if not isinstance(body, dict):
            return self._error(400, "VALIDATION_ERROR", "body must be an object")
        if "tagIds" in body:
            ids = body["tagIds"]
            by_id = {t["id"]: t for t in self.tags}
            if not isinstance(ids, list) or any(i not in by_id for i in ids):
                return self._error(400, "VALIDATION_ERROR", "tagIds must list existing tags")
            post["tags"] = [dict(by_id[i]) for i in dict.fromkeys(ids)]
        for key in ("title", "content", "statusId"):
            if key in body:
                post[key] = body[key]
        post["updatedAt"] = _now()
        return 200, {"data": post}, {}

    def _merge(self, post: dict[str, Any], body: Any):
        target = body.get("canonicalPostId") if isinstance(body, dict) else None
        if target not in self.posts or target == post["id"]:
            return self._error(400, "VALIDATION_ERROR", "canonicalPostId must name another post")
        if post["canonicalPostId"]:
            return self._error(409, "CONFLICT", "Post is already merged")
        post["canonicalPostId"], post["mergedAt"] = target, _now()
        self.posts[target]["voteCount"] += post["voteCount"]
        return 200, {"data": {"post": post, "canonicalPost": self.posts[target]}}, {}

    def _create_tag(self, body: Any):
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not 1 <= len(body["name"]) <= 50:
            return self._error(400, "VALIDATION_ERROR", "name must have 1 to 50 characters")
        if not re.fullmatch(r"#[0-9A-Fa-f]{6}", str(body.get("color", ""))):
            return self._error(400, "VALIDATION_ERROR", "color must be #RRGGBB")
        if any(t["name"].lower() == body["name"].lower() for t in self.tags):
            return self._error(409, "CONFLICT", "A tag with this name already exists")
        return 201, {"data": self.add_tag(body["name"], body["color"])}, {}

    def _create_post(self, body: Any):
        if not isinstance(body, dict) or not body.get("boardId") or not 1 <= len(str(body.get("title", ""))) <= 200:
            return self._error(400, "VALIDATION_ERROR", "boardId and title (1-200) are required")
        post = self.add_post(body["title"], body.get("content", ""), board=str(body["boardId"]).removeprefix("board_"))
        return 201, {"data": post}, {}
