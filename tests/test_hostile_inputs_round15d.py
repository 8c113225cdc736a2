"""Round 15d: the public API fed with the containers developers actually pass (pandas Series with their own
index and dtypes, generators, sets, a single string where a list belongs, nullable columns).

Each test names what the call did before the fix: a string read letter by letter, a set's arbitrary order used as
the rows' order, a nullable column's missing value failing as a TypeError, integers turned into floats.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from conftest import HashEmbedder
from feedback_nlp import InvalidInputError

_BACKLOG = ["export to csv fails", "csv export broken again", "add dark mode", "please add sso"]
_THEMES = [f"{t} {i}" for i in range(3) for t in (
    "export to csv fails", "csv export broken again", "export crashes on csv", "cannot export csv file",
    "please add dark mode", "dark mode would be great", "want a dark theme mode", "add dark mode option",
    "login with sso please", "sso login support", "need sso login", "single sign on sso login")]


@pytest.fixture(scope="module")
def themes() -> fb.ThemeModel:
    return fb.ThemeModel(HashEmbedder(), min_theme_size=3).fit(_THEMES)


# --- Deduper ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ids, match", [
    ("abcd", "ids must hold one value per item.*got str 'abcd'"),  # was the ids 'a', 'b', 'c', 'd'
    ({1, 2, 3, 4}, "ids is a set, which has no order"),        # was accepted in the set's order
    (np.array([[1], [2], [3], [4]]), r"ids must be 1-D.*\(4, 1\)"),  # was four arrays as ids
    ([[1], [2], [3], [4]], r"ids at positions \[0, 1, 2, 3\] are lists"),
])
def test_deduper_ids_that_are_no_list_of_ids_are_refused(ids, match):
    with pytest.raises(InvalidInputError, match=match):
        fb.Deduper(HashEmbedder()).fit(_BACKLOG, ids=ids)


def test_deduper_add_refuses_a_string_of_ids():
    dd = fb.Deduper(HashEmbedder()).fit(_BACKLOG[:2], ids=["a", "b"])
    with pytest.raises(InvalidInputError, match="got str 'cd'"):  # was the items c and d
        dd.add(_BACKLOG[2:], ids="cd")
    assert dd.ids_ == ["a", "b"]
    assert dd.add(_BACKLOG[2:], ids=iter(["c", "d"])).ids_ == ["a", "b", "c", "d"]  # a generator is read once


def test_deduper_frame_with_ids_in_another_index_order_is_refused():
    frame = pd.DataFrame({"text": _BACKLOG}, index=[5, 6, 7, 8])
    with pytest.raises(InvalidInputError, match="texts and ids have the same index labels in another order"):
        fb.Deduper(HashEmbedder()).fit(frame, ids=pd.Series(list("abcd"), index=[8, 7, 6, 5]))  # was paired by position
    assert fb.Deduper(HashEmbedder()).fit(frame, ids=pd.Series(list("abcd"), index=[5, 6, 7, 8])).ids_ == list("abcd")


@pytest.mark.parametrize("exclude, match", [
    ("ab", "exclude_ids must hold one value per item.*got str 'ab'"),  # was: exclude 'a' for one query, 'b' for the other
    ({"a", "c"}, "exclude_ids is a set"),
    (pd.Series(["a", "c"], index=[0, 1]), "texts and exclude_ids have the same index labels in another order"),
])
def test_find_exclude_ids_as_no_list_in_query_order_is_refused(exclude, match):
    dd = fb.Deduper(HashEmbedder()).fit(_BACKLOG, ids=list("abcd"))
    queries = pd.Series(["export to csv fails", "add dark mode"], index=[1, 0])
    with pytest.raises(InvalidInputError, match=match):
        dd.find(queries, k=1, exclude_ids=exclude)
    # the same ids as a list (or an aligned Series) leave out exactly the named item of each query
    got = dd.find(queries, k=1, exclude_ids=pd.Series(["a", "c"], index=[1, 0]))
    assert got["id"].tolist() == ["b", "d"]


def test_score_pairs_of_two_columns_in_other_index_orders_is_refused():
    a = pd.Series(["export to csv fails", "add dark mode"], index=[1, 0])
    b = pd.Series(["csv export broken again", "please add sso"], index=[0, 1])
    dd = fb.Deduper(HashEmbedder()).fit(_BACKLOG)
    with pytest.raises(InvalidInputError, match="texts_a and texts_b have the same index labels in another order"):
        dd.score_pairs(a, b)  # was: each text of a scored against the other row's text of b
    assert dd.score_pairs(a, b.loc[a.index]).tolist() == dd.score_pairs(a.tolist(), b.loc[a.index].tolist()).tolist()


@pytest.mark.parametrize("labels, match", [
    (pd.Series([True, True, False, pd.NA], dtype="boolean"), r"labels are missing at positions \[3\]"),  # TypeError
    ([1, 1, 0, np.nan], r"labels are missing at positions \[3\]"),
    (pd.Series([0, 0, 1, 1], index=[3, 2, 1, 0]), "same index labels in another order"),  # paired by position
])
def test_calibrate_threshold_refuses_missing_and_shuffled_labels(labels, match):
    scores = pd.Series([0.9, 0.8, 0.3, 0.2])
    with pytest.raises(InvalidInputError, match=match):
        fb.calibrate_threshold(scores, labels)


def test_calibrate_threshold_reads_generators_and_refuses_sets():
    # a generator was "scores must be numbers (similarities)"
    assert fb.calibrate_threshold((s for s in [0.9, 0.8, 0.3, 0.2]), iter([1, 1, 0, 0])) == 0.55
    with pytest.raises(InvalidInputError, match="scores is a set"):
        fb.calibrate_threshold({0.9, 0.8, 0.3, 0.2}, [1, 1, 0, 0])


# --- ThemeModel ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("what", ["timestamps", "accounts"])
def test_theme_metadata_as_a_set_is_refused(what):
    values = set(pd.date_range("2026-01-01", periods=len(_THEMES), tz="UTC")) if what == "timestamps" \
        else set(range(len(_THEMES)))
    with pytest.raises(InvalidInputError, match=f"{what} is a set, which has no order"):  # was accepted
        fb.ThemeModel(HashEmbedder(), min_theme_size=3).fit(_THEMES, **{what: values})


def test_theme_accounts_keep_their_integers_beside_a_missing_one():
    # Series.map made them floats: 12345678901234567 and ...568 became one account, and 1 was saved as 1.0
    big = [12345678901234567, 12345678901234568]
    accounts = pd.Series([big[(i // 12) % 2] for i in range(len(_THEMES) - 1)] + [pd.NA], dtype="Int64")
    tm = fb.ThemeModel(HashEmbedder(), min_theme_size=3).fit(_THEMES, accounts=accounts)
    assert tm.accounts_[[0, 12]].tolist() == big and tm.accounts_[-1] is None
    assert all(isinstance(a, (int, np.integer)) for a in tm.accounts_[:-1])
    assert tm.themes_["unique_accounts"].max() == 2  # themes hold items of both accounts (were all 1)


def test_theme_assignments_ids_as_a_string_or_set_are_refused(themes):
    n = len(_THEMES)
    letters = "".join(chr(ord("A") + i) for i in range(n))
    with pytest.raises(InvalidInputError, match="ids must hold one value per item"):  # was one letter per item
        themes.assignments(ids=letters)
    with pytest.raises(InvalidInputError, match="ids is a set"):
        themes.assignments(ids=set(range(n)))
    assert themes.assignments(ids=(f"t{i}" for i in range(n)))["id"].tolist()[:2] == ["t0", "t1"]


@pytest.mark.parametrize("ids, match", [("01", "got str '01'"), (0, "got int '0'"), ({0, 1}, "is a set")])
def test_merge_themes_of_no_list_is_refused_and_changes_nothing(ids, match):
    tm = fb.ThemeModel(HashEmbedder(), min_theme_size=3).fit(_THEMES)
    before = tm.theme_ids_.tolist()
    with pytest.raises(InvalidInputError, match=match):  # "01" merged themes 0 and 1; 0 was a TypeError
        tm.merge_themes(ids)
    assert tm.theme_ids_.tolist() == before


# --- scoring ------------------------------------------------------------------------------------------

def test_moscow_flags_from_a_generator_are_read_and_a_set_or_column_is_refused():
    scores = [9.0, 6.0, 3.0, 1.0]
    # a generator was one object: "commitment must be booleans; other values at positions 0"
    assert fb.moscow(scores, commitment=(f for f in [False, False, False, True])).tolist() == \
        ["must", "should", "could", "must"]
    with pytest.raises(InvalidInputError, match="commitment is a set"):
        fb.moscow(scores, commitment={True, False})
    with pytest.raises(InvalidInputError, match=r"deadline must be one flag or one per score \(1-D\), got shape \(4, 1\)"):
        fb.moscow(scores, deadline=np.zeros((4, 1), dtype=bool))  # was "deadline has 4 values, scores have 4"


def test_rice_reads_a_dict_view():
    reach = {"sso": 100, "export": 200}
    assert fb.rice(reach.values(), 1, 0.5, 1).tolist() == [50.0, 100.0]  # was "reach must be numeric"


# --- records ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("placeholders, match", [
    ("N/A", "placeholders must be a list of strings.*got str 'N/A'"),  # its letters were placeholders
    ([None], "placeholders must be strings"),                          # AttributeError
    (5, "got int '5'"),
])
def test_read_feedback_placeholders_that_are_no_list_of_strings_are_refused(placeholders, match):
    df = pd.DataFrame({"id": ["a", "n", "c"], "text": ["export fails", "dark mode please", "N/A"]})
    with pytest.raises(InvalidInputError, match=match):
        fb.read_feedback(df, placeholders=placeholders)
    records, rejected = fb.read_feedback(df, placeholders=["N/A"])
    assert records["id"].tolist() == ["a", "n"] and rejected["id"].tolist() == ["c"]


# --- TagClassifier ------------------------------------------------------------------------------------

_TEXTS = ["export fails", "csv export broken", "crash on export", "add dark mode", "please add sso",
          "want sso login"] * 2
_LABELS = (["bug"] * 3 + ["req"] * 3) * 2


@pytest.mark.parametrize("dtype", ["boolean", "Int64"])
def test_a_nullable_indicator_frame_is_read_as_the_indicator_it_is(dtype):
    # to numpy such columns are objects: the indicator was refused as "y must be one column ..., not a DataFrame"
    y = pd.DataFrame({"bug": [t == "bug" for t in _LABELS], "req": [t == "req" for t in _LABELS]}).astype(dtype)
    clf = fb.TagClassifier(HashEmbedder(), lexical=False).fit(_TEXTS, y)
    assert clf.classes_.tolist() == ["bug", "req"]
    assert clf.predict(_TEXTS[:1]).tolist() == [[1, 0]] and clf.score(_TEXTS, y) == 1.0
    y.iloc[4, 1] = pd.NA
    with pytest.raises(InvalidInputError, match=r"indicator columns have missing values in rows \[4\]"):
        fb.TagClassifier(HashEmbedder(), lexical=False).fit(_TEXTS, y)


def test_texts_beside_embeddings_are_named_and_held_to_the_rows_order():
    emb = HashEmbedder()
    X = pd.DataFrame(emb.encode(_TEXTS), index=range(100, 112))
    with pytest.raises(InvalidInputError, match="texts is a set"):  # was "X is a set"
        fb.TagClassifier(emb).fit(X, _LABELS, texts=set(_TEXTS))
    shuffled = pd.Series(_TEXTS, index=range(100, 112)).sort_values()  # the lexical channel read other rows' words
    with pytest.raises(InvalidInputError, match="X and texts have the same index labels in another order"):
        fb.TagClassifier(emb).fit(X, _LABELS, texts=shuffled)
    clf = fb.TagClassifier(emb).fit(X, _LABELS, texts=shuffled.loc[X.index])
    with pytest.raises(InvalidInputError, match="X and texts have the same index labels in another order"):
        clf.predict(X, texts=shuffled)
    assert clf.predict(X, texts=shuffled.loc[X.index]).tolist() == _LABELS


# --- dask ---------------------------------------------------------------------------------------------

def test_tag_dataframe_of_a_pandas_frame_or_a_series_says_what_it_tags(tmp_path):
    dd = pytest.importorskip("dask.dataframe")
    pdf = pd.DataFrame({"id": ["a", "b"], "text": ["export fails", "dark mode"]})
    # was AttributeError: 'DataFrame' object has no attribute 'map_partitions' (after loading the model)
    with pytest.raises(InvalidInputError, match=r"tags a dask DataFrame .*got pandas\.DataFrame: pass "
                                                r"dask\.dataframe\.from_pandas"):
        fb.tag_dataframe(pdf, str(tmp_path / "no-model"))
    with pytest.raises(InvalidInputError, match=r"got dask\.Series"):  # was lazy: it failed at compute()
        fb.tag_dataframe(dd.from_pandas(pdf, npartitions=1)["text"], str(tmp_path / "no-model"))


# --- Taxonomy -----------------------------------------------------------------------------------------

def test_a_taxonomy_from_a_sheets_records_reads_empty_cells_as_no_parent_or_description():
    sheet = pd.DataFrame({"id": ["bug", "crash"], "name": ["Bug", "Crash"],
                          "description": ["Something broken", np.nan], "parent": [np.nan, "bug"]})
    # read_csv's empty cells are NaN: was "tag #0 has nan as its parent; write it as text"
    taxonomy = fb.Taxonomy.from_dict(sheet.to_dict("records"))
    assert [(t.id, t.description, t.parent) for t in taxonomy] == [("bug", "Something broken", None),
                                                                   ("crash", "", "bug")]
    with pytest.raises(fb.TaxonomyError, match="nan as its id"):  # a required field stays required
        fb.Taxonomy([{"id": np.nan, "name": "Bug"}])


def test_validate_labels_skips_rows_without_a_label_and_names_other_values():
    taxonomy = fb.Taxonomy([{"id": "bug", "name": "Bug"}, {"id": "request", "name": "Request"}])
    taxonomy.validate_labels(pd.Series(["bug", None, np.nan, pd.NA], dtype=object))  # was TypeError: 'float' ...
    with pytest.raises(fb.UnknownTagError, match=r"'1' in rows \[0\]"):  # was TypeError: 'int' object is not iterable
        taxonomy.validate_labels([1, "bug"])


# --- EmbeddingCache -----------------------------------------------------------------------------------

@pytest.mark.parametrize("texts", [{"export fails", "dark mode"}, {"export fails": 0, "dark mode": 1}, None])
def test_the_cache_refuses_texts_without_the_vectors_order(tmp_path, texts):
    cache = fb.EmbeddingCache(tmp_path / "c.sqlite")
    # a set stored each vector under the other text, for good; None was a TypeError from list()
    with pytest.raises(InvalidInputError, match="texts must be a string or a list of strings in the order"):
        cache.put("m", texts, np.eye(2, dtype=np.float32))
    cache.put("m", pd.Series(["export fails", "dark mode"], index=[9, 4], dtype="string"), np.eye(2, dtype=np.float32))
    hits, missing = cache.get("m", iter(["dark mode", "export fails", "sso"]))
    assert hits[0].tolist() == [0.0, 1.0] and hits[1].tolist() == [1.0, 0.0] and missing == [2]
    cache.close()


def test_rows_of_a_concatenated_frame_in_another_order_are_refused():
    # pd.concat keeps both indexes (0, 1, 0, 1): a repeated label let any order through, paired by position
    X = pd.concat([pd.Series(_TEXTS[:6]), pd.Series(_TEXTS[6:])])
    y = pd.concat([pd.Series(_LABELS[:6]), pd.Series(_LABELS[6:])])
    with pytest.raises(InvalidInputError, match="X and y have the same index labels in another order"):
        fb.TagClassifier(HashEmbedder(), lexical=False).fit(X, y.sort_index(kind="stable"))
    clf = fb.TagClassifier(HashEmbedder(), lexical=False).fit(X, y)
    assert clf.predict(X).tolist() == _LABELS
