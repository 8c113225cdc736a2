"""The report's sentiment section: per theme and over time, from the input's column or the sentiment model."""

import json

import numpy as np
import pandas as pd
import pytest

from feedback_nlp import InvalidInputError, ModelNotFoundError
from feedback_nlp.cli import main
from feedback_nlp.report import build_report
from feedback_nlp.report_sentiment import (
    given_sentiment,
    score_sentiment,
    sentiment_by_theme,
    sentiment_over_time,
    sentiment_section,
)
from feedback_nlp.tagging import TagClassifier


@pytest.fixture
def items():
    # theme 0: 3 negative, 1 positive; theme 1: 1 neutral (a one-item theme); theme -1: 1 positive, 1 unscored
    return pd.DataFrame({
        "theme": [0, 0, 0, 0, 1, -1, -1],
        "theme_label": ["export", "export", "export", "export", "sso", "outlier", "outlier"],
        "sentiment": ["negative", "negative", "positive", "negative", "neutral", "positive", None],
        # weeks of 2026-01-05, (none in the week of 01-12), 01-19; one item undated
        "created_at": ["2026-01-05T10:00:00Z", "2026-01-06T10:00:00Z", "2026-01-20T10:00:00Z", None,
                       "2026-01-21T10:00:00Z", "2026-01-07T10:00:00Z", "2026-01-21T11:00:00Z"],
    })


def test_shares_per_theme(items):
    t = sentiment_by_theme(items)
    assert t["theme"].tolist() == [0, -1, 1]  # most items first; the unscored item is not counted
    rows = t.set_index("theme")
    assert rows.loc[0, ["n", "positive", "neutral", "negative", "net"]].tolist() == [4, 0.25, 0.0, 0.75, -0.5]
    assert rows.loc[1, ["n", "positive", "neutral", "negative", "net"]].tolist() == [1, 0.0, 1.0, 0.0, 0.0]
    assert rows.loc[-1, ["n", "positive", "negative"]].tolist() == [1, 1.0, 0.0]
    assert rows.loc[0, "label"] == "export"
    np.testing.assert_allclose(t[["positive", "neutral", "negative"]].sum(axis=1), 1.0)


def test_counts_and_shares_over_time(items):
    t = sentiment_over_time(items, "W")
    assert t["period"].dt.strftime("%Y-%m-%d").tolist() == ["2026-01-05", "2026-01-12", "2026-01-19"]
    assert t["n"].tolist() == [3, 0, 2]  # undated and unscored items left out; the empty week kept
    assert t["negative"].tolist() == [2, 0, 0] and t["positive"].tolist() == [1, 0, 1] and t["neutral"].tolist() == [0, 0, 1]
    assert t["share_negative"].iloc[0] == pytest.approx(0.6667) and t["share_positive"].iloc[2] == 0.5
    assert t["share_negative"].isna().tolist() == [False, True, False]  # no items: no share, not 0
    monthly = sentiment_over_time(items, "M")
    assert monthly[["n", "negative", "positive"]].values.tolist() == [[5, 2, 2]]  # one period


def test_no_timestamps_or_bad_period(items):
    assert sentiment_over_time(items.drop(columns="created_at")).empty
    assert sentiment_over_time(items.assign(created_at="not a date")).empty
    with pytest.raises(InvalidInputError, match="freq must be a period"):
        sentiment_over_time(items, "fortnightly")


def test_given_sentiment_reads_common_spellings_only():
    values = pd.Series(["Positive", " NEG ", "neu", -1, 1.0, 0, "mixed", "5 stars", True, None, np.nan, ""])
    assert given_sentiment(values).tolist()[:6] == ["positive", "negative", "neutral", "negative", "positive", "neutral"]
    assert given_sentiment(values).iloc[6:].isna().all()  # not guessed: these go to the model
    stars = pd.Series([1, 5, 3, "1", "positive", float("inf")])  # a 1-5 star rating: its 1 is not "positive"
    assert given_sentiment(stars).iloc[:4].isna().all()
    assert given_sentiment(stars).iloc[4] == "positive"


