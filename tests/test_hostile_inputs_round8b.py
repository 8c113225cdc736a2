"""Hostile and unusual inputs, eighth round (b): the scoring functions with pandas' own dtypes and odd frames,
the ThemeModel's metadata and persistence, the report's status section and the service's body parser.

Each test names what happened before its fix. Nothing here loads the real embedding model (the tests'
HashEmbedder stands in for it).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import post_json
from feedback_nlp.errors import ColumnError, InvalidInputError
from feedback_nlp.records import to_utc_times
from feedback_nlp.scoring import moscow, non_ask_themes, theme_scores

TEXTS = ["export to csv fails"] * 6 + ["dark mode please add"] * 6 + ["login loop on sso"] * 6


def _frame(**columns) -> pd.DataFrame:
    base = {"theme": ["a", "a", "b"], "account_id": ["x", "y", "x"], "account_revenue": [10.0, 20.0, 10.0],
            "created_at": ["2026-01-01", "2026-01-02", "2026-01-03"]}
    return pd.DataFrame({**base, **columns})


# --- moscow --------------------------------------------------------------------------------------------------


def test_a_nullable_boolean_flag_with_a_missing_value_is_named_by_position():
    flags = pd.Series([True, None, False], dtype="boolean")
    with pytest.raises(InvalidInputError, match="commitment must be booleans; other values at positions 1"):
        moscow([1, 2, 3], commitment=flags)  # was TypeError: boolean value of NA is ambiguous
    assert moscow([1, 2, 3], commitment=flags.fillna(False)).tolist() == ["must", "should", "must"]


def test_a_flag_column_of_another_index_is_refused_not_applied_by_position():
    scores = pd.Series([1.0, 2.0, 3.0], index=[10, 11, 12])
    shuffled = pd.Series([True, False, False], index=[12, 11, 10])  # item 12 is the committed one
    with pytest.raises(InvalidInputError, match="deadline has a different index than scores"):
        moscow(scores, deadline=shuffled)  # was item 10 lifted to "should", item 12 left as it was
    aligned = moscow(scores, deadline=shuffled.reindex(scores.index), cutoffs={"must": 9, "should": 5, "could": 2})
    assert aligned.tolist() == ["won't", "could", "should"]


@pytest.mark.parametrize("scores", [[], pd.Series([], dtype=float)])
def test_moscow_with_cutoffs_of_no_scores_is_no_categories(scores):
    got = moscow(scores, cutoffs={"must": 3, "should": 2, "could": 1})  # was IndexError
    assert len(got) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"overrides": {0: ("must", "contract", "extra")}}, "a category or a \\(category, reason\\) pair"),
    ({"quantiles": "abc"}, "quantiles must be 3 decreasing fractions"),  # TypeError from a comparison
    ({"quantiles": None}, "quantiles must be 3 decreasing fractions"),   # "'NoneType' object is not iterable"
    ({"quantiles": (0.8, "0.5", 0.2)}, "quantiles must be 3 decreasing fractions"),
])
def test_moscow_options_of_the_wrong_shape_are_named(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        moscow([1, 2, 3], **kwargs)


# --- theme_scores / demand_scores ------------------------------------------------------------------------------


def test_a_categorical_theme_column_of_numbers_drops_its_outliers():
    df = _frame(theme=pd.Categorical([-1, 0, 0]))
    got = theme_scores(df, time_col=None)  # was TypeError: bad operand type for unary ~: 'Categorical'
    assert got["theme"].tolist() == [0] and got["volume"].tolist() == [2]


@pytest.mark.parametrize("revenue, kind", [
    ([True, False, True], "bool"),                                   # was summed as 1 and 0
    (pd.array([True, False, None], dtype="boolean"), "bool"),
    (pd.to_timedelta([1, 2, 3], unit="D"), "Timedelta"),             # was 259,200,000,000,000 "revenue"
    (pd.to_datetime(["2020-01-01", "2021-01-01", "2022-01-01"]), "Timestamp"),
    ([1 + 2j, 1, 1], "complex"),                                     # was "No matching signature found"
])
def test_revenue_that_is_no_amount_of_money_is_refused_by_column(revenue, kind):
    with pytest.raises(ColumnError, match=f"revenue column 'account_revenue' holds {kind}"):
        theme_scores(_frame(account_revenue=revenue), time_col=None)


def test_nullable_and_decimal_revenue_is_still_read_as_money():
    from decimal import Decimal

    # an account's revenue is its largest figure on any of its rows, counted in each of its themes (round 14b:
    # it was taken per theme, so account x had 1.5 in theme a and 2.0 in theme b)
    got = theme_scores(_frame(account_revenue=pd.array([1.5, None, 2.0], dtype="Float64")), time_col=None)
    assert got.set_index("theme")["revenue"].to_dict() == {"a": 2.0, "b": 2.0}
    got = theme_scores(_frame(account_revenue=[Decimal("1.25"), 2, 1]), time_col=None)
    assert got.set_index("theme")["revenue"].to_dict() == {"a": 3.25, "b": 1.25}


def test_a_blank_account_is_no_account_not_one_shared_by_every_blank_row():
    df = _frame(theme=["a", "a", "a"], account_id=["", "  ", "x"], account_revenue=[500.0, 700.0, 10.0])
    row = theme_scores(df, time_col=None).iloc[0]
    # was 2 accounts ("" and "x") and a revenue of 710: two customers' rows pooled into one account ""
    assert row["unique_accounts"] == 1 and row["revenue"] == 10.0
    model = fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, accounts=["", " ", "a"] * 6)
    assert model.themes_["unique_accounts"].tolist() == [1, 1, 1]  # was 3 ("", " " and "a")


def test_a_window_whose_two_spans_pandas_cannot_hold_is_an_input_error():
    with pytest.raises(InvalidInputError, match="at most 146 years"):
        theme_scores(_frame(), window=pd.Timedelta.max)  # was OutOfBoundsTimedelta from 2 * window
    dated = _frame(created_at=pd.to_datetime(["2026-01-01", "1900-01-01", "2026-01-02"]).as_unit("ns"))
    got = theme_scores(dated, window="70000D", time_col="created_at")  # was OutOfBoundsTimedelta: before 1677 in ns
    assert got.set_index("theme")["recent"].to_dict() == {"a": 2, "b": 1}


@pytest.mark.parametrize("kwargs, error, message", [
    ({"weights": [0.5, 0.5]}, InvalidInputError, "weights must be a mapping"),  # "cannot convert dictionary update"
    ({"weights": "volume"}, InvalidInputError, "weights must be a mapping"),
    ({"exclude": None}, InvalidInputError, "exclude must be a list"),           # "'NoneType' object is not iterable"
    ({"exclude": "a"}, InvalidInputError, "exclude must be a list"),            # "'in <string>' requires string"
    ({"theme_col": ["theme"]}, ColumnError, "theme_col must be one column name"),  # "unhashable type: 'list'"
])
def test_scoring_arguments_of_the_wrong_kind_are_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        theme_scores(_frame(), **kwargs)


def test_frames_whose_columns_cannot_be_scored_say_why():
    with pytest.raises(ColumnError, match="MultiIndex of columns"):  # was a pandas ValueError deep in the grouping
        theme_scores(pd.concat({"g": _frame()}, axis=1), theme_col=("g", "theme"), account_col=("g", "account_id"),
                     revenue_col=None, time_col=None)
    twice = _frame()
    twice.columns = ["theme", "account_id", "account_revenue", "theme"]
    with pytest.raises(ColumnError, match="'theme' is named 2 times"):  # "truth value of a Series is ambiguous"
        theme_scores(twice, time_col=None)
    with pytest.raises(ColumnError, match="named 'volume', like a column of the scores"):  # "cannot insert volume"
        fb.demand_scores(_frame().rename(columns={"theme": "volume"}), by="volume")
    with pytest.raises(ColumnError, match="holds objects in rows \\[0\\]"):  # "unhashable type: 'dict'"
        theme_scores(_frame(theme=[{"a": 1}, "a", "b"]), time_col=None)


def test_non_ask_themes_names_bad_arguments_and_skips_blank_themes():
    items = pd.DataFrame({"theme": ["", "x", "x"], "tags": ["praise", "praise", ["thanks"]]})
    assert non_ask_themes(items) == ["x"]  # '' was returned as a praise theme
    with pytest.raises(InvalidInputError, match="expects a DataFrame"):
        non_ask_themes([1, 2])  # AttributeError: 'list' object has no attribute 'columns'
    with pytest.raises(InvalidInputError, match="min_share must be a number"):
        non_ask_themes(items, min_share="0.5")  # TypeError from the comparison
    with pytest.raises(ColumnError, match="holds lists or objects"):
        non_ask_themes(items.assign(theme=[["a"], "x", "x"]))  # "unhashable type: 'list'"


def test_epoch_numbers_are_read_by_the_records_rules_without_pandas_deprecation():
    with warnings.catch_warnings():
        # pandas 4 reads numbers given with format="ISO8601" as nanosecond epochs: 1767225600 would be 1970
        warnings.simplefilter("error", pd.errors.Pandas4Warning)
        ts, bad = to_utc_times(pd.Series([1767225600, 1767225600.0, None]))
        mixed, _ = to_utc_times(pd.Series(["2026-01-02", 1767225600], dtype=object))
        got = theme_scores(_frame(created_at=[1767225600, 1767312000, 1767398400]), time_col="created_at")
    assert ts.tolist()[:2] == [pd.Timestamp("2026-01-01", tz="UTC")] * 2 and not bad.any()
    assert mixed.tolist() == [pd.Timestamp("2026-01-02", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")]
    assert got.set_index("theme")["last_seen"]["b"] == pd.Timestamp("2026-01-03", tz="UTC")


# --- ThemeModel ------------------------------------------------------------------------------------------------


def _hash():
    from conftest import HashEmbedder

    return HashEmbedder()


@pytest.mark.parametrize("date", ["1500-01-01", "2900-06-30"])
def test_dates_outside_the_nanosecond_range_survive_save_and_load(tmp_path, date):
    model = fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, timestamps=[date] + ["2026-01-05"] * 17)
    loaded = fb.ThemeModel.load(model.save(tmp_path / "m"), embedder=_hash())
    assert loaded.timestamps_[0] == pd.Timestamp(date, tz="UTC")  # 1500-01-01 came back as 2084-07-20
    assert loaded.themes_.equals(model.themes_)


@pytest.mark.parametrize("freq, first, advice", [("W", "1800-01-01", "such as M"), ("s", "2026-01-01", "such as D"),
                                                  ("D", "1980-01-01", "such as W")])
def test_a_too_fine_trend_period_is_told_a_period_that_fits(freq, first, advice):
    model = fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, timestamps=[first] + ["2026-03-01"] * 17)
    with pytest.raises(InvalidInputError, match=f"periods \\(at most 10,000\\); choose a longer period, {advice}$"):
        model.trends(freq)  # the advice was "such as D, W or M" for a week that was too fine


@pytest.mark.parametrize("name, value", [("timestamps", "2026-01-01"), ("timestamps", 5), ("accounts", "acme")])
def test_one_value_for_every_item_is_refused_as_such(name, value):
    with pytest.raises(InvalidInputError, match=f"{name} must hold one value per item"):
        # a string was read as its characters ("has 10 values for 18 texts"), a number was a TypeError
        fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, **{name: value})


def test_nullable_integer_accounts_count_and_save_their_missing_values_as_none(tmp_path):
    accounts = pd.array([7, None, 8] * 6, dtype="Int64")
    model = fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, accounts=accounts)  # was TypeError (pd.NA)
    assert model.themes_["unique_accounts"].tolist() == [2, 2, 2]
    loaded = fb.ThemeModel.load(model.save(tmp_path / "m"), embedder=_hash())
    assert loaded.accounts_[:3].tolist() == [7, None, 8]  # pd.NA would have been saved as the account '<NA>'


def test_a_numpy_integer_seed_fits_like_the_same_python_integer():
    a = fb.ThemeModel(_hash(), min_theme_size=2, random_state=np.int64(3)).fit(TEXTS)  # was TypeError in igraph
    b = fb.ThemeModel(_hash(), min_theme_size=2, random_state=3).fit(TEXTS)
    assert np.array_equal(a.labels_, b.labels_)


# --- report ------------------------------------------------------------------------------------------------------


def test_a_report_whose_items_have_a_status_but_nothing_shipped_warns_nothing(tmp_path, hash_embedder):
    frame = pd.DataFrame({"text": TEXTS, "status": ["open", "planned", None] * 6,
                          "created_at": ["2026-01-01", "2026-01-09"] * 9})
    tax = fb.Taxonomy([{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature"}])
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.Pandas4Warning)  # "Passing integer data to PeriodArray"
        summary = fb.build_report(frame, tmp_path / "r", taxonomy=tax, embedder=hash_embedder, min_theme_size=2,
                                  sentiment=None)
    flow = pd.read_csv(summary.tables["asked_vs_delivered"])
    assert flow["asked_total"].iloc[-1] == 18 and flow["delivered_total"].iloc[-1] == 0


def test_a_report_without_an_output_folder_says_so_before_any_work(tmp_path):
    class NoEmbedding(fb.BaseEmbedder):
        model_id = "none@1"

        def encode(self, texts):
            raise AssertionError("the report embedded before refusing its arguments")

    with pytest.raises(InvalidInputError, match="out_dir must be a folder path, got NoneType"):
        fb.build_report(pd.DataFrame({"text": TEXTS}), None, embedder=NoEmbedding(), sentiment=None)  # TypeError


def test_the_reports_tables_cut_very_long_texts_and_its_csv_keeps_them(tmp_path, hash_embedder):
    import re

    long = ("the export to csv fails when the file is big " * 400)[:19_000]
    frame = pd.DataFrame({"text": [f"{long} case {i}" for i in range(8)] + ["dark mode please add"] * 8})
    tax = fb.Taxonomy([{"id": "bug", "name": "Bug"}, {"id": "feature", "name": "Feature"}])
    summary = fb.build_report(frame, tmp_path / "r", taxonomy=tax, embedder=hash_embedder, min_theme_size=2,
                              sentiment=None)
    cells = re.findall(r"<td>([^<]*)</td>", summary.html.read_text())
    assert max(map(len, cells)) <= 301 and any(c.endswith("…") for c in cells)  # was a 36,015-character cell
    items = pd.read_csv(summary.tables["items"])
    assert items["text"].str.len().max() > 18_000


def test_a_status_set_before_an_item_was_asked_is_an_answer_at_once_not_negative_days():
    from feedback_nlp.report_status import status_by_theme

    items = pd.DataFrame({"theme": [0, 0, 0], "theme_label": ["sso"] * 3, "status": ["Planned", "Planned", "Open"],
                          "created_at": pd.to_datetime(["2026-02-01", "2026-01-01", "2026-01-05"], utc=True),
                          "status_changed_at": pd.to_datetime(["2026-01-11", "2026-01-11", None], utc=True)})
    row = status_by_theme(items).iloc[0]
    # the item asked on 1 February joined a post planned on 11 January: was -21 days, and a median of -5.5
    assert row["median_days_to_status_change"] == 5.0 and row["days_first_ask_to_first_response"] == 10.0
    late = items.iloc[[0]]
    assert status_by_theme(late).iloc[0][["median_days_to_status_change", "days_first_ask_to_first_response"]].tolist() \
        == [0.0, 0.0]


# --- service -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 50_000 + b"]" * 50_000, b'{"items": ' + b"[" * 5_000 + b"]" * 5_000 + b"}"])
def test_json_nested_too_deep_is_a_named_422_not_a_vague_400(api, raw):
    r = post_json(api, "/v1/tag", raw)
    error = r.json()["error"]
    # was 400 "There was an error parsing the body" with code http_error
    assert r.status_code == 422 and error["code"] == "invalid_request" and "nested too deeply" in error["message"]
    assert error["details"][0]["type"] == "too_deep"


@pytest.mark.parametrize("where, value", [("created_at", "now"), ("created_at", "today"), ("now", "now"),
                                          ("now", "today"), ("now", "12:00")])
def test_a_demand_request_with_a_word_for_a_time_is_refused_not_read_as_the_clock(api, where, value):
    item = {"id": "1", "theme": "a", "created_at": value if where == "created_at" else "2026-01-01T00:00:00Z"}
    body = {"items": [item], **({"now": value} if where == "now" else {})}
    r = post_json(api, "/v1/score/demand", body)  # was 200: the time of the request (theme_scores refuses them)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_time", r.text
    assert post_json(api, "/v1/score/demand", {"items": [{**item, "created_at": "2026-01-01"}],
                                               "now": "2026-01-02T00:00:00"}).status_code == 200


def test_an_account_number_beyond_64_bits_is_saved_as_the_number(tmp_path):
    model = fb.ThemeModel(_hash(), min_theme_size=2).fit(TEXTS, accounts=[10**30, 7] * 9)
    loaded = fb.ThemeModel.load(model.save(tmp_path / "m"), embedder=_hash())  # save() was a TypeError (isfinite)
    assert loaded.accounts_[:2].tolist() == [10**30, 7]


def test_an_integer_key_on_an_integer_index_is_a_label_never_a_position():
    scores = pd.Series([1.0, 2.0, 3.0], index=[10, 11, 12])  # label 0 was filtered out of the frame
    cut = {"must": 9, "should": 5, "could": 2}
    with pytest.raises(InvalidInputError, match="override key '0' matches no score"):
        moscow(scores, cutoffs=cut, overrides={0: "must"})  # was item 10 (position 0) made a must, silently
    assert moscow(scores, cutoffs=cut, overrides={12: "must"}).tolist() == ["won't", "could", "must"]
    named = pd.Series([1.0, 2.0], index=["a", "b"])  # positions still work where no label can be an integer
    assert moscow(named, cutoffs=cut, overrides={1: "must"}).tolist() == ["won't", "must"]


def test_weights_only_for_what_a_call_cannot_score_are_refused():
    with pytest.raises(InvalidInputError, match="growth needs time_col"):
        theme_scores(_frame(), time_col=None, weights={"growth": 1})  # was priority 0 for every theme


@pytest.mark.parametrize("window", [28, 2.5, np.int64(7)])
def test_a_window_given_as_a_bare_number_is_refused_not_read_as_nanoseconds(window):
    with pytest.raises(InvalidInputError, match="a duration with its unit"):
        theme_scores(_frame(), window=window)  # was 28 ns: nothing recent, every growth 0
    got = theme_scores(_frame(), window=np.timedelta64(2, "D"), now="2026-01-03T00:00:00Z")
    assert got.set_index("theme")["recent"].to_dict() == {"a": 1, "b": 1}


@pytest.mark.parametrize("value", [10**400, "sNaN"])
def test_a_number_a_float_cannot_hold_is_an_input_error(value):
    from decimal import Decimal

    given = Decimal(value) if isinstance(value, str) else value
    with pytest.raises(InvalidInputError, match="reach has numbers a float cannot hold at positions 1"):
        fb.rice([1, given], 1, 1, 1)  # was OverflowError / ValueError from astype(float)


@pytest.mark.parametrize("date", ["0000-01-01", "0000-01-01T00:00:00Z"])
def test_year_zero_is_rejected_not_turned_into_1972(date):
    got = fb.read_feedback(pd.DataFrame({"text": ["export fails", "dark mode"], "created_at": [date, "2026-01-01"]}))
    assert got.records["created_at"].tolist() == [pd.Timestamp("2026-01-01", tz="UTC")]  # was 1972-01-01 too
    assert "unparseable date" in got.rejected["reason"].iloc[0]
    with pytest.raises(ColumnError, match="unparseable dates in rows \\[0\\]"):
        theme_scores(_frame(created_at=[date, "2026-01-02", "2026-01-03"]))  # first_seen was 1972-01-01


def test_concurrent_requests_for_one_id_in_two_unicode_forms_store_it_once(api):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    for n in range(5):  # each round was both stored: each request checked while the other was embedding
        ids = [f"r8b-{n}-caf\u00e9", f"r8b-{n}-cafe\u0301"]
        barrier = threading.Barrier(2)

        def put(i, ids=ids, barrier=barrier):
            barrier.wait()
            return post_json(api, "/v1/backlog", {"items": [{"id": ids[i], "text": f"export fails {i}"}]})

        with ThreadPoolExecutor(2) as pool:
            replies = list(pool.map(put, [0, 1]))
        assert sorted(r.status_code for r in replies) == [200, 422], [r.text for r in replies]
        refused = next(r for r in replies if r.status_code == 422).json()["error"]
        assert refused["code"] == "duplicate_id" and "another Unicode form" in refused["message"]
