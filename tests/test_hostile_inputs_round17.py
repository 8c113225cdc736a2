"""Round 17, the lead's fixes after the helpers: the tag and theme models' loads read one save whole while
another process saves the same folder (round 17d made the duplicate index's load safe; these two read their
files after the config as it did), and the theme model's texts are UTF-8 whatever the locale."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

import feedback_nlp.tagging as tagging_module
import feedback_nlp.themes._model as themes_module
from conftest import HashEmbedder, run_in_c_locale
from feedback_nlp import TagClassifier, ThemeModel


def _racing_load(monkeypatch, module, folder: Path, other_save) -> list[threading.Thread]:
    """Make the load's first read of an .npz start another save of ``folder`` (in a thread, as another process
    would): before the fix that save committed between the load's config and its arrays."""
    real = module.read_npz
    saver: list[threading.Thread] = []

    def racing(path):
        if not saver:
            saver.append(threading.Thread(target=other_save, args=(folder,)))
            saver[0].start()
            saver[0].join(timeout=1)  # it waits for the load's reads to end (before the fix: it committed)
        return real(path)

    monkeypatch.setattr(module, "read_npz", racing)
    return saver


def test_a_tag_model_saved_again_during_its_load_is_read_from_one_save(tmp_path, monkeypatch):
    # was: config.json of the first save (C, tags, thresholds) with weights.npz of the second, without a word
    h = HashEmbedder()
    texts = [f"{w} issue number {i}" for i in range(6) for w in ("crash", "slow", "login")]
    old = TagClassifier(embedder=h, C=1.0).fit(texts, [t.split()[0] for t in texts])
    new = TagClassifier(embedder=h, C=3.0).fit(texts, ["bug" if t.startswith("crash") else "other" for t in texts])
    folder = old.save(tmp_path / "model")
    saver = _racing_load(monkeypatch, tagging_module, folder, new.save)
    loaded = TagClassifier.load(folder, embedder=h)
    saver[0].join()
    got = (loaded.C, list(loaded.classes_))
    assert got in [(1.0, ["crash", "login", "slow"]), (3.0, ["bug", "other"])]
    assert list(loaded.predict(texts[:3])) == list((old if loaded.C == 1.0 else new).predict(texts[:3]))
    again = TagClassifier.load(folder, embedder=h)  # the save waited for the load, then committed
    assert (again.C, list(again.classes_)) == (3.0, ["bug", "other"])


