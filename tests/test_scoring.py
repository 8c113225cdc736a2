import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_nlp import ColumnError, InvalidInputError
from feedback_nlp.scoring import demand_scores, ice, moscow, rice, theme_scores

impacts = st.sampled_from([0.25, 0.5, 1, 2, 3])
fractions = st.floats(0.0, 1.0)
positive = st.floats(0.01, 1e4)
reach = st.floats(0, 1e6)


def test_rice_worked_example():
    assert rice(400, 2, 0.8, 4) == 160.0
    assert rice(400, 2, 80, 4, confidence_scale="percent") == 160.0


def test_shapes_follow_input():
    assert isinstance(rice(1, 1, 1, 1), float)
    arr = rice(np.array([10, 20]), 1, 0.5, 1)
    assert isinstance(arr, np.ndarray) and arr.tolist() == [5.0, 10.0]
    assert rice([10, 20], 1, 0.5, 1).tolist() == [5.0, 10.0]
    s = pd.Series([10, 20], index=["x", "y"])
    out = rice(s, 1, 0.5, pd.Series([1, 2], index=["x", "y"]))
    assert isinstance(out, pd.Series) and out.to_dict() == {"x": 5.0, "y": 5.0}
    df = pd.DataFrame({"r": [1, 2], "i": [1, 3], "c": [1, 1], "e": [1, 1]})
    assert rice(df.r, df.i, df.c, df.e).tolist() == [1.0, 6.0]


@given(reach, impacts, fractions, positive)
def test_doubling_effort_halves_rice(r, i, c, e):
    assert rice(r, i, c, 2 * e) == pytest.approx(rice(r, i, c, e) / 2, rel=1e-9, abs=1e-12)


@given(reach, reach, impacts, fractions, positive)
def test_rice_monotone_in_reach(r1, r2, i, c, e):
    lo, hi = sorted([r1, r2])
    assert rice(lo, i, c, e) <= rice(hi, i, c, e)


@given(st.floats(1, 10), st.floats(1, 10), st.floats(1, 10), st.floats(1, 10))
def test_ice_monotone_and_bounded(i1, i2, c, e):
    lo, hi = sorted([i1, i2])
    assert 1 <= ice(lo, c, e) <= ice(hi, c, e) <= 1000
    assert 1 <= ice(lo, c, e, method="mean") <= 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"effort": 0}, "effort must be > 0"),
        ({"effort": [1, -2, 0]}, r"effort must be > 0 \(person-months\) at positions 1, 2"),
        ({"impact": 1.5}, r"impact must be one of \(0.25, 0.5, 1.0, 2.0, 3.0\)"),
        ({"confidence": 80}, "confidence is above 1: give a fraction"),
        ({"confidence": -0.1}, "confidence must be >= 0"),
        ({"reach": [1, float("nan")]}, "reach has NaN or infinite values at positions 1"),
        ({"reach": "100"}, "reach must be numeric"),
        ({"reach": [1, "x"]}, "reach must be numeric; non-numeric values at positions 1"),
        ({"reach": True}, "reach must be numeric"),
        ({"reach": [1, 2, 3], "effort": [1, 2]}, "mismatched lengths: reach=3, effort=2"),
        ({"reach": [[1, 2]]}, "must be a scalar or 1-D"),
    ],
)
def test_rice_bad_input(kwargs, message):
    args = {"reach": 10, "impact": 1, "confidence": 0.5, "effort": 1} | kwargs
    with pytest.raises(InvalidInputError, match=message):
        rice(**args)


def test_rice_percent_scale_rejects_ambiguous():
    with pytest.raises(InvalidInputError, match="ambiguous"):
        rice(10, 1, 0.8, 1, confidence_scale="percent")
    with pytest.raises(InvalidInputError, match=r"\[0, 100\]"):
        rice(10, 1, 120, 1, confidence_scale="percent")
    with pytest.raises(InvalidInputError, match="confidence_scale"):
        rice(10, 1, 0.5, 1, confidence_scale="ratio")


