"""Hostile and careless inputs, round 11b (the public Python API as a service embedding the library calls it:
tagging, duplicates, themes, scoring, save/load): each test failed before its fix. Embedding is the
HashEmbedder test double of conftest.py; nothing loads the real model."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from feedback_nlp import ColumnError, demand_scores, theme_scores

_NOW = pd.Timestamp("2024-02-01", tz="UTC")


def _scored_frame() -> pd.DataFrame:
    return pd.DataFrame({"theme": ["sso", "sso", "export"], "account_id": ["a", "b", "c"],
                         "account_revenue": [100.0, 50.0, 10.0],
                         "created_at": ["2024-01-30", "2024-01-20", "2024-01-25"]})


# --- scoring --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [lambda df: demand_scores(df, by=None, now=_NOW),
                                  lambda df: theme_scores(df, theme_col=None, now=_NOW)])
def test_scores_grouped_by_no_column_are_a_column_error_not_a_key_error(call):
    with pytest.raises(ColumnError, match="theme column must be named"):
        call(_scored_frame())


def test_theme_scores_of_a_frame_without_rows_is_an_empty_table_without_a_pandas_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was Pandas4Warning: '&' between a text column and booleans
        out = theme_scores(_scored_frame().iloc[:0], now=_NOW)
    assert out.empty and "priority" in out.columns


def test_a_tag_named_twice_in_one_cell_counts_its_item_once():
    df = _scored_frame().assign(theme=[["sso", "sso"], ["sso"], ["export", "sso", "export"]])
    out = theme_scores(df, now=_NOW).set_index("theme")
    assert out.loc["sso", "volume"] == 3 and out.loc["export", "volume"] == 1  # was 4 and 2
    assert out.loc["sso", "recent"] == 3
