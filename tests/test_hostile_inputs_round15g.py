"""Hostile and careless inputs, round 15g: the service's state (backlog store, API keys) as an app developer and an
attacker use it. Each test failed before its fix. Everything runs in process (the tests' HashEmbedder, no model)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A TestClient of the service with API keys required, and one key per scope."""
    from fastapi.testclient import TestClient

    import feedback_nlp as fb
    from conftest import HashEmbedder
    from feedback_nlp.service import ServiceConfig, create_app, create_key
    from feedback_nlp.service._state import ServiceState

    folder: Path = tmp_path_factory.mktemp("svc15g")
    emb = HashEmbedder()
    fb.TagClassifier(emb).fit(["export fails", "csv broken", "dark mode", "dark theme"] * 2,
                              ["bug", "bug", "feature", "feature"] * 2).save(folder / "m")
    config = ServiceConfig(data_dir=folder / "data", models={"t": str(folder / "m")}, sentiment=None)
    state = ServiceState(config, embedder=emb)
    with TestClient(create_app(config, state=state), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 60
        while not state.ready and time.monotonic() < deadline:
            time.sleep(0.05)
        keys = {scope: create_key(state.store, f"k-{scope}", scope)[0] for scope in ("tag", "write", "admin")}
        yield client, state, keys


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "content-type": "application/json"}


@pytest.mark.parametrize("body", [b'{"items": [', b"\xff\xfe not utf-8", b"[" * 50_000])
def test_a_key_without_write_scope_gets_403_from_a_write_route_whatever_the_body(keyed, body):
    client, state, keys = keyed
    r = client.post("/v1/backlog", content=body, headers=_auth(keys["tag"]))
    assert r.status_code == 403, r.text  # was 422 invalid_request: the write route parsed a tag key's body for it
    assert r.json()["error"]["code"] == "forbidden"
    r = client.post("/v1/backlog", content=body, headers=_auth(keys["write"]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    assert client.post("/v1/backlog", content=body, headers={"content-type": "application/json"}).status_code == 401


def test_a_key_whose_stored_scope_no_version_knows_is_403_not_500(keyed):
    from feedback_nlp.service import create_key

    client, state, _ = keyed
    token, record = create_key(state.store, "hand-edited", "admin")
    with state.store._tx() as db:  # an operator's sqlite3 shell, or a store written by a later version
        db.execute("UPDATE api_keys SET scope = 'superuser' WHERE key_id = ?", (record.key_id,))
    for method, path in [("GET", "/v1/models"), ("GET", "/metrics"), ("DELETE", "/v1/backlog/x")]:
        r = client.request(method, path, headers=_auth(token))
        assert r.status_code == 403, r.text  # was 500 internal_error (ValueError in scope_allows)
        assert r.json()["error"]["code"] == "forbidden"


def test_a_store_of_the_same_model_id_at_another_size_is_refused_naming_both_sizes(tmp_path):
    from conftest import HashEmbedder
    from feedback_nlp.errors import ModelMismatchError
    from feedback_nlp.service import open_store

    store = open_store(tmp_path / "data")
    store.bind_embedder(HashEmbedder().model_id, 64)
    store.close()
    store = open_store(tmp_path / "data")
    try:
        with pytest.raises(ModelMismatchError, match=r"64 dimensions.*32 dimensions"):
            # was "holds vectors of hash-test@1; this service embeds with hash-test@1": the same name twice
            store.bind_embedder(HashEmbedder().model_id, 32)
    finally:
        store.close()


def test_a_store_with_items_but_no_recorded_model_is_refused_and_not_pinned_to_the_new_one(tmp_path):
    import sqlite3

    import numpy as np

    from feedback_nlp.errors import IntegrityError
    from feedback_nlp.service import open_store
    from feedback_nlp.service._store import BacklogItem

    store = open_store(tmp_path / "data")
    store.bind_embedder("model-a@1", 4)
    store.upsert([BacklogItem("A-1", "dark mode", {}, np.array([1, 0, 0, 0], dtype=np.float32))])
    store.close()
    db = sqlite3.connect(tmp_path / "data" / "backlog.sqlite")
    db.execute("DELETE FROM meta WHERE key IN ('embedder', 'dim')")  # an operator's edit, a partial restore
    db.commit()
    db.close()
    store = open_store(tmp_path / "data")
    try:
        # was accepted: model-b's vectors joined model-a's in one index (or, at another size, a RuntimeError from
        # hnswlib after model-b had been pinned for good)
        with pytest.raises(IntegrityError, match="records no embedding model"):
            store.bind_embedder("model-b@1", 4)
        assert store._meta("embedder") is None and store.get("A-1") is not None
    finally:
        store.close()



def test_a_small_backlog_deleted_and_added_again_still_finds_its_duplicates(tmp_path):
    import numpy as np

    from feedback_nlp.service import open_store
    from feedback_nlp.service._store import BacklogItem

    store = open_store(tmp_path / "data")
    store._db.execute("PRAGMA synchronous=OFF")  # the test's thousands of commits need not reach the disk
    try:
        store.bind_embedder("model-a@1", 4)
        vectors = np.eye(4, dtype=np.float32)
        items = [BacklogItem(f"A-{i}", f"item {i}", {}, vectors[i % 4]) for i in range(10)]
        store.upsert(items)
        for _ in range(50):  # a webhook deleting and creating the same ten posts again and again
            for it in items:
                store.delete(it.id)
            store.upsert(items)
        assert len(store.index) == 10 and store.index.deleted <= 10  # was 500 dead slots: never rebuilt under 1,000
        # was ["A-4", "A-8", "A-2"]: A-0, identical to the query, was missed (and k=10 raised RuntimeError, a 500)
        assert [i for i, _ in store.search(vectors[:1], 3)[0]] == ["A-0", "A-4", "A-8"]
        assert len(store.search(vectors[:1], 10)[0]) == 10
    finally:
        store.close()


def test_an_index_whose_live_items_deleted_nodes_cut_off_answers_exactly_instead_of_failing():
    import numpy as np

    from feedback_nlp.service._index import AnnIndex

    index, vectors = AnnIndex(4), np.eye(4, dtype=np.float32)
    keys = np.arange(10)
    index.upsert(keys, vectors[keys % 4])
    for _ in range(50):
        for k in keys:
            index.delete(int(k))
        keys = keys + 10
        index.upsert(keys, vectors[keys % 4])
    hits = index.search(vectors[:2], 10)  # was RuntimeError "Cannot return the results in a contiguous 2D array"
    assert [len(row) for row in hits] == [10, 10]
    assert {key for key, score in hits[0] if score > 0.99} == {k for k in keys.tolist() if k % 4 == 0}


def test_an_integration_route_with_a_scope_no_key_can_have_is_refused_when_installed():
    from feedback_nlp.errors import InvalidInputError
    from feedback_nlp.service import require_scope

    with pytest.raises(InvalidInputError, match="'tag', 'write', 'admin'"):
        require_scope("Write")  # was accepted, and each call of the route it guarded answered 500
    assert require_scope("write").scope == "write"
