"""Hostile and careless inputs, round 10b (the Quackback integration and the service): each test failed before
its fix. Everything runs against the fake portal (tests/_fake_quackback.py) or in process; no network."""

from __future__ import annotations

import json
import logging
import time

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from _hostile_support import event, make_hook
from feedback_nlp.integrations.quackback import (
    QuackbackAPIError,
    QuackbackClient,
    QuackbackError,
    Secret,
    WriteBack,
    pull_posts,
    read_secret,
    signed_headers,
)
from feedback_nlp.integrations.quackback._setup import build_integration


def _client(fake: FakeQuackback, key: str = API_KEY) -> QuackbackClient:
    return QuackbackClient(fake.url, Secret(key), sleep=lambda s: None, timeout=5)


def _page(posts: list, cursor: object = None, more: bool = False) -> tuple[int, dict, dict]:
    return 200, {"data": posts, "meta": {"pagination": {"cursor": cursor, "hasMore": more}}}, {}


# --- the API client against a misbehaving portal ---------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["²", "¹²³"])
def test_a_retry_after_of_non_ascii_digits_is_ignored_not_a_crash(retry_after):
    with FakeQuackback() as qb:
        qb.add_tag("Billing")
        qb.fail_next("GET", "/api/v1/tags", 429, retry_after=retry_after)
        sleeps: list[float] = []
        client = QuackbackClient(qb.url, Secret(API_KEY), sleep=sleeps.append, backoff=0.01)
        assert [t["name"] for t in client.list_tags()] == ["Billing"]  # was a ValueError from float("²")
        assert len(sleeps) == 1 and sleeps[0] < 1  # the client's own backoff


@pytest.mark.parametrize("url, message", [
    ("https://feedback.acme.com:abc", "port"),        # was http.client.InvalidURL at the first request
    ("https://feedback.acme.com:99999", "port"),      # was a DNS error, "Name or service not known"
    ("https://feedback.acme.com:0", "port"),
    ("https://[::1", "http(s)://host"),                # was a bare ValueError ("Invalid IPv6 URL")
    ("https://feedback.acme.com/?team=acme", "query"),  # the query was dropped without a word
    ("https://feedback.acme.com/#admin", "fragment"),
    ("https://feedback.acme.com/api/v1/posts", "endpoint"),  # every call went to .../posts/api/v1/...: a 404
])
def test_a_portal_url_with_a_bad_port_or_a_query_is_refused_by_name(url, message):
    with pytest.raises(QuackbackError, match="URL") as err:
        QuackbackClient(url, Secret("qb_x"))
    assert message in str(err.value)
    QuackbackClient("https://[::1]:8443/", Secret("qb_x"))  # an IPv6 portal with a port is fine


@pytest.mark.parametrize("key", ["\ufeffqb_key", "“qb_key”", "qb key", "qb_key\u00a0"])
def test_an_api_key_an_http_header_cannot_carry_is_refused_without_showing_it(key):
    with pytest.raises(QuackbackError, match="printable ASCII") as err:  # was a UnicodeEncodeError per request
        QuackbackClient("https://feedback.acme.com", Secret(key))
    assert "qb_key" not in str(err.value)


def test_a_key_or_secret_file_saved_with_a_byte_order_mark_reads_the_value_alone(tmp_path):
    path = tmp_path / "quackback.secret"
    path.write_bytes(b"\xef\xbb\xbfwhsec_abc\r\n")  # Notepad's UTF-8
    path.chmod(0o600)
    assert read_secret(path).reveal() == "whsec_abc"  # the BOM made every signature a mismatch


def test_an_api_key_echoed_in_an_error_message_is_masked(caplog):
    with FakeQuackback() as qb:
        qb._route = lambda *a: (401, {"error": {"code": "UNAUTHORIZED", "message": f"invalid key Bearer {API_KEY}x"
                                                + "!" * 300}}, {})
        with caplog.at_level(logging.DEBUG), pytest.raises(QuackbackAPIError) as err:
            _client(qb).list_tags()
    assert API_KEY not in str(err.value) and API_KEY[:12] not in str(err.value)  # was the key, verbatim
    assert "***" in str(err.value) and API_KEY not in caplog.text


