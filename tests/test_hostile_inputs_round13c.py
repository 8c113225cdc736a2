"""Hostile and careless inputs, round 13c: themes over time as a product-ops team uses them for months —
timestamps in every notation and time zone, trend periods, repeated updates, merges, renames and saved models,
and the report's trend parts. Each test failed before its fix. Embedding is the HashEmbedder test double."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feedback_nlp import ThemeModel

_TOPICS = ("export csv file fails crash error", "login password reset email broken",
           "dark mode theme request please add", "invoice billing charge wrong amount")


def _texts(n_per: int = 20) -> list[str]:
    """Four requests, each written ``n_per`` ways (the HashEmbedder groups them by shared words)."""
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(t.split(), size=4, replace=False)) + f" x{rng.integers(0, 3)}"
            for t in _TOPICS for _ in range(n_per)]


# --- emerging themes need a past to have grown from --------------------------------------------------------


@pytest.mark.parametrize(("days", "freq"), [(7, "W"), (14, "W"), (56, "M"), (56, "Q")])
def test_a_backlog_too_short_for_the_period_flags_no_theme_emerging(hash_embedder, days, freq):
    """A first week of steady feedback (or eight weeks read by month) has no period before the recent ones:
    every theme of five items was flagged emerging, and the report coloured them all orange."""
    texts = _texts()
    start = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday: the periods are whole
    ts = [start + pd.Timedelta(hours=(i * 37) % (24 * days)) for i in range(len(texts))]
    tm = ThemeModel(hash_embedder, min_theme_size=5).fit(texts, timestamps=ts)
    assert len(tm.theme_ids_) >= 4
    assert tm.emerging_themes(freq) == []
    assert not tm.trends(freq)["emerging"].any()


def test_a_theme_that_appears_after_quiet_weeks_is_still_emerging(hash_embedder):
    """The guard above needs a past, not a past with items: a theme new in the last weeks stays flagged."""
    texts = _texts()
    start = pd.Timestamp("2026-01-05", tz="UTC")
    ts = [start + pd.Timedelta(days=i % 70) for i in range(len(texts))]
    ts[:20] = [start + pd.Timedelta(days=68 + i % 2) for i in range(20)]  # the export complaints: all new
    tm = ThemeModel(hash_embedder, min_theme_size=5).fit(texts, timestamps=ts)
    export = set(tm.labels_[:20].tolist()) - {-1}
    assert export and export <= set(tm.emerging_themes("W"))
