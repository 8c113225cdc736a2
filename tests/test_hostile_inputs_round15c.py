"""Round 15c: configuration, environment and the embedding cache, as an ops person sets them up once.

Model folders that share weights but not their window, cache paths with ``~``, blanks, folders or files in the
way, cache arguments of the wrong kind, a tampered cache file. No model is loaded: an ``Embedder`` reads its
folder and weights at construction and loads the network only on the first ``encode``.
"""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp import Embedder, InvalidInputError
from feedback_nlp._model import bundled_model_dir
from feedback_nlp.cache import EmbeddingCache
from feedback_nlp.cli import EXIT_USAGE, main
from feedback_nlp.errors import CacheError

pytestmark = pytest.mark.skipif(bundled_model_dir() is None, reason="the bundled model is not installed")


def _model_copy(dest: Path, max_seq_length: int = 256) -> Path:
    """A copy of the bundled model folder whose weights are a link to the original (no 90 MB copy)."""
    src = bundled_model_dir()
    assert src is not None
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("model.safetensors"))
    (dest / "model.safetensors").symlink_to(src / "model.safetensors")
    (dest / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length,
                                                                  "do_lower_case": False}))
    return dest


def test_same_weights_another_window_never_share_cache_entries(tmp_path: Path) -> None:
    # was: both folders were "mini@<weights hash>:torch:truncate", and the cache served the 256-token
    # vectors to the 16-token model (cosine 0.76 to its own vectors of a long text)
    wide = Embedder(_model_copy(tmp_path / "a" / "mini", 256), cache=tmp_path / "c.sqlite", backend="torch")
    narrow = Embedder(_model_copy(tmp_path / "b" / "mini", 16), cache=tmp_path / "c.sqlite", backend="torch")
    assert wide.model_id != narrow.model_id
    assert wide.base_model_id == narrow.base_model_id  # saved tag models still accept either
    wide.cache.put(wide.model_id, ["a long text"], np.ones((1, 384), dtype=np.float32))
    assert narrow.cache.get(narrow.model_id, ["a long text"])[1] == [0]
    # an unchanged copy of the same model keeps the same id: its cache entries stay shared
    same = Embedder(_model_copy(tmp_path / "c" / "mini", 256), cache=None, backend="torch")
    assert same.model_id == wide.model_id


def test_another_pooling_is_another_model_id(tmp_path: Path) -> None:
    mean = Embedder(_model_copy(tmp_path / "a" / "mini"), cache=None, backend="torch")
    cls_folder = _model_copy(tmp_path / "b" / "mini")
    pooling = cls_folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(config))
    assert Embedder(cls_folder, cache=None, backend="torch").model_id != mean.model_id


def test_colon_in_model_folder_name_keeps_the_weights_hash_in_base_model_id(tmp_path: Path) -> None:
    # was: "run:1@<hash>:torch..." had base_model_id "run", so any model in a folder "run:2" matched it
    emb = Embedder(_model_copy(tmp_path / "run:1"), cache=None, backend="torch")
    assert emb.weights_hash in emb.base_model_id


@pytest.mark.parametrize("cache", [0, 1, 1.5, b"/tmp/x.sqlite", ["emb.sqlite"]])
def test_embedder_refuses_a_cache_of_the_wrong_kind(cache: object) -> None:
    # was: kept as the cache, then AttributeError ('int' object has no attribute 'get') at the first encode
    with pytest.raises(InvalidInputError, match="cache must be"):
        Embedder(cache=cache, backend="torch")


def test_embedder_refuses_long_text_that_is_not_a_string() -> None:
    # was: AttributeError: 'int' object has no attribute 'strip'
    with pytest.raises(InvalidInputError, match="long_text"):
        Embedder(cache=None, backend="torch", long_text=5)  # type: ignore[arg-type]


def test_cache_path_with_tilde_is_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # was: a folder literally named "~" in the working directory (the env variable was expanded, this was not)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    cache = EmbeddingCache("~/caches/emb.sqlite")
    assert cache.path == tmp_path / "home" / "caches" / "emb.sqlite" and cache.path.exists()
    assert not (tmp_path / "~").exists()


