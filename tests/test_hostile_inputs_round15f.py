"""Round 15f: the Quackback integration against a hostile network and a flaky portal."""

from __future__ import annotations

import json

import pytest

from _fake_quackback import API_KEY, FakeQuackback
from _hostile_support import event
from feedback_nlp.integrations.quackback import QuackbackAPIError, QuackbackClient, Secret
from feedback_nlp.integrations.quackback._events import parse_event
from feedback_nlp.integrations.quackback._processor import Processor, is_retryable
from feedback_nlp.integrations.quackback._store import IntegrationStore


def _client(fake: FakeQuackback) -> QuackbackClient:
    return QuackbackClient(fake.url, Secret(API_KEY), sleep=lambda s: None, timeout=5)


def _answer_posts_with(qb: FakeQuackback, data: object) -> None:
    """``GET /posts/{id}`` answers 200 with ``data`` as the envelope's data."""
    route = qb._route

    def odd(method, path, query, body, authorized):
        if method == "GET" and "/posts/" in path:
            return 200, {"data": data}, {}
        return route(method, path, query, body, authorized)

    qb._route = odd


@pytest.mark.parametrize("data", [None, [], "post_x", 3])
def test_a_post_read_back_that_is_no_object_is_an_api_error_not_an_attribute_error(tmp_path, data):
    with FakeQuackback() as qb:
        _answer_posts_with(qb, data)
        proc = Processor(IntegrationStore(tmp_path / "q.sqlite"), client=_client(qb))
        update = parse_event(json.dumps(event("u1", "post.updated", {"id": "post_x", "title": "T"})).encode())
        with pytest.raises(QuackbackAPIError, match="not a post") as err:  # was AttributeError: 'NoneType'…
            proc.process(update)
        assert not is_retryable(err.value)


def test_a_locked_store_does_not_kill_the_worker_and_lose_later_events(tmp_path):
    import sqlite3

    from _hostile_support import FixedTagger
    from feedback_nlp.integrations.quackback._setup import build_integration
    from feedback_nlp.integrations.quackback._signature import signed_headers

    integration = build_integration(tmp_path, Secret("whsec"), tagger=FixedTagger())
    claim, calls = integration.store.claim, []

    def flaky_claim():
        calls.append(1)
        if len(calls) == 1:  # another process held the store past sqlite's timeout
            raise sqlite3.OperationalError("database is locked")
        return claim()

    integration.store.claim = flaky_claim
    integration.start()
    try:
        raw = json.dumps(event("e1", "post.created", {"id": "post_1", "title": "Refund", "content": "please"})).encode()
        assert integration.receive(signed_headers("whsec", raw), raw)[0] == 202
        row = integration.wait("e1", 5)
        assert row is not None and row["state"] == "done"  # the worker thread had died: pending for ever
        assert integration._thread is not None and integration._thread.is_alive()
    finally:
        integration.stop()


def test_an_event_that_meets_a_locked_store_is_retried_not_failed_for_good(tmp_path):
    import sqlite3

    from _hostile_support import FixedTagger
    from feedback_nlp.integrations.quackback._setup import build_integration
    from feedback_nlp.integrations.quackback._signature import signed_headers

    integration = build_integration(tmp_path, Secret("whsec"), tagger=FixedTagger())
    integration.retry_delay_s = 0.0
    update, calls = integration.store.update_post, []

    def locked_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return update(*args, **kwargs)

    integration.store.update_post = locked_once
    raw = json.dumps(event("e1", "post.created", {"id": "post_1", "title": "Refund", "content": "please"})).encode()
    assert integration.receive(signed_headers("whsec", raw), raw)[0] == 202
    integration.drain()
    row = integration.store.event("e1")
    assert row["state"] == "done" and row["attempts"] == 2  # was failed for good after one attempt


@pytest.mark.parametrize("secret", ["", "  "])
def test_an_empty_signing_secret_is_refused_not_a_key_anyone_can_sign_with(tmp_path, secret):
    from feedback_nlp.integrations.quackback import QuackbackError, SignatureError, verify_signature
    from feedback_nlp.integrations.quackback._integration import QuackbackIntegration
    from feedback_nlp.integrations.quackback._signature import signed_headers

    with pytest.raises(QuackbackError, match="secret is empty"):  # forged deliveries were accepted
        QuackbackIntegration(Processor(IntegrationStore(tmp_path / "q.sqlite")), Secret(secret))
    body = json.dumps(event("e1", "post.deleted", {"id": "post_1"})).encode()
    with pytest.raises(SignatureError, match="secret is empty"):
        verify_signature(secret, signed_headers(secret, body), body)
