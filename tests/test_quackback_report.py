"""The report's "How the team is responding" section: computed figures, the page, and a real browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feedback_nlp.datasets import sample_taxonomy_path
from feedback_nlp.report import SECTIONS, build_report
from feedback_nlp.report_status import STATUS_SECTION, asked_vs_delivered, status_by_theme, unanswered_themes

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
CYCLE = ["Planned", "In Progress", "Complete", "Closed", "Under Review"]


def with_statuses(raw: pd.DataFrame) -> pd.DataFrame:
    """Security feedback never answered; every other item cycles through the stages with a dated change."""
    df = raw.copy()
    i = np.arange(len(df))
    quiet = df["product_area"].str.contains("security")
    df["status"] = np.where(quiet, "Open", [CYCLE[k % len(CYCLE)] for k in i])
    changed = pd.to_datetime(df["created_at"], utc=True) + pd.to_timedelta(i % 20 + 1, unit="D")
    has_change = ~quiet & (df["status"] != "Under Review")
    df["status_changed_at"] = changed.where(has_change).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return df


@pytest.fixture(scope="module")
def report(tmp_path_factory, sample_raw, embedder, sample_vectors):
    out = tmp_path_factory.mktemp("status_report")
    return build_report(with_statuses(sample_raw), out, taxonomy=sample_taxonomy_path(), embedder=embedder,
                        min_theme_size=15)


def test_status_section_figures(report, sample_raw):
    html = report.html.read_text()
    assert f'id="{STATUS_SECTION}"' in html and all(f'id="{s}"' in html for s in SECTIONS)
    assert html.count('src="data:image/png;base64,') == 6 and "asked vs delivered chart" in html
    items = pd.read_csv(report.tables["items"])
    by_theme = pd.read_csv(report.tables["status_by_theme"])
    stages = ["open", "planned", "in_progress", "shipped", "declined"]
    assert np.allclose(by_theme[stages].sum(axis=1), 1.0, atol=1e-3) and by_theme["items"].sum() == 3000
    # recompute one theme's median wait from the items table
    t = by_theme.loc[by_theme["median_days_to_status_change"].notna(), "theme"].iloc[0]
    mine = items[items["theme"] == t]
    waits = (pd.to_datetime(mine["status_changed_at"], utc=True) - pd.to_datetime(mine["created_at"], utc=True)).dt.days
    assert by_theme.set_index("theme").loc[t, "median_days_to_status_change"] == pytest.approx(waits.median(), abs=0.05)
    # the unanswered themes are exactly the themes whose items are all open with no change, security ones
    quiet = by_theme[(by_theme["responded"] == 0) & (by_theme["theme"] != -1)]
    assert len(quiet) >= 1
    for theme in quiet["theme"]:
        mine = items[items["theme"] == theme]
        assert (mine["status"] == "Open").all() and mine["status_changed_at"].isna().all()
        assert mine["product_area"].str.contains("security").mean() > 0.9
    section = html.split(f'id="{STATUS_SECTION}"')[1].split("</section>")[0]
    unanswered = section.split("with no response")[1]
    assert all(label in unanswered for label in quiet["label"].head(10))
    flow = pd.read_csv(report.tables["asked_vs_delivered"])
    assert flow["asked_total"].iloc[-1] == 3000
    assert flow["delivered_total"].iloc[-1] == (items["status"] == "Complete").sum()


def test_report_without_status_has_no_status_section(tmp_path, hash_embedder):
    raw = pd.DataFrame({"text": [f"export to csv fails on row {i}" for i in range(30)] +
                                [f"please add single sign on for team {i}" for i in range(30)]})
    summary = build_report(raw, tmp_path, taxonomy=sample_taxonomy_path(), embedder=hash_embedder, min_theme_size=5)
    assert STATUS_SECTION not in summary.html.read_text() and "status_by_theme" not in summary.tables


def test_status_helpers_on_edge_cases():
    items = pd.DataFrame({"theme": [0, 0, 1, 1, -1], "theme_label": ["a", "a", "b", "b", "outlier"],
                          "created_at": ["2026-01-01", "2026-01-02", "bad date", None, "2026-01-05"],
                          "status": ["shipped", None, "Open", "weird custom", "Open"],
                          "status_changed_at": ["2026-01-08", None, None, None, None]})
    t = status_by_theme(items).set_index("theme")
    assert t.loc[0, "items"] == 1 and t.loc[0, "shipped"] == 1.0  # a row without status is not counted
    assert t.loc[1, "open"] == 1.0 and pd.isna(t.loc[1, "median_days_to_status_change"])
    assert t.loc[0, "days_first_ask_to_first_response"] == 7.0
    quiet = unanswered_themes(t.reset_index(), pd.Series({0: 1.0, 1: 2.0, -1: 99.0}))
    assert quiet["theme"].tolist() == [1]  # the outliers are no theme to respond to
    flow = asked_vs_delivered(items, "D")
    assert flow["asked"].sum() == 3 and flow["delivered"].sum() == 1 and len(flow) == 8  # 1..8 Jan, gaps filled


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no headless browser: apt-get install chromium chromium-driver")
def test_status_section_in_headless_browser(report, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium to run the browser check")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get_log("performance")
        driver.get(Path(report.html).resolve().as_uri())
        section = driver.find_element(By.ID, STATUS_SECTION)
        assert section.is_displayed() and "How the team is responding" in section.text
        chart = section.find_element(By.TAG_NAME, "img")
        assert driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", chart)
        assert len(section.find_elements(By.CSS_SELECTOR, "table.t")) == 2
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 6  # top themes, trends, tags by channel, status, two sentiment charts
        assert [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")] == []
        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
        assert not [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))], urls
    finally:
        driver.quit()


def test_a_status_stage_column_overrides_the_name_mapping():
    items = pd.DataFrame({"theme": [0, 0], "theme_label": ["t", "t"], "created_at": ["2026-01-01", "2026-01-02"],
                          "status": ["closed", "closed"], "status_stage": ["shipped", None]})
    row = status_by_theme(items).iloc[0]
    assert (row["shipped"], row["declined"]) == (0.5, 0.5)  # the second row falls back to its name


def test_delivery_falls_back_to_the_last_update_for_pulled_posts():
    from feedback_nlp.report_status import delivery_times

    items = pd.DataFrame({"created_at": ["2026-01-01", "2026-01-01", "2026-01-02"],
                          "status": ["Complete", "Complete", "Open"],
                          "status_changed_at": ["2026-01-05", None, None],
                          "updated_at": ["2026-01-09", "2026-01-07", "2026-01-08"]})
    times, approx = delivery_times(items)
    assert approx == 1 and times.dt.day.tolist()[:2] == [5, 7] and pd.isna(times.iloc[2])
    flow = asked_vs_delivered(items, "D")
    assert flow["delivered"].sum() == 2 and flow["asked_total"].iloc[-1] == 3
