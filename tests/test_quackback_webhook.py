"""Webhook verification, idempotency, the durable queue and the processor, in process against the fake portal."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from _fake_quackback import API_KEY, FakeQuackback
from conftest import HashEmbedder
from feedback_nlp.integrations.quackback import (
    IntegrationStore,
    Prediction,
    Processor,
    QuackbackClient,
    QuackbackIntegration,
    Secret,
    VectorBacklog,
    WriteBack,
    sign,
    signed_headers,
)

SECRET = "whsec_test_secret"


class KeywordTagger:
    """A deterministic tagger for the tests: a keyword gives a tag with a fixed probability."""

    rules = {"refund": ("Billing", 0.93), "invoice": ("Billing", 0.81), "dark": ("UI", 0.62), "maybe": ("Performance", 0.3)}

    def predict(self, texts):
        out = []
        for t in texts:
            tags = {tag: p for word, (tag, p) in self.rules.items() if word in t.lower()}
            out.append(Prediction(tags, needs_review="unsure" in t.lower()))
        return out


def event(eid: str, etype: str = "post.created", **post) -> dict:
    post.setdefault("id", "post_a")
    post.setdefault("title", "Refund charged twice")
    post.setdefault("content", "We were charged twice and need a refund.")
    return {"id": eid, "type": etype, "createdAt": "2026-03-01T10:00:00.000Z",
            "data": {"post": {"boardId": "board_x", "boardSlug": "bugs", "voteCount": 1, **post}}}


def deliver(integ: QuackbackIntegration, doc: dict | bytes, *, ts: int | None = None, secret: str = SECRET):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return integ.receive(signed_headers(secret, body, timestamp=ts, event_type="post.created"), body)


@pytest.fixture
def qb():
    with FakeQuackback() as fake:
        fake.add_tag("Billing")
        fake.add_tag("UI")
        fake.add_tag("Escalated by support")
        yield fake


def make(qb, tmp_path, **kw) -> QuackbackIntegration:
    client = QuackbackClient(qb.url, Secret(API_KEY), sleep=lambda s: None)
    store = IntegrationStore(tmp_path / "quackback.sqlite")
    backlog = VectorBacklog(HashEmbedder())
    opts = {"write_back": WriteBack(client), "client": client, **kw.pop("processor", {})}
    return QuackbackIntegration(Processor(store, tagger=KeywordTagger(), backlog=backlog, **opts), Secret(SECRET),
                                retry_delay_s=0, **kw)


# --- verification --------------------------------------------------------------------------------

def bad_deliveries(body: bytes, now: int) -> dict[str, dict[str, str]]:
    good = signed_headers(SECRET, body, timestamp=now)
    drop = lambda name: {k: v for k, v in good.items() if k != name}  # noqa: E731
    return {
        "wrong secret": signed_headers("other", body, timestamp=now),
        # flip the last hex digit (always a change: replacing it by a fixed digit was a no-op 1 time in 16)
        "tampered signature": {**good, "X-Quackback-Signature": good["X-Quackback-Signature"][:-1]
                               + ("1" if good["X-Quackback-Signature"].endswith("0") else "0")},
        "no sha256= prefix": {**good, "X-Quackback-Signature": good["X-Quackback-Signature"][7:]},
        "signature of another timestamp": {**good, "X-Quackback-Timestamp": str(now - 1)},
        "stale timestamp": signed_headers(SECRET, body, timestamp=now - 301),
        "timestamp from the future": signed_headers(SECRET, body, timestamp=now + 301),
        "missing signature": drop("X-Quackback-Signature"),
        "missing timestamp": drop("X-Quackback-Timestamp"),
        "empty signature": {**good, "X-Quackback-Signature": ""},
        "non-numeric timestamp": {**good, "X-Quackback-Timestamp": "abc"},
        "signed exponent timestamp": {**good, "X-Quackback-Timestamp": "17e8",
                                      "X-Quackback-Signature": sign(SECRET, "17e8", body)},
        "negative timestamp": {**good, "X-Quackback-Timestamp": f"-{now}",
                               "X-Quackback-Signature": sign(SECRET, f"-{now}", body)},
        "huge timestamp": {**good, "X-Quackback-Timestamp": "9" * 40},
        "signature over re-serialised json": {**good, "X-Quackback-Signature": sign(
            SECRET, now, json.dumps(json.loads(body), indent=2).encode())},
    }


def test_every_verification_failure_is_the_same_bare_401(qb, tmp_path, caplog):
    integ = make(qb, tmp_path)
    body = json.dumps(event("evt_1")).encode()
    now = int(time.time())
    for name, headers in bad_deliveries(body, now).items():
        status, payload = integ.receive(headers, body, now=now)
        assert (status, payload) == (401, {"error": "unauthorized"}), name
    assert integ.store.counts()["pending"] == 0 and integ.rejected == len(bad_deliveries(body, now))
    assert SECRET not in caplog.text
    # the body is checked byte for byte: a space added after signing fails
    headers = signed_headers(SECRET, body, timestamp=now)
    assert integ.receive(headers, body + b" ", now=now)[0] == 401
    assert integ.receive({k.lower(): v for k, v in headers.items()}, body, now=now)[0] == 202  # header case


def test_replay_window_is_configurable(qb, tmp_path):
    integ = make(qb, tmp_path, tolerance_s=30)
    assert deliver(integ, event("evt_old"), ts=int(time.time()) - 60)[0] == 401
    assert deliver(integ, event("evt_new"), ts=int(time.time()) - 20)[0] == 202


def test_signed_but_unusable_bodies_are_400_and_not_stored(qb, tmp_path):
    integ = make(qb, tmp_path)
    for body in (b"not json", b"[1,2]", b'{"type": "post.created"}', b'{"id": 5, "type": "post.created"}',
                 json.dumps({"id": "e", "type": "post.created", "data": {"post": {}}}).encode(),
                 json.dumps({"id": "x" * 201, "type": "post.created"}).encode()):
        status, payload = deliver(integ, body)
        assert status == 400 and "error" in payload, body
    assert sum(integ.store.counts().values()) == 0


def test_oversized_body_is_413_before_any_work(qb, tmp_path):
    integ = make(qb, tmp_path, max_body_bytes=1000)
    status, payload = deliver(integ, event("evt_big", content="x" * 2000))
    assert status == 413 and payload["limit"] == "max_body_bytes"


# --- processing ----------------------------------------------------------------------------------

def test_valid_event_tags_written_as_union_keeping_a_persons_tags(qb, tmp_path):
    post = qb.add_post("Refund charged twice", tags=("Escalated by support",), id="post_a")
    integ = make(qb, tmp_path)
    assert deliver(integ, event("evt_1", id=post["id"], title="Refund twice, dark mode too")) == (
        202, {"accepted": True, "event": "evt_1", "duplicate": False})
    assert integ.drain() == 1
    (patch,) = qb.requests("PATCH")
    assert patch.body == {"tagIds": ["post_tag_0003", "post_tag_0001", "post_tag_0002"]}  # person's tag first, kept
    row = integ.store.event("evt_1")
    assert row["state"] == "done" and row["result"]["written"] == ["Billing", "UI"]
    assert row["result"]["predicted"] == {"Billing": 0.93, "UI": 0.62}


def test_replayed_event_id_is_processed_once(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    integ = make(qb, tmp_path)
    doc = event("evt_same", id="post_a")
    assert deliver(integ, doc)[1]["duplicate"] is False
    assert deliver(integ, doc, ts=int(time.time()) + 5)[1]["duplicate"] is True  # a retry: fresh signature
    assert integ.drain() == 1
    assert deliver(integ, doc)[1]["duplicate"] is True  # also after processing, and after a restart:
    again = make(qb, tmp_path)
    assert deliver(again, doc)[1]["duplicate"] is True and again.drain() == 0
    assert len(qb.requests("PATCH")) == 1


def test_429_then_200_is_written_once(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    qb.fail_next("PATCH", "/api/v1/posts/post_a", 429, retry_after="1")
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_a"))
    integ.drain()
    assert [r.status for r in qb.requests("PATCH")] == [429, 200]
    assert [t["name"] for t in qb.posts["post_a"]["tags"]] == ["Billing"]
    assert integ.store.event("evt_1")["state"] == "done"


def test_low_confidence_and_abstained_predictions_are_not_written(qb, tmp_path):
    for pid in ("post_a", "post_b"):
        qb.add_post("x", id=pid)
    integ = make(qb, tmp_path, processor={"min_confidence": 0.7})
    deliver(integ, event("evt_1", id="post_a", title="Dark mode maybe", content="invoice"))  # UI .62, Perf .3 < .7
    deliver(integ, event("evt_2", id="post_b", title="unsure: refund?", content=""))         # the model abstained
    integ.drain()
    (patch,) = qb.requests("PATCH")
    assert patch.path.endswith("post_a") and patch.body == {"tagIds": ["post_tag_0001"]}     # only Billing (.81)
    assert integ.store.event("evt_2")["result"]["confident"] == []


def test_quackback_down_is_retried_later_then_recorded_as_failed(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    qb.fail_next("GET", "/api/v1/posts/post_a", 503, times=100, retry_after=None)
    integ = make(qb, tmp_path, max_attempts=3)
    deliver(integ, event("evt_1", id="post_a"))
    assert integ.drain() == 3  # retry_delay_s=0: each retry is due at once
    row = integ.store.event("evt_1")
    assert row["state"] == "failed" and row["attempts"] == 3 and "HTTP 503" in row["error"]
    assert len(qb.requests("GET", "/api/v1/posts/post_a")) == 3 * 5  # client retries (4) within each attempt
    assert qb.requests("PATCH") == []
    # Quackback is back: an operator queues the failed event again (`feedback-nlp quackback retry`)
    from feedback_nlp.cli import main

    qb._failures.clear()
    assert main(["quackback", "retry", "--data", str(tmp_path), "--json"]) == 0
    assert integ.drain() == 1 and integ.store.event("evt_1")["state"] == "done" and len(qb.requests("PATCH")) == 1


def test_a_post_gone_from_quackback_fails_without_retries(qb, tmp_path):
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_missing"))
    assert integ.drain() == 1
    row = integ.store.event("evt_1")
    assert row["state"] == "failed" and row["attempts"] == 1 and "NOT_FOUND" in row["error"]


def test_duplicates_reported_and_merged_only_when_asked(qb, tmp_path):
    for pid in ("post_1", "post_2", "post_3"):
        qb.add_post("x", id=pid)
    text = {"title": "Export to CSV cuts long descriptions", "content": "the csv export truncates text"}
    integ = make(qb, tmp_path, processor={"duplicate_threshold": 0.9})
    deliver(integ, event("evt_1", id="post_1", **text))
    deliver(integ, event("evt_2", id="post_2", **text))
    deliver(integ, event("evt_3", id="post_3", title="Dark mode for the mobile app", content="night theme"))
    integ.drain()
    assert integ.store.event("evt_2")["result"]["duplicates"] == [{"id": "post_1", "score": 1.0}]
    assert integ.store.event("evt_3")["result"]["duplicates"] == []
    assert [(s["post_id"], s["candidate_id"]) for s in integ.store.suggestions()] == [("post_2", "post_1")]
    assert qb.requests("POST", "/api/v1/posts/post_2/merge") == []  # reported, never merged by default

    merging = make(qb, tmp_path, processor={"duplicate_threshold": 0.9, "auto_merge_above": 0.97})
    qb.add_post("y", id="post_4")
    deliver(merging, event("evt_4", id="post_4", **text))
    merging.processor.backlog.load({"post_1": "Export to CSV cuts long descriptions\n\nthe csv export truncates text"})
    merging.drain()
    (merge,) = qb.requests("POST", "/api/v1/posts/post_4/merge")
    assert merge.body == {"canonicalPostId": "post_1"} and qb.posts["post_4"]["canonicalPostId"] == "post_1"
    assert merging.store.event("evt_4")["result"]["merged_into"] == "post_1"
    # a merge Quackback refuses (here: already merged, 409) is reported; the event itself is done
    qb.posts["post_2"]["canonicalPostId"] = "post_3"
    deliver(merging, event("evt_5", id="post_2", **text))
    merging.drain()
    row = merging.store.event("evt_5")
    assert row["state"] == "done" and "CONFLICT" in row["result"]["merge_error"]


def test_a_duplicate_threshold_of_one_reports_exact_copies(qb, tmp_path):
    """1.0 means identical, as in the service (helper 14d): a float32 vector times its own copy is 1 ± 6e-7, and
    an exact copy scored 0.9999994 was not reported at duplicate_threshold=1.0 (nor merged at auto_merge_above=1.0)."""

    class CopyBacklog:
        def search(self, text, k):
            return [("post_1", float(np.float32(0.9999994)))]

        def upsert(self, post_id, text, meta=None):
            pass

        def delete(self, post_id):
            pass

    for pid in ("post_1", "post_2"):
        qb.add_post("x", id=pid)
    integ = make(qb, tmp_path, processor={"duplicate_threshold": 1.0, "auto_merge_above": 1.0})
    integ.processor.backlog = CopyBacklog()
    deliver(integ, event("evt_1", id="post_2", title="Export to CSV cuts long descriptions", content="csv"))
    integ.drain()
    assert integ.store.event("evt_1")["result"]["duplicates"] == [{"id": "post_1", "score": 1.0}]
    assert integ.store.event("evt_1")["result"]["merged_into"] == "post_1"


def test_status_delete_and_merge_events_keep_the_store_current(qb, tmp_path):
    qb.add_post("x", id="post_1")
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_1"))
    for i, (prev, new) in enumerate([("Open", "Planned"), ("Planned", "Complete")]):
        doc = {"id": f"evt_s{i}", "type": "post.status_changed", "createdAt": f"2026-03-0{5 + i}T00:00:00Z",
               "data": {"post": {"id": "post_1", "title": "Refund", "boardId": "b", "boardSlug": "bugs"},
                        "previousStatus": prev, "newStatus": new}}
        deliver(integ, doc)
    integ.drain()
    row = integ.store.post("post_1")
    assert (row["status"], row["status_stage"]) == ("Complete", "shipped")
    assert row["first_status_change_at"].startswith("2026-03-05") and row["status_changed_at"].startswith("2026-03-06")
    assert row["text"].startswith("Refund charged twice")  # a status event does not replace the text
    assert len(integ.processor.backlog) == 1
    deliver(integ, {"id": "evt_d", "type": "post.deleted", "data": {"post": {"id": "post_1"}}})
    deliver(integ, {"id": "evt_c", "type": "comment.created", "data": {"post": {"id": "post_1"}, "comment": {}}})
    integ.drain()
    assert len(integ.processor.backlog) == 0 and integ.store.post("post_1")["deleted"] == 1
    assert integ.store.event("evt_c")["result"]["action"] == "ignored"
    frame = integ.store.posts_frame(include_deleted=True)
    assert frame.loc[0, "source"] == "bugs" and str(frame["status_changed_at"].dtype).startswith("datetime64")


def test_crash_while_processing_is_recovered_on_start(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_a"))
    assert integ.store.claim()["id"] == "evt_1"  # the worker took it … and the process died here
    restarted = make(qb, tmp_path)
    assert restarted.store.recover() == 1 and restarted.drain() == 1
    assert restarted.store.event("evt_1")["state"] == "done" and len(qb.requests("PATCH")) == 1


def test_worker_thread_processes_in_the_background(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    integ = make(qb, tmp_path).start()
    try:
        t0 = time.perf_counter()
        deliver(integ, event("evt_1", id="post_a"))
        row = integ.wait("evt_1", timeout=10)
        assert row is not None and row["state"] == "done" and time.perf_counter() - t0 < 5
        assert integ.wait("evt_unknown", timeout=0.1) is None
    finally:
        integ.stop()


def test_vector_backlog_search_upsert_delete():
    b = VectorBacklog(HashEmbedder()).load({"a": "export csv fails", "b": "dark mode please", "c": ""})
    assert len(b) == 2 and b.search("export csv fails", 1)[0][0] == "a"
    b.upsert("a", "sso login with okta", {})
    b.upsert("d", "export csv fails", {})
    assert b.search("export csv fails", 1) == [("d", pytest.approx(1.0))]
    b.delete("d")
    b.delete("zzz")
    assert len(b) == 2 and np.isclose(b.search("sso login with okta", 1)[0][1], 1.0)


def test_post_text_is_cleaned_and_redacted_before_it_is_stored_or_searched(qb, tmp_path):
    qb.add_post("x", id="post_a")
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_a", title="<b>Refund</b> please",
                         content="Call me on +44 20 7946 0958 or mail bob.smith@example.com"))
    deliver(integ, event("evt_2", id="post_b", title="   ", content=""))
    integ.drain()
    raw = integ.store._db.execute("SELECT body FROM events WHERE id='evt_1'").fetchone()[0]
    assert bytes(raw) == b""  # the raw delivery is not kept once processed
    stored = integ.store.post("post_a")["text"]
    assert "<b>" not in stored and "bob.smith@example.com" not in stored and "7946" not in stored
    assert stored.startswith("Refund please")
    assert integ.store.event("evt_2")["result"] == {"event": "evt_2", "type": "post.created", "post": "post_b",
                                                    "action": "skipped", "reason": "empty text after cleaning"}


def test_update_without_content_reads_the_post_from_quackback(qb, tmp_path):
    qb.add_post("Dark mode", "And an invoice export", id="post_a")
    integ = make(qb, tmp_path)
    deliver(integ, {"id": "evt_u", "type": "post.updated", "data": {"post": {"id": "post_a", "title": "Dark mode"}}})
    integ.drain()
    result = integ.store.event("evt_u")["result"]
    assert result["predicted"] == {"Billing": 0.81, "UI": 0.62}  # "invoice" came from the fetched content
    assert integ.store.post("post_a")["text"] == "Dark mode And an invoice export"


def test_a_tag_deleted_in_quackback_after_caching_is_looked_up_again(qb, tmp_path):
    qb.add_post("Refund", id="post_a")
    qb.add_post("Refund again", id="post_b")
    integ = make(qb, tmp_path)
    deliver(integ, event("evt_1", id="post_a"))
    integ.drain()  # the tag list (Billing = post_tag_0001) is cached now
    qb.tags = [t for t in qb.tags if t["name"] != "Billing"]
    fresh = qb.add_tag("billing")  # a person deleted "Billing" and created "billing"
    deliver(integ, event("evt_2", id="post_b"))
    integ.drain()
    assert [r.status for r in qb.requests("PATCH", "/api/v1/posts/post_b")] == [400, 200]
    assert [t["id"] for t in qb.posts["post_b"]["tags"]] == [fresh["id"]]
    assert integ.store.event("evt_2")["state"] == "done"


def test_sentiment_is_stored_and_hostile_ids_and_bodies_fail_cleanly(qb, tmp_path):
    class Mood:
        def predict(self, texts):
            return [Prediction({"negative": 0.8, "neutral": 0.2} if "twice" in t else {"positive": 0.9}) for t in texts]

    qb.add_post("x", id="post_a")
    integ = make(qb, tmp_path, processor={"sentiment": Mood()})
    deliver(integ, event("evt_1", id="post_a"))
    deliver(integ, event("evt_2", id="../tags"))  # an id that would change the API route
    assert deliver(integ, b"[" * 100_000 + b"]" * 100_000)[0] == 400  # nesting deep enough to blow the parser
    integ.drain()
    assert integ.store.post("post_a")["sentiment"] == "negative"
    assert integ.store.event("evt_1")["result"]["sentiment"] == "negative"
    row = integ.store.event("evt_2")
    assert row["state"] == "failed" and row["attempts"] == 1 and "invalid Quackback id" in row["error"]
    assert not [r for r in qb.received if "tags" in r.path and r.method != "GET"]
