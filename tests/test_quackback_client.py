"""The Quackback REST client and `pull` against the fake portal (a real HTTP server on loopback)."""

from __future__ import annotations

import logging

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from feedback_nlp.integrations.quackback import (
    QuackbackAPIError,
    QuackbackAuthError,
    QuackbackClient,
    QuackbackError,
    Secret,
    WriteBack,
    pull_posts,
    read_secret,
)


@pytest.fixture
def qb():
    with FakeQuackback() as fake:
        yield fake


def client(fake: FakeQuackback, key: str = API_KEY, **kw) -> QuackbackClient:
    sleeps = []
    c = QuackbackClient(fake.url, Secret(key), sleep=sleeps.append, **kw)
    c.sleeps = sleeps  # type: ignore[attr-defined]
    return c


def test_pull_pages_with_cursor_into_records(qb):
    qb.add_tag("billing")
    for i in range(230):
        qb.add_post(f"Idea {i}", f"details {i}", board="ideas" if i % 2 else "bugs", tags=("billing",) if i % 3 == 0 else (),
                    status="planned" if i % 5 == 0 else "open", votes=i, created_at=f"2026-01-{1 + i % 28:02d}T00:00:{i % 60:02d}Z")
    gone = qb.add_post("deleted one")
    gone["deletedAt"] = "2026-02-01T00:00:00Z"
    c = client(qb)
    res = pull_posts(c)
    pages = qb.requests("GET", "/api/v1/posts")
    assert [r.query["limit"] for r in pages] == [["100"]] * 3
    assert "cursor" not in pages[0].query and all("cursor" in r.query for r in pages[1:])
    df = res.records
    assert len(df) == 230 and df["id"].is_unique and res.skipped_deleted == 0  # the fake hides deleted posts
    row = df.set_index("id").loc["post_000004"]
    assert row["text"] == "Idea 3\n\ndetails 3" and row["source"] == "ideas" and row["votes"] == 3
    assert row["tags"] == ["billing"] and row["status"] == "Open" and row["status_stage"] == "open"
    assert df.set_index("id").loc["post_000001", "status"] == "Planned"
    assert str(df["created_at"].dtype).startswith("datetime64") and df["created_at"].notna().all()


def test_pull_skips_and_counts_deleted_posts():
    from feedback_nlp.integrations.quackback import posts_to_records

    df = posts_to_records([{"id": "p1", "title": "T", "content": None, "statusId": "s1"}],
                          {"s1": {"name": "Shipped it", "category": "complete"}})
    assert df.loc[0, "text"] == "T" and df.loc[0, "status_stage"] == "shipped" and df.loc[0, "source"] == "other"


def test_pull_counts_entries_that_are_not_posts(qb, monkeypatch):
    c = client(qb)
    monkeypatch.setattr(c, "iter_posts", lambda **kw: iter([{"id": "p1", "title": "ok"}, {"title": "no id"}, "junk",
                                                            {"id": "p2", "title": "gone", "deletedAt": "2026-01-01"}]))
    res = pull_posts(c)
    assert res.records["id"].tolist() == ["p1"] and (res.skipped_deleted, res.skipped_malformed) == (1, 2)


def test_429_then_200_is_retried_after_retry_after(qb):
    qb.add_post("A")
    qb.fail_next("GET", "/api/v1/posts", 429, times=2, retry_after="3")
    c = client(qb)
    assert [p["id"] for p in c.iter_posts()] == ["post_000001"]
    assert c.sleeps == [3.0, 3.0] and len(qb.requests("GET", "/api/v1/posts")) == 3


def test_retries_are_bounded_and_reported(qb):
    qb.fail_next("GET", "/api/v1/tags", 503, times=10, retry_after=None)
    c = client(qb, max_retries=2, backoff=0.1)
    with pytest.raises(QuackbackAPIError, match=r"HTTP 503 INTERNAL_ERROR.*after 3 attempts") as err:
        c.list_tags()
    assert err.value.retryable and err.value.attempts == 3 and len(qb.requests("GET", "/api/v1/tags")) == 3
    assert len(c.sleeps) == 2 and 0.05 <= c.sleeps[0] <= 0.1 and 0.1 <= c.sleeps[1] <= 0.2  # doubling, jittered


def test_retry_after_is_capped(qb):
    qb.fail_next("GET", "/api/v1/tags", 429, retry_after="86400")
    c = client(qb, max_backoff=5)
    c.list_tags()
    assert c.sleeps == [5]


