"""Round 14b of hostile and careless inputs: scoring as other apps call it (RICE, ICE, MoSCoW and the demand
score through the Python API, the ``score`` command and the HTTP service).

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from _hostile_support import post_json, write_file
from feedback_nlp.cli import main
from feedback_nlp.errors import InvalidInputError
from feedback_nlp.scoring import moscow, rice, theme_scores

# --- RICE near a float's range ----------------------------------------------------------------------------------


def test_a_huge_reach_with_no_confidence_scores_zero_not_nan():
    """reach 1e308 × impact 3 overflowed to inf before the confidence of 0 made it inf × 0 = NaN: the score was
    NaN (``null`` from the service, an empty cell in the CLI's output) without a word. Now 0, as 0 × anything."""
    assert rice(1e308, 3, 0, 1) == 0.0
    assert rice([1e308, 10], 3, [0.0, 0.5], 1).tolist() == [0.0, 15.0]
    assert rice(0, 3, 1, 1e-320) == 0.0  # no reach: 0, even when impact / effort alone is beyond range


def test_a_huge_reach_whose_score_is_in_range_is_scored_not_refused():
    """reach 1e308, impact 3, effort 10 is a score of 3e307, a float: reach × impact overflowed first and the
    call was refused as "an infinite score". Scores that are truly beyond a float are still refused."""
    assert rice(1e308, 3, 1, 10) == pytest.approx(3e307)
    with pytest.raises(InvalidInputError, match="infinite score"):
        rice(1e308, 3, 1, 1)
    assert rice(400, 2, 0.8, 4) == 160.0  # ordinary scores keep their exact value


def test_the_rice_command_writes_no_nan_score(tmp_path, capsys):
    """``score --framework rice`` wrote ``"rice": null`` to JSONL for a row of reach 1e308 and confidence 0."""
    data = write_file(tmp_path / "r.csv", "id,reach,impact,confidence,effort\na,1e308,3,0,1\nb,1,1,0.5,1\n")
    out = tmp_path / "r.jsonl"
    assert main(["score", "--in", data, "--out", str(out), "--framework", "rice", "-q"]) == 0
    rows = {r["id"]: r["rice"] for r in map(json.loads, out.read_text().splitlines())}
    assert rows == {"a": 0.0, "b": 0.5}


def test_the_rice_endpoint_never_answers_a_null_score(api):
    """POST /v1/score/rice answered ``"score": null`` (the NaN above) with a 200."""
    r = post_json(api, "/v1/score/rice", {"items": [{"id": "a", "reach": 1e308, "impact": 3, "confidence": 0,
                                                     "effort": 1}]})
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["score"] == 0.0


# --- a growth window without its unit ---------------------------------------------------------------------------


def _dated() -> pd.DataFrame:
    return pd.DataFrame({"theme": ["sso", "sso", "export"], "created_at": ["2026-02-20", "2026-02-27", "2026-02-28"]})


@pytest.mark.parametrize("window", ["28", " 28 ", "+28"])
def test_a_window_without_unit_is_refused_not_read_as_nanoseconds(window):
    """``window="28"`` (a form field, a config value, JSON) was 28 nanoseconds to pandas: no item but the newest was
    recent, and every growth was wrong, silently. The number 28 was refused already; the text is now too."""
    with pytest.raises(InvalidInputError, match="no unit"):
        theme_scores(_dated(), account_col=None, revenue_col=None, window=window)
    scored = theme_scores(_dated(), account_col=None, revenue_col=None, window="28D").set_index("theme")
    assert scored.loc["sso", "recent"] == 2  # with its unit, both sso items are in the last 28 days


def test_the_score_command_refuses_a_window_without_unit(tmp_path, capsys):
    """``score --window 28`` scored growth over 28 nanoseconds (sso's recent items: 0)."""
    data = write_file(tmp_path / "d.csv", "theme,created_at\nsso,2026-02-20\nsso,2026-02-27\nexport,2026-02-28\n")
    code = main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--account-col", "", "--revenue-col", "",
                 "--window", "28"])
    assert code == 2 and "'28' has no unit" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_the_demand_endpoint_refuses_a_window_without_unit(api):
    """POST /v1/score/demand with ``"window": "28"`` answered 200 with growth over 28 nanoseconds."""
    items = [{"id": str(i), "theme": t, "created_at": c} for i, (t, c) in enumerate(
        zip(["sso", "sso", "export"], ["2026-02-20", "2026-02-27", "2026-02-28"]))]
    r = post_json(api, "/v1/score/demand", {"items": items, "window": "28"})
    assert r.status_code == 422 and "no unit" in r.json()["error"]["message"]


