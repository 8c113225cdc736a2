"""Hostile and careless inputs, round 17d: near-duplicate search (the Deduper, BM25) and its save/load. Each test
failed before its fix. Everything runs in process with the tests' HashEmbedder (no model), except one test that
saves in a child process under a C locale."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import feedback_nlp._persist as persist
import feedback_nlp.dedupe._deduper as deduper_module
from conftest import HashEmbedder, run_in_c_locale
from feedback_nlp.dedupe import BM25, Deduper, tokenize
from feedback_nlp.errors import (
    InputTypeError,
    InvalidInputError,
    MissingDependencyError,
    ModelMismatchError,
    NotFittedError,
)

# --- 1. a load while another process saves the same folder ------------------------------------------------------


def _two_indexes(h: HashEmbedder) -> tuple[Deduper, Deduper]:
    old = Deduper(h, threshold=0.9).fit(["export to csv fails", "dark mode please"], ids=["a", "b"])
    new = Deduper(h, threshold=0.5).fit(["login is broken", "billing page slow"], ids=["c", "d"])
    return old, new


def _same_index(loaded: Deduper, saved: Deduper) -> bool:
    return (loaded.ids_ == saved.ids_ and loaded.threshold == saved.threshold
            and np.array_equal(loaded.embeddings_, saved.embeddings_))


def test_a_save_between_the_ids_and_the_vectors_of_a_load_does_not_mix_them(tmp_path, monkeypatch):
    # was: the load read items.json of one save and embeddings.npy of the next (a save by another process
    # committed in between): the ids and texts of "export to csv fails" with the vectors of "login is broken"
    h = HashEmbedder()
    old, new = _two_indexes(h)
    folder = old.save(tmp_path / "index")
    real = deduper_module.read_npy
    saver: list[threading.Thread] = []

    def racing(path):
        if not saver:  # another save of the folder starts between the two files of the load
            saver.append(threading.Thread(target=new.save, args=(folder,)))
            saver[0].start()
            saver[0].join(timeout=1)  # it waits for the load's read to end (before the fix: it committed)
        return real(path)

    monkeypatch.setattr(deduper_module, "read_npy", racing)
    loaded = Deduper.load(folder, embedder=h)
    saver[0].join()
    assert _same_index(loaded, old) or _same_index(loaded, new)
    assert _same_index(Deduper.load(folder, embedder=h), new)  # the save waited, then committed


def test_a_save_between_the_checked_manifest_and_the_files_gives_the_new_index_whole(tmp_path, monkeypatch):
    h = HashEmbedder()
    old, new = _two_indexes(h)
    folder = old.save(tmp_path / "index")
    real = persist.read_config
    saved: list[bool] = []

    def then_saved(*args, **kwargs):
        config = real(*args, **kwargs)
        if not saved:  # the manifest and config of the old save are checked, then a save replaces the folder
            saved.append(True)
            new.save(folder)
        return config

    monkeypatch.setattr(persist, "read_config", then_saved)
    monkeypatch.setattr(deduper_module, "read_config", then_saved, raising=False)
    assert _same_index(Deduper.load(folder, embedder=h), new)


# --- 2. the saved items in another locale ----------------------------------------------------------------------


def test_a_duplicate_index_saves_and_loads_its_texts_as_utf8_whatever_the_locale(tmp_path):
    # was: items.json was written in the locale's encoding: under a C locale (or Windows' cp1252) a save of "café"
    # or "导出失败" failed with UnicodeEncodeError, and a folder saved under UTF-8 did not load there
    texts, ids = ["café crème fails", "导出失败"], ["é", "b"]
    Deduper().fit(texts, ids=ids, embeddings=np.eye(2, 4)).save(tmp_path / "utf8")
    script = (f"import sys, numpy as np\nfrom feedback_nlp.dedupe import Deduper\ntexts, ids = {ascii(texts)}, {ascii(ids)}\n"
              "print(Deduper.load(sys.argv[1]).texts_ == texts)\n"
              "Deduper().fit(texts, ids=ids, embeddings=np.eye(2, 4)).save(sys.argv[2])\n")
    assert run_in_c_locale(script, tmp_path / "utf8", tmp_path / "c").split() == ["True"]
    loaded = Deduper.load(tmp_path / "c")
    assert loaded.texts_ == texts and loaded.ids_ == ids


# --- 3. personal data in the lexical ranking ---------------------------------------------------------------------


def test_a_shared_email_address_ranks_no_item_first_and_a_save_keeps_the_ranking(tmp_path):
    # was: find's lexical bonus read the raw texts, so the item naming the query's customer e-mail ranked first
    # (the vectors, of cleaned text, never see it), and after save and load (texts redacted) it no longer did
    texts = ["checkout fails for me", "checkout fails, write to jane.doe@example.com", "checkout fails again",
             "checkout fails today", "checkout fails now", "checkout fails here", "checkout fails sometimes"]
    same = np.ones((len(texts), 4))  # every item equally close: only the lexical bonus orders them
    query, vector = ["jane.doe@example.com: checkout fails"], np.ones((1, 4))
    fitted = Deduper().fit(texts, embeddings=same)
    before = fitted.find(query, embeddings=vector, k=3)["id"].tolist()
    after = Deduper.load(fitted.save(tmp_path / "index")).find(query, embeddings=vector, k=3)["id"].tolist()
    assert before == after == [0, 1, 2]
    added = Deduper().fit(texts[:1], embeddings=same[:1]).add(texts[1:], embeddings=same[1:])  # add() reads alike
    assert added.find(query, embeddings=vector, k=3)["id"].tolist() == [0, 1, 2]


# --- 4. min_score with the lexical bonus ------------------------------------------------------------------------


def test_min_score_keeps_a_match_above_it_that_the_lexical_bonus_ranked_second():
    # was: the k best by cosine + bonus were chosen first and min_score applied after: the item at cosine 0.90
    # that shares a rare identifier with the query took the one place of k=1 and was dropped (below 0.92), so
    # the item at 0.93 was never returned: an empty answer
    close = [0.93, np.sqrt(1 - 0.93 ** 2), 0.0]
    sharing = [0.9, 0.0, np.sqrt(1 - 0.81)]
    others = [[-1.0, 0.0, 0.0]] * 20
    texts = ["the page never loads", "crash HADOOP-16821 in NativeAzureFsOutputStream"] + [
        f"unrelated note {i}" for i in range(20)]
    d = Deduper().fit(texts, embeddings=np.array([close, sharing, *others]))
    query, vector = ["NativeAzureFsOutputStream HADOOP-16821 error"], np.array([[1.0, 0.0, 0.0]])
    assert d.find(query, embeddings=vector, k=2)["id"].tolist() == [1, 0]  # the bonus ranks the sharing item first
    found = d.find(query, embeddings=vector, k=1, min_score=0.92)
    assert found["id"].tolist() == [0] and found["score"].iloc[0] >= 0.92


# --- 5. the public BM25 and tokenize ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [5, float("nan"), b"export"])
def test_tokenize_names_a_value_that_is_no_text(value):
    with pytest.raises(InputTypeError, match="tokenize expects str"):  # was an AttributeError from inside
        tokenize(value)
    assert tokenize(None) == []


def test_bm25_refuses_one_string_for_a_corpus_and_a_search_before_fit():
    with pytest.raises(InputTypeError, match="one str"):  # was a corpus of three texts "a", "b", "c"
        BM25().fit("abc")
    with pytest.raises(NotFittedError):  # was an AttributeError ("no attribute 'vocab_'")
        BM25().scores(["csv export"])
    with pytest.raises(InputTypeError, match="one str"):  # was a search of each letter
        BM25().fit(["csv export fails"]).scores("csv")


# --- 6. parameters a careless caller passes -----------------------------------------------------------------------


def test_a_model_name_given_as_the_embedder_is_refused_at_once():
    # was accepted (str has an encode method), and fit failed with "encode() argument 'encoding' must be str"
    with pytest.raises(InvalidInputError, match="embedder must be an object with encode"):
        Deduper("all-MiniLM-L6-v2").fit(["export fails"])


@pytest.mark.parametrize("params", [{"random_state": np.int64(3), "index": "exact"}, {"threshold": np.float32(0.7)},
                                    {"candidates": np.int32(7), "exact_max": np.uint16(3)}])
def test_numpy_numbers_as_parameters_survive_a_save(tmp_path, params):
    # was: json wrote np.int64(3) as the string "3", and the load refused its own save ("random_state must be an int")
    fitted = Deduper(**params).fit(["export fails", "dark mode"], embeddings=np.eye(2, 4))
    loaded = Deduper.load(fitted.save(tmp_path / "index"))
    assert loaded.get_params() == fitted.get_params()
    assert all(type(loaded.get_params()[k]) in (int, float) for k in params if k != "index")


# --- 7. an add that cannot grow the index -------------------------------------------------------------------------


def test_an_add_past_exact_max_without_hnswlib_adds_nothing(monkeypatch):
    # was: the items were added, then the HNSW index failed (MissingDependencyError), and the retry once hnswlib
    # was installed said "ids already in the index"
    d = Deduper(exact_max=3).fit(["export fails", "dark mode", "login slow"], embeddings=np.eye(3, 4))
    monkeypatch.setitem(sys.modules, "hnswlib", None)  # the [ann] extra is not installed
    with pytest.raises(MissingDependencyError, match="hnswlib"):
        d.add(["sso broken"], ids=["new"], embeddings=np.eye(1, 4))
    assert d.ids_ == [0, 1, 2] and len(d.embeddings_) == 3 and len(d.texts_) == 3
    monkeypatch.undo()
    pytest.importorskip("hnswlib")
    assert d.add(["sso broken"], ids=["new"], embeddings=np.eye(1, 4)).find(embeddings=np.eye(1, 4), k=1)["id"].tolist() \
        in ([0], ["new"])


# --- 8. an embedder that is any object with encode() ---------------------------------------------------------------


class _EncodeOnly:
    """What the parameter check asks of an embedder, and no more: encode(), no model_id, no dim."""

    def encode(self, texts):
        texts = [texts] if isinstance(texts, str) else list(texts)
        return np.array([[len(t), 1.0, t.count("a")] for t in texts], dtype=np.float32)


def test_an_embedder_with_encode_alone_fits_saves_and_is_named_at_a_load(tmp_path):
    # was: the check accepted it, then fit failed with AttributeError "no attribute 'model_id'" (with embeddings=:
    # "no attribute 'dim'"), and a load with it, of an index of a named model, with "no attribute 'base_model_id'"
    texts = ["export fails", "a dark mode"]
    d = Deduper(_EncodeOnly()).fit(texts)
    assert d.find(["export fails"], k=1)["id"].tolist() == [0]
    assert Deduper(_EncodeOnly()).fit(texts, embeddings=np.eye(2, 3)).ids_ == [0, 1]
    assert Deduper.load(d.save(tmp_path / "unnamed"), embedder=_EncodeOnly()).ids_ == [0, 1]
    named = Deduper(HashEmbedder()).fit(texts).save(tmp_path / "named")
    with pytest.raises(ModelMismatchError, match="names no model"):
        Deduper.load(named, embedder=_EncodeOnly())


# --- 9. the HNSW index asked for more neighbours than its graph gives ---------------------------------------------


def test_hnsw_find_with_a_large_k_over_many_identical_vectors_answers():
    # was: hnswlib's RuntimeError "Cannot return the results in a contiguous 2D array. Probably ef or M is too small"
    pytest.importorskip("hnswlib")
    vectors = np.repeat(np.random.default_rng(0).normal(size=(3, 8)), 700, axis=0)  # three texts, each 700 times
    d = Deduper(index="hnsw").fit(embeddings=vectors)
    found = d.find(embeddings=vectors[:1], k=len(vectors))
    assert len(found) == len(vectors) and found["id"].is_unique
    assert (found["score"].iloc[:700] >= 0.9999).all()  # the 700 copies of the query first
