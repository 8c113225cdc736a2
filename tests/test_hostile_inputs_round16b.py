"""Round 16b: the Quackback integration against an endless or lying portal, odd dates, odd ids and a flaky network."""

from __future__ import annotations

import email.utils
import json
import time
import urllib.parse

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from _hostile_support import FixedTagger, event, make_hook
from feedback_nlp.integrations.quackback import (
    QuackbackAPIError,
    QuackbackClient,
    QuackbackError,
    Secret,
    pull_posts,
)
from feedback_nlp.integrations.quackback._client import _retry_after


def _client(fake: FakeQuackback) -> QuackbackClient:
    return QuackbackClient(fake.url, Secret(API_KEY), sleep=lambda s: None, timeout=5)


def _endless(qb: FakeQuackback, *, same_cursor_after: int | None = None) -> None:
    """``GET /posts`` answers a page of 2 new posts and ``hasMore: true`` for ever (with a fresh cursor each time,
    or, from page ``same_cursor_after``, the first cursor again)."""
    route, pages = qb._route, [0]

    def endless(method, path, query, body, authorized):
        if method == "GET" and path == "/api/v1/posts":
            n = pages[0] = pages[0] + 1
            cursor = "c1" if same_cursor_after is not None and n >= same_cursor_after else f"c{n}"
            posts = [{"id": f"post_{n}_{i}", "title": "t", "content": "c"} for i in range(2)]
            return 200, {"data": posts, "meta": {"pagination": {"cursor": cursor, "hasMore": True}}}, {}
        return route(method, path, query, body, authorized)

    qb._route = endless


# --- 1. a portal whose pages never end -------------------------------------------------------------------


def test_a_portal_that_always_has_more_new_posts_is_stopped_at_max_posts():
    with FakeQuackback() as qb:
        _endless(qb)
        client = _client(qb)
        with pytest.raises(QuackbackAPIError, match=r"max_posts=10 .*--max-posts") as err:
            pull_posts(client, limit=2, max_posts=10)  # was paged without end (new ids, new cursors)
        assert not err.value.retryable
        assert len(qb.requests("GET", "/api/v1/posts", exact=True)) == 5


def test_a_large_portal_is_read_whole_up_to_its_bound_and_none_lifts_it():
    with FakeQuackback() as qb:
        for i in range(25):
            qb.add_post(f"Post {i}", id=f"post_{i:03d}")
        assert len(pull_posts(_client(qb), limit=5, max_posts=25).records) == 25  # exactly the bound: no error
        assert len(pull_posts(_client(qb), limit=5, max_posts=None).records) == 25


def test_a_cursor_given_again_is_an_error_naming_it():
    with FakeQuackback() as qb:
        _endless(qb, same_cursor_after=3)  # c1, c2, c1: a loop two pages long, each page with new ids
        with pytest.raises(QuackbackAPIError, match="cursor did not advance.*'c1' again"):
            list(_client(qb).iter_posts(limit=2))


def test_the_pull_cli_takes_max_posts(tmp_path, capsys):
    from feedback_nlp.cli import main

    key = tmp_path / "key"
    key.write_text(API_KEY)
    key.chmod(0o600)
    with FakeQuackback() as qb:
        _endless(qb)
        code = main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(tmp_path / "o.csv"),
                     "--limit", "2", "--max-posts", "6"])
    assert code != 0 and "max_posts=6" in capsys.readouterr().err
    assert main(["quackback", "pull", "--url", "http://127.0.0.1:9", "--key-file", str(key),
                 "--out", str(tmp_path / "o.csv"), "--max-posts", "0"]) != 0


@pytest.mark.parametrize("bad", [0, -1, True, 2.0, "10"])
def test_max_posts_must_be_a_positive_integer(bad):
    with FakeQuackback() as qb, pytest.raises(QuackbackError, match="max_posts"):
        list(_client(qb).iter_posts(max_posts=bad))


# --- 2. Retry-After dates are GMT -------------------------------------------------------------------------


@pytest.fixture
def east_of_greenwich(monkeypatch):
    """The machine's local time zone five hours ahead of UTC."""
    monkeypatch.setenv("TZ", "Etc/GMT-5")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("zone", ["", " -0000"])