# --- MoSCoW and the arguments' containers -----------------------------------------------------------------------


def test_moscow_overrides_given_as_a_list_are_a_named_error():
    """``overrides=[(0, "must")]`` (pairs, as from a spreadsheet's rows) was a bare AttributeError."""
    with pytest.raises(InvalidInputError, match="overrides must be a mapping"):
        moscow([1, 2, 3], overrides=[(0, "must")])
    assert moscow([1, 2, 3], overrides={0: "must"}).tolist()[0] == "must"


def test_a_masked_value_is_missing_not_scored():
    """A numpy masked array (how numpy marks missing values) lost its mask in ``np.asarray``: the value under the
    mask was scored as if it were data. Now a masked value is a missing value, refused by position."""
    with pytest.raises(InvalidInputError, match="reach has NaN .* at positions 1"):
        rice(np.ma.array([10.0, 20.0], mask=[False, True]), 1, 0.5, 1)
    assert rice(np.ma.array([10, 20]), 1, 0.5, 1).tolist() == [5.0, 10.0]


# --- the demand score: ties and an account's revenue -----------------------------------------------------------


def test_tied_themes_rank_the_same_whatever_the_order_of_the_rows():
    """Themes tied in priority and volume came in the order they first appeared: the same items read in another
    order (a query without ORDER BY, a shuffled export) ranked them differently. Ties now go by theme."""
    rows = pd.DataFrame({"theme": ["b", "a", "c", "a", "b", "c"], "account_id": list("xyzxyz")})
    ranked = [theme_scores(rows.iloc[order], revenue_col=None, time_col=None)["theme"].tolist()
              for order in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 0, 1, 3, 5, 4])]
    assert ranked == [["a", "b", "c"]] * 3  # c has one account, a and b two each
    numbered = pd.DataFrame({"theme": [10, 2, 10, 2, 3, 3]})
    assert theme_scores(numbered, account_col=None, revenue_col=None, time_col=None)["theme"].tolist() == [2, 3, 10]


def test_the_demand_endpoint_ranks_tied_themes_the_same_in_any_item_order(api):
    """POST /v1/score/demand answered tied themes in the order of the request's items."""
    items = [{"id": str(i), "theme": t} for i, t in enumerate(["sso", "export"])]
    first = post_json(api, "/v1/score/demand", {"items": items}).json()["results"]
    second = post_json(api, "/v1/score/demand", {"items": items[::-1]}).json()["results"]
    assert [r["theme"] for r in first] == [r["theme"] for r in second] == ["export", "sso"]


def test_an_accounts_revenue_given_on_some_rows_counts_in_each_of_its_themes():
    """Account x's revenue was on its "export" row only: in "sso" it counted as an account without revenue (0), and
    a figure that varied between rows counted differently in each theme. Now an account has one revenue, its largest
    figure on any row, in every theme it asks in."""
    df = pd.DataFrame({"theme": ["sso", "export", "export", "sso"], "account_id": ["x", "x", "y", "y"],
                       "account_revenue": [None, 1000.0, 50.0, 80.0]})
    scored = theme_scores(df, time_col=None).set_index("theme")
    assert scored.loc["sso", "revenue"] == scored.loc["export", "revenue"] == 1080.0
    assert scored["accounts_without_revenue"].tolist() == [0, 0]


