import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from feedback_nlp import CacheError, EmbeddingCache
from feedback_nlp.cache import text_key


def test_put_get_round_trip(tmp_path):
    c = EmbeddingCache(tmp_path / "c.sqlite")
    vecs = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    c.put("m@1", ["a", "b", "c"], vecs)
    hits, missing = c.get("m@1", ["c", "x", "a", "a"])
    assert missing == [1]
    np.testing.assert_array_equal(hits[0], vecs[2])
    np.testing.assert_array_equal(hits[2], vecs[0])
    assert c.get("other-model", ["a"])[1] == [0]  # keyed by model id too
    assert len(c) == 3


def test_persists_across_processes(tmp_path):
    path = tmp_path / "c.sqlite"
    writer = textwrap.dedent(f"""
        import numpy as np
        from feedback_nlp import EmbeddingCache
        EmbeddingCache({str(path)!r}).put("m@1", ["hello {{i}}".format(i=i) for i in range(50)],
                                          np.arange(50 * 4, dtype=np.float32).reshape(50, 4) + {{k}})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer.replace("{k}", str(k))]) for k in range(3)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    hits, missing = EmbeddingCache(path).get("m@1", [f"hello {i}" for i in range(50)])
    assert not missing
    first = hits[0][0]
    assert first in (0.0, 1.0, 2.0)  # one writer won, consistently for every row of the vector
    np.testing.assert_array_equal(hits[7], np.arange(28, 32, dtype=np.float32) + first)


def test_foreign_sqlite_file(tmp_path):
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER)")
    con.commit()
    con.close()
    with pytest.raises(CacheError, match="not a feedback_nlp embedding cache"):
        EmbeddingCache(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(CacheError, match="not a usable feedback_nlp embedding cache"):
        EmbeddingCache(path)


def _rows(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT key, dim, vec, digest FROM vectors ORDER BY key").fetchall()
    finally:
        con.close()


def _update(path, sql, args=()):
    con = sqlite3.connect(path)
    con.execute(sql, args)
    con.commit()
    con.close()


@pytest.mark.parametrize("damage", ["short", "bit flip", "dim", "digest", "swapped rows"])
def test_corrupt_rows_are_never_served_but_discarded_and_reported(tmp_path, caplog, damage):
    path = tmp_path / "c.sqlite"
    c = EmbeddingCache(path)
    vecs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    c.put("m@1", ["a", "b"], vecs)
    rows = {key: (vec, digest) for key, _, vec, digest in _rows(path)}
    ka, kb = text_key("a"), text_key("b")
    (va, _), (vb, db) = rows[ka], rows[kb]
    if damage == "short":
        _update(path, "UPDATE vectors SET vec = ? WHERE key = ?", (va[:7], ka))
    elif damage == "bit flip":  # one mantissa bit: still finite, still about unit norm
        flipped = bytearray(va)
        flipped[5] ^= 0x04
        _update(path, "UPDATE vectors SET vec = ? WHERE key = ?", (bytes(flipped), ka))
    elif damage == "dim":
        _update(path, "UPDATE vectors SET dim = 2 WHERE key = ?", (ka,))
    elif damage == "digest":
        _update(path, "UPDATE vectors SET digest = ? WHERE key = ?", (b"\x00" * 8, ka))
    else:  # b's vector and checksum copied under a's key
        _update(path, "UPDATE vectors SET vec = ?, digest = ? WHERE key = ?", (vb, db, ka))
    fresh = EmbeddingCache(path)
    with caplog.at_level("WARNING", logger="feedback_nlp.cache"):
        hits, missing = fresh.get("m@1", ["b", "a"])
    assert missing == [1] and list(hits) == [0]
    np.testing.assert_array_equal(hits[0], vecs[1])
    assert fresh.corrupted == 1 and "failed their checksum" in caplog.text
    assert len(fresh) == 1  # deleted, so that the recomputed vector takes its place
    fresh.put("m@1", ["a"], vecs[:1])
    np.testing.assert_array_equal(fresh.get("m@1", ["a"])[0][0], vecs[0])


def test_non_finite_rows_are_not_served_even_with_a_valid_checksum(tmp_path):
    from feedback_nlp.cache import _row_digest, text_key

    path = tmp_path / "c.sqlite"
    c = EmbeddingCache(path)
    c.put("m@1", ["b"], np.ones((1, 3), dtype=np.float32))  # creates the schema
    # put() no longer stores such a row, so it is written as another writer (or an old version) could have
    key, blob = text_key("a"), np.array([1.0, np.nan, 0.0], dtype="<f4").tobytes()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO vectors VALUES (?, ?, ?, ?, ?)", ("m@1", key, 3, blob, _row_digest("m@1", key, 3, blob)))
    con.commit()
    con.close()
    assert c.get("m@1", ["a"]) == ({}, [0]) and c.corrupted == 1


def test_put_does_not_store_non_finite_vectors(tmp_path, caplog):
    """Was: put() stored a NaN vector, and every get() discarded it again with "failed their checksum"."""
    c = EmbeddingCache(tmp_path / "c.sqlite")
    c.put("m@1", ["a", "b"], np.array([[1.0, np.nan, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32))
    assert len(c) == 1
    with caplog.at_level("WARNING", logger="feedback_nlp.cache"):
        hits, missing = c.get("m@1", ["a", "b"])
    assert missing == [0] and list(hits) == [1] and c.corrupted == 0 and "checksum" not in caplog.text


def test_a_schema_1_cache_is_emptied_once_and_upgraded(tmp_path, caplog):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE TABLE vectors (model_id TEXT NOT NULL, key BLOB NOT NULL, dim INTEGER NOT NULL,"
                " vec BLOB NOT NULL, PRIMARY KEY (model_id, key)) WITHOUT ROWID")
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("magic", "feedback_nlp.embedding_cache"), ("schema_version", "1")])
    con.execute("INSERT INTO vectors VALUES ('m@1', ?, 1, ?)", (b"k", b"\x00\x00\x80\x3f"))
    con.commit()
    con.close()
    with caplog.at_level("WARNING", logger="feedback_nlp.cache"):
        c = EmbeddingCache(path)
    assert len(c) == 0 and "upgraded" in caplog.text
    c.put("m@1", ["a"], np.ones((1, 2), dtype=np.float32))
    assert len(EmbeddingCache(path)) == 1  # the second open finds schema 2 and keeps the rows


def test_embedder_recomputes_a_corrupted_cached_vector(tmp_path, embedder):
    from feedback_nlp import Embedder

    path = tmp_path / "c.sqlite"
    emb = Embedder(cache=path)
    good = emb.encode(["The CSV export cuts off long descriptions"])
    rows = _rows(path)
    assert len(rows) == 1
    flipped = bytearray(rows[0][2])
    flipped[0] ^= 0x01
    _update(path, "UPDATE vectors SET vec = ?", (bytes(flipped),))
    again = Embedder(cache=path)
    np.testing.assert_array_equal(again.encode(["The CSV export cuts off long descriptions"]), good)
    assert again.cache.corrupted == 1 and _rows(path)[0][2] == rows[0][2]  # stored again, intact


def test_truncated_database(tmp_path):
    path = tmp_path / "c.sqlite"
    c = EmbeddingCache(path)
    c.put("m@1", [f"t{i}" for i in range(2000)], np.ones((2000, 64), dtype=np.float32))
    c.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError):
        EmbeddingCache(path).get("m@1", [f"t{i}" for i in range(2000)])


def test_env_default_path(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDBACK_NLP_CACHE", str(tmp_path / "env.sqlite"))
    assert EmbeddingCache().path == tmp_path / "env.sqlite"