def test_ice_bad_input():
    with pytest.raises(InvalidInputError, match="ease must be on the 1-10 scale at positions 1"):
        ice([5, 5], [5, 5], [5, 11])
    with pytest.raises(InvalidInputError, match="method"):
        ice(5, 5, 5, method="sum")


def test_series_index_mismatch():
    with pytest.raises(InvalidInputError, match="different index"):
        rice(pd.Series([1, 2], index=[0, 1]), 1, 1, pd.Series([1, 2], index=[5, 6]))


def test_moscow_rule():
    cut = {"must": 8, "should": 4, "could": 2}
    assert moscow([9, 5, 3, 1], cutoffs=cut).tolist() == ["must", "should", "could", "won't"]
    assert moscow(9, cutoffs=cut) == "must"
    # commitment forces must; a deadline lifts could/won't to should
    out = moscow([1, 1, 3], cutoffs=cut, commitment=[True, False, False], deadline=[False, True, True])
    assert out.tolist() == ["must", "should", "should"]


def test_moscow_quantiles_and_overrides():
    s = pd.Series(np.arange(10.0), index=[f"t{i}" for i in range(10)])
    out = moscow(s)
    assert out.value_counts().to_dict() == {"must": 2, "should": 3, "could": 3, "won't": 2}
    ex = moscow(s, overrides={"t0": ("must", "CEO promised it to Acme")}, explain=True)
    assert ex.loc["t0", "moscow"] == "must" and ex.loc["t0", "overridden"]
    assert ex.loc["t0", "rule"] == "override: CEO promised it to Acme"
    assert ex["overridden"].sum() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": 5}, "explicit cutoffs"),
        ({"cutoffs": {"must": 1, "should": 2, "could": 0}}, "must >= should >= could"),
        ({"cutoffs": {"must": 1}}, "missing"),
        ({"overrides": {0: "maybe"}}, "expected one of"),
        ({"overrides": {99: "must"}}, "matches no score"),
        ({"commitment": ["yes", False, False]}, "commitment must be booleans"),
        ({"quantiles": (0.2, 0.5, 0.8)}, "decreasing"),
    ],
)
def test_moscow_bad_input(kwargs, message):
    args = {"scores": [1, 2, 3]} | kwargs
    with pytest.raises(InvalidInputError, match=message):
        moscow(**args)


def _feedback():
    return pd.DataFrame({
        "theme": ["sso", "sso", "sso", "export", "export", "dark"],
        "account_id": ["a", "a", "b", "c", "c", "a"],
        "account_revenue": [1000.0, 1000.0, 500.0, 50.0, 50.0, 1000.0],
        "created_at": pd.to_datetime(["2026-01-01", "2026-02-20", "2026-02-25", "2026-01-10", "2026-01-12",
                                      "2026-02-26"], utc=True),
    })


def test_theme_scores_worked_example():
    out = theme_scores(_feedback(), now="2026-02-28", window="28D").set_index("theme")
    assert out.loc["sso", "volume"] == 3 and out.loc["sso", "unique_accounts"] == 2
    assert out.loc["sso", "revenue"] == 1500.0  # account a counted once despite two rows
    assert out.loc["export", "revenue"] == 50.0
    assert out.loc["sso", "recent"] == 2 and out.loc["sso", "previous"] == 0 and out.loc["sso", "growth"] == 2.0
    assert out.loc["export", "previous"] == 2 and out.loc["export", "growth"] == -1.0
    assert out.index[0] == "sso"  # sorted by priority
    # priority = 100 * (0.2*1 + 0.3*1 + 0.35*1 + 0.15*1) for the top theme: max on every component
    assert out.loc["sso", "priority"] == pytest.approx(100.0)
    assert out.loc["dark", "priority"] == pytest.approx(100 * (0.2 / 3 + 0.3 / 2 + 0.35 * 1000 / 1500 + 0.15 * 0.5))


