"""Hostile and careless inputs, round 11b (the public Python API as a service embedding the library calls it:
tagging, duplicates, themes, scoring, save/load): each test failed before its fix. Embedding is the
HashEmbedder test double of conftest.py; nothing loads the real model."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from conftest import HashEmbedder
from feedback_nlp import (
    ColumnError,
    Deduper,
    EmbeddingCache,
    IntegrityError,
    InvalidInputError,
    Tag,
    TagClassifier,
    Taxonomy,
    TaxonomyError,
    ThemeModel,
    UnknownTagError,
    demand_scores,
    moscow,
    rice,
    theme_scores,
)
from feedback_nlp._persist import write_manifest

_NOW = pd.Timestamp("2024-02-01", tz="UTC")


def _scored_frame() -> pd.DataFrame:
    return pd.DataFrame({"theme": ["sso", "sso", "export"], "account_id": ["a", "b", "c"],
                         "account_revenue": [100.0, 50.0, 10.0],
                         "created_at": ["2024-01-30", "2024-01-20", "2024-01-25"]})


# --- scoring --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [lambda df: demand_scores(df, by=None, now=_NOW),
                                  lambda df: theme_scores(df, theme_col=None, now=_NOW)])
def test_scores_grouped_by_no_column_are_a_column_error_not_a_key_error(call):
    with pytest.raises(ColumnError, match="theme column must be named"):
        call(_scored_frame())


def test_theme_scores_of_a_frame_without_rows_is_an_empty_table_without_a_pandas_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was Pandas4Warning: '&' between a text column and booleans
        out = theme_scores(_scored_frame().iloc[:0], now=_NOW)
    assert out.empty and "priority" in out.columns


def test_a_tag_named_twice_in_one_cell_counts_its_item_once():
    df = _scored_frame().assign(theme=[["sso", "sso"], ["sso"], ["export", "sso", "export"]])
    out = theme_scores(df, now=_NOW).set_index("theme")
    assert out.loc["sso", "volume"] == 3 and out.loc["export", "volume"] == 1  # was 4 and 2
    assert out.loc["sso", "recent"] == 3


def test_scoring_reads_a_generator_of_numbers_and_names_a_set_or_dict():
    assert rice((r for r in [100, 200]), 1, 0.5, 1).tolist() == [50.0, 100.0]  # was "reach must be numeric"
    assert moscow(s for s in [1, 2, 3]).tolist() == ["won't", "should", "must"]
    for value in ({100, 200}, {"a": 100}):
        with pytest.raises(InvalidInputError, match="reach is a (set|dict): pass its numbers as a list"):
            rice(value, 1, 0.5, 1)


# --- tagging and the taxonomy ---------------------------------------------------------------------------------

_TEXTS = ["export fails", "csv export broken", "dark mode please", "add a dark theme", "login loops", "cannot log in",
          "love it", "great app thanks"] * 3


@pytest.mark.filterwarnings("ignore:.*with different tags")
@pytest.mark.parametrize("multi", [False, True])
def test_a_text_repeated_under_two_tags_trains_instead_of_crashing_in_a_fold(multi):
    texts = ["same text here"] * 4 + ["only x words"] * 4 + ["only y words"] * 4
    labels = ["x", "y"] * 2 + ["x"] * 4 + ["y"] * 4
    y = [[lab] for lab in labels] if multi else labels
    # the copies were one group holding both tags: a fold trained on one tag alone, scikit-learn's ValueError
    clf = TagClassifier(HashEmbedder()).fit(texts, y)
    assert set(np.ravel(clf.classes_)) == {"x", "y"} and len(clf.predict(texts)) == 12


def test_label_issues_of_a_multi_label_tag_that_is_never_a_rows_first_tag_are_found():
    y = [["bug"], ["bug", "export"], ["feature"], ["feature"], ["bug"], ["bug"], ["praise"], ["praise"]] * 3
    clf = TagClassifier(HashEmbedder()).fit(_TEXTS, y)
    issues = clf.find_label_issues(_TEXTS, y, method="builtin")  # was scikit-learn's "n_splits=0" ValueError
    assert list(issues.columns) == ["index", "text", "given", "suggested", "p_given", "p_suggested"]


def test_a_zero_shot_model_refuses_a_multi_label_setting_its_taxonomy_cannot_give():
    flat = Taxonomy([Tag("bug", "Bug", "something broken"), Tag("feature", "Feature", "a request")])
    with pytest.raises(InvalidInputError, match="multi_label=True cannot apply to zero-shot"):
        TagClassifier(HashEmbedder(), flat, zero_shot=True, multi_label=True).fit(_TEXTS)  # was one tag a row
    faceted = Taxonomy([Tag("area", "Area"), Tag("billing", "Billing", parent="area"), Tag("export", "Export", parent="area"),
                        Tag("kind", "Kind"), Tag("bug", "Bug", parent="kind"), Tag("ask", "Request", parent="kind")])
    with pytest.raises(InvalidInputError, match="multi_label=False cannot apply to zero-shot"):
        TagClassifier(HashEmbedder(), faceted, zero_shot=True, multi_label=False).fit(_TEXTS)
    assert TagClassifier(HashEmbedder(), flat, zero_shot=True).fit(_TEXTS).multi_label_ is False


@pytest.mark.parametrize("tag, message", [
    (Tag("a|b", "A or B"), "holds '|'"),                        # would read back from a CSV as two tags
    (Tag("bug\u200b", "Bug"), "invisible character"),
    (Tag("b\tug", "Bug"), "control character"),
    (Tag("bug", ["Bug"]), "has a list as its name"),
])
def test_tag_objects_are_checked_like_tag_mappings(tag, message):
    with pytest.raises(TaxonomyError, match=message):
        Taxonomy([tag, Tag("feature", "Feature")])


def test_examples_given_to_a_tag_object_as_one_string_are_one_example_not_its_letters():
    assert Taxonomy([Tag("bug", "Bug", examples="the app crashes")])["bug"].examples == ("the app crashes",)


def test_taxonomy_helpers_read_one_tag_as_a_tag_and_refuse_what_is_no_depth_or_tag():
    tax = Taxonomy([Tag("area", "Area"), Tag("billing", "Billing", parent="area"), Tag("bug", "Bug")])
    assert tax.with_ancestors("billing") == ["area", "billing"]  # was "unknown tag 'b'"
    tax.validate_labels(["bug", "billing"])                       # a flat list of labels, one a row
    with pytest.raises(UnknownTagError, match="'zzz' in rows \\[1\\]"):
        tax.validate_labels(["bug", "zzz"])
    with pytest.raises(InvalidInputError, match="level must be a depth"):
        tax.at_level("billing", -1)                               # was the tag itself, counted from the end
    with pytest.raises(UnknownTagError, match="unknown tag 'nope'"):
        tax.children("nope")                                      # was [], like a leaf


@pytest.mark.filterwarnings("ignore:.*copies of training rows")
def test_an_evaluation_of_tags_holding_a_pipe_or_a_line_break_keeps_its_markdown_tables_whole():
    y = ["a|b", "a|b", "c\nd", "c\nd", "a|b", "a|b", "e", "e"] * 3
    clf = TagClassifier(HashEmbedder()).fit(_TEXTS, y)
    report = clf.evaluate(_TEXTS, ["e"] + y[1:])  # one miss: a confused pair too
    assert len(report.confused_pairs)
    tables = [line for line in report.to_markdown().splitlines() if line.startswith("|")]
    cells = [len(re.findall(r"(?<!\\)\|", line)) for line in tables]
    assert set(cells) <= {3, 4, 6}  # 2-, 3- and 5-column tables: a tag never adds a column or a row
    assert all(line.endswith("|") for line in report.to_markdown().splitlines() if line)
    with pytest.raises(InvalidInputError, match="max_tags must be"):
        report.to_markdown(max_tags=-1)


# --- the embedding cache --------------------------------------------------------------------------------------


def test_the_embedding_cache_reads_one_text_as_a_text_and_names_what_it_cannot_store(tmp_path):
    cache = EmbeddingCache(tmp_path / "c.sqlite")
    cache.put("m", ["a", "b"], np.eye(2, 4, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="expected 1 vectors"):
        cache.put("m", "ab", np.ones((2, 4), dtype=np.float32))  # stored over "a" and "b", letter by letter
    assert cache.get("m", "a")[0][0].tolist() == [1.0, 0.0, 0.0, 0.0]
    for call in (lambda: cache.put("m", [None], np.ones((1, 4), dtype=np.float32)),  # AttributeError
                 lambda: cache.get(None, ["a"]),                                       # AttributeError
                 lambda: cache.put("m", ["a"], np.ones(4, dtype=np.float32))):         # bare ValueError
        with pytest.raises(InvalidInputError):
            call()
    cache.put("m", ["\ud800 lone"], np.ones((1, 4), dtype=np.float32))  # was a UnicodeEncodeError
    assert cache.get("m", ["\ud800 lone"])[1] == []


# --- scikit-learn conventions --------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator, key, message", [
    (lambda: Deduper(HashEmbedder()), "treshold", "Deduper has no parameter 'treshold' \\(did you mean 'threshold'"),
    (lambda: ThemeModel(HashEmbedder()), "min_theme", "ThemeModel has no parameter 'min_theme' \\(did you mean"),
    (lambda: Deduper(HashEmbedder()), "embedder__dim", "the embedder \\(HashEmbedder\\) has no parameters"),  # was
    (lambda: ThemeModel(HashEmbedder()), "clusterer__resolution", "the clusterer \\(NoneType\\)"),  # AttributeError
])
def test_set_params_of_the_index_and_the_themes_names_an_unknown_or_unsettable_parameter(estimator, key, message):
    with pytest.raises(InvalidInputError, match=message):
        estimator().set_params(**{key: 1})


# --- duplicates -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("min_score", [85, 1.5, -2])
def test_a_min_score_outside_the_cosine_range_is_refused_not_read_as_exact_copies_only(min_score):
    index = Deduper(HashEmbedder()).fit(["export fails", "export fails now", "dark mode"])
    with pytest.raises(InvalidInputError, match="between -1 and 1"):
        index.find(["export fails"], k=2, min_score=min_score)  # 85 kept the exact copy alone, without a word


def test_ids_dates_and_accounts_sorted_apart_from_their_texts_are_refused_not_paired_by_position():
    texts = pd.Series(_THEME_TEXTS, index=range(60))
    backwards = range(59, -1, -1)
    dates = pd.Series(pd.date_range("2024-01-01", periods=60, freq="D"), index=backwards)
    accounts = pd.Series([f"acct{i}" for i in range(60)], index=backwards)
    # each was paired by position: item 0 (label 0) got the date and account of label 59
    with pytest.raises(InvalidInputError, match="texts and timestamps have the same index labels in another order"):
        ThemeModel(HashEmbedder(), min_theme_size=5).fit(texts, timestamps=dates)
    with pytest.raises(InvalidInputError, match="texts and accounts have the same index labels"):
        ThemeModel(HashEmbedder(), min_theme_size=5).fit(texts, accounts=accounts)
    with pytest.raises(InvalidInputError, match="texts and ids have the same index labels"):
        Deduper(HashEmbedder()).fit(texts, ids=pd.Series([f"i{i}" for i in range(60)], index=backwards))
    aligned = ThemeModel(HashEmbedder(), min_theme_size=5).fit(texts, timestamps=dates.loc[texts.index])
    assert aligned.timestamps_[0] == dates.loc[0].tz_localize("UTC")  # label 0: the last date


def test_repeated_ids_of_an_index_are_named():
    frame = pd.DataFrame({"id": ["a", "b", "a", "c"], "text": ["export fails", "dark mode", "sso", "slow"]})
    with pytest.raises(InvalidInputError, match="repeated: \\['a'\\]"):  # was "ids must be unique" alone
        Deduper(HashEmbedder()).fit(frame)


@pytest.mark.parametrize("label, message", [(3, "must be a string"), ("  ", "cannot be empty")])
def test_a_merged_theme_label_is_checked_like_a_renamed_one(label, message):
    model = ThemeModel(HashEmbedder(), min_theme_size=5).fit(_THEME_TEXTS)
    with pytest.raises(InvalidInputError, match=message):  # 3 was kept, and the model then saved a number
        model.merge_themes(model.theme_ids_[:2].tolist(), label=label)
    assert len(model.theme_ids_) >= 2  # nothing merged


# --- save/load: a folder edited with its manifest recomputed ---------------------------------------------------

_THEME_TEXTS = [f"export csv fails {i % 3}" for i in range(30)] + [f"dark mode please {i % 3}" for i in range(30)]


@pytest.fixture(scope="module")
def saved_index(tmp_path_factory):
    texts = ["export fails", "csv export broken", "dark mode please", "add a dark theme"]
    return Deduper(HashEmbedder()).fit(texts, ids=["a", "b", "c", "d"]).save(tmp_path_factory.mktemp("dd") / "index")


@pytest.fixture(scope="module")
def saved_themes(tmp_path_factory):
    model = ThemeModel(HashEmbedder(), min_theme_size=5).fit(_THEME_TEXTS, timestamps=["2024-01-01"] * 60)
    assert len(model.theme_ids_) >= 2
    return model.save(tmp_path_factory.mktemp("tm") / "themes")


def _edited(saved, tmp_path, *, config=None, items=None, arrays=None):
    """A copy of ``saved`` with config.json / items.json edited in place by the callables, or the named arrays
    of its .npy/.npz file replaced, and the manifest recomputed (as an attacker or a careless edit would)."""
    folder = tmp_path / "edited"
    shutil.copytree(saved, folder)
    for name, edit in (("config.json", config), ("items.json", items)):
        if edit is not None:
            data = json.loads((folder / name).read_text())
            edit(data)
            (folder / name).write_text(json.dumps(data))
    if arrays is not None and (folder / "embeddings.npy").exists():
        np.save(folder / "embeddings.npy", arrays["embeddings"])
    elif arrays is not None:
        with np.load(folder / "themes.npz") as data:
            stored = {k: data[k] for k in data.files}
        np.savez(folder / "themes.npz", **{**stored, **arrays})
    write_manifest(folder)
    return folder


@pytest.mark.parametrize("change", [
    {"config": lambda c: c.pop("model_id")},                                          # was KeyError
    {"config": lambda c: c.__setitem__("params", [1])},
    {"arrays": {"embeddings": np.full((4, 64), np.nan, dtype=np.float32)}},           # every score NaN
    {"arrays": {"embeddings": np.full((4, 64), "x")}},                                # numpy's matmul error
    {"arrays": {"embeddings": np.ones((4, 64), dtype=np.int64)}},
    {"items": lambda c: c.__setitem__("ids", ["a", "a", "b", "c"])},                  # found as two matches
    {"items": lambda c: c.__setitem__("ids", [None, "b", "c", "d"])},
    {"items": lambda c: c.__setitem__("ids", [{"x": 1}, "b", "c", "d"])},
    {"items": lambda c: c.__setitem__("texts", [1, 2, 3, 4])},
])
def test_a_duplicate_index_edited_with_its_manifest_recomputed_is_an_integrity_error(saved_index, tmp_path, change):
    folder = _edited(saved_index, tmp_path, **change)
    with pytest.raises(IntegrityError, match="holds files that pass manifest.json but not what a save writes"):
        Deduper.load(folder, embedder=HashEmbedder())


@pytest.mark.parametrize("change", [
    {"config": lambda c: c.__setitem__("assign_threshold_", float("nan"))},          # every item an outlier
    {"config": lambda c: c.__setitem__("assign_threshold_", 5.0)},
    {"arrays": lambda n: {"centroids": np.full((n, 64), np.nan, dtype=np.float32)}},
    {"arrays": lambda n: {"labels": np.full(60, 7)}},                                 # a theme it does not have
    {"arrays": lambda n: {"theme_ids": np.zeros(n, dtype=np.int64)}},
    {"items": lambda c: c.__setitem__("custom_labels", {"9": "a theme it does not have"})},
])
def test_a_theme_model_edited_with_its_manifest_recomputed_is_an_integrity_error(saved_themes, tmp_path, change):
    if "arrays" in change:  # arrays of as many themes as the saved model has
        with np.load(saved_themes / "themes.npz") as data:
            change = {"arrays": change["arrays"](len(data["theme_ids"]))}
    folder = _edited(saved_themes, tmp_path, **change)
    with pytest.raises(IntegrityError, match="holds files that pass manifest.json but not what a save writes"):
        ThemeModel.load(folder, embedder=HashEmbedder())


def test_untouched_index_and_theme_folders_still_load(saved_index, saved_themes, tmp_path):
    index = Deduper.load(_edited(saved_index, tmp_path / "dd"), embedder=HashEmbedder())
    assert index.find(["export fails"], k=1)["id"].tolist() == ["a"]
    themes = ThemeModel.load(_edited(saved_themes, tmp_path / "tm"), embedder=HashEmbedder())
    assert themes.transform(["export csv fails 1"])[0] >= 0
