"""Round 15 (lead): what the helpers noticed and left alone. Each test fails without its fix."""

from __future__ import annotations

import pandas as pd

from feedback_nlp.report_sentiment import SENTIMENTS, sentiment_by_theme


def test_sentiment_shares_per_theme_sum_to_exactly_one():
    # three thirds were each rounded to 0.3333 and summed to 0.9999, though the docstring promises 1
    items = pd.DataFrame({"theme": [0, 0, 0, 1, 1, 1, 1, 1, 1, 1],
                          "theme_label": ["a"] * 3 + ["b"] * 7,
                          "sentiment": ["positive", "neutral", "negative",
                                        "positive", "positive", "neutral", "negative", "negative", "negative", "neutral"]})
    out = sentiment_by_theme(items)
    shares = out[list(SENTIMENTS)].to_numpy()
    assert (shares.sum(axis=1) * 10_000).round().astype(int).tolist() == [10_000, 10_000]
    third = out[out["theme"] == 0].iloc[0]
    assert sorted(third[list(SENTIMENTS)].tolist()) == [0.3333, 0.3333, 0.3334]
    sevenths = out[out["theme"] == 1].iloc[0]
    assert abs(sevenths["negative"] - 3 / 7) < 1e-4 and abs(sevenths["positive"] - 2 / 7) < 1e-4
    assert sevenths["net"] == round(sevenths["positive"] - sevenths["negative"], 4)
