"""Round 14e: the ``report`` command's page and tables, as a product team reads them and as someone who writes
feedback into the backlog would exploit them (truth of the numbers, HTML/CSV safety, PII, odd backlogs)."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import feedback_nlp as fb
from feedback_nlp.errors import UsageError

TAX = fb.Taxonomy([{"id": "bug", "name": "bug crash error"}, {"id": "feature", "name": "feature request"}])
WORDS = ["export csv fails", "login loop broken", "dark mode please", "slow dashboard loading", "refund invoice wrong"]


@pytest.fixture(autouse=True)
def _undrawn_charts(monkeypatch):
    """The charts are made but not rendered to PNG (most of a small report's time on a loaded machine): these
    tests read the page's text and tables."""
    import matplotlib.pyplot as plt

    import feedback_nlp.report as report

    monkeypatch.setattr(report, "_png", lambda fig: plt.close(fig) or "data:image/png;base64,")


def _frame(n: int = 30, **cols) -> pd.DataFrame:
    data = {"id": [f"i{i}" for i in range(n)], "text": [f"{WORDS[i % 5]} case {i % 3}" for i in range(n)],
            "source": "support", "account_id": [f"a{i % 7}" for i in range(n)],
            "created_at": [f"2026-01-{1 + i % 28:02d}T10:00:00Z" for i in range(n)]}
    data.update(cols)
    return pd.DataFrame(data)


def _report(data, out, embedder, **kwargs) -> fb.ReportSummary:
    kwargs = {"taxonomy": TAX, "min_theme_size": 3, "sentiment": None, **kwargs}
    return fb.build_report(data, out, embedder=embedder, **kwargs)


def _section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}"')
    return page[start:page.index("</section>", start)]


@pytest.mark.parametrize("name", ["items.csv", "trends.csv", "rejected.csv"])
def test_an_input_that_is_one_of_the_reports_files_is_refused_not_replaced(tmp_path, hash_embedder, name):
    """build_report("r/items.csv", "r") replaced the backlog with the report's items.csv, and "r/trends.csv" (no
    dates in it) was deleted as an earlier report's stale table; the CLI checked --in, Python did not."""
    out = tmp_path / "r"
    out.mkdir()
    src = out / name
    _frame(20).drop(columns=["created_at"]).to_csv(src, index=False)
    before = src.read_bytes()
    with pytest.raises(UsageError, match=f"report's own {name}"):
        _report(str(src), out, hash_embedder)
    assert src.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [name]
    with pytest.raises(UsageError, match="input 2"):  # one of several inputs
        _report([str(tmp_path / "other.csv"), str(src)], out, hash_embedder)
    # an input beside the outputs under another name is fine
    (out / "backlog.csv").write_bytes(before)
    summary = _report(str(out / "backlog.csv"), out, hash_embedder)
    assert summary.items == 20 and (out / "backlog.csv").read_bytes() == before


def test_theme_names_are_redacted_where_the_page_draws_and_lists_them(tmp_path, hash_embedder, monkeypatch):
    """Read with clean=False (the tables were redacted), a theme named from "mail jane.doe@acme.io" showed the
    address in the page's Emerging line, in ReportSummary.emerging and in the chart labels, there cut to 40
    characters ("jane.doe@acm"), where even a later redaction would no longer see an address."""
    import feedback_nlp.report as report

    drawn: list[str] = []
    real = report.chart_text
    monkeypatch.setattr(report, "chart_text", lambda text: drawn.append(str(text)) or real(text))
    n = 40
    texts = [f"export fails mail jane.doe@acme.io case {i % 2}" if i >= 20 else f"{WORDS[1 + i % 4]} case {i % 3}"
             for i in range(n)]
    dates = [f"2025-{1 + i % 10:02d}-10T10:00:00Z" if i < 20 else f"2026-01-{1 + i % 20:02d}T10:00:00Z"
             for i in range(n)]
    summary = _report(_frame(n, text=texts, created_at=dates), tmp_path / "r", hash_embedder, clean=False, freq="M")
    assert summary.emerging and all("<EMAIL>" in name for name in summary.emerging)
    assert "jane.doe" not in " ".join(summary.emerging + drawn + summary.top_themes["examples"].tolist())
    assert any("<EMAIL>" in label for label in drawn)
    for path in (tmp_path / "r").iterdir():
        assert "jane.doe" not in path.read_text(encoding="utf-8"), path.name


