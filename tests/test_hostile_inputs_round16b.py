"""Round 16b: the Quackback integration against an endless or lying portal, odd dates, odd ids and a flaky network."""

from __future__ import annotations

import email.utils
import time
import urllib.parse

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from _hostile_support import event, make_hook
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