def test_theme_scores_weights_and_tags():
    out = theme_scores(_feedback(), weights={"revenue": 1.0}, time_col=None)
    assert out["theme"].tolist() == ["sso", "dark", "export"]
    tags = pd.DataFrame({"tags": [["a", "b"], ["a"]], "account_id": ["x", "y"], "account_revenue": [10.0, 20.0]})
    by_tag = demand_scores(tags, by="tags", time_col=None).set_index("tags")
    assert by_tag.loc["a", "volume"] == 2 and by_tag.loc["a", "revenue"] == 30.0 and by_tag.loc["b", "revenue"] == 10.0


def test_theme_scores_outliers_and_missing_revenue():
    df = _feedback()
    df["theme"] = df["theme"].astype(object)
    df.loc[5, "theme"] = -1
    df.loc[2, "account_revenue"] = np.nan
    out = theme_scores(df, time_col=None).set_index("theme")
    assert -1 not in out.index
    assert out.loc["sso", "revenue"] == 1000.0 and out.loc["sso", "accounts_without_revenue"] == 1


@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz"), st.integers(0, 1000)), min_size=1, max_size=40))
@settings(max_examples=50)
def test_revenue_counts_each_account_once_per_theme(rows):
    df = pd.DataFrame(rows, columns=["theme", "account_id", "rev"])
    df["account_revenue"] = df.groupby("account_id")["rev"].transform("max").astype(float)  # revenue per account
    out = theme_scores(df, time_col=None).set_index("theme")
    doubled = theme_scores(pd.concat([df, df]), time_col=None).set_index("theme")
    pd.testing.assert_series_equal(out["revenue"].sort_index(), doubled["revenue"].sort_index())
    for theme, g in df.groupby("theme"):
        assert out.loc[theme, "revenue"] == g.drop_duplicates("account_id")["account_revenue"].sum()
    assert out["priority"].between(0, 100).all()


def test_rice_over_theme_scores_in_one_line():
    scores = theme_scores(_feedback(), time_col=None)
    scores["rice"] = rice(scores["unique_accounts"], 2, 0.8, 3)
    assert scores.set_index("theme").loc["sso", "rice"] == pytest.approx(2 * 2 * 0.8 / 3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"theme_col": "topic"}, "theme column 'topic' not found"),
        ({"account_col": "acct"}, "account column 'acct' not found"),
        ({"weights": {"volume": -1}}, "'volume' must be a finite number >= 0"),
        ({"weights": {"volume": float("inf")}}, "'volume' must be a finite number >= 0"),
        ({"weights": {"revenue": float("nan")}}, "'revenue' must be a finite number >= 0"),
        ({"weights": {"growth": True}}, "'growth' must be a finite number"),
        ({"weights": {"volume": 0}}, "positive sum"),
        ({"weights": {"popularity": 1}}, "unknown weight"),
    ],
)
def test_theme_scores_bad_input(kwargs, message):
    with pytest.raises(InvalidInputError, match=message):
        theme_scores(_feedback(), **kwargs)


def test_theme_scores_bad_revenue_and_dates():
    df = _feedback()
    df["account_revenue"] = df["account_revenue"].astype(object)
    df.loc[1, "account_revenue"] = "lots"
    with pytest.raises(ColumnError, match=r"revenue column 'account_revenue' .* rows \[1\]"):
        theme_scores(df)
    df = _feedback()
    df["created_at"] = ["2026-01-01", "soon", None, "2026-01-02", "2026-01-03", "2026-01-04"]
    with pytest.raises(ColumnError, match=r"time column 'created_at' has unparseable dates in rows \[1\]"):
        theme_scores(df)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), "inf", "Infinity"])