def test_a_retry_after_date_without_a_zone_is_gmt_not_local_time(east_of_greenwich, zone):
    when = email.utils.formatdate(time.time() + 20, usegmt=True).removesuffix(" GMT") + zone
    # was 0 here (read as local time, five hours in the past), and 30 s (the cap) west of Greenwich
    assert 15 <= _retry_after(when) <= 21
    assert 15 <= _retry_after(email.utils.formatdate(time.time() + 20, usegmt=True)) <= 21  # unchanged


@pytest.mark.parametrize("value", ["Mon, 01 Jan 99999 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 +9999"])
def test_an_absurd_retry_after_date_is_ignored_not_a_crash(value):
    assert _retry_after(value) in (None, 0.0)


# --- 3. the page size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [True, False, 2.5, "50", None])
def test_a_page_size_that_is_no_integer_is_refused(limit):
    with FakeQuackback() as qb:
        with pytest.raises(QuackbackError, match="limit must be an integer"):
            list(_client(qb).iter_posts(limit=limit))  # True was sent as limit=True, which the portal refuses
        assert qb.received == []


# --- 5. event ids in the event route ---------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["evt/1", "a/../b", "..", "?x=1", "evt#1", "évt 1", "a%2Fb"])
def test_every_stored_event_id_is_reachable_percent_encoded(tmp_path, event_id):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from feedback_nlp.integrations.quackback._asgi import quackback_routes

    hook = make_hook(tmp_path)
    other = event("evt_other", "post.created", {"id": "post_2", "title": "Other", "content": "x"})
    assert hook(other)[0] == 202
    assert hook(event(event_id, "post.created", {"id": "post_1", "title": "Export fails", "content": "csv"}))[0] == 202
    app = Starlette(routes=quackback_routes(hook.integration, respond_within=0))
    with TestClient(app) as api:
        segment = urllib.parse.quote(event_id, safe="")
        segment = {".": "%2E", "..": "%2E%2E"}.get(segment, segment)  # dot segments: a client would resolve them
        got = api.get("/v1/integrations/quackback/events/" + segment)
        assert got.status_code == 200, got.text  # an id with a / answered 404
        assert got.json()["id"] == event_id  # and no id reaches another event
        assert api.get("/v1/integrations/quackback/events/" + urllib.parse.quote(event_id + "x", safe="")
                       ).status_code == 404


@pytest.mark.parametrize("post_id", ["..", ".", "post_1?x=1", "post_1#x", "post_1/merge", "post%2F1"])
def test_a_post_id_never_changes_the_portal_path(post_id):
    with FakeQuackback() as qb:
        with pytest.raises(QuackbackError, match="invalid Quackback id"):
            _client(qb).set_post_tags(post_id, ["post_tag_0001"])
        assert qb.received == []


# --- a post deleted between Quackback's delivery and the write-back --------------------------------------


def _write_back_processor(tmp_path, qb: FakeQuackback, **kw):
    from feedback_nlp.integrations.quackback._processor import Processor, WriteBack
    from feedback_nlp.integrations.quackback._store import IntegrationStore

    client = _client(qb)
    return Processor(IntegrationStore(tmp_path / "q.sqlite"), tagger=FixedTagger(), client=client,
                     write_back=WriteBack(client, **kw))


def _parsed(body: dict):
    from feedback_nlp.integrations.quackback._events import parse_event

    return parse_event(json.dumps(body).encode())


def test_a_soft_deleted_post_gets_no_tags_written_and_its_text_is_not_stored_as_live(tmp_path):
    from feedback_nlp.integrations.quackback._processor import is_retryable

    with FakeQuackback() as qb:
        qb.add_tag("bug")
        qb.add_post("Renamed since", id="post_del", deletedAt="2026-01-02T00:00:00.000Z")
        route = qb._route

        def soft(method, path, query, body, authorized):  # Quackback answers GET for a soft-deleted post
            if method == "GET" and path.endswith("/posts/post_del"):
                return 200, {"data": qb.posts["post_del"]}, {}
            return route(method, path, query, body, authorized)

        qb._route = soft
        proc = _write_back_processor(tmp_path, qb)
        created = event("e1", "post.created", {"id": "post_del", "title": "Export fails", "content": "csv"})
        with pytest.raises(QuackbackAPIError, match="deleted in Quackback") as err:
            proc.process(_parsed(created))  # like a post gone (404): the event fails, not retried
        assert not is_retryable(err.value)
        assert qb.requests("PATCH") == []  # the tag was written to a deleted post
        update = event("e2", "post.updated", {"id": "post_del", "title": "Export fails"}, at="2026-01-03T00:00:00Z")
        with pytest.raises(QuackbackAPIError, match="deleted in Quackback"):
            proc.process(_parsed(update))
        assert proc.store.post("post_del")["text"] == "Export fails csv"  # the deleted post's text was stored as live


