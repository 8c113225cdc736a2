"""The webhook mounted in `feedback-nlp serve`: the service's tag model, backlog store and API keys."""

from __future__ import annotations

import time

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from _quackback_harness import NODE, WebhookServer, create_key, post_created, result_of, send, write_secret

pytest.importorskip("fastapi", reason="pip install 'feedback-nlp[serve]'")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(NODE is None, reason="node is needed for the webhook sender")]

SECRET = "whsec_serve_29c1"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("quackback_serve")
    token = create_key(tmp / "data", "write")
    with FakeQuackback() as qb:
        for name in ("bug", "feature_request", "question", "praise_or_experience", "Escalated"):
            qb.add_tag(name)
        server = WebhookServer(tmp / "data", write_secret(tmp / "secret", SECRET), portal=qb.url,
                               key_file=write_secret(tmp / "key", API_KEY), command=("serve",),
                               ready_path="/readyz").start()
        try:
            yield qb, server, tmp, token
        finally:
            server.stop()


def test_webhook_in_serve_tags_writes_back_and_fills_the_backlog(env):
    qb, server, tmp, token = env
    post = qb.add_post("The app crashes every time I export a report to CSV", "It freezes, then closes.",
                       tags=("Escalated",), id="post_s1")
    (res,) = send(server.url, SECRET, [{"body": post_created("evt_s1", post)}], tmp)
    assert result_of(server, res, token)["result"]["written"] == ["bug"], res
    assert [t["name"] for t in qb.posts["post_s1"]["tags"]] == ["Escalated", "bug"]
    status, item = server.call("GET", "/v1/backlog/post_s1", token=token)
    assert status == 200 and item["metadata"]["quackback"] is True
    # another app finds the Quackback post through the service's own duplicate search
    status, dupes = server.call("POST", "/v1/duplicates", {"items": [{"id": "q", "text": "App crashes when exporting a report to CSV"}], "k": 3}, token=token)
    assert status == 200 and dupes["results"][0]["matches"][0]["id"] == "post_s1"
    # and a second, similar post is reported as its duplicate
    twin = qb.add_post("The app crashes every time I export a report to CSV", "Same here.", id="post_s2")
    (res,) = send(server.url, SECRET, [{"body": post_created("evt_s2", twin)}], tmp)
    assert [d["id"] for d in result_of(server, res, token)["result"]["duplicates"]] == ["post_s1"]


def test_webhook_needs_a_signature_and_the_read_endpoints_need_a_key(env):
    qb, server, tmp, token = env
    post = qb.add_post("Dark mode please", id="post_s3")
    results = send(server.url, SECRET, [{"body": post_created("evt_s3", post), "secret": "wrong"},
                                        {"body": post_created("evt_s3", post), "omit": ["X-Quackback-Signature"]}], tmp)
    assert [(r["status"], r["body"]) for r in results] == [(401, {"error": "unauthorized"})] * 2
    assert server.call("GET", "/v1/integrations/quackback/suggestions")[0] == 401
    status, rows = server.call("GET", "/v1/integrations/quackback/suggestions", token=token)
    assert status == 200 and {"post_id": "post_s2", "candidate_id": "post_s1"}.items() <= rows["data"][0].items()
    assert server.status(token)["events"]["done"] == 2
    assert server.call("GET", "/v1/integrations/quackback/events/evt_s1")[0] == 401
    status, row = server.call("GET", "/v1/integrations/quackback/events/evt_s1", token=token)
    assert status == 200 and row["state"] == "done" and row["attempts"] == 1
    assert server.call("GET", "/v1/integrations/quackback/events/nope", token=token)[0] == 404
    text = server.cmdline() + server.log.read_text()
    assert SECRET not in text and API_KEY not in text and token not in text


def test_serve_sigkilled_after_acknowledging_processes_the_event_after_restart(env):
    qb, server, tmp, token = env
    post = qb.add_post("The app crashes every time I export a report to CSV", "Again.", id="post_s_kill")
    qb.delay_next("GET", "/api/v1/posts/post_s_kill", 20)  # the worker hangs on Quackback, after the 2xx
    (res,) = send(server.url, SECRET, [{"body": post_created("evt_s_kill", post)}], tmp)
    assert res["status"] == 202 and res["body"]["accepted"] is True
    deadline = time.monotonic() + 30
    while not qb.requests("GET", "/api/v1/posts/post_s_kill") and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill()
    server.start()
    assert result_of(server, {"status": 202, "body": res["body"]}, token)["state"] == "done"
    assert [r.status for r in qb.requests("PATCH", "/api/v1/posts/post_s_kill")] == [200]
    assert [t["name"] for t in qb.posts["post_s_kill"]["tags"]] == ["bug"]
