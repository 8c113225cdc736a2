"""Round 12 (lead): what the last round left alone, and odd use found this round. Each test fails without its
fix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fn


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_a_time_past_year_9999_is_rejected_not_wrapped_into_1970(tmp_path, unit) -> None:
    """Was: a Parquet timestamp (or a DataFrame's datetime64[us]) in year 34089 was stored as 1970-12-30,
    without a word, because pandas wraps such a time when it builds the column. Now the row is rejected."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000}[unit]
    far = 253_402_300_800 * 4 * per_second  # 4 x the first second of year 10000
    table = pa.table({"id": ["a", "b"], "text": ["checkout fails", "export is slow"],
                      "created_at": pa.array([1_700_000_000 * per_second, far], pa.timestamp(unit))})
    path = tmp_path / "far.parquet"
    pq.write_table(table, path)
    got = fn.read_feedback(path)
    assert got.records["id"].tolist() == ["a"]
    assert got.records["created_at"].dt.year.tolist() == [2023]
    assert got.rejected["id"].tolist() == ["b"] and "34089" in got.rejected["reason"].iloc[0]
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["checkout fails", "export is slow"],
                          "created_at": pd.Series(np.array([1_700_000_000 * 10**6, 253_402_300_800 * 4 * 10**6],
                                                           dtype="datetime64[us]"))})
    got = fn.read_feedback(frame)
    assert got.records["created_at"].dt.year.tolist() == [2023] and got.rejected["id"].tolist() == ["b"]


def test_year_9999_itself_is_still_a_date() -> None:
    got = fn.read_feedback(pd.DataFrame({"id": ["a"], "text": ["never"], "created_at": ["9999-12-31"]}))
    assert got.records["created_at"].dt.year.tolist() == [9999]


def test_input_columns_named_like_the_readers_own_are_kept_not_dropped(tmp_path) -> None:
    """Was: an input column named ``row`` or ``raw_text`` was replaced by the reader's own
    column of that name, and the user's values were gone without a word. Now it is kept as ``row.1``, …"""
    path = tmp_path / "in.csv"
    path.write_text("id,text,row,raw_text,source_detail,row.1\n1,hello there,A7,orig,ticket 9,x\n", encoding="utf-8")
    rec = fn.read_feedback(path).records
    assert rec.loc[0, "row"] == 2 and rec.loc[0, "raw_text"] == "hello there"
    assert rec.loc[0, "row.2"] == "A7" and rec.loc[0, "raw_text.1"] == "orig" and rec.loc[0, "row.1"] == "x"
    assert rec.loc[0, "source_detail"] == "ticket 9"  # an input source_detail is read as the provenance
    assert fn.read_feedback(path, keep_columns=False).records.columns.tolist() == [
        "id", "text", "source", "row", "source_detail", "raw_text"]


@pytest.mark.parametrize("invisible", ["\u200b", "\u200b\u200d \ufeff", "\u202e\u2066", " \u00ad\u2060 "])
def test_a_text_of_only_invisible_characters_is_empty_with_any_embedder(hash_embedder, invisible) -> None:
    """Was: with a custom embedder (the real one cleans them away and refuses the rest), a text of only
    zero-width or direction characters was embedded, and became a theme member, a duplicate match or a tag
    prediction of nothing. Now it is refused as empty text, naming its position."""
    texts = ["checkout fails on mobile", invisible, "export to CSV is slow"] * 4
    with pytest.raises(fn.InvalidInputError, match=r"empty text at positions \[1, 4"):
        fn.ThemeModel(hash_embedder, min_theme_size=2).fit(texts)
    with pytest.raises(fn.InvalidInputError, match="empty text at positions"):
        fn.Deduper(hash_embedder).fit(texts, ids=[str(i) for i in range(len(texts))])
    # visible text that happens to hold such characters is still text
    fn.Deduper(hash_embedder).fit(["dark\u200bmode please", "\u202eexport fails"], ids=["a", "b"])


def test_a_webhook_event_that_met_a_busy_store_is_retried_not_failed_for_good(tmp_path, monkeypatch) -> None:
    """Was: the Quackback worker retried only the portal's own errors, so an event whose processing met the
    service's store locked by another process (``StoreBusyError``, nothing written) failed for good on its
    first attempt. Now it is retried like a portal that is down."""
    from _fake_quackback import FakeQuackback
    from feedback_nlp.integrations.quackback._processor import is_retryable
    from feedback_nlp.service import StoreBusyError
    from test_quackback_webhook import deliver, event, make

    assert is_retryable(StoreBusyError("locked")) and not is_retryable(ValueError("bad"))
    with FakeQuackback() as qb:
        qb.add_tag("Billing")
        qb.add_post("Refund", id="post_a")
        integ = make(qb, tmp_path, max_attempts=3)
        real, calls = integ.processor.process, []

        def busy_once(ev):
            calls.append(ev)
            if len(calls) == 1:
                raise StoreBusyError("the backlog store is locked by another process")
            return real(ev)

        monkeypatch.setattr(integ.processor, "process", busy_once)
        deliver(integ, event("evt_1", id="post_a"))
        assert integ.drain() == 2
        row = integ.store.event("evt_1")
        assert row["state"] == "done" and row["attempts"] == 2 and len(calls) == 2


def test_a_sentiment_model_that_abstains_leaves_items_unscored_not_none(tmp_path, hash_embedder) -> None:
    """Was: a sentiment model saved with min_confidence > 0 abstains with None, and the report turned that into
    the sentiment "None" (``.astype(str)``), scored "by the model". Now such items stay unscored, and the note
    says how many the model abstained on (helper 12d's note)."""
    from feedback_nlp.report_sentiment import score_sentiment

    texts = ["love it, great work", "this is awful and broken", "it is okay I guess"] * 6
    labels = ["positive", "negative", "neutral"] * 6
    fn.TagClassifier(hash_embedder, min_confidence=0.999).fit(texts, labels).save(tmp_path / "senti")
    items = pd.DataFrame({"id": ["a", "b"], "text": ["zzz qqq", "love it, great work"]})
    scores = score_sentiment(items, hash_embedder.encode(items["text"].tolist()), str(tmp_path / "senti"), hash_embedder)
    assert "None" not in scores.sentiment.astype(str).tolist()
    assert scores.sentiment.isna().sum() == (scores.source != "model").sum() >= 1
    assert "abstained on" in scores.note