def test_the_pages_tables_say_when_rows_are_left_out_and_show_the_latest_periods(tmp_path, hash_embedder):
    """Ten years of monthly sentiment showed the first 60 months (2016-2020) and no word of the other five years;
    20 of 57 items needing review read as all of them; a crosstab's "col_0" and a pivot's "tags" were drawn as
    header rows of their own."""
    n = 60
    frame = _frame(n, sentiment=["positive", "negative", "neutral"] * 20, text=[f"{WORDS[i % 5]} case {i % 4}" for i in range(n)],
                   created_at=[f"20{16 + i % 10}-{1 + i % 12:02d}-{1 + i % 27:02d}" for i in range(n)])
    summary = _report(frame, tmp_path / "r", hash_embedder, freq="M")
    page = summary.html.read_text(encoding="utf-8")
    senti = _section(page, "sentiment")
    over_time = pd.read_csv(summary.tables["sentiment_over_time"])
    assert len(over_time) == 120
    assert "<td>2025-" in senti and "<td>2016-" not in senti  # the latest 60 months, not the first
    assert "The last 60 of 120 periods" in senti
    for sid in ("sentiment", "tags-by-channel"):  # one header row per table
        assert all(head.count("<tr") == 1 for head in re.findall("<thead>.*?</thead>", _section(page, sid), re.S))
    assert "col_0" not in page
    dups = pd.read_csv(summary.tables["duplicate_groups"])
    assert dups["group"].nunique() > 15
    assert f"The first 15 of {dups['group'].nunique()} rows" in _section(page, "duplicates")


def test_the_status_section_shows_no_none_cells_and_counts_shipped_items_without_a_date(tmp_path, hash_embedder):
    """A backlog whose items say "Complete" without any dates drew "delivered: 0" beside "33% shipped" without a
    word, and its table showed "None" in every days column."""
    summary = _report(_frame(30, status=["Open", "Complete", "Planned"] * 10), tmp_path / "r", hash_embedder)
    team = _section(summary.html.read_text(encoding="utf-8"), "team-response")
    assert "33% shipped" in team
    assert "10 shipped items have no date of delivery" in team
    assert "<td>None</td>" not in team
    assert pd.read_csv(summary.tables["asked_vs_delivered"])["delivered"].sum() == 0


def _numbers_agree(summary: fb.ReportSummary, rows_in: int) -> None:
    """Every headline number of the page against the tables and the input."""
    page = summary.html.read_text(encoding="utf-8")
    items = pd.read_csv(summary.tables["items"], keep_default_na=False, na_values=[""])
    rejected = pd.read_csv(summary.tables["rejected"])
    head = re.search(r"<p>(\d+) items \((\d+) rejected\), (\d+) channels, (\d+) themes \((\d+)% unassigned\)", page)
    n, rej, channels, themes, unassigned = map(int, head.groups())
    assert (n, rej) == (len(items), len(rejected)) and n + rej == rows_in
    assert channels == items["source"].nunique() and unassigned == round(100 * (items["theme"] == -1).mean())
    ranked = pd.read_csv(summary.tables["themes"])
    praise = pd.read_csv(summary.tables["praise_themes"])
    assert themes == len(ranked) + len(praise) == summary.themes
    volume = items[items["theme"] != -1].groupby("theme").size()
    for _, row in pd.concat([ranked, praise]).iterrows():
        assert volume[row["theme"]] == row["volume"]
    review = pd.read_csv(summary.tables["needs_review"])
    assert f"Items needing review ({len(review)})" in page
    groups = pd.read_csv(summary.tables["duplicate_groups"])
    assert f"Duplicate groups ({groups['group'].nunique() if len(groups) else 0})" in page
    assert not groups["id"].duplicated().any() and set(groups["id"]) <= set(items["id"])
    if "trends" in summary.tables:
        trends = pd.read_csv(summary.tables["trends"])
        assert trends.groupby("theme")["count"].sum().reindex(volume.index, fill_value=0).tolist() == volume.tolist()
    listed = re.search(r"Tables: ([^<]*)\.</p>", page).group(1).split(", ")
    assert sorted(listed) == sorted(p.name for p in summary.html.parent.iterdir() if p.suffix == ".csv")


@pytest.mark.parametrize("case", ["one row", "identical", "no dates", "one timestamp", "ten years", "no accounts",
                                  "german", "all outliers", "rejected rows"])