def test_section_with_no_dates_one_theme_and_all_neutral(items):
    shown = []

    def table(df, n):
        shown.append(df)
        return "<table></table>"

    flat = items.drop(columns="created_at").assign(sentiment="neutral")
    s = sentiment_section(flat, note="from the input.", png=lambda fig: "data:image/png;base64,x", table=table)
    assert list(s.charts) == ["sentiment-by-theme"] and s.over_time.empty
    assert "No timestamps in the input" in s.html and "100% neutral" in s.html
    assert (s.by_theme["neutral"] == 1.0).all() and s.by_theme["n"].sum() == len(flat)
    assert shown[0]["net"].tolist() == ["+0%"] * 3

    one = sentiment_section(items, note="n", freq="M", png=lambda fig: "data:,", table=lambda df, n: "")
    assert "One period only" in one.html and "1 items without a date" in one.html

    none = sentiment_section(items.assign(sentiment=None), note="Nothing scored.", png=lambda f: "x", table=table)
    assert none.charts == {} and "Nothing scored." in none.html and none.by_theme.empty


def test_the_input_column_wins_and_the_model_fills_the_rest(embedder):
    texts = ["I love this app, it works perfectly", "The export crashes every time, awful", "How do I export?"]
    df = pd.DataFrame({"text": texts, "sentiment": ["negative", None, "mixed"]})
    vectors = embedder.encode(texts)
    s = score_sentiment(df, vectors, "sentiment", embedder)
    model = TagClassifier.load("sentiment", embedder=embedder)
    assert s.sentiment.iloc[0] == "negative"  # stated in the input, kept even though the text reads positive
    # the bundled model is fine-tuned: it reads the texts with its own encoder, not the report's vectors
    assert s.sentiment.iloc[1:].tolist() == list(model.predict(texts[1:]))
    assert s.source.tolist() == ["input", "model", "model"]
    assert "1 of 3 items carry a sentiment" in s.note and "the other 2 items are scored by the sentiment model" in s.note

    full = df.assign(sentiment=["pos", "neg", "neu"])  # all given: no model is loaded, even a missing one
    s = score_sentiment(full, vectors, "/no/such/model", embedder)
    assert s.sentiment.tolist() == ["positive", "negative", "neutral"] and set(s.source) == {"input"}

    s = score_sentiment(df, vectors, None, embedder)
    assert s.sentiment.isna().sum() == 2 and "no sentiment model was asked for" in s.note

    capitalised = df.drop(columns="sentiment").assign(Sentiment=["neg", "pos", "neu"])  # as a survey export names it
    s = score_sentiment(capitalised, vectors, "/no/such/model", embedder)
    assert s.sentiment.tolist() == ["negative", "positive", "neutral"] and "input's Sentiment column" in s.note
    s = score_sentiment(df.assign(sentiment="mixed"), vectors, None, embedder)
    assert s.note.startswith("The input's sentiment column names no sentiment") and s.sentiment.isna().all()


def test_missing_or_wrong_sentiment_models(embedder, monkeypatch, tmp_path):
    df = pd.DataFrame({"text": ["a bug", "thanks"]})
    vectors = embedder.encode(df["text"].tolist())
    with pytest.raises(ModelNotFoundError, match="sentiment model: no tag model at"):
        score_sentiment(df, vectors, tmp_path / "missing", embedder)
    with pytest.raises(InvalidInputError, match="must be single-label with exactly the tags positive, neutral, negative"):
        score_sentiment(df, vectors, "request-type", embedder)
    import feedback_nlp.tagging as tagging

    monkeypatch.chdir(tmp_path)  # no folder called "sentiment" here either
    monkeypatch.setattr(tagging, "bundled_models", lambda: {})  # an install without the bundled model
    s = score_sentiment(df, vectors, "sentiment", embedder)
    assert s.sentiment.isna().all() and "this install has no bundled sentiment model" in s.note


@pytest.fixture(scope="module")
def small_report(tmp_path_factory, sample_raw, embedder):
    df = sample_raw.head(90).copy()
    df["sentiment"] = [["positive", "neutral", "negative"][i % 3] for i in range(len(df))]
    df.loc[5, "sentiment"] = "n/a"  # not a sentiment: the model scores it
    bad = pd.DataFrame({"id": ["bad-1"], "text": ["\x00\x01\x02\x03\x04\x05\x06\x07"], "source": ["support"],
                        "sentiment": ["negative"], "created_at": [df["created_at"].iloc[0]]})
    out = tmp_path_factory.mktemp("sentiment_report")
    summary = build_report(pd.concat([df, bad], ignore_index=True), out, embedder=embedder, min_theme_size=5, freq="D")
    return summary, out, df


