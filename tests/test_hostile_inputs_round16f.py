"""Hostile and careless inputs, round 16f: a product-ops user's first day with real data — themes and the
report on backlogs that are not the sample (app reviews, issue trackers, chat utterances). Each test failed
before its fix. Embedding is the HashEmbedder test double or vectors given outright."""

from __future__ import annotations

import numpy as np
import pandas as pd

from feedback_nlp import ThemeModel
from feedback_nlp.themes import BaseClusterer, CTFIDFLabeller, central_title, clean_title


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


# --- no two final themes are near-identical -------------------------------------------------------------


class _ByNearestAxis(BaseClusterer):
    """A clusterer that gives each item the cluster of its nearest of ``axes`` (``groups`` maps axis → cluster)."""

    def __init__(self, axes: np.ndarray | None = None, groups: tuple[int, ...] = ()) -> None:
        self.axes = axes
        self.groups = groups

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.groups)[np.argmax(X @ np.asarray(self.axes).T, axis=1)]


def test_themes_whose_centres_settle_near_identical_are_merged():
    """Discovery merges centres at least merge_threshold (0.92) similar, but centres move to their members'
    means once items are assigned: two themes 0.95 apart at the end were both kept (five praise themes of
    1,500 app reviews ended 0.90–0.93 apart)."""
    u = np.array([1.0, 0, 0, 0])
    v = np.array([0.95, np.sqrt(1 - 0.95**2), 0, 0])  # cos(u, v) = 0.95
    w, far = np.eye(4)[2], np.eye(4)[3]
    rng = np.random.default_rng(0)
    centres = [u] * 20 + [v] * 20 + [w] * 20 + [far] * 10
    x = np.array(centres) + 0.002 * rng.standard_normal((70, 4))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    # the far items join u's cluster at discovery, pulling its centre 0.85 from v's; assigned, they fit no theme
    clusterer = _ByNearestAxis(np.vstack([u, v, w, far]), (0, 1, 2, 0))
    tm = ThemeModel(None, min_theme_size=5, max_outlier_share=0.2, clusterer=clusterer).fit(
        [f"item {i}" for i in range(70)], embeddings=x)
    sims = tm.centroids_ @ tm.centroids_.T
    np.fill_diagonal(sims, 0)
    assert sims.max() < tm.merge_threshold
    assert len(tm.theme_ids_) == 2
    assert len(set(tm.labels_[:40])) == 1  # u's and v's items: one theme
    assert np.array_equal(tm.transform(embeddings=x), tm.labels_)
    assert sorted(tm.themes_["id"]) == list(range(len(tm.theme_ids_))) and tm.next_theme_id_ == 2


# --- a theme's title names what sets it apart --------------------------------------------------------------


def test_a_theme_title_names_its_keywords_not_generic_praise():
    """Among app reviews, the most central item of a theme about Pinterest was "Great app, works well", and
    that was its title, beside the keywords "pinterest, pin, board": a product manager could not tell it from
    the other praise themes. A central item that names the theme's keywords wins now."""
    rng = np.random.default_rng(0)
    pinterest = ["Great app, works well"] + [f"Pinterest boards are how I plan {w}, pinning all day"
                                             for w in ("weddings", "meals", "trips", "gardens", "rooms", "parties",
                                                       "outfits", "crafts", "recipes", "holidays", "gifts", "classes")]
    weather = [f"Great app for the weather forecast in {c}" for c in ("Paris", "Rome", "Oslo", "Lima", "Kyiv", "Pune",
                                                                      "Doha", "Riga", "Bern", "Baku", "Apia", "Suva")]
    texts = pinterest + weather
    x = np.zeros((len(texts), 8))
    x[: len(pinterest), 0], x[len(pinterest):, 1] = 1.0, 1.0
    x[1:len(pinterest)] += 0.15 * rng.standard_normal((len(pinterest) - 1, 8))  # the generic item sits at the centre
    x[len(pinterest):] += 0.15 * rng.standard_normal((len(weather), 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    tm = ThemeModel(None, min_theme_size=5).fit(texts, embeddings=x)
    theme = tm.themes_.set_index("id").loc[int(tm.labels_[0])]
    assert not {"great", "app"} & set(theme["keywords"][:3])
    assert "pinterest" in theme["title"].lower()


def test_central_title_keeps_the_most_central_item_when_none_names_a_keyword():
    """Keywords only break the tie between central items: without one naming them, the central item stays."""
    texts = ["Search loses the map zoom every time", "Map zoom resets when I search"]
    assert central_title(texts, np.array([0.90, 0.86]), keywords=["pinterest"]) == texts[0]
    assert central_title(texts, np.array([0.90, 0.86]), keywords=["reset"]) == "Map zoom resets when I search"


def test_a_title_drops_markdown_emphasis_and_html_comments():
    """An issue filed with its template untouched was the title "**Is your feature request related to a
    problem?" of a GitHub-issues theme; emphasis and template comments are markup, not words of a title."""
    raw = ".. **Is your feature request related to a problem? Please describe.** <!-- A clear and concise description -->"
    assert clean_title(raw) == "Is your feature request related to a problem?"
    assert clean_title("<!-- Please fill in --> **Export** fails on __large__ files") == "Export fails on large files"
    assert clean_title("snake_case_name breaks the *parser*") == "Snake_case_name breaks the parser"
    assert clean_title("5 * 3 = 15 is wrong in the calculator") == "5 * 3 = 15 is wrong in the calculator"


def test_keywords_leave_out_contraction_parts_and_bracket_placeholders():
    """"doesn't", "I'll", "we've" split at the apostrophe gave the keywords "doesn", "ll", "ve" (app reviews,
    Reddit comments, chat utterances), and another tool's placeholder "[NAME]" gave "name"."""
    docs = {0: ["It doesn't sync, I'll wait", "Sync doesn't work, we've tried", "[NAME] says sync didn't run"] * 2,
            1: ["Dark mode please", "Add dark mode", "Dark theme request"] * 2}
    words = CTFIDFLabeller().keywords(docs, 10)[0]
    assert "sync" in words
    assert not {"doesn", "ll", "ve", "didn", "name"} & {w for k in words for w in k.split()}


def test_a_central_item_without_a_placeholder_is_the_better_title():
    """A title "I honestly miss [NAME]" when a central item as close says it without a placeholder."""
    texts = ["I honestly miss [NAME] on the show", "I honestly miss the old cast of the show"]
    assert central_title(texts, np.array([0.90, 0.88])) == "I honestly miss the old cast of the show"
    assert central_title(texts[:1], np.array([0.9])) == "I honestly miss [NAME] on the show"


def test_a_title_ends_in_one_mark_not_a_run_of_them():
    """An app-review theme was titled "This is a great app!????"."""
    assert clean_title("This is a great app!????") == "This is a great app"
    assert clean_title("Why does the export crash??") == "Why does the export crash?"
    assert clean_title("Does the export work?!") == "Does the export work?"
    assert clean_title("Why does the export crash?") == "Why does the export crash?"