def _theme_model(n: int, seed: int, min_theme_size: int = 5) -> ThemeModel:
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 8))
    x[: n // 2, 0], x[n // 2:, 1] = 1.0, 1.0
    x += 0.05 * rng.standard_normal((n, 8))
    texts = [f"{'export' if i < n // 2 else 'login'} problem {i}" for i in range(n)]
    return ThemeModel(None, min_theme_size=min_theme_size).fit(texts, embeddings=(x / np.linalg.norm(x, axis=1, keepdims=True)))


def test_a_theme_model_saved_again_during_its_load_is_read_from_one_save(tmp_path, monkeypatch):
    # was: themes.npz and items.json of the second save under the first one's config (its parameters,
    # assignment threshold and next theme id), without a word
    old, new = _theme_model(20, 0), _theme_model(30, 1, min_theme_size=6)
    folder = old.save(tmp_path / "themes")
    saver = _racing_load(monkeypatch, themes_module, folder, new.save)
    loaded = ThemeModel.load(folder)
    saver[0].join()
    assert len(loaded.texts_) in (20, 30)
    whole = old if len(loaded.texts_) == 20 else new
    assert loaded.texts_ == whole.texts_
    assert (loaded.min_theme_size, loaded.assign_threshold_) == (whole.min_theme_size, whole.assign_threshold_)
    assert len(ThemeModel.load(folder).texts_) == 30


def test_a_theme_model_saves_and_loads_its_texts_as_utf8_whatever_the_locale(tmp_path):
    # was: items.json written and read in the locale's encoding: under LC_ALL=C a save of 'café' raised
    # UnicodeEncodeError, and a folder saved under UTF-8 did not load there
    utf8 = _theme_model(20, 0)
    utf8.texts_ = [f"café {t} 导出失败" for t in utf8.texts_]
    utf8.save(tmp_path / "utf8")
    script = ("import sys\nfrom feedback_nlp import ThemeModel\n"
              "m = ThemeModel.load(sys.argv[1])\nprint(all('caf\\u00e9' in t and '\\u5bfc\\u51fa' in t for t in m.texts_))\n"
              "m.save(sys.argv[2])\n")
    assert run_in_c_locale(script, tmp_path / "utf8", tmp_path / "c").split() == ["True"]
    assert ThemeModel.load(tmp_path / "c").texts_ == utf8.texts_


# --- Deduper.remove: an item closed or merged in the backlog leaves the index (round 17d's open question) -----


def _backlog() -> tuple[list[str], list[object], np.ndarray]:
    texts = ["export to csv fails", "csv export is broken", "login is slow", "dark mode please", "SSO with okta",
             "okta single sign on"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((len(texts), 8))
    x[1] = x[0] + 0.05 * rng.standard_normal(8)  # two near-duplicate pairs
    x[5] = x[4] + 0.05 * rng.standard_normal(8)
    return texts, [1, 2, 3, 4, "sso-1", "sso-2"], x


def test_a_removed_item_no_longer_comes_back_and_the_index_equals_one_fitted_without_it(tmp_path):
    from feedback_nlp import Deduper

    texts, ids, x = _backlog()
    d = Deduper(threshold=0.9).fit(texts, ids=ids, embeddings=x)
    assert len(d.pairs()) == 2
    d.remove(["2", "sso-1"])  # ids matched as add matches them: "2" is the item 2
    fresh = Deduper(threshold=0.9).fit([texts[i] for i in (0, 2, 3, 5)], ids=[1, 3, 4, "sso-2"],
                                       embeddings=x[[0, 2, 3, 5]])
    assert d.ids_ == fresh.ids_ and len(d.pairs()) == 0 and d.groups().empty
    query = ["csv export broken again"]
    got = d.find(query, embeddings=x[[1]], k=4)
    want = fresh.find(query, embeddings=x[[1]], k=4)
    assert got["id"].tolist() == want["id"].tolist() and np.allclose(got["score"], want["score"])
    assert 2 not in got["id"].tolist()
    # save and load keep the removal; an update is remove then add
    loaded = Deduper.load(d.save(tmp_path / "index"))
    loaded.remove([1]).add(["export to csv fails on Safari"], ids=[1], embeddings=x[[0]])
    assert sorted(map(str, loaded.ids_)) == ["1", "3", "4", "sso-2"]
    assert loaded.texts_[loaded.ids_.index(1)] == "export to csv fails on Safari"


def test_remove_refuses_unknown_ids_and_the_last_item_and_removes_nothing():
    import pytest

    from feedback_nlp import Deduper
    from feedback_nlp.errors import InvalidInputError

    texts, ids, x = _backlog()
    d = Deduper().fit(texts, ids=ids, embeddings=x)
    for bad in (["nope"], [1, "nope"], [None], [[1]]):
        with pytest.raises(InvalidInputError, match="not in the index"):
            d.remove(bad)
        assert d.ids_ == ids  # nothing removed
    with pytest.raises(InvalidInputError, match="one value per item"):
        d.remove("sso-1")  # a string is not a list of ids (its letters would be the ids)
    with pytest.raises(InvalidInputError, match="empty"):
        d.remove(ids)
    assert d.remove([1, "1"]).ids_ == ids[1:]  # one id named twice is removed once
    assert d.remove({"sso-1"}).ids_ == [2, 3, 4, "sso-2"]  # a set is accepted: removals have no order
    with pytest.raises(Exception, match="not fitted"):
        Deduper().remove([1])


def test_remove_rebuilds_an_hnsw_index():
    import pytest

    pytest.importorskip("hnswlib")
    from feedback_nlp import Deduper

    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 16))
    d = Deduper(index="hnsw").fit(embeddings=x)
    d.remove(list(range(0, 200, 2)))
    got = d.find(embeddings=x[[1, 3]], k=1)
    assert got["id"].tolist() == [1, 3]  # positions shifted: the rebuilt index names the right items
    assert d._hnsw is not None and d._hnsw.get_current_count() == 100