def test_post_is_not_retried_after_a_server_error(qb):
    qb.fail_next("POST", "/api/v1/tags", 500)
    with pytest.raises(QuackbackAPIError, match="HTTP 500"):
        client(qb).create_tag("new", "#aabbcc")
    assert len(qb.requests("POST", "/api/v1/tags")) == 1 and qb.tags == []


def test_bad_key_is_401_without_retries_and_never_printed(qb, caplog):
    caplog.set_level(logging.DEBUG)
    c = client(qb, key="qb_wrong_secret_value")
    with pytest.raises(QuackbackAuthError, match="HTTP 401 UNAUTHORIZED") as err:
        c.list_tags()
    assert len(qb.received) == 1 and not err.value.retryable
    assert "qb_wrong_secret_value" not in str(err.value) + repr(c) + caplog.text


def test_unreachable_portal_is_a_clear_error():
    c = QuackbackClient("http://127.0.0.1:9", Secret("k"), max_retries=1, sleep=lambda s: None, timeout=2)
    with pytest.raises(QuackbackAPIError, match="no answer from Quackback") as err:
        c.list_tags()
    assert err.value.status == 0 and err.value.attempts == 2


def test_non_envelope_answer_and_endless_cursor_are_errors(qb, monkeypatch):
    c = client(qb)
    monkeypatch.setattr(c, "_once", lambda m, u, b: (200, {}, b"[1, 2]"))
    with pytest.raises(QuackbackAPIError, match="without a 'data' envelope"):
        c.list_tags()
    monkeypatch.setattr(c, "_once", lambda m, u, b: (
        200, {}, b'{"data": [{"id": "p"}], "meta": {"pagination": {"cursor": "same", "hasMore": true}}}'))
    with pytest.raises(QuackbackAPIError, match="cursor did not advance"):
        list(c.iter_posts())


@pytest.mark.parametrize("url", ["ftp://x", "feedback.example.com", "http://feedback.example.com"])
def test_unsafe_or_malformed_urls_are_refused(url):
    with pytest.raises(QuackbackError):
        QuackbackClient(url, Secret("k"))


@pytest.mark.parametrize("post_id", ["../tags", "post_1/merge", "", "a b", "x" * 201])
def test_ids_that_could_change_the_route_are_refused(qb, post_id):
    with pytest.raises(QuackbackError, match="invalid Quackback id"):
        client(qb).get_post(post_id)
    assert qb.received == []


def test_write_back_is_a_union_that_keeps_a_persons_tags(qb):
    mine = qb.add_tag("Customer escalation")
    qb.add_tag("Billing")
    post = qb.add_post("Refund twice", tags=("Customer escalation",))
    wb = WriteBack(client(qb))
    res = wb.apply(post["id"], ["billing", "Nonexistent"])
    assert res == {"added": ["billing"], "kept": [mine["id"]], "missing_tags": ["Nonexistent"]}
    (patch,) = qb.requests("PATCH")
    assert patch.body == {"tagIds": [mine["id"], "post_tag_0002"]}
    assert [t["name"] for t in qb.posts[post["id"]]["tags"]] == ["Customer escalation", "Billing"]
    assert wb.apply(post["id"], ["Billing"])["added"] == [] and len(qb.requests("PATCH")) == 1  # nothing new: no PATCH


def test_write_back_creates_missing_tags_only_when_asked(qb):
    post = qb.add_post("Dark mode please")
    res = WriteBack(client(qb), create_tags=True).apply(post["id"], ["ui/dark-mode"])
    assert res["added"] == ["ui/dark-mode"] and qb.tags[0]["name"] == "ui/dark-mode"
    assert qb.requests("POST", "/api/v1/tags")[0].body["color"] == "#6b7280"


def test_read_secret_from_file_or_env(tmp_path, monkeypatch, caplog):
    f = tmp_path / "key"
    f.write_text("qb_live_123\n")
    f.chmod(0o600)
    assert read_secret(f).reveal() == "qb_live_123"
    monkeypatch.setenv("QB_KEY", " qb_env ")
    assert read_secret(None, "QB_KEY").reveal() == "qb_env"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(QuackbackError, match="is empty"):
        read_secret(tmp_path / "empty")
    with pytest.raises(QuackbackError, match="not found"):
        read_secret(tmp_path / "nope")
    monkeypatch.delenv("QB_KEY")
    with pytest.raises(QuackbackError, match=r"\$QB_KEY") as err:
        read_secret(None, "QB_KEY")
    assert "qb_" not in str(err.value)
    f.chmod(0o644)
    read_secret(f)
    assert "readable by other users" in caplog.text and "qb_live_123" not in caplog.text


