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


# --- an id once given is never given to another theme ------------------------------------------------------


def test_a_merged_away_theme_id_is_not_given_to_a_new_theme(hash_embedder, tmp_path):
    """merge_themes([0, 8]) then update() with a new request: the new theme took id 8, the id the team's
    notes and dashboards knew as the merged-away theme; also after save and load."""
    texts = _texts()
    tm = ThemeModel(hash_embedder, min_theme_size=5).fit(texts[:60])
    retired = int(tm.theme_ids_.max())
    tm.merge_themes([0, retired])
    loaded = ThemeModel.load(tm.save(tmp_path / "m"), embedder=hash_embedder)
    for model in (tm, loaded):
        model.update(texts[60:])  # the billing complaints: a new theme
        assert retired not in model.theme_ids_.tolist()
        assert int(model.theme_ids_.max()) > retired
    assert loaded.theme_ids_.tolist() == tm.theme_ids_.tolist()
    again = ThemeModel.load(loaded.save(tmp_path / "m2"), embedder=hash_embedder)
    assert again.next_theme_id_ == loaded.next_theme_id_ > retired


# --- trend periods ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["B", "2B", "C"])
def test_business_day_periods_are_refused_by_name(hash_embedder, freq):
    """pandas deprecates periods of business days: ``--freq B`` ran, printing its FutureWarning 27 times."""
    from feedback_nlp import InvalidInputError

    texts = _texts(10)
    tm = ThemeModel(hash_embedder, min_theme_size=5).fit(texts, timestamps=["2026-01-05"] * len(texts))
    with pytest.raises(InvalidInputError, match="business days"):
        tm.trends(freq)


def test_an_anchored_week_in_lower_case_is_read_without_warnings(hash_embedder, recwarn):
    """"w-mon" worked with a pandas deprecation warning on each call (plain "w" was already read as "W")."""
    texts = _texts(10)
    start = pd.Timestamp("2026-01-05", tz="UTC")
    tm = ThemeModel(hash_embedder, min_theme_size=5).fit(
        texts, timestamps=[start + pd.Timedelta(days=i % 21) for i in range(len(texts))])
    recwarn.clear()
    assert tm.trends("w-mon").equals(tm.trends("W-MON"))
    assert not [w for w in recwarn if issubclass(w.category, (FutureWarning, DeprecationWarning))]


def test_the_cli_refuses_business_day_periods_before_any_work(tmp_path, hashed_cli, capsys):
    from feedback_nlp.cli import main

    src = tmp_path / "b.csv"
    pd.DataFrame({"text": _texts(5), "created_at": "2026-01-05"}).to_csv(src, index=False)
    assert main(["themes", "--in", str(src), "--out", str(tmp_path / "o"), "--freq", "B"]) == 2
    err = capsys.readouterr().err
    assert "--freq" in err and "warning" not in err.lower() and not (tmp_path / "o").exists()


def test_min_recent_counts_items_not_the_rate_of_a_partial_last_week(hash_embedder):
    """The last week, 55% covered, is judged by its rate: 3 new items there counted as 5.5, so a theme of 3
    items was emerging under min_recent=5 ("with at least min_recent items")."""
    texts = _texts()
    start = pd.Timestamp("2026-01-05", tz="UTC")  # a Monday
    last = start + pd.Timedelta(days=59, hours=20)  # Thursday evening of week 9
    keep = [i for i in range(len(texts)) if not 43 <= i < 60]  # three dark-mode requests only, all new
    ts = [last - pd.Timedelta(hours=i) if 40 <= i < 43 else start + pd.Timedelta(hours=(i * 37) % (24 * 56))
          for i in keep]
    tm = ThemeModel(hash_embedder, min_theme_size=3).fit([texts[i] for i in keep] + ["unrelated zz qq ww"],
                                                          timestamps=ts + [last])
    new = set(tm.labels_[[keep.index(i) for i in (40, 41, 42)]].tolist())
    assert len(new) == 1 and -1 not in new
    assert not new & set(tm.emerging_themes("W", min_recent=5))
    assert new <= set(tm.emerging_themes("W", min_recent=3))  # the flag itself still works