# --- cleaning: a tag named in plain text is words, not markup ---------------------------------------------------


def test_a_tag_named_in_plain_text_keeps_its_words_while_html_is_still_flattened():
    from feedback_nlp.cleaning import clean_text

    # was: one known tag name anywhere made the whole text HTML, and the words went: "use tags for layout",
    # "the element breaks in Safari", "if ad then crash" (a<b and c>d read as the tag <b and c>)
    for plain in ("use <div> tags for layout", "the <table> element breaks in Safari", "if a<b and c>d then crash",
                  "wrap it in <code> and <pre>", "Vec<String> fails to compile"):
        assert clean_text(plain) == plain
    # markup is still markup: closing tags, void tags, attributes, comments
    assert clean_text("<p>Hello <b>world</b></p>") == "Hello world"
    assert clean_text("Hello<br>World") == "Hello World"
    assert clean_text('<a href="https://x.example">link</a> fails') == "link fails"
    assert clean_text('<img src="x.png"> broken') == "broken"
    assert clean_text("text <!-- template --> more") == "text more"


def test_theme_scores_names_a_lone_surrogate_in_a_python_string_column():
    import pandas as pd
    import pytest

    from feedback_nlp.errors import ColumnError
    from feedback_nlp.scoring import theme_scores

    # was: pyarrow's UnicodeEncodeError from the stripping of themes (round 17f) before the check could name it
    for dtype in (object, "string[python]"):
        df = pd.DataFrame({"theme": pd.Series(["bad \udcff", " sso ", "sso"], dtype=dtype), "account_id": ["a", "b", "c"]})
        with pytest.raises(ColumnError, match="lone surrogates"):
            theme_scores(df, time_col=None, revenue_col=None)
    ok = pd.DataFrame({"theme": pd.Series([" sso ", "sso", "csv"], dtype="string[python]"), "account_id": ["a", "b", "c"]})
    assert theme_scores(ok, time_col=None, revenue_col=None).set_index("theme")["volume"].to_dict() == {"sso": 2, "csv": 1}


# --- the service answers with the caller's X-Request-ID (round 17b's open question) -----------------------------


def test_the_service_keeps_a_callers_request_id_and_makes_its_own_for_anything_else(tmp_path):
    import pytest

    pytest.importorskip("fastapi")
    from test_hostile_inputs_round17b import _auth, _client

    client, _state, keys = _client(tmp_path)
    try:
        # was: a new id for every call, so a gateway's trace id could not be found in the service's log
        r = client.post("/v1/tag", headers=_auth(keys["tag"], **{"X-Request-ID": "gw-7f3a:1.b_2"}),
                        json={"items": [{"id": "a", "text": 42}]})
        assert r.status_code == 422
        assert r.headers["x-request-id"] == r.json()["request_id"] == "gw-7f3a:1.b_2"
        ok = client.get("/v1/models", headers=_auth(keys["tag"], **{"X-Request-ID": "trace-1"}))
        assert ok.status_code == 200 and ok.headers["x-request-id"] == "trace-1"
        # anything that could forge or flood a log line is not taken: the service makes its own id
        for sent in ("a b", "x" * 65, "id\u00e9", "", "a;b", "<script>"):
            headers = {k: v.encode() for k, v in _auth(keys["tag"]).items()} | {"X-Request-ID": sent.encode()}
            r = client.post("/v1/tag", headers=headers, json={"items": [{"id": "a", "text": 42}]})
            rid = r.headers["x-request-id"]
            assert rid != sent and len(rid) == 16 and r.json()["request_id"] == rid
    finally:
        client.__exit__(None, None, None)