@pytest.mark.parametrize("path", ["", "   "])
def test_blank_cache_path_is_refused(path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # was: "" opened "." ("not a usable cache ... delete it"), "   " made a file named "   "
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="cache path"):
        EmbeddingCache(path)
    assert list(tmp_path.iterdir()) == []


def test_cache_under_a_file_is_a_cache_error(tmp_path: Path) -> None:
    # was: a bare FileExistsError from mkdir
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheError, match="cannot create the folder"):
        EmbeddingCache(tmp_path / "file" / "emb.sqlite")


def test_cache_that_is_a_folder_says_so(tmp_path: Path) -> None:
    # was: "unable to open database file; delete it or point FEEDBACK_NLP_CACHE elsewhere", for a folder
    with pytest.raises(CacheError, match="is a folder; give a file path"):
        EmbeddingCache(tmp_path)


@pytest.mark.parametrize("timeout", [math.inf, math.nan, -1, "5", 1e12])
def test_cache_timeout_must_be_seconds(timeout: object, tmp_path: Path) -> None:
    # was: OverflowError (inf), ValueError (nan), TypeError ("5"); -1 and 1e12 accepted
    with pytest.raises(InvalidInputError, match="timeout"):
        EmbeddingCache(tmp_path / "emb.sqlite", timeout=timeout)  # type: ignore[arg-type]


def test_cache_without_its_vectors_table_fails_at_open(tmp_path: Path) -> None:
    # was: opened, then every get was a CacheError mid-job and len() a bare sqlite3.OperationalError
    path = tmp_path / "emb.sqlite"
    EmbeddingCache(path).close()
    with sqlite3.connect(path) as con:
        con.execute("DROP TABLE vectors")
    con.close()
    with pytest.raises(CacheError, match="without its vectors table"):
        EmbeddingCache(path)


def test_cli_empty_cache_option_is_a_usage_error(tmp_path: Path, hashed_cli: None) -> None:
    # was: `--cache "$CACHE"` with the variable unset used the default cache without a word
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,export fails\n2,export is broken\n")
    args = ["dedupe", "--in", str(src), "--out", str(tmp_path / "g.csv")]
    assert main([*args, "--cache", ""]) == EXIT_USAGE
    assert not (tmp_path / "g.csv").exists()
    assert main([*args, "--cache", str(tmp_path / "emb.sqlite")]) == 0  # the same run with a cache file works


def test_a_file_that_is_no_sqlite_is_not_to_be_deleted(tmp_path: Path) -> None:
    # was: "... is not a usable feedback_nlp embedding cache (file is not a database); delete it", said of
    # FEEDBACK_NLP_CACHE pointing at someone's data file
    data = tmp_path / "customers.csv"
    data.write_text("id,email\n" + "1,a@example.com\n" * 200)
    before = data.read_bytes()
    with pytest.raises(CacheError, match="no SQLite file at all") as err:
        EmbeddingCache(data)
    assert "delete" not in str(err.value) and data.read_bytes() == before
    # a damaged cache (a SQLite header, then garbage) still gets the advice to delete it
    broken = tmp_path / "emb.sqlite"
    EmbeddingCache(broken).close()
    broken.write_bytes(broken.read_bytes()[:100] + b"\xff" * 4000)
    with pytest.raises(CacheError, match="delete it"):
        EmbeddingCache(broken)


def test_onnx_int8_refuses_a_model_it_would_pool_differently(tmp_path: Path) -> None:
    # was: the exported graph mean-pools whatever the model's pooling says: a CLS model's vectors changed silently
    from feedback_nlp.backends import get_backend

    folder = _model_copy(tmp_path / "cls")
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "pooling_mode_mean_tokens": False,
                                   "pooling_mode_cls_token": True}))
    with pytest.raises(InvalidInputError, match="mean pooling models only"):
        get_backend("onnx-int8").load(folder, "0" * 12)


def _no_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """A container run with an arbitrary uid: HOME unset and no passwd entry, so ``Path.home()`` raises."""
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home(cls: type) -> Path:
        raise RuntimeError("Could not determine home directory.")
    monkeypatch.setattr(Path, "home", classmethod(no_home))