def test_pages_that_never_end_stop_with_an_error():
    calls = {"n": 0}

    def endless(method, path, query, body, authorized):
        calls["n"] += 1
        return _page([], cursor=f"c{calls['n']}", more=True)  # empty pages, a new cursor each time

    with FakeQuackback() as qb:
        qb._route = endless
        with pytest.raises(QuackbackAPIError, match="does not advance"):
            list(_client(qb).iter_posts())
    assert calls["n"] <= 5  # was paged for ever


def test_pages_that_repeat_their_posts_under_new_cursors_stop_with_an_error():
    calls = {"n": 0}

    def repeating(method, path, query, body, authorized):
        calls["n"] += 1
        return _page([{"id": "post_1", "title": "A"}], cursor=f"c{calls['n']}", more=True)

    with FakeQuackback() as qb:
        qb._route = repeating
        with pytest.raises(QuackbackAPIError, match="does not advance"):
            list(_client(qb).iter_posts())
    assert calls["n"] <= 5


def test_a_post_served_again_on_a_later_page_is_one_row():
    def shifting(method, path, query, body, authorized):
        if path.endswith("/statuses"):
            return 200, {"data": []}, {}
        if "cursor" not in query:  # offset paging while a post is added: the second page starts one post early
            return _page([{"id": "post_1", "title": "A"}, {"id": "post_2", "title": "B"}], cursor="c1", more=True)
        return _page([{"id": "post_2", "title": "B"}, {"id": "post_3", "title": "C"}])

    with FakeQuackback() as qb:
        qb._route = shifting
        res = pull_posts(_client(qb))
    assert res.records["id"].tolist() == ["post_1", "post_2", "post_3"]  # post_2 was two rows
    assert res.skipped_repeated == 1


@pytest.mark.parametrize("pagination", [{"cursor": {"a": 1}, "hasMore": True}, "next", [1]])
def test_pagination_of_the_wrong_shape_is_an_api_error_or_the_end(pagination):
    with FakeQuackback() as qb:
        qb._route = lambda *a: (200, {"data": [{"id": "post_1"}], "meta": {"pagination": pagination}}, {})
        try:
            posts = list(_client(qb).iter_posts())  # was a TypeError (unhashable) or an AttributeError
        except QuackbackAPIError as exc:
            assert "cursor" in str(exc)
        else:
            assert posts == [{"id": "post_1"}]


@pytest.mark.parametrize("statuses", [None, [{"id": ["x"], "name": "Open"}]])
def test_a_statuses_answer_of_the_wrong_shape_leaves_status_ids_as_they_are(statuses):
    def route(method, path, query, body, authorized):
        if path.endswith("/statuses"):
            return 200, {"data": statuses}, {}
        return _page([{"id": "post_1", "title": "A", "statusId": "status_open"}])

    with FakeQuackback() as qb:
        qb._route = route
        res = pull_posts(_client(qb))  # the list was an "unhashable type" TypeError
    assert res.records["status"].tolist() == ["status_open"]


@pytest.mark.parametrize("tags", [None, {"id": "t1", "name": "Billing"}, "Billing"])
def test_a_tags_answer_that_is_not_a_list_is_an_api_error(tags):
    with FakeQuackback() as qb:
        qb._route = lambda *a: (200, {"data": tags}, {})
        with pytest.raises(QuackbackAPIError, match="not a list") as err:
            WriteBack(_client(qb)).tag_ids(["Billing"])  # None was a TypeError
    assert not err.value.retryable  # a 2xx of the wrong shape does not pass by retrying