# --- unicode tag names: Quackback counts UTF-16 code units ------------------------------------------------


def _utf16_tag_limit(qb: FakeQuackback) -> None:
    """``POST /tags`` refuses names over 50 UTF-16 code units, as Quackback's zod schema does."""
    route = qb._route

    def zod(method, path, query, body, authorized):
        if method == "POST" and path == "/api/v1/tags" and len(body["name"].encode("utf-16-le")) // 2 > 50:
            return 400, {"error": {"code": "VALIDATION_ERROR", "message": "Invalid request body"}}, {}
        return route(method, path, query, body, authorized)

    qb._route = zod


def test_a_tag_name_of_emoji_over_quackbacks_limit_does_not_fail_the_other_tags():
    from feedback_nlp.integrations.quackback._processor import WriteBack

    with FakeQuackback() as qb:
        _utf16_tag_limit(qb)
        qb.add_post("Export fails", id="post_a")
        emoji = "\U0001f680" * 26  # 26 code points, 52 UTF-16 units
        result = WriteBack(_client(qb), create_tags=True).apply("post_a", ["billing", emoji])
        # was a 400 twice over and a failed event: billing was never written either
        assert result["added"] == ["billing"] and result["missing_tags"] == [emoji]
        assert [t["name"] for t in qb.posts["post_a"]["tags"]] == ["billing"]
        assert not [r for r in qb.requests("POST", "/api/v1/tags") if r.body["name"] == emoji]
        with pytest.raises(QuackbackError, match="UTF-16"):
            _client(qb).create_tag(emoji)


def test_a_tag_quackback_refuses_for_another_reason_is_reported_missing():
    from feedback_nlp.integrations.quackback._processor import WriteBack

    with FakeQuackback() as qb:
        qb.add_post("Export fails", id="post_a")
        qb.fail_next("POST", "/api/v1/tags", 400, retry_after=None)
        result = WriteBack(_client(qb), create_tags=True).apply("post_a", ["billing"])
        assert result == {"added": [], "kept": [], "missing_tags": ["billing"]}


@pytest.mark.parametrize("create", [False, True])
def test_a_tag_name_in_another_unicode_form_finds_quackbacks_tag(create):
    import unicodedata

    from feedback_nlp.integrations.quackback._processor import WriteBack

    with FakeQuackback() as qb:
        qb.add_tag("Café")  # NFC, as typed in Quackback
        qb.add_post("Coffee machine", id="post_a")
        decomposed = unicodedata.normalize("NFD", "café")  # from a taxonomy file written on macOS
        result = WriteBack(_client(qb), create_tags=create).apply("post_a", [decomposed])
        # was reported missing, or (create_tags) created a second "café" that looks the same
        assert result["added"] == [decomposed] and result["missing_tags"] == []
        assert [t["name"] for t in qb.tags] == ["Café"] and qb.posts["post_a"]["tags"][0]["name"] == "Café"


# --- a merge whose answer was lost -----------------------------------------------------------------------


def test_a_merge_done_before_its_answer_was_lost_is_recorded_on_the_retry(tmp_path):
    from conftest import HashEmbedder
    from feedback_nlp.integrations.quackback._processor import Processor, VectorBacklog
    from feedback_nlp.integrations.quackback._store import IntegrationStore

    text = {"title": "Export to CSV cuts long descriptions", "content": "the csv export truncates text"}
    with FakeQuackback() as qb:
        qb.add_post("x", id="post_1")
        qb.add_post("y", id="post_2")
        backlog = VectorBacklog(HashEmbedder()).load({"post_1": "Export to CSV cuts long descriptions "
                                                                "the csv export truncates text"})
        proc = Processor(IntegrationStore(tmp_path / "q.sqlite"), backlog=backlog, client=_client(qb),
                         duplicate_threshold=0.9, auto_merge_above=0.95)
        # the first try's POST /merge was done by Quackback, but its answer never came (the event was retried)
        qb.posts["post_2"]["canonicalPostId"] = "post_1"
        result = proc.process(_parsed(event("e1", "post.created", {"id": "post_2", **text})))
        assert result.get("merged_into") == "post_1" and "merge_error" not in result  # was merge_error: CONFLICT
        assert proc.store.post("post_2")["deleted"] == 1 and "post_2" not in backlog._ids
        # merged into another post meanwhile: still a refused merge
        qb.add_post("z", id="post_3", canonicalPostId="post_9")
        other = proc.process(_parsed(event("e2", "post.created", {"id": "post_3", **text})))
        assert "CONFLICT" in other["merge_error"] and "merged_into" not in other