# --- the customer's words with a rating are kept (round 17c's open question) -------------------------------------


def test_a_ratings_comment_is_kept_redacted_beside_the_ticket_and_the_conversation(tmp_path):
    import json

    from feedback_nlp.connectors.intercom import read_intercom
    from feedback_nlp.connectors.zendesk import read_zendesk

    # was: Zendesk's satisfaction_rating.comment and Intercom's conversation_rating.remark were left out unsaid
    ticket = {"id": 1, "subject": "Export", "description": "export fails",
              "satisfaction_rating": {"score": "bad", "comment": "Never replied; write to jo@example.com"}}
    (tmp_path / "z.json").write_text(json.dumps({"tickets": [ticket, {"id": 2, "description": "dark mode"}]}))
    z = read_zendesk(tmp_path / "z.json").frame.set_index("id")
    assert z.loc["1", "satisfaction"] == "bad"
    assert z.loc["1", "satisfaction_comment"] == "Never replied; write to <EMAIL>"
    assert not isinstance(z.loc["2", "satisfaction_comment"], str)
    user, admin = {"type": "user", "name": "Jo"}, {"type": "admin", "name": "Ann"}
    conv = {"type": "conversation", "id": "c1", "created_at": 1767600000,
            "source": {"id": "s1", "body": "<p>How can we help?</p>", "author": admin},  # opened by an agent
            "conversation_rating": {"rating": 2, "remark": "slow; call +1 415 555 2671"},
            "conversation_parts": {"conversation_parts": [
                {"id": "p1", "part_type": "comment", "body": "<p>export fails</p>", "author": user},
                {"id": "p2", "part_type": "comment", "body": "<p>still failing</p>", "author": user}]}}
    (tmp_path / "c.json").write_text(json.dumps({"type": "conversation.list", "conversations": [conv]}))
    rows = read_intercom(tmp_path / "c.json").frame.set_index("id")
    # on the conversation's first customer row only: a rating counted once per conversation
    assert rows.loc["p1", "rating"] == "2" and rows.loc["p1", "rating_remark"] == "slow; call <PHONE>"
    assert not isinstance(rows.loc["p2", "rating_remark"], str)


# --- the word channel reads Chinese and Japanese ----------------------------------------------------------------


def test_the_word_channel_learns_chinese_words_and_reads_other_scripts_as_before():
    from sklearn.feature_extraction.text import TfidfVectorizer

    from feedback_nlp._lexical import TOKEN_PATTERN

    # was: scikit-learn's \b\w\w+\b read a whole Chinese clause as one word that no other text repeats: the word
    # channel learnt nothing, and a model on these texts (whose embedding here is noise) guessed
    rng = np.random.default_rng(0)
    filler = list("我们的团队今天发现这个问题非常严重请尽快处理谢谢")

    def text(word: str) -> str:
        a, b = rng.choice(filler, 4), rng.choice(filler, 4)
        return "".join(a) + word + "".join(b)

    words = {"export": "导出失败", "login": "登录很慢"}
    train = [(text(w), tag) for tag, w in words.items() for _ in range(20)]
    test = [(text(w), tag) for tag, w in words.items() for _ in range(10)]
    clf = TagClassifier(embedder=HashEmbedder(), lexical=True).fit([t for t, _ in train], [y for _, y in train])
    accuracy = np.mean(clf.predict([t for t, _ in test]) == np.array([y for _, y in test]))
    assert accuracy >= 0.95
    # every other script is read as scikit-learn's pattern reads it: models fitted before keep their words
    old, new = TfidfVectorizer().build_analyzer(), TfidfVectorizer(token_pattern=TOKEN_PATTERN).build_analyzer()
    for t in ("Export to CSV fails: error_code 0x1F, v2.3", "Café naïve über", "Привет мир", "한국어 텍스트 검색"):
        assert new(t) == old(t)
    assert new("修复NullPointerException错误") == ["修", "复", "nullpointerexception", "错", "误"]