def test_tags_without_a_name_or_with_an_object_as_id_are_not_matched():
    with FakeQuackback() as qb:
        qb._route = lambda *a: (200, {"data": [{"id": "t1", "name": None}, {"id": {"x": 1}, "name": "Billing"},
                                               {"id": "t3", "name": "UI"}]}, {})
        found, missing = WriteBack(_client(qb)).tag_ids(["None", "Billing", "ui"])
    assert found == {"ui": "t3"} and missing == ["None", "Billing"]  # was {"None": "t1", "Billing": "{'x': 1}"}


def test_a_deeply_nested_answer_is_an_api_error():
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    with pytest.raises(QuackbackAPIError, match="not JSON"):  # was a RecursionError
        QuackbackClient._decode("GET", "/tags", 200, deep)


# --- the webhook receiver ------------------------------------------------------------------------------


@pytest.mark.parametrize("window", [float("nan"), float("inf"), 0.0, -5.0])
def test_a_replay_window_that_is_not_a_positive_finite_number_is_refused(tmp_path, window):
    with pytest.raises(QuackbackError, match="replay window"):  # NaN and inf accepted a timestamp from 1970
        build_integration(tmp_path, Secret("whsec"), replay_window=window)


def test_verify_signature_with_a_nan_window_refuses_rather_than_accepts():
    from feedback_nlp.integrations.quackback import SignatureError, verify_signature

    body = b"{}"
    with pytest.raises(SignatureError):
        verify_signature("whsec", signed_headers("whsec", body, timestamp=1000), body, tolerance_s=float("nan"))


@pytest.mark.parametrize("option, value", [
    ("--quackback-replay-window", "nan"), ("--quackback-replay-window", "inf"), ("--quackback-replay-window", "0"),
    ("--quackback-respond-within", "inf"), ("--quackback-respond-within", "-1"),
    ("--quackback-duplicate-threshold", "nan"), ("--quackback-duplicate-threshold", "1.5"),
    ("--quackback-min-confidence", "nan"), ("--auto-merge-above", "nan"),
])
def test_quackback_options_refuse_nan_inf_and_out_of_range_numbers(option, value, capsys):
    import argparse

    from feedback_nlp.integrations.quackback._setup import add_quackback_options

    parser = argparse.ArgumentParser()
    add_quackback_options(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([option, value])
    assert option in capsys.readouterr().err
    assert parser.parse_args([option, "0.5"])  # a plain value still parses


def test_a_nan_duplicate_threshold_is_refused_by_the_processor(tmp_path):
    with pytest.raises(QuackbackError, match="duplicate_threshold"):  # matched nothing: no duplicate ever reported
        build_integration(tmp_path, Secret("whsec"), duplicate_threshold=float("nan"))


def test_quackbacks_post_merged_shape_is_recorded(tmp_path):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "post_dup", "title": "Export fails", "content": "csv"}))
    ref = {"title": "Export fails", "boardId": "board_1", "boardSlug": "bugs"}
    merged = {"id": "e2", "type": "post.merged", "createdAt": "2026-01-02T00:00:00Z",
              "data": {"duplicatePost": {"id": "post_dup", **ref}, "canonicalPost": {"id": "post_main", **ref}}}
    status, _ = hook(merged)
    assert status == 202  # was 400: "a post.merged event needs data.post.id", which Quackback never retries
    post = hook.integration.store.post("post_dup")
    assert post["deleted"] == 1 and post["canonical_post_id"] == "post_main"
    assert "post_dup" not in hook.backlog.items


@pytest.mark.parametrize("data, canonical", [
    ({"canonicalPost": "post_main"}, None),                              # was an AttributeError: failed for good
    ({"canonicalPostId": ["post_main"], "canonicalPost": {"id": "post_b"}}, "post_b"),  # a list was reported
])
def test_a_merge_with_a_canonical_post_of_the_wrong_shape_is_still_recorded(tmp_path, data, canonical):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.merged", {"id": "post_dup", "title": "x"}, **data))
    row = hook.integration.store.event("e1")
    assert row["state"] == "done" and row["result"]["canonical"] == canonical
    assert hook.integration.store.post("post_dup")["canonical_post_id"] == canonical