# --- a post deleted while the portal is paged ------------------------------------------------------------


def test_a_post_deleted_during_a_pull_is_said_not_silently_skipped(tmp_path, capsys):
    from feedback_nlp.cli import main

    with FakeQuackback() as qb:
        for i in range(12):
            qb.add_post(f"Post {i}", id=f"post_{i:02d}", created_at=f"2026-01-{i + 1:02d}T00:00:00.000Z")
        route, served = qb._route, []

        def offsets(method, path, query, body, authorized):  # Quackback's cursor is an offset; it gives a total
            status, payload, headers = route(method, path, query, body, authorized)
            if method == "GET" and path == "/api/v1/posts" and status == 200:
                served.append(1)
                if len(served) == 1:  # someone deletes a post of the first page while the pull goes on
                    qb.posts["post_01"]["deletedAt"] = "2026-02-01T00:00:00.000Z"
                    payload["meta"]["pagination"]["total"] = 12
                else:
                    payload["meta"]["pagination"]["total"] = 11
            return status, payload, headers

        qb._route = offsets
        res = pull_posts(_client(qb), limit=4, sort="oldest")
        assert "post_04" not in set(res.records["id"])  # the shift: skipped by the portal's offsets
        assert res.total_changed == (12, 11)  # was no sign at all
        key = tmp_path / "key"
        key.write_text(API_KEY)
        key.chmod(0o600)
        served.clear()
        qb.posts["post_01"]["deletedAt"] = None
        assert main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(tmp_path / "o.csv"),
                     "--limit", "4"]) == 0
        assert "went from 12 to 11" in capsys.readouterr().out


def test_a_steady_portal_reports_no_change():
    with FakeQuackback() as qb:
        for i in range(7):
            qb.add_post(f"Post {i}", id=f"post_{i:02d}")
        assert pull_posts(_client(qb), limit=3).total_changed is None  # the fake gives no total: no claim either


# --- filters the portal ignores ---------------------------------------------------------------------------


def _ignoring_filters(qb: FakeQuackback) -> None:
    """``GET /posts`` as Quackback answers it: a boardId that is no board id, and dateFrom/dateTo, are ignored."""
    route = qb._route

    def ignore(method, path, query, body, authorized):
        if method == "GET" and path == "/api/v1/posts":
            query = {k: v for k, v in query.items() if k not in ("dateFrom", "dateTo")
                     and not (k == "boardId" and not v[-1].startswith("board_"))}
        return route(method, path, query, body, authorized)

    qb._route = ignore


def test_filters_the_portal_ignores_are_applied_to_what_it_returns(tmp_path, capsys):
    from feedback_nlp.cli import main

    with FakeQuackback() as qb:
        _ignoring_filters(qb)
        qb.add_post("Old idea", id="post_old", board="ideas", created_at="2025-06-01T00:00:00.000Z")
        qb.add_post("New idea", id="post_new", board="ideas", created_at="2026-03-01T00:00:00.000Z")
        qb.add_post("New bug", id="post_bug", board="bugs", created_at="2026-03-02T00:00:00.000Z")
        since = pull_posts(_client(qb), dateFrom="2026-01-01")
        assert sorted(since.records["id"]) == ["post_bug", "post_new"] and since.skipped_filtered == 1  # was all 3
        until = pull_posts(_client(qb), dateTo="2026-03-01T12:00:00Z")
        assert sorted(until.records["id"]) == ["post_new", "post_old"]
        by_slug = pull_posts(_client(qb), boardId="ideas")  # a slug for the id: Quackback returned every board
        assert sorted(by_slug.records["id"]) == ["post_new", "post_old"] and by_slug.skipped_filtered == 1
        assert sorted(pull_posts(_client(qb), boardId="board_bugs").records["id"]) == ["post_bug"]
        with pytest.raises(QuackbackError, match="dateFrom must be an ISO date"):
            pull_posts(_client(qb), dateFrom="last week")
        key = tmp_path / "key"
        key.write_text(API_KEY)
        key.chmod(0o600)
        assert main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(tmp_path / "o.csv"),
                     "--since", "2026-01-01"]) == 0
        assert "1 posts outside --board-id/--since left out" in capsys.readouterr().out