def test_no_home_folder_with_feedback_nlp_home_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # was: RuntimeError from Path.home(), evaluated before FEEDBACK_NLP_HOME was even read
    from feedback_nlp import _config

    _no_home(monkeypatch)
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path / "fnlp"))
    assert _config.home() == tmp_path / "fnlp"
    assert _config.cache_path() == tmp_path / "fnlp" / "embeddings.sqlite"


def test_no_home_folder_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from feedback_nlp import _config
    from feedback_nlp.backends import select_backend

    _no_home(monkeypatch)
    monkeypatch.delenv("FEEDBACK_NLP_HOME", raising=False)
    monkeypatch.delenv("FEEDBACK_NLP_CACHE", raising=False)
    with pytest.raises(InvalidInputError, match="set FEEDBACK_NLP_HOME"):
        EmbeddingCache()
    # backend "auto" has no stored measurement to read there: it falls back to its rules, no RuntimeError
    assert select_backend("auto", weights="0" * 12) in ("torch", "torch-bf16")
    assert _config.backend("torch") == "torch"


def test_relative_xdg_cache_home_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # was: XDG_CACHE_HOME="~/cache" (not expanded by a unit file) made "./~/cache/feedback_nlp"
    from feedback_nlp import _config

    monkeypatch.delenv("FEEDBACK_NLP_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for xdg in ("~/cache", "relative/cache"):
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert _config.home() == tmp_path / ".cache" / "feedback_nlp"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _config.home() == tmp_path / "xdg" / "feedback_nlp"


@pytest.mark.parametrize("window", ["abc", -5, 2.5, True])
def test_model_window_that_is_no_whole_number_is_named(window: object, tmp_path: Path) -> None:
    # was: ValueError (int("abc")) or OverflowError (-5) from deep inside the tokenizer
    emb = Embedder(_model_copy(tmp_path / "mini", window), cache=None, backend="torch")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="max_seq_length must be a whole number"):
        emb.model  # noqa: B018 - loading is the check


def test_model_window_beyond_its_positions_is_refused_at_load(tmp_path: Path) -> None:
    # was: RuntimeError "The size of tensor a (1502) must match the size of tensor b (512)" at the first long text
    emb = Embedder(_model_copy(tmp_path / "mini", 4096), cache=None, backend="torch")
    with pytest.raises(InvalidInputError, match="more than the model's 512 positions"):
        emb.model  # noqa: B018 - loading is the check


def _write_overlapping(path: str, worker: int) -> None:
    cache = EmbeddingCache(path, timeout=30)
    for batch in range(20):
        texts = [f"text {i}" for i in range(batch * 5, batch * 5 + 20)]  # batches overlap, and so do workers
        cache.put("m@1", texts, np.stack([np.full(4, float(t.split()[1]), np.float32) for t in texts]))
        hits, _ = cache.get("m@1", texts)
        assert all(v[0] == float(texts[i].split()[1]) for i, v in hits.items()), worker


def test_processes_writing_one_cache_at_once(tmp_path: Path) -> None:
    # behaved (recorded so it stays so): 3 processes creating and filling one new cache, overlapping keys
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    path = str(tmp_path / "shared" / "emb.sqlite")
    procs = [ctx.Process(target=_write_overlapping, args=(path, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cache = EmbeddingCache(path)
    texts = [f"text {i}" for i in range(115)]
    hits, missing = cache.get("m@1", texts)
    assert missing == [] and len(cache) == 115 and cache.corrupted == 0
    assert all(v.tolist() == [float(i)] * 4 for i, v in hits.items())


def test_onnx_export_under_a_home_that_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # was: a bare FileExistsError (NotADirectoryError, PermissionError) after importing torch and transformers
    from feedback_nlp.backends._onnx import export_int8

    (tmp_path / "home").write_text("not a folder")
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path / "home"))
    with pytest.raises(InvalidInputError, match="set FEEDBACK_NLP_HOME to a writable folder"):
        export_int8(_model_copy(tmp_path / "mini"), "0" * 12)
