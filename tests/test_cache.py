import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from feedback_nlp import CacheError, EmbeddingCache


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


def test_corrupt_vector_is_refused(tmp_path):
    path = tmp_path / "c.sqlite"
    c = EmbeddingCache(path)
    c.put("m@1", ["a"], np.ones((1, 4), dtype=np.float32))
    con = sqlite3.connect(path)
    con.execute("UPDATE vectors SET vec = ?", (b"\x00" * 7,))
    con.commit()
    con.close()
    with pytest.raises(CacheError, match="corrupt"):
        EmbeddingCache(path).get("m@1", ["a"])


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