# --- the CLI ------------------------------------------------------------------------------------

def test_cli_pull_writes_records_and_reads_the_key_from_a_file(qb, tmp_path, capsys):
    import json

    from feedback_nlp.cli import main
    from feedback_nlp.records import read_feedback

    for i in range(120):
        qb.add_post(f"Idea {i}", "body", board="ideas", status="planned" if i % 2 else "complete", votes=i)
    key = tmp_path / "key"
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    out = tmp_path / "posts.csv"
    assert main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["posts"] == 120 and summary["requests"] == 4  # tags (a CSV cell joins them with "|"), statuses, 2 pages
    records, rejected = read_feedback(out)
    assert len(records) == 120 and len(rejected) == 0
    assert set(records["status"]) == {"Planned", "Complete"} and set(records["board"]) == {"ideas"}
    qb.add_post("tagged", tags=("security",))
    tagged = tmp_path / "tagged.csv"
    assert main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(tagged),
                 "--tagged-only"]) == 0
    assert "120 untagged posts left out" in capsys.readouterr().out
    assert read_feedback(tagged).records["tags"].tolist() == ["security"]


def test_cli_pull_errors_are_one_line_without_the_key(qb, tmp_path, capsys, monkeypatch):
    from feedback_nlp.cli import main

    key = tmp_path / "key"
    key.write_text("qb_not_the_right_one")
    key.chmod(0o600)
    rc = main(["quackback", "pull", "--url", qb.url, "--key-file", str(key), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err
    assert rc != 0 and "HTTP 401" in err and "qb_not_the_right_one" not in err and "Traceback" not in err
    monkeypatch.delenv("QUACKBACK_API_KEY", raising=False)
    assert main(["quackback", "pull", "--url", qb.url, "--out", str(tmp_path / "p.csv")]) != 0
    assert "$QUACKBACK_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "p.csv").exists()


def test_cli_export_writes_what_the_webhook_stored(tmp_path, capsys):
    from feedback_nlp.cli import main
    from feedback_nlp.integrations.quackback import IntegrationStore
    from feedback_nlp.records import read_table

    store = IntegrationStore(tmp_path / "data" / "quackback.sqlite")
    store.upsert_post("post_1", text="Dark mode", board="ideas", created_at="2026-01-01T00:00:00Z",
                      status="Planned", status_stage="planned", status_changed_at="2026-01-05T00:00:00Z")
    store.upsert_post("post_2", text="gone", deleted=1)
    store.close()
    out = tmp_path / "posts.csv"
    assert main(["quackback", "export", "--data", str(tmp_path / "data"), "--out", str(out)]) == 0
    df = read_table(out)
    assert df["id"].tolist() == ["post_1"] and df.loc[0, "status_stage"] == "planned" and df.loc[0, "source"] == "ideas"
    assert main(["quackback", "export", "--data", str(tmp_path / "nothing"), "--out", str(out)]) != 0
    assert "no Quackback integration store" in capsys.readouterr().err


def test_serve_fails_fast_on_a_missing_secret_and_never_takes_one_as_a_value(tmp_path, capsys, monkeypatch):
    pytest.importorskip("fastapi")
    from feedback_nlp.cli import main

    monkeypatch.delenv("QUACKBACK_WEBHOOK_SECRET", raising=False)
    for argv in (["--quackback-secret-file", str(tmp_path / "missing")], ["--quackback"]):
        assert main(["serve", "--data", str(tmp_path / "d"), *argv]) != 0
        err = capsys.readouterr().err
        assert "webhook signing secret" in err and "Traceback" not in err
    # there is no option taking the secret itself, and options are not abbreviated (argparse read this one as the
    # -file option, and the secret as a file name)
    assert main(["serve", "--data", str(tmp_path / "d"), "--quackback-secret", "s3cret"]) == 2
    err = capsys.readouterr().err
    assert "options are not abbreviated" in err and "--quackback-secret-file" in err and "s3cret" not in err
    secret = tmp_path / "secret"
    secret.write_text("whsec")
    secret.chmod(0o600)
    assert main(["serve", "--data", str(tmp_path / "d"), "--quackback-secret-file", str(secret), "--write-back"]) != 0
    assert "--quackback-url" in capsys.readouterr().err  # write-back without a portal is refused before start