def test_infinite_revenue_is_rejected_naming_column_and_row(value):
    df = _feedback()
    df["account_revenue"] = df["account_revenue"].astype(object)
    df.loc[2, "account_revenue"] = value
    with pytest.raises(ColumnError, match=r"revenue column 'account_revenue' has non-numeric, infinite .* rows \[2\]"):
        theme_scores(df)


@pytest.mark.parametrize("fn", ["rice", "ice", "moscow"])
def test_non_finite_scores_are_rejected_with_argument_and_position(fn):
    bad = [1.0, float("inf"), 2.0]
    calls = {"rice": lambda: rice(bad, 1, 0.5, 1), "ice": lambda: ice(bad, 5, 5),
             "moscow": lambda: moscow(bad)}
    name = {"rice": "reach", "ice": "impact", "moscow": "scores"}[fn]
    with pytest.raises(InvalidInputError, match=rf"{name} has NaN or infinite values at positions 1"):
        calls[fn]()
    with pytest.raises(InvalidInputError, match="effort has NaN or infinite"):
        rice(1, 1, 0.5, [1.0, float("-inf")])


def test_moscow_all_equal_scores_are_should_not_must():
    assert moscow([7.0] * 10).tolist() == ["should"] * 10
    assert moscow(pd.Series([0.0] * 3, index=list("abc"))).tolist() == ["should"] * 3
    ex = moscow([5, 5, 5, 5, 5, 5, 5, 5, 5, 1], explain=True)
    assert ex["moscow"].tolist() == ["should"] * 9 + ["won't"]
    assert ex["rule"].iloc[0] == "score 5: rank percentile 55% >= 50%"


_scores = st.lists(st.sampled_from([0.0, 1.0, 2.5, 3.0, 10.0]) | st.floats(-1e6, 1e6, allow_nan=False),
                   min_size=2, max_size=60)
_ORDER = {"won't": 0, "could": 1, "should": 2, "must": 3}


@given(_scores, st.randoms(use_true_random=False))
@settings(max_examples=200, deadline=None)
def test_moscow_ties_share_a_category_independent_of_order(scores, rnd):
    cats = moscow(scores).tolist()
    by_score = {}
    for x, c in zip(scores, cats):
        assert by_score.setdefault(x, c) == c  # equal scores, equal category
    for (x1, c1) in zip(scores, cats):
        for (x2, c2) in zip(scores, cats):
            if x1 > x2:
                assert _ORDER[c1] >= _ORDER[c2]  # a higher score never gets a lower category
    shuffled = list(scores)
    rnd.shuffle(shuffled)
    assert dict(zip(shuffled, moscow(shuffled).tolist())) == by_score  # the input order does not matter
    if len(set(scores)) == 1:
        assert set(cats) == {"should"}


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=10, max_size=200, unique=True))
@settings(max_examples=100, deadline=None)
def test_moscow_distinct_scores_split_20_30_30_20(scores):
    counts = pd.Series(moscow(scores)).value_counts().to_dict()
    n = len(scores)
    for cat, share in (("must", 0.2), ("should", 0.3), ("could", 0.3), ("won't", 0.2)):
        assert abs(counts.get(cat, 0) - share * n) <= 1


def test_non_ask_themes_keep_praise_out_of_the_ranking():
    from feedback_nlp.scoring import non_ask_themes

    items = pd.DataFrame({"theme": [0, 0, 0, 1, 1, 2, -1, -1],
                          "tags": [["praise"], ["praise"], ["bug"], "praise_or_experience", "question", None,
                                   ["praise"], ["praise"]]})
    assert non_ask_themes(items) == [0, 1]  # 2/3 and 1/2 praise; the outliers are never a theme
    assert non_ask_themes(items, min_share=0.6) == [0]
    assert non_ask_themes(items, non_ask_tags={"question"}) == [1]
    with pytest.raises(ColumnError, match="tags"):
        non_ask_themes(items.drop(columns="tags"))
    with pytest.raises(InvalidInputError, match="min_share"):
        non_ask_themes(items, min_share=0)