@pytest.mark.parametrize("created", ["yesterday", {"a": 1}, 1700000000, "9999-01-01T00:00:00Z"])
def test_a_post_created_at_that_is_no_time_falls_back_to_the_deliverys(tmp_path, created):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv", "createdAt": created},
               at="2026-01-05T00:00:00Z"))
    assert hook.integration.store.post("p1")["created_at"] == "2026-01-05T00:00:00Z"  # was stored as it came


def test_a_damaged_integration_store_is_named_not_an_unexpected_error(tmp_path, capsys):
    from feedback_nlp.cli import main

    (tmp_path / "quackback.sqlite").write_bytes(b"not a database, just text" * 100)
    code = main(["quackback", "export", "--data", str(tmp_path), "--out", str(tmp_path / "out.csv")])
    err = capsys.readouterr().err
    assert code != 0 and "quackback.sqlite" in err and "unexpected" not in err  # was "unexpected DatabaseError"


@pytest.mark.parametrize("shape", [["post_tag_0001"], "post_tag_0001", None, "missing", [{"name": "Escalated"}]])
def test_write_back_never_replaces_tags_it_cannot_read(shape):
    with FakeQuackback() as qb:
        qb.add_tag("Escalated")
        qb.add_tag("Billing")
        qb.add_post("Refund", id="post_a", tags=("Escalated",))
        route = qb._route

        def odd_tags(method, path, query, body, authorized):
            status, payload, headers = route(method, path, query, body, authorized)
            if method == "GET" and path.endswith("/posts/post_a"):
                post = {k: v for k, v in payload["data"].items() if k != "tags"}
                payload = {"data": post if shape == "missing" else {**post, "tags": shape}}
            return status, payload, headers

        qb._route = odd_tags
        with pytest.raises(QuackbackAPIError, match="current tags") as err:
            WriteBack(_client(qb)).apply("post_a", ["Billing"])
        assert not err.value.retryable
        assert qb.requests("PATCH") == []  # the PATCH replaced the person's tag by the predicted one
        assert [t["name"] for t in qb.posts["post_a"]["tags"]] == ["Escalated"]