# --- an update that fails or is interrupted changes nothing ----------------------------------------------------


class _Interrupted(Exception):
    """Stands for Ctrl-C in the middle of the clustering (KeyboardInterrupt would stop pytest itself)."""


def _stoppable_clusterer():
    from feedback_nlp.themes import GraphClusterer

    class Stoppable(GraphClusterer):
        armed = False

        def fit_predict(self, X):
            if Stoppable.armed:
                raise _Interrupted
            return super().fit_predict(X)

    return Stoppable


def test_an_interrupted_update_leaves_the_model_as_it_was(hash_embedder, tmp_path):
    """Ctrl-C while update() clustered left 80 texts beside 60 labels: trends() and assignments() failed,
    save() wrote a folder load() refused, and the update run again paired later items with other themes."""
    texts = _texts()
    stoppable = _stoppable_clusterer()
    tm = ThemeModel(hash_embedder, min_theme_size=5, clusterer=stoppable()).fit(
        texts[:60], timestamps=["2026-01-05"] * 60, accounts=["a"] * 60)
    before = (tm.labels_.copy(), list(tm.texts_), tm.trends("W"), tm.themes_.copy())
    stoppable.armed = True
    with pytest.raises(_Interrupted):
        tm.update(texts[60:], timestamps=["2026-02-05"] * 20, accounts=["b"] * 20)
    assert tm.labels_.tolist() == before[0].tolist() and tm.texts_ == before[1]
    assert len(tm.embeddings_) == len(tm.timestamps_) == len(tm.accounts_) == 60
    assert tm.trends("W").equals(before[2]) and tm.themes_.equals(before[3])
    stoppable.armed = False
    ThemeModel.load(tm.save(tmp_path / "m"), embedder=hash_embedder)
    assert len(tm.update(texts[60:], timestamps=["2026-02-05"] * 20)) == 20 and len(tm.labels_) == len(tm.texts_) == 80


def test_a_refit_that_fails_keeps_the_model_fitted_before(hash_embedder):
    texts = _texts()
    stoppable = _stoppable_clusterer()
    tm = ThemeModel(hash_embedder, min_theme_size=5, clusterer=stoppable()).fit(texts, timestamps=["2026-01-05"] * 80)
    labels, ids = tm.labels_.copy(), tm.theme_ids_.copy()
    stoppable.armed = True
    with pytest.raises(_Interrupted):
        tm.fit(texts[:40] * 2)
    assert tm.labels_.tolist() == labels.tolist() and tm.theme_ids_.tolist() == ids.tolist()
    assert len(tm.texts_) == len(tm.labels_) == len(tm.timestamps_) == 80 and len(tm.trends("W"))


# --- the report's trend section ------------------------------------------------------------------------------


def test_the_report_says_when_its_theme_trend_has_one_period(tmp_path, hash_embedder):
    """A backlog of one week drew the theme-volume chart as lines through single points: an empty chart beside
    its legend, without the note the sentiment trend gives for the same case; and every theme was emerging."""
    import feedback_nlp as fb

    texts = _texts(10)
    frame = pd.DataFrame({"id": [f"i{i}" for i in range(len(texts))], "text": texts,
                          "created_at": [f"2026-01-{5 + i % 5:02d}T10:00:00Z" for i in range(len(texts))],
                          "sentiment": ["negative", "positive"] * (len(texts) // 2)})
    tax = fb.Taxonomy([{"id": "bug", "name": "bug crash error"}, {"id": "feature", "name": "feature request"}])
    summary = fb.build_report(frame, tmp_path / "r", taxonomy=tax, embedder=hash_embedder, min_theme_size=5,
                              sentiment=None)
    page = summary.html.read_text(encoding="utf-8")
    trend = page[page.index('<section id="theme-trends"'):page.index("</section>", page.index('id="theme-trends"'))]
    assert "One period only" in trend and "Emerging: none" in trend
    assert summary.themes >= 2 and summary.emerging == []
