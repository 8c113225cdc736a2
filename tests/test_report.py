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
    assert html.count('src="data:image/png;base64,') == 3  # three real charts, embedded
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    assert {"themes", "items", "duplicate_groups", "needs_review", "trends", "tags_by_channel"} <= set(report.tables)
    themes = pd.read_csv(report.tables["themes"])
    assert themes["priority"].is_monotonic_decreasing
    assert any("summar" in e for e in report.emerging)
    assert report.items == 3000 and report.themes >= 10


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
        assert len(images) == 3
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
