"""Hostile and careless inputs, round 16f: a product-ops user's first day with real data — themes and the
report on backlogs that are not the sample (app reviews, issue trackers, chat utterances). Each test failed
before its fix. Embedding is the HashEmbedder test double or vectors given outright."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feedback_nlp import ThemeModel


def _two_topic_vectors(n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors in two tight groups (even items one, odd items the other)."""
    rng = np.random.default_rng(seed)
    x = np.eye(8)[np.arange(n) % 2] + 0.01 * rng.standard_normal((n, 8))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# --- dates without a time cover their last day whole ------------------------------------------------------


def test_a_file_of_dates_has_no_partial_last_week_or_day():
    """A backlog of dates (no time) ending on a Sunday covers that week: it was marked partial and its count
    judged 17% high (6 of 7 days "covered"); read by day, the last day counted as 0% covered."""
    n = 20 * 14  # 20 items a day, Monday 2026-03-02 to Sunday 2026-03-15
    days = pd.Timestamp("2026-03-02") + pd.to_timedelta(np.arange(n) // 20, unit="D")
    texts = [f"item {i}" for i in range(n)]
    tm = ThemeModel(None, min_theme_size=10).fit(texts, timestamps=days.strftime("%Y-%m-%d"),
                                                 embeddings=_two_topic_vectors(n))
    assert not tm.trends("W")["partial"].any()
    assert not tm.trends("D")["partial"].any()


def test_a_spike_on_the_last_day_of_a_file_of_dates_is_emerging():
    """Read by day, a file of dates had its last day dropped from the test (judged "under half covered"), so a
    theme that jumped on that day was not emerging."""
    per_day = [2] * 13 + [30]  # theme A: 2 a day, then 30 on the last day
    a_days = np.repeat(np.arange(14), per_day)
    b_days = np.repeat(np.arange(14), 3)  # theme B: steady
    n_a, n_b = len(a_days), len(b_days)
    x = np.vstack([_two_topic_vectors(2 * n_a)[0::2], _two_topic_vectors(2 * n_b, seed=1)[1::2]])
    days = pd.Timestamp("2026-03-02") + pd.to_timedelta(np.concatenate([a_days, b_days]), unit="D")
    tm = ThemeModel(None, min_theme_size=10).fit([f"item {i}" for i in range(len(x))],
                                                 timestamps=days.strftime("%Y-%m-%d"), embeddings=x)
    theme_a = int(tm.labels_[0])
    assert tm.emerging_themes("D") == [theme_a]


def test_timestamps_with_a_time_keep_their_partial_last_period():
    """Timestamps with a time of day still mark the last period partial when the data stops inside it."""
    n = 200
    ts = pd.Timestamp("2026-03-02 09:00", tz="UTC") + pd.to_timedelta(np.arange(n) * 2, unit="h")  # to Wed 3/18
    tm = ThemeModel(None, min_theme_size=10).fit([f"item {i}" for i in range(n)], timestamps=ts,
                                                 embeddings=_two_topic_vectors(n))
    trends = tm.trends("W")
    assert trends.loc[trends["period"] == trends["period"].max(), "partial"].all()
    assert not trends.loc[trends["period"] < trends["period"].max(), "partial"].any()