def _raw_portal(reply: bytes, connections: int = 5) -> str:
    """A loopback 'portal' answering every request with ``reply`` as it is (not necessarily HTTP)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def answer() -> None:
        with server:
            for _ in range(connections):
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(reply)

    threading.Thread(target=answer, daemon=True).start()
    return f"http://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("reply", [
    b"SSH-2.0-OpenSSH_9.6\r\n",                                                          # BadStatusLine
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"data\": [",                          # cut: "not JSON"
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",                 # IncompleteRead
    b"HTTP/1.1 200 OK\r\n" + b"".join(b"X%d: 1\r\n" % i for i in range(200)) + b"\r\n",  # too many headers
])
def test_an_answer_that_is_not_http_is_retried_then_an_api_error(reply):
    client = QuackbackClient(_raw_portal(reply), Secret(API_KEY), sleep=lambda s: None, timeout=5, max_retries=1)
    with pytest.raises(QuackbackAPIError, match="no answer") as err:  # was http.client's own exception
        client.list_tags()
    assert err.value.retryable and client.requests_made == 2


@pytest.mark.parametrize("new_status", [{"name": "Planned"}, None, 3, "  "])
def test_a_status_change_without_a_status_name_does_not_erase_the_recorded_one(tmp_path, new_status):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.status_changed", {"id": "p1", "title": "Dark mode"}, at="2026-01-02T00:00:00Z",
               newStatus="Planned", previousStatus="Open"))
    hook(event("e2", "post.status_changed", {"id": "p1", "title": "Dark mode"}, at="2026-01-03T00:00:00Z",
               newStatus=new_status, previousStatus="Planned"))
    post = hook.integration.store.post("p1")
    assert (post["status"], post["status_stage"]) == ("Planned", "planned")  # was None, None
    assert post["status_changed_at"] == "2026-01-02T00:00:00Z"
    assert hook.integration.store.event("e2")["result"]["action"] == "skipped"


# --- the service ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["postgresql://ann:S3cret Pw@127.0.0.1/feedback",   # libpq quotes the password
                                 "postgresql://ann:S3cretPw@127.0.0.1/feedback?sslmod=require"])  # a typo'd option
def test_a_postgres_url_libpq_cannot_parse_is_a_clear_error_without_its_password(url):
    pytest.importorskip("psycopg")
    from feedback_nlp.errors import FeedbackNLPError
    from feedback_nlp.service._store import open_store

    with pytest.raises(FeedbackNLPError, match="cannot connect to the PostgreSQL store") as err:
        open_store(None, url)  # was an unexpected psycopg.ProgrammingError quoting "S3cret Pw"
    assert "S3cret" not in str(err.value)


def test_a_store_url_holding_a_password_is_warned_about_without_showing_it(caplog):
    from feedback_nlp.cli import build_parser

    with caplog.at_level(logging.WARNING):
        args = build_parser().parse_args(["keys", "list", "--store", "postgresql://ann:S3cretPw@db.internal/fb"])
    assert args.store.endswith("@db.internal/fb")
    assert "PGPASSWORD" in caplog.text and "S3cretPw" not in caplog.text  # nothing said a password was visible
    caplog.clear()
    build_parser().parse_args(["keys", "list", "--store", "postgresql://ann@db.internal/fb"])
    assert "PGPASSWORD" not in caplog.text


def test_a_quackback_post_with_an_object_as_board_stays_readable_in_the_service(api, tmp_path):
    import anyio

    from _hostile_support import FixedTagger
    from feedback_nlp.integrations.quackback import IntegrationStore, Processor, parse_event
    from feedback_nlp.integrations.quackback._service import ServiceBacklog

    processor = Processor(IntegrationStore(tmp_path / "q.sqlite"), tagger=FixedTagger(),
                          backlog=ServiceBacklog(api.app.state.service))
    raw = json.dumps(event("e1", "post.created", {"id": "post_board", "title": "Export fails", "content": "csv",
                                                   "boardSlug": {"slug": "bugs"}})).encode()
    result = api.portal.call(anyio.to_thread.run_sync, processor.process, parse_event(raw))
    assert result["action"] == "tagged"
    got = api.get("/v1/backlog/post_board")
    assert got.status_code == 200, got.text  # was a 500: the object was stored as the item's metadata
    assert got.json()["metadata"] == {"source": None, "quackback": True}


@pytest.mark.parametrize("post_id", [" post_1", "post_1 ", "a/../b", "./post_1", "post\u200b1", "post_1\u202e"])
def test_post_ids_the_service_could_not_address_never_reach_the_backlog(tmp_path, post_id):
    hook = make_hook(tmp_path)
    status, _ = hook(event("e1", "post.created", {"id": post_id, "title": "Export fails", "content": "csv"}))
    row = hook.integration.store.event("e1")
    assert status == 202 and row["state"] == "failed" and "invalid Quackback id" in row["error"]
    assert hook.backlog.items == {}  # was stored, and found by every duplicate search


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_quackback_serve_refuses_a_port_out_of_range_before_loading_a_model(tmp_path, port, capsys):
    from feedback_nlp.cli import main

    try:  # 70000 failed after the model had loaded, as an unexpected OverflowError
        code = main(["quackback", "serve", "--data", str(tmp_path), "--port", port])
    except SystemExit as exc:
        code = exc.code
    assert code != 0 and "--port" in capsys.readouterr().err


def test_a_post_longer_than_the_services_text_limit_is_skipped_not_failed(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import feedback_nlp as fb
    from conftest import HashEmbedder
    from feedback_nlp.cli import build_parser
    from feedback_nlp.integrations.quackback._service import quackback_extension
    from feedback_nlp.service import ServiceConfig, create_app
    from feedback_nlp.service._state import ServiceState

    emb = HashEmbedder()
    fb.TagClassifier(emb).fit(["export fails", "csv broken", "dark mode", "add a theme"] * 3,
                              ["bug", "bug", "feature", "feature"] * 3).save(tmp_path / "m")
    secret = tmp_path / "secret"
    secret.write_text("whsec\n")
    secret.chmod(0o600)
    args = build_parser().parse_args(["serve", "--data", str(tmp_path / "data"), "--quackback-secret-file", str(secret),
                                      "--quackback-respond-within", "10"])
    config = ServiceConfig(data_dir=tmp_path / "data", models={"t": str(tmp_path / "m")}, sentiment=None, auth=False,
                           max_text_chars=40)
    state = ServiceState(config, embedder=emb)
    raw = json.dumps(event("e1", "post.created", {"id": "post_long", "title": "Export fails", "content": "csv " * 30},
                           at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))).encode()
    with TestClient(create_app(config, extensions=[quackback_extension(args)], state=state)) as client:
        deadline = time.monotonic() + 60
        while not state.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = client.post("/v1/integrations/quackback/webhook", content=raw, headers=signed_headers("whsec", raw))
        assert answer.status_code in (200, 202)
        while time.monotonic() < deadline:
            row = client.get("/v1/integrations/quackback/events/e1").json()
            if row.get("state") in ("done", "failed"):
                break
            time.sleep(0.05)
    assert row["state"] == "done", row  # was failed: "TextRejected: 1 unusable texts", the raw post kept on disk
    assert row["result"]["action"] == "skipped" and "too long" in row["result"]["reason"]


def test_an_event_type_with_a_line_break_is_refused(tmp_path, caplog):
    hook = make_hook(tmp_path)
    with caplog.at_level(logging.INFO):
        status, _ = hook({"id": "e1", "type": "comment.created\nquackback event e2 accepted", "data": {}})
    assert status == 400  # was stored, and wrote a forged line into the service log
    assert "e2 accepted" not in caplog.text


@pytest.mark.parametrize("portal, location, followed", [
    ("https://feedback.acme.com:443", "https://feedback.acme.com/api/v1/tags/", True),  # was refused
    ("https://feedback.acme.com", "https://feedback.acme.com:443/api/v1/tags/", True),
    ("https://feedback.acme.com", "https://feedback.acme.com:8443/api/v1/tags/", False),
    ("https://feedback.acme.com", "http://feedback.acme.com/api/v1/tags/", False),
    ("https://feedback.acme.com", "https://feedback.acme.com:x/api/v1/tags/", False),
    ("https://feedback.acme.com", "https://evil.example/api/v1/tags/", False),
])
def test_a_redirect_is_followed_only_within_the_origin_default_ports_included(portal, location, followed):
    import urllib.request

    from feedback_nlp.integrations.quackback._client import _SameOriginRedirects

    req = urllib.request.Request(portal + "/api/v1/tags", headers={"Authorization": "Bearer qb_x"})
    try:
        new = _SameOriginRedirects().redirect_request(req, None, 302, "Found", {}, location)
    except QuackbackAPIError:
        new = None
    assert (new is not None) == followed


@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("192.168.1.5", True), ("127.0.0.1", False)])
def test_quackback_serve_warns_when_its_unauthenticated_read_endpoints_are_reachable(tmp_path, monkeypatch, caplog,
                                                                                     host, warned):
    pytest.importorskip("uvicorn")
    import types

    import uvicorn

    from feedback_nlp.cli import main
    from feedback_nlp.integrations.quackback import _setup

    stub = types.SimpleNamespace(store=types.SimpleNamespace(path=tmp_path / "quackback.sqlite"))
    monkeypatch.setattr(_setup, "integration_from_args", lambda args, data: stub)
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    monkeypatch.setattr("feedback_nlp.integrations.quackback._asgi.create_app", lambda *a, **k: None)
    with caplog.at_level(logging.WARNING):
        assert main(["quackback", "serve", "--data", str(tmp_path), "--host", host]) == 0
    assert ("no API key" in caplog.text) == warned  # nothing said the results were readable by anyone


@pytest.mark.parametrize("option", [{"timeout": -1}, {"timeout": float("nan")}, {"timeout": 0},
                                    {"backoff": float("nan")}, {"max_backoff": float("inf")}])
def test_client_timings_that_are_no_durations_are_refused_at_once(option):
    with pytest.raises(QuackbackError, match="finite"):  # -1 failed every request with a ValueError
        QuackbackClient("https://feedback.acme.com", Secret("qb_x"), **option)


def _ref(post_id: str) -> dict:
    return {"id": post_id, "title": "Export fails", "boardId": "board_1", "boardSlug": "bugs"}


def test_a_restored_post_is_live_and_searchable_again(tmp_path):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv"}, at="2026-01-01T00:00:00Z"))
    hook(event("e2", "post.deleted", _ref("p1"), at="2026-01-02T00:00:00Z"))
    assert "p1" not in hook.backlog.items
    hook(event("e3", "post.restored", _ref("p1"), at="2026-01-03T00:00:00Z"))
    assert hook.integration.store.event("e3")["result"]["action"] == "restored"  # was "ignored": it stayed deleted
    assert hook.integration.store.post("p1")["deleted"] == 0 and "p1" in hook.backlog.items
    assert hook.integration.store.posts_frame()["id"].tolist() == ["p1"]
    # the deletion, retried late, does not undo the restore; a deletion after it does
    hook(event("e2-retry", "post.deleted", _ref("p1"), at="2026-01-02T00:00:00Z"))
    assert hook.integration.store.post("p1")["deleted"] == 0 and "p1" in hook.backlog.items
    hook(event("e4", "post.deleted", _ref("p1"), at="2026-01-04T00:00:00Z"))
    assert hook.integration.store.post("p1")["deleted"] == 1 and "p1" not in hook.backlog.items


def test_a_restore_older_than_the_deletion_held_is_skipped(tmp_path):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv"}, at="2026-01-01T00:00:00Z"))
    hook(event("e3", "post.deleted", _ref("p1"), at="2026-01-05T00:00:00Z"))
    hook(event("e2", "post.restored", _ref("p1"), at="2026-01-03T00:00:00Z"))  # an earlier restore, retried late
    assert hook.integration.store.post("p1")["deleted"] == 1 and "p1" not in hook.backlog.items
    assert hook.integration.store.event("e2")["result"]["action"] == "skipped"


def test_an_unmerged_post_is_its_own_again(tmp_path):
    hook = make_hook(tmp_path)
    hook(event("e1", "post.created", {"id": "p1", "title": "Export fails", "content": "csv"}, at="2026-01-01T00:00:00Z"))
    hook({"id": "e2", "type": "post.merged", "createdAt": "2026-01-02T00:00:00Z",
          "data": {"duplicatePost": _ref("p1"), "canonicalPost": _ref("p0")}})
    assert hook.integration.store.post("p1")["canonical_post_id"] == "p0"
    hook(event("e3", "post.unmerged", _ref("p1"), at="2026-01-03T00:00:00Z", formerCanonicalPost=_ref("p0")))
    post = hook.integration.store.post("p1")
    assert (post["deleted"], post["canonical_post_id"]) == (0, None) and "p1" in hook.backlog.items


def test_a_tag_created_meanwhile_by_someone_else_is_used_not_a_failure():
    with FakeQuackback() as qb:
        qb.add_post("Refund", id="post_a")
        route = qb._route

        def created_meanwhile(method, path, query, body, authorized):
            if method == "POST" and path.endswith("/tags") and not any(t["name"] == "Billing" for t in qb.tags):
                qb.add_tag("billing")  # a person creates it between the look-up and the create: 409 CONFLICT
            return route(method, path, query, body, authorized)

        qb._route = created_meanwhile
        result = WriteBack(_client(qb), create_tags=True).apply("post_a", ["Billing"])
        assert result["added"] == ["Billing"]  # was QuackbackAPIError 409: the event failed for good
        assert [t["name"] for t in qb.posts["post_a"]["tags"]] == ["billing"]