# --- the service's scoring options: numbers, as its items' ------------------------------------------------------


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/v1/score/moscow", {"cutoffs": {"must": True, "should": False, "could": False}}, "body.cutoffs.must"),
    ("/v1/score/moscow", {"cutoffs": {"must": "8", "should": "4", "could": "2"}}, "body.cutoffs.must"),
    ("/v1/score/moscow", {"quantiles": [True, 0.5, False]}, "body.quantiles[0]"),
    ("/v1/score/demand", {"weights": {"volume": True, "unique_accounts": False}}, "body.weights.volume"),
    ("/v1/score/demand", {"weights": {"volume": "1"}}, "body.weights.volume"),
])
def test_scoring_options_of_true_false_or_text_are_refused_by_name(api, path, body, loc):
    """The items' numbers were strict (``"reach": true`` was refused), but ``cutoffs``, ``quantiles`` and ``weights``
    read true as 1, false as 0 and "8" as 8: cutoffs of true/false/false made every item a must, with a 200.
    The library refuses both; the service now says which field."""
    items = ([{"id": "a", "score": 1}, {"id": "b", "score": 5}] if "moscow" in path
             else [{"id": "a", "theme": "x", "account_id": "q"}, {"id": "b", "theme": "y"}])
    r = post_json(api, path, {"items": items, **body})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["loc"] == loc, r.text
    fine = {"cutoffs": {"must": 8, "should": 4, "could": 2}} if "moscow" in path else {"weights": {"volume": 1}}
    assert post_json(api, path, {"items": items, **fine}).status_code == 200  # whole numbers stay numbers


# --- a revenue without an account -------------------------------------------------------------------------------


def test_a_revenue_on_a_row_without_account_is_counted_as_left_out():
    """Revenue counts once per account, so a row with an amount and no account adds nothing: that amount vanished
    without a word (a theme of two such rows had revenue 0 and no "account without revenue"). The rows are now
    counted in ``attrs["revenue_rows_without_account"]``, as rows without a theme are in ``rows_without_theme``."""
    df = pd.DataFrame({"theme": [["sso", "export"], "sso", "export", -1], "account_id": [None, "x", " ", None],
                       "account_revenue": pd.array([100, 5, 7, 9], dtype="Int64")})
    scored = theme_scores(df, time_col=None)
    assert scored.attrs["revenue_rows_without_account"] == 2  # rows 0 (two themes, one row) and 2; not the outlier
    assert scored.set_index("theme")["revenue"].to_dict() == {"sso": 5.0, "export": 0.0}


def test_the_score_command_and_the_service_say_how_many_revenues_had_no_account(tmp_path, capsys, api):
    data = write_file(tmp_path / "d.csv", "theme,account_id,account_revenue\nsso,,500\nsso,x,5\n")
    assert main(["score", "--in", data, "--out", str(tmp_path / "o.csv"), "--time-col", ""]) == 0
    assert "1 rows have a revenue (account_revenue) but no account (account_id)" in capsys.readouterr().out
    items = [{"id": "1", "theme": "sso", "account_revenue": 500}, {"id": "2", "theme": "sso", "account_id": "x"}]
    r = post_json(api, "/v1/score/demand", {"items": items})
    assert r.status_code == 200 and r.json()["revenue_items_without_account"] == 1, r.text


@pytest.mark.parametrize("category", [np.array(["must", "could"]), pd.NA])
def test_an_override_that_is_no_label_is_a_named_error(category):
    """``overrides={0: pd.NA}`` (an empty cell of a nullable column) was pandas' "boolean value of NA is ambiguous",
    an array numpy's "truth value of an array ... is ambiguous", from the membership test of the category."""
    with pytest.raises(InvalidInputError, match="override for '0' is"):
        moscow([1, 2, 3], overrides={0: category})


def test_an_override_label_in_another_case_or_with_a_curly_apostrophe_is_refused_with_the_spelling_to_use():
    """A spreadsheet writes "Won’t" (a typographic apostrophe) and "Must": refused as before, since a label is not
    guessed, but the message showed "won't" beside "won’t", which look the same; it now names the difference."""
    with pytest.raises(InvalidInputError, match="write \\\"won't\\\": the categories are lower case, with a straight"):
        moscow([1, 2, 3], overrides={0: "Won\u2019t"})
    with pytest.raises(InvalidInputError, match="write 'must'"):
        moscow([1, 2, 3], overrides={0: "MUST"})