def test_report_tables_match_the_items(small_report):
    summary, out, df = small_report
    items = pd.read_csv(out / "items.csv")
    assert summary.rejected == 1 and "bad-1" not in set(items["id"])
    assert items["sentiment_source"].value_counts().to_dict() == {"input": 89, "model": 1}
    raw = pd.read_csv(out / "items.csv", dtype=str, keep_default_na=False)
    assert raw["sentiment_input"].iloc[5] == "n/a" and items["sentiment"].iloc[5] in ("positive", "neutral", "negative")
    assert summary.sentiment == items["sentiment"].value_counts().to_dict() and sum(summary.sentiment.values()) == 90
    by_theme = pd.read_csv(out / "sentiment_by_theme.csv").set_index("theme")
    expected = pd.crosstab(items["theme"], items["sentiment"], normalize="index").round(4)
    for theme, row in expected.iterrows():
        assert by_theme.loc[theme, "n"] == (items["theme"] == theme).sum()
        assert by_theme.loc[theme, ["positive", "neutral", "negative"]].tolist() == [row.get(s, 0.0) for s in ("positive", "neutral", "negative")]
    trend = pd.read_csv(out / "sentiment_over_time.csv")
    days = pd.to_datetime(items["created_at"], utc=True).dt.strftime("%Y-%m-%d")
    expected_days = items.assign(day=days).groupby("day")["sentiment"].apply(lambda s: (s == "negative").sum())
    got = trend[trend["n"] > 0].set_index(pd.to_datetime(trend["period"]).dt.strftime("%Y-%m-%d"))["negative"]
    assert got.to_dict() == expected_days.to_dict()
    html = summary.html.read_text()
    assert 'id="sentiment"' in html and "The 1 rejected rows (rejected.csv) are not scored" in html
    assert html.count('alt="sentiment') == 2


def test_report_without_timestamps_or_sentiment_model(tmp_path, sample_raw, embedder):
    df = sample_raw.head(40).drop(columns="created_at")
    summary = build_report(df, tmp_path / "r", embedder=embedder, min_theme_size=5, sentiment=None)
    html = summary.html.read_text()
    assert "No sentiment column in the input; no sentiment model was asked for" in html
    assert summary.sentiment == {"positive": 0, "neutral": 0, "negative": 0}
    assert not (tmp_path / "r" / "sentiment_over_time.csv").exists()
    assert pd.read_csv(tmp_path / "r" / "sentiment_by_theme.csv").empty


def test_cli_report_sentiment_flags(tmp_path, sample_raw, cache_path, capsys):
    data = tmp_path / "in.csv"
    sample_raw.head(40).to_csv(data, index=False)
    out = tmp_path / "r"
    assert main(["report", "--in", str(data), "--out", str(out), "--min-theme-size", "5", "--freq", "D",
                 "--cache", str(cache_path), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert sum(payload["sentiment"].values()) == 40 and "sentiment_by_theme" in payload["outputs"]
    trend = pd.read_csv(out / "sentiment_over_time.csv")
    assert trend["n"].sum() == 40 and pd.to_datetime(trend["period"]).diff().dropna().eq(pd.Timedelta(days=1)).all()
    assert main(["report", "--in", str(data), "--out", str(tmp_path / "r2"), "--sentiment-model", str(tmp_path / "nope"),
                 "--cache", str(cache_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sentiment model: no tag model at") and "Traceback" not in err
    assert not (tmp_path / "r2").exists()
    assert main(["report", "--in", str(data), "--out", str(tmp_path / "r3"), "--sentiment-model", "none",
                 "--min-theme-size", "5", "--cache", str(cache_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sentiment"] == {"positive": 0, "neutral": 0, "negative": 0}


def test_tex_in_theme_names_is_drawn_literally(tmp_path, sample_raw, embedder, monkeypatch):
    # "$...$" is TeX math to matplotlib: an unknown command in a theme name made every chart, so the report, fail
    from feedback_nlp.themes import ThemeModel

    fit = ThemeModel.fit

    def named_from_hostile_feedback(self, *args, **kwargs):
        fit(self, *args, **kwargs)
        self.themes_["label"] = [f"refund $\\notacommand{{x}}$ fee {i}" for i in range(len(self.themes_))]
        return self

    monkeypatch.setattr(ThemeModel, "fit", named_from_hostile_feedback)
    summary = build_report(sample_raw.head(60), tmp_path / "r", embedder=embedder, min_theme_size=5)
    assert pd.read_csv(tmp_path / "r" / "themes.csv")["label"].str.contains("notacommand", regex=False).all()
    assert summary.html.read_text().count('src="data:image/png;base64,') == 5