def test_odd_backlogs_give_a_page_whose_numbers_agree_with_its_tables(tmp_path, hash_embedder, case):
    frames = {
        "one row": _frame(1),
        "identical": _frame(20, text=["export csv fails"] * 20),
        "no dates": _frame(20).drop(columns=["created_at"]),
        "one timestamp": _frame(20, created_at=["2026-01-01T00:00:00Z"] * 20),
        "ten years": _frame(40, created_at=[f"{2016 + i % 10}-0{1 + i % 9}-15" for i in range(40)]),
        "no accounts": _frame(20).drop(columns=["account_id"]),
        "german": _frame(20, text=[f"Der Export nach CSV schlägt fehl Fall {i % 4}" for i in range(20)]),
        "all outliers": _frame(12, text=[f"unique{i} word{i} other{i}" for i in range(12)]),
        "rejected rows": _frame(30, text=[f"{WORDS[i % 5]} case {i % 3}" if i % 10 else ["", "\x00\x01\x02"][i % 20 // 10]
                                          for i in range(30)]),
    }
    frame = frames[case]
    _numbers_agree(_report(frame, tmp_path / "r", hash_embedder), len(frame))


@pytest.mark.parametrize("out", [".", "./"])
def test_a_report_into_the_current_folder_takes_its_lock_beside_it(tmp_path, hash_embedder, monkeypatch, out):
    """``report --out .`` (and build_report(df, ".")) stopped with pathlib's "unexpected ValueError: PosixPath('.')
    has an empty name": the lock file <out>.lock had no name to extend."""
    here = tmp_path / "reports"
    here.mkdir()
    monkeypatch.chdir(here)
    summary = _report(_frame(12), out, hash_embedder)
    assert (here / "report.html").is_file() and summary.items == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reports"]  # the lock is gone again


def test_items_csv_flags_the_same_items_for_review_as_the_page_and_needs_review_csv(tmp_path, hash_embedder):
    """The page and needs_review.csv listed every item under 0.5 confidence, items.csv's needs_review said False
    for each of them: "Items needing review (22)" on the page, none when filtering items.csv."""
    tax = fb.Taxonomy([{"id": "bug", "name": "bug crash"}, {"id": "feature", "name": "feature request"},
                       {"id": "billing", "name": "invoice refund"}])
    summary = _report(_frame(30), tmp_path / "r", hash_embedder, taxonomy=tax)
    items = pd.read_csv(summary.tables["items"])
    review = pd.read_csv(summary.tables["needs_review"])
    assert len(review) > 0 and f"Items needing review ({len(review)})" in summary.html.read_text(encoding="utf-8")
    assert sorted(items.loc[items["needs_review"], "id"]) == sorted(review["id"])
    assert (items["needs_review"] == (items["confidence"] < 0.5)).all()  # zero-shot: the tagger flags nothing itself


def test_a_folder_named_like_a_report_table_is_refused_before_any_output_is_replaced(tmp_path, hash_embedder):
    """A folder out/trends.csv stopped the report at its last renames with IsADirectoryError, after items.csv and
    five other tables of the new run had replaced the old ones (no report.html beside them)."""
    out = tmp_path / "r"
    (out / "trends.csv").mkdir(parents=True)
    (out / "items.csv").write_text("old items\n")
    with pytest.raises(UsageError, match="trends.csv is a folder"):
        _report(_frame(20), out, hash_embedder)
    assert (out / "items.csv").read_text() == "old items\n" and sorted(p.name for p in out.iterdir()) == [
        "items.csv", "trends.csv"]


def test_a_reports_items_csv_read_back_keeps_every_column_of_its_own(tmp_path, hash_embedder):
    """An input with both tags and tags_input (a report's items.csv, reported on again) lost its tags column: the
    report's tags replaced it, as tags_input was taken; its sentiment_input was overwritten the same way."""
    first = _report(_frame(20, tags=["mine"] * 20, sentiment=["positive"] * 20), tmp_path / "r1", hash_embedder)
    given = pd.read_csv(first.tables["items"])
    assert {"tags_input", "sentiment_input"} <= set(given.columns)
    given["sentiment_input"] = "negative"  # distinct from the sentiment column, to see which one is where
    given.to_csv(tmp_path / "again.csv", index=False)
    second = _report(str(tmp_path / "again.csv"), tmp_path / "r2", hash_embedder)
    items = pd.read_csv(second.tables["items"])
    assert (items["tags_input"] == "mine").all() and (items["tags_input_2"] == given["tags"]).all()
    assert (items["sentiment_input"] == "negative").all() and (items["sentiment_input_2"] == "positive").all()
    assert (items["theme_input"] == given["theme"]).all() and "confidence_input" in items


def test_the_page_says_when_an_item_is_dated_after_today(tmp_path, hash_embedder):
    """One created_at typed 2036 for 2026 moved the end of every trend ten years on: every other theme had no
    recent item (growth 0), trends.csv ran through 500 empty weeks, and the page said nothing of it."""
    dates = [f"2026-01-{1 + i % 28:02d}T10:00:00Z" for i in range(40)]
    summary = _report(_frame(40), tmp_path / "ok", hash_embedder)
    assert "dated after today" not in summary.html.read_text(encoding="utf-8")
    dates[5] = "2036-01-05T10:00:00Z"
    page = _report(_frame(40, created_at=dates), tmp_path / "r", hash_embedder).html.read_text(encoding="utf-8")
    assert "<strong>1 item is dated after today</strong> (the latest 2036-01-05)" in page
    assert "Check its created_at" in page