# --- an answer cut short without a Content-Length ---------------------------------------------------------


def _read_request(conn) -> None:
    """The whole request, headers and body: a socket closed with part of it unread sends a reset, which the
    client read as "Connection reset by peer" instead of the cut answer (a POST's body often comes in a second
    segment)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


def _portal_answering(*replies: bytes) -> str:
    """A loopback 'portal' answering its n-th connection with ``replies[n]`` as it is, then closing it."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer() -> None:
        with server:
            for reply in replies:
                conn, _ = server.accept()
                with conn:
                    _read_request(conn)
                    conn.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_page_cut_short_without_a_content_length_is_read_again():
    cut = b'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{"data": [{"id": "post_1"'
    whole = b'{"data": [{"id": "post_1", "title": "Export"}], "meta": {"pagination": {"cursor": null, "hasMore": false}}}'
    good = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(whole), whole)
    client = QuackbackClient(_portal_answering(cut, good), Secret(API_KEY), sleep=lambda s: None, timeout=5)
    assert [p["id"] for p in client.iter_posts()] == ["post_1"]  # was "not JSON" at once: the pull failed
    assert client.requests_made == 2
    stubborn = QuackbackClient(_portal_answering(cut, cut), Secret(API_KEY), sleep=lambda s: None, timeout=5,
                               max_retries=1)
    with pytest.raises(QuackbackAPIError, match="not JSON") as err:
        list(stubborn.iter_posts())
    assert stubborn.requests_made == 2 and not err.value.retryable


def test_a_post_answered_with_a_cut_body_is_not_sent_twice():
    cut = b'HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n{"data": {"id": "post_tag_1"'
    client = QuackbackClient(_portal_answering(cut, cut), Secret(API_KEY), sleep=lambda s: None, timeout=5)
    with pytest.raises(QuackbackAPIError, match="not JSON"):
        client.create_tag("billing")
    assert client.requests_made == 1  # a POST that may have been done is never repeated


def test_a_numpy_integer_is_a_page_size():
    import numpy as np

    with FakeQuackback() as qb:
        qb.add_post("One", id="post_1")
        assert [p["id"] for p in _client(qb).iter_posts(limit=np.int64(5), max_posts=np.int32(10))] == ["post_1"]
        assert qb.requests("GET", "/api/v1/posts")[0].query["limit"] == ["5"]


# --- an edit of a merged post ------------------------------------------------------------------------------


def test_an_edit_after_a_merge_does_not_bring_the_post_back(tmp_path):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "post_a", "title": "Export fails", "content": "csv"},
               at="2026-01-01T00:00:00Z"))
    hook({"id": "e2", "type": "post.merged", "createdAt": "2026-01-02T00:00:00Z",
          "data": {"duplicatePost": {"id": "post_a", "title": "Export fails"}, "canonicalPost": {"id": "post_b"}}})
    hook(event("e3", "post.updated", {"id": "post_a", "title": "Export fails!", "content": "csv"},
               at="2026-01-03T00:00:00Z"))
    result = hook.integration.store.event("e3")["result"]
    assert result["action"] == "skipped" and "post.unmerged" in result["reason"]
    # was live again, and in the backlog: every post like it became a duplicate of a merged post
    assert hook.integration.store.post("post_a")["deleted"] == 1 and "post_a" not in hook.backlog.items
    hook({"id": "e4", "type": "post.unmerged", "createdAt": "2026-01-04T00:00:00Z",
          "data": {"post": {"id": "post_a", "title": "Export fails!"}}})
    assert hook.integration.store.post("post_a")["deleted"] == 0 and "post_a" in hook.backlog.items
    hook(event("e5", "post.updated", {"id": "post_a", "title": "Export fails", "content": "now"},
               at="2026-01-05T00:00:00Z"))
    assert hook.integration.store.event("e5")["result"]["action"] == "tagged"  # unmerged: edits count again
