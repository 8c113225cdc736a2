"""The service's parts in-process: the micro-batcher, the ANN index, both stores (items, keys, durable queue)
and the configuration checks."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from _service_support import postgres_url
from feedback_nlp import InvalidInputError, ModelMismatchError
from feedback_nlp.service import ApiKey, BacklogItem, Batcher, ServiceConfig, create_key, open_store
from feedback_nlp.service._errors import loc_path
from feedback_nlp.service._index import AnnIndex
from feedback_nlp.service._store import hash_key

DIM = 8


def _vec(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


# --- batcher ------------------------------------------------------------------------------------------

def _slow_encode(calls: list):
    def encode(texts):
        calls.append(list(texts))
        if any(t == "boom" for t in texts):
            raise ValueError("bad text")
        time.sleep(0.02)
        return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)

    return encode


def test_batcher_shares_passes_and_returns_each_request_its_own_rows():
    calls, observed = [], []
    b = Batcher(_slow_encode(calls), max_batch=64, max_wait_ms=5, observe=lambda *a: observed.append(a))
    b.start()

    async def main():
        texts = [["a" * (i + 1)] * (1 + i % 3) for i in range(30)]
        out = await asyncio.gather(*(b.submit(t) for t in texts))
        return texts, out

    try:
        texts, out = asyncio.run(main())
    finally:
        b.stop()
    for t, rows in zip(texts, out):
        assert rows.shape == (len(t), 2) and (rows[:, 0] == len(t[0])).all()
    assert len(calls) < 30 and max(r for _, r, _ in observed) > 1  # requests shared forward passes
    assert sum(len(c) for c in calls) == sum(len(t) for t in texts)


def test_batcher_isolates_a_failing_request_and_runs_prepare_and_then():
    calls = []
    b = Batcher(_slow_encode(calls), max_batch=64, max_wait_ms=20)
    b.start()

    def prepare(texts):
        if "reject" in texts:
            raise InvalidInputError("rejected")
        return [t.upper() for t in texts]

    async def main():
        return await asyncio.gather(
            b.submit(["ok"], prepare=prepare, then=lambda v, texts: (v.shape, texts)),
            b.submit(["boom"]), b.submit(["reject"], prepare=prepare), b.submit(["fine", "too"]),
            return_exceptions=True)

    try:
        ok, boom, rejected, fine = asyncio.run(main())
    finally:
        b.stop()
    assert ok == ((1, 2), ["OK"])
    assert isinstance(boom, ValueError) and isinstance(rejected, InvalidInputError)
    assert fine.shape == (2, 2)
    assert threading.active_count() < 50


def test_batcher_rows_function_runs_once_per_pass_and_splits_its_table():
    import pandas as pd

    calls = []

    class Head:  # a classifier: each request passes its own bound method `head.tag`
        def tag(self, vectors, texts):
            calls.append(len(vectors))
            assert [len(t) for t in texts] == vectors[:, 0].astype(int).tolist()  # the texts of those rows, in order
            return pd.DataFrame({"len": vectors[:, 0].astype(int)})

    head = Head()

    gate, entered = threading.Event(), threading.Event()

    def encode(texts):
        entered.set()
        gate.wait(10)  # hold the first pass so that the others queue up behind it
        return np.array([[len(t), 0] for t in texts], dtype=np.float32)

    b = Batcher(encode, max_batch=64, max_wait_ms=50)
    b.start()

    async def main():
        first = asyncio.ensure_future(b.submit(["x"], rows=head.tag))
        await asyncio.to_thread(entered.wait, 10)
        rest = [asyncio.ensure_future(b.submit(["y" * n] * n, rows=head.tag)) for n in (2, 3, 4)]
        while b.depth < 3:
            await asyncio.sleep(0.01)
        gate.set()
        return await first, await asyncio.gather(*rest)

    try:
        first, rest = asyncio.run(main())
    finally:
        b.stop()
    assert first["len"].tolist() == [1]
    assert [r["len"].tolist() for r in rest] == [[2, 2], [3, 3, 3], [4, 4, 4, 4]]
    assert calls == [1, 9]  # one call for the three requests that shared the second pass


def test_batcher_stop_finishes_queued_work():
    b = Batcher(lambda texts: np.zeros((len(texts), 1), np.float32))
    b.start()
    b.stop()
    assert not b._thread.is_alive()


# --- ANN index ----------------------------------------------------------------------------------------

def test_ann_index_updates_deletes_and_survives_save_load(tmp_path):
    vecs = np.stack([_vec(i) for i in range(50)])
    idx = AnnIndex(DIM)
    idx.upsert(np.arange(50), vecs)
    assert idx.search(vecs[7:8], 3)[0][0][0] == 7
    idx.upsert(np.array([7]), vecs[8:9])  # item 7 now has item 8's vector
    top = {k for k, _ in idx.search(vecs[8:9], 2)[0]}
    assert top == {7, 8}
    idx.delete(8)
    assert all(k != 8 for k, _ in idx.search(vecs[8:9], 50)[0]) and len(idx) == 49
    idx.save(tmp_path / "i.hnsw", seq=5)
    live = sorted(set(range(50)) - {8})
    assert AnnIndex.load(tmp_path / "i.hnsw", 6, DIM, live) is None  # the store moved on: rebuild
    idx.save(tmp_path / "i.hnsw", seq=5)
    back = AnnIndex.load(tmp_path / "i.hnsw", 5, DIM, live)
    assert back is not None and back.search(vecs[3:4], 1)[0][0][0] == 3
    idx.save(tmp_path / "i.hnsw", seq=5)
    raw = bytearray((tmp_path / "i.hnsw").read_bytes())
    raw[100:110] = b"\xff" * 10
    (tmp_path / "i.hnsw").write_bytes(bytes(raw))
    assert AnnIndex.load(tmp_path / "i.hnsw", 5, DIM, live) is None  # corrupt: checksum fails


def test_ann_index_asks_for_more_than_it_holds():
    idx = AnnIndex(DIM)
    assert idx.search(np.stack([_vec(0)]), 5) == [[]]
    idx.upsert(np.array([1, 2]), np.stack([_vec(1), _vec(2)]))
    assert len(idx.search(np.stack([_vec(1)]), 10)[0]) == 2


# --- stores -------------------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = postgres_url() if request.param == "postgresql" else None
    s = open_store(tmp_path / "data", url)
    s.bind_embedder("test-model@1", DIM)
    yield s
    s.close()


def test_store_items_are_atomic_searchable_and_updatable(store):
    items = [BacklogItem(f"i{i}", f"text {i}", {"n": i}, _vec(i)) for i in range(20)]
    assert store.upsert(items) == [True] * 20
    assert store.upsert([BacklogItem("i3", "new text", {}, _vec(100))]) == [False]
    assert store.get("i3").text == "new text" and np.allclose(store.get("i3").vector, _vec(100), atol=1e-6)
    assert store.search(np.stack([_vec(100)]), 1)[0][0][0] == "i3"
    with pytest.raises(InvalidInputError):  # a bad row rolls back the whole request
        store.upsert([BacklogItem("new-ok", "t", {}, _vec(1)), BacklogItem("new-bad", "t", {}, np.ones(3))])
    assert store.get("new-ok") is None and store.count() == 20
    assert store.delete("i5") and not store.delete("i5") and store.get("i5") is None
    assert "i5" not in [i for i, _ in store.search(np.stack([_vec(5)]), 20)[0]]
    hits = store.search(np.stack([_vec(7), _vec(9)]), 3)
    assert [h[0][0] for h in hits] == ["i7", "i9"] and hits[0][0][1] == pytest.approx(1.0, abs=1e-4)
    assert store.get("i7").metadata == {"n": 7}


def test_store_refuses_vectors_of_another_model(store):
    with pytest.raises(ModelMismatchError):
        store.bind_embedder("other-model@2", DIM)


def test_store_keys_keep_only_hashes(store):
    token, record = create_key(store, "bot", "write")
    assert store.key_by_hash(hash_key(token)).scope == "write"
    assert all(token != k.key_hash for k in store.list_keys())
    assert store.revoke_key(record.key_id) and store.key_by_hash(hash_key(token)).revoked
    assert not store.revoke_key("key_missing")
    with pytest.raises(InvalidInputError):
        create_key(store, "bot", "root")
    with pytest.raises(InvalidInputError):
        create_key(store, "  ", "tag")
    store.add_key(ApiKey("key_x", "x", "tag", hash_key("fnlp_x"), "2026-01-01T00:00:00+00:00"))
    assert store.key_by_hash(hash_key("fnlp_x")).name == "x"


def test_store_queue_dedupes_leases_retries_and_completes(store):
    first = store.enqueue("hooks", {"post": 1}, dedupe_key="evt-1")
    assert first is not None and store.enqueue("hooks", {"post": 1}, dedupe_key="evt-1") is None
    store.enqueue("hooks", {"post": 2}, dedupe_key="evt-2")
    store.enqueue("other", {"post": 3})
    assert store.queue_depth("hooks") == 2
    jobs = store.claim("hooks", limit=10, lease_s=1.5)
    assert [j.payload for j in jobs] == [{"post": 1}, {"post": 2}] and jobs[0].attempts == 1
    assert store.claim("hooks") == []  # leased
    time.sleep(1.6)
    again = store.claim("hooks", lease_s=30)  # the lease ran out (a worker died): handed out again
    assert [j.job_id for j in again] == [j.job_id for j in jobs] and again[0].attempts == 2
    store.complete(again[0].job_id)
    store.fail(again[1].job_id, "quackback 503", retry_in_s=1.0)
    assert store.claim("hooks") == []
    time.sleep(1.1)
    retry = store.claim("hooks")
    assert [j.payload for j in retry] == [{"post": 2}] and retry[0].attempts == 3
    store.fail(retry[0].job_id, "gave up", retry_in_s=None)
    time.sleep(0.05)
    assert store.claim("hooks") == [] and store.queue_depth("hooks") == 0 and store.queue_depth("other") == 1
    assert store.enqueue("hooks", {"post": 1}, dedupe_key="evt-1") is None  # done events stay deduplicated


def test_sqlite_index_is_rebuilt_when_its_file_is_lost_or_corrupt(tmp_path):
    s = open_store(tmp_path, None)
    s.bind_embedder("m@1", DIM)
    s.upsert([BacklogItem(f"i{i}", "t", {}, _vec(i)) for i in range(30)])
    s.close()
    assert (tmp_path / "backlog.hnsw").exists()
    (tmp_path / "backlog.hnsw").write_bytes(b"garbage")
    s = open_store(tmp_path, None)
    s.bind_embedder("m@1", DIM)
    assert s.search(np.stack([_vec(12)]), 1)[0][0][0] == "i12"
    s.close()
    (tmp_path / "backlog.hnsw").unlink()
    s = open_store(tmp_path, None)
    s.bind_embedder("m@1", DIM)
    assert s.search(np.stack([_vec(29)]), 1)[0][0][0] == "i29" and s.count() == 30
    s.close()


def test_sqlite_folder_takes_one_server(tmp_path):
    a = open_store(tmp_path, None, lock=True)
    with pytest.raises(InvalidInputError, match="another feedback-nlp serve"):
        open_store(tmp_path, None, lock=True)
    open_store(tmp_path, None).close()  # `keys` does not need the lock
    a.close()
    open_store(tmp_path, None, lock=True).close()


def test_open_store_checks_its_arguments(tmp_path):
    with pytest.raises(InvalidInputError, match="postgresql://"):
        open_store(tmp_path, "mysql://x")
    with pytest.raises(InvalidInputError):
        open_store(None, None)


def test_config_refuses_unsafe_or_empty_settings():
    with pytest.raises(InvalidInputError, match="CORS"):
        ServiceConfig(cors_origins=("*",))
    with pytest.raises(InvalidInputError, match="max_items"):
        ServiceConfig(max_items=0)
    assert ServiceConfig().models == {"request-type": "request-type"}
    assert loc_path(["body", "items", 0, "metadata", "k"]) == "body.items[0].metadata.k"
