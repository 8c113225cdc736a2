"""The report end to end, and checked in a real headless browser when one is installed."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from feedback_nlp.datasets import sample_taxonomy_path
from feedback_nlp.report import SECTIONS, build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def report(tmp_path_factory, sample_raw, embedder, sample_vectors):
    out = tmp_path_factory.mktemp("report")
    return build_report(sample_raw, out, taxonomy=sample_taxonomy_path(), embedder=embedder, min_theme_size=15)


def test_report_files_and_content(report):
    html = report.html.read_text()
    for sid in SECTIONS:
        assert f'id="{sid}"' in html
    assert html.count('src="data:image/png;base64,') == 5  # five real charts (two of sentiment), embedded
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert {"themes", "items", "duplicate_groups", "needs_review", "trends", "tags_by_channel"} <= set(report.tables)
    themes = pd.read_csv(report.tables["themes"])
    assert themes["priority"].is_monotonic_decreasing
    assert any("summar" in e for e in report.emerging)
    assert report.items == 3000 and report.themes >= 10


def test_praise_themes_are_shown_not_ranked(report):
    ranked = pd.read_csv(report.tables["themes"])
    praise = pd.read_csv(report.tables["praise_themes"])
    assert len(praise) >= 1 and not set(ranked["theme"]) & set(praise["theme"])
    assert praise["label"].str.contains("fantastic|love|great|thank|friendly", case=False).any()
    assert not ranked["label"].str.contains("fantastic|loves", case=False).any()  # praise never competes
    assert 'id="praise"' in report.html.read_text()


def test_report_rejects_empty_input(tmp_path, embedder):
    from feedback_nlp import InvalidInputError

    with pytest.raises(InvalidInputError, match="no usable feedback"):
        build_report(pd.DataFrame({"text": ["", "  "]}), tmp_path, embedder=embedder)


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="no headless browser: apt-get install chromium chromium-driver "
                    "(and pip install selenium) to run the browser check")
def test_report_in_headless_browser(report, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium to run the browser check")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        driver.get_log("performance")  # drop the browser's own start-up page traffic
        driver.get(Path(report.html).resolve().as_uri())
        assert driver.title == "Customer feedback report"
        for sid in SECTIONS:
            assert driver.find_element(By.ID, sid).is_displayed()
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 5
        assert all(driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 100", i) for i in images)
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
        import json

        requests = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requests if m["method"] == "Network.requestWillBeSent"]
        assert any(u.startswith("file://") for u in urls)
        assert not [u for u in urls if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))], urls
        driver.save_screenshot(str(Path(report.html).with_name("report.png")))
    finally:
        driver.quit()


def test_no_output_holds_pii_or_live_formulas(tmp_path, sample_raw, embedder):
    card, email, phone = "4111 1111 1111 1111", "jane.doe@acme.io", "+44 20 7946 0958"
    df = sample_raw.head(80).copy()
    df.loc[0, "account_id"] = "ceo@bigco.example"  # an account id that is an e-mail address
    df.loc[1, "text"] = f'=HYPERLINK("http://evil.example/?x","click me") the export to CSV fails, mail {email}'
    extra = pd.DataFrame({  # rejected rows: binary, too long, empty after cleaning; each carries PII
        "id": ["bad-bin", "bad-long", "bad-empty"],
        "text": [f"card {card}\x00\x01\x02\x03\x04\x05\x06\x07\x08", f"call {phone} " + "word " * 6000,
                 f"<p></p>\n-- \nJane Doe | {email}"],
        "source": ["support"] * 3, "account_id": ["a1", "a2", "a3"], "account_revenue": [1.0, 2.0, 3.0],
        "created_at": [df["created_at"].iloc[0]] * 3,
    })
    out = tmp_path / "r"
    summary = build_report(pd.concat([df, extra], ignore_index=True), out, embedder=embedder, min_theme_size=5)
    assert summary.rejected >= 2
    assert "bad-bin" in (out / "rejected.csv").read_text() and "bad-long" in (out / "rejected.csv").read_text()
    for path in out.iterdir():
        text = path.read_text(encoding="utf-8", errors="replace")
        for secret in (card, email, phone, "ceo@bigco.example", "7946 0958"):
            assert secret not in text, f"{secret!r} in {path.name}"
    items = pd.read_csv(out / "items.csv", dtype=str, keep_default_na=False)
    assert not items["text"].str.startswith("=").any()
    assert items["text"].str.startswith("'=HYPERLINK").any()


def test_a_failed_report_leaves_no_partial_outputs(tmp_path, sample_raw, embedder, monkeypatch):
    import feedback_nlp.report as report_mod

    def broken(*args, **kwargs):
        raise RuntimeError("chart failed")

    monkeypatch.setattr(report_mod, "_png", broken)
    with pytest.raises(RuntimeError, match="chart failed"):
        build_report(sample_raw.head(60), tmp_path / "r", embedder=embedder, min_theme_size=5)
    assert not (tmp_path / "r").exists()
