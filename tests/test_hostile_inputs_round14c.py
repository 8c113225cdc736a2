"""Round 14c: three new export readers (Google Play review reports, GitHub issues, App Store Connect customer
reviews) on realistic fixtures (tests/fixtures/ingest/) and on the broken, mislabelled and re-saved variants users
hand over. Every row is accounted for: read, rejected with a reason, or skipped and counted. No model is loaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from feedback_nlp import EncodingError, InputFileError, read_feedback
from feedback_nlp.connectors import VENDOR_FORMATS, iter_export, sniff_format
from feedback_nlp.records import FORMATS

FIX = Path(__file__).parent / "fixtures" / "ingest"
PLAY = FIX / "reviews_reviews_com.acme.notes_202601.csv"
GITHUB = FIX / "github_issues.json"
GH = FIX / "gh_issue_list.json"
ASC = FIX / "app_store_reviews.json"
PLAY_HEADER = ("Package Name,App Version Code,App Version Name,Reviewer Language,Device,Review Submit Date and Time,"
               "Review Submit Millis Since Epoch,Review Last Update Date and Time,Review Last Update Millis Since Epoch,"
               "Star Rating,Review Title,Review Text,Developer Reply Date and Time,Developer Reply Millis Since Epoch,"
               "Developer Reply Text,Review Link")
LINK = "https://play.google.com/console/developers/1/app/2/user-feedback/review-details?reviewId={}&corpus=PUBLIC_REVIEWS"


def _play(tmp_path: Path, *rows: str, name: str = "reviews_reviews_com.x_202602.csv", codec: str = "utf-16") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join([PLAY_HEADER, *rows]) + "\n").encode(codec))
    return path


def _review(rid: str, text: str, rating: int = 3, when: str = "2026-02-01T10:00:00Z", millis: str = "1769940000000",
            link: str | None = None) -> str:
    link = LINK.format(rid) if link is None else link
    quoted = '"' + text.replace('"', '""') + '"'
    return f"com.x,7,1.0,en,a52q,{when},{millis},{when},{millis},{rating},,{quoted},,,,{link}"


# --- Google Play --------------------------------------------------------------------------------------

def test_play_report_read_as_google_writes_it():
    assert {"google_play", "github", "app_store"} <= set(VENDOR_FORMATS) and "google_play" in FORMATS
    assert PLAY.read_bytes()[:2] == b"\xff\xfe"  # UTF-16 LE with a byte-order mark, as the Play Console writes it
    assert sniff_format(PLAY) == "google_play"
    fb = read_feedback(PLAY)
    r = fb.records.set_index("id")
    assert len(r) == 4 and set(r["source"]) == {"app_review"} and set(r["source_detail"]) == {"google_play/com.acme.notes"}
    first = r.loc["gp:AOqpTOFmAVORqfWGcaqfF39ftwFjGkjecjvjXnC3fD9EZQH9Nl8rEQvVg3HWEb7PE1VuzsMWKvqn4SRo1M8a1Q"]
    assert first["rating"] == "2" and str(first["created_at"]) == "2026-01-03 08:14:22+00:00" and first["row"] == 2
    assert first["url"].endswith("reviewId=gp:AOqpTOFmAVORqfWGcaqfF39ftwFjGkjecjvjXnC3fD9EZQH9Nl8rEQvVg3HWEb7PE1VuzsMWKvqn4SRo1M8a1Q&corpus=PUBLIC_REVIEWS")
    # an id written %3A-encoded in the link and one of the older ReviewDetailsPlace links read the same way
    assert "gp:AOqpTOHe0b9F1o5Ua2w8vYcJ4bCkP5Cqg7xG2Hk1Vd3Lq0Z9mNn4Rr6Tt8Ww0Yy2Aa4Bb6Cc8Dd0Ee2Ff4Gg" in r.index
    assert r.loc["gp:AOqpTOEw2Qx8Rz4Tv6Yb1Nc3Md5Lf7Kg9Jh0Ai2Sk4Dl6Fm8Gn0Hp2Jq4Kr6Ls8Mt0Nu2Ov4Pw6Qx8Ry0Sz2Tv", "text"].startswith(
        "Widget The home-screen widget")  # the title joined to the text
    assert "ダークモード" in " ".join(r["text"])
    assert fb.skipped == {"rating without text": 1}  # the 5-star rating without a review: counted, not a row
    assert fb.rejected[["row", "reason"]].values.tolist() == [[8, "placeholder text 'N/A'"]]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-8", "utf-8-sig"])
def test_play_report_resaved_in_another_encoding(tmp_path, codec):
    if codec == "utf-16-be":
        path = tmp_path / "r.csv"
        path.write_bytes(b"\xfe\xff" + (PLAY_HEADER + "\n" + _review("gp:A1", "Crashes on start") + "\n").encode(codec))
    else:
        path = _play(tmp_path, _review("gp:A1", "Crashes on start"), codec=codec)
    assert sniff_format(path) == "google_play"
    assert read_feedback(path).records[["id", "text"]].values.tolist() == [["gp:A1", "Crashes on start"]]


def test_play_report_as_unicode_text_and_gzip(tmp_path):
    tsv = tmp_path / "reviews.txt"  # Excel's "Unicode Text": UTF-16, tab-separated
    tsv.write_bytes(("\n".join([PLAY_HEADER.replace(",", "\t"),
                                _review("gp:A1", "Search is slow").replace(",", "\t")]) + "\n").encode("utf-16"))
    assert sniff_format(tsv) == "google_play"
    assert read_feedback(tsv).records["id"].tolist() == ["gp:A1"]
    gz = tmp_path / "reviews_reviews_com.x_202602.csv.gz"
    gz.write_bytes(gzip.compress(_play(tmp_path, _review("gp:A2", "Dark mode please")).read_bytes()))
    assert sniff_format(gz) == "google_play" and read_feedback(gz).records["id"].tolist() == ["gp:A2"]


def test_play_broken_rows_are_rejected_by_line(tmp_path):
    path = _play(tmp_path, _review("gp:A1", "Sync fails"), "com.x,7,1.0,en,a52q,too,few,fields",
                 _review("gp:A2", "Export cuts tables"), _review("gp:A3", ""),  # a rating only: skipped
                 _review("gp:A4", "Widget too small", link=""),  # no link: the id is <package>-<submit millis>
                 _review("gp:A5", "Crash", when="yesterday"))
    fb = read_feedback(path)
    assert fb.records["id"].tolist() == ["gp:A1", "gp:A2", "com.x-1769940000000"]
    assert fb.rejected[["row", "reason"]].values.tolist() == [
        [3, "ragged row: 8 fields, the header has 16"], [7, "unparseable date 'yesterday' in column 'created_at'"]]
    assert fb.skipped == {"rating without text": 1}


def test_play_months_read_together_keep_each_review_once(tmp_path):
    # a review edited in February is written again in February's report: the second copy is a duplicate, shown
    jan = _play(tmp_path, _review("gp:A1", "Sync fails"), name="reviews_reviews_com.x_202601.csv")
    feb = _play(tmp_path, _review("gp:A1", "Sync fails, still", when="2026-02-03T10:00:00Z"), _review("gp:A2", "Crash"))
    fb = read_feedback([jan, feb])
    assert fb.records["id"].tolist() == ["gp:A1", "gp:A2"]
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [[2, "gp:A1", "duplicate id"]]


def test_play_refuses_what_is_not_a_play_report(tmp_path):
    plain = tmp_path / "notes.csv"
    plain.write_text("id,Review Text,Star Rating\n1,hello there,5\n")
    assert sniff_format(plain) == "csv"  # two of the columns are not enough to call it a Play report
    with pytest.raises(InputFileError, match=r"not a Google Play reviews report: no column \['Package Name'\]"):
        read_feedback(plain, format="google_play")
    with pytest.raises(InputFileError, match="is not a Google Play reviews report: that is a CSV file"):
        read_feedback(GITHUB, format="google_play")
    with pytest.raises(EncodingError, match="UTF-16"):
        read_feedback(PLAY, encoding="latin-1")  # the byte-order mark contradicts the declared encoding
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="empty"):
        read_feedback(empty, format="google_play")
    header_only = _play(tmp_path)
    assert read_feedback(header_only).records.empty


def test_play_chunks_equal_the_whole_read():
    whole = read_feedback(PLAY).records["id"].tolist()
    skipped: dict[str, int] = {}
    chunks = list(iter_export(PLAY, "google_play", chunk_size=2, skipped=skipped))
    assert [len(c) for c in chunks] == [2, 2, 1] and skipped == {"rating without text": 1}
    assert [i for c in chunks for i in c["id"]][:4] == whole


# --- GitHub ---------------------------------------------------------------------------------------------

def test_github_rest_issues():
    assert sniff_format(GITHUB) == "github"
    fb = read_feedback(GITHUB)
    r = fb.records
    assert r["id"].tolist() == ["acme/notes#1287", "acme/notes#1284", "acme/notes#1283"]
    assert r["github_labels"].tolist() == ["bug|sync", "enhancement|ui", "bug"]
    assert set(r["source_detail"]) == {"github/acme/notes"} and r["row"].tolist() == [1, 4, 5]
    assert r["url"].tolist()[0] == "https://github.com/acme/notes/issues/1287"  # the web page, not the API URL
    assert r["text"].iloc[0].startswith("Notes not syncing between tablet and phone ### Steps")
    assert r["text"].iloc[1] == "Allow resizing the home-screen widget"  # body null: the title alone
    assert "<EMAIL>" in r["text"].iloc[2] and r["status"].iloc[2] == "closed"
    assert fb.skipped == {"pull request": 1, "bot issue": 1} and fb.rejected.empty


def test_github_gh_cli_output():
    assert sniff_format(GH) == "github"
    fb = read_feedback(GH)
    assert fb.records[["id", "author", "status", "github_labels"]].values.tolist() == [
        ["acme/notes#1287", "mkowalski", "OPEN", "bug|sync"], ["acme/notes#1284", "jlee-dev", "OPEN", "enhancement"]]
    assert fb.skipped == {"bot issue": 1}


def test_github_pages_lines_and_search(tmp_path):
    issues = json.loads(GITHUB.read_text())
    expected = ["acme/notes#1287", "acme/notes#1284", "acme/notes#1283"]
    slurp = tmp_path / "slurp.json"  # gh api --paginate --slurp: a list of pages
    slurp.write_text(json.dumps([issues[:2], issues[2:]]))
    lines = tmp_path / "issues.jsonl"  # gh api --paginate --jq '.[]'
    lines.write_text("\n".join(json.dumps(i) for i in issues) + "\n")
    search = tmp_path / "search.json"
    search.write_text(json.dumps({"total_count": 5, "incomplete_results": False, "items": issues}))
    for path in (slurp, lines, search):
        assert sniff_format(path) == "github", path
        fb = read_feedback(path)
        assert fb.records["id"].tolist() == expected and fb.records["row"].tolist() == [1, 4, 5], path
    pages = tmp_path / "paginate.json"  # gh api --paginate without --slurp: one array after another
    pages.write_text(json.dumps(issues[:2]) + json.dumps(issues[2:]))
    with pytest.raises(InputFileError, match="add --slurp"):
        read_feedback(pages)


def test_github_hostile_records(tmp_path):
    base = json.loads(GITHUB.read_text())[0]
    records = [
        base,
        "an issue as a string",
        {**base, "number": 2, "title": {"a": 1}},  # a title that is an object: rejected, never "{'a': 1}"
        {**base, "number": 3, "title": "", "body": None},
        {**base, "number": 4, "labels": True, "user": None},  # labels that are no list, a deleted user
        {**base, "number": 5, "user": {"login": "triage-helper", "type": "Bot"}},
        {**base, "number": 6, "pull_request": None},  # an explicit null is no pull request
        {"state": "open"},
        {**base},  # the same issue twice
    ]
    for rec in records[2:-2]:
        rec["html_url"] = f"https://github.com/acme/notes/issues/{rec['number']}"
    path = tmp_path / "issues.json"
    path.write_text(json.dumps(records))
    fb = read_feedback(path, format="github")
    assert fb.records["id"].tolist() == ["acme/notes#1287", "acme/notes#4", "acme/notes#6"]
    assert fb.records["author"].isna().tolist() == [False, True, False]
    assert fb.rejected[["row", "reason"]].values.tolist() == [
        [2, "issue is a str, not an object"], [3, "text is dict, not str"], [4, "missing text"],
        [8, "not a GitHub issue (no 'number' and no 'title')"], [9, "duplicate id"]]
    assert fb.skipped == {"bot issue": 1}


def test_github_without_urls_and_refusals(tmp_path):
    bare = tmp_path / "bare.json"  # gh issue list --json number,title,body
    bare.write_text(json.dumps([{"number": 3, "title": "Crash on start", "body": "Android 14"}]))
    assert sniff_format(bare) == "json"  # no issue URL: not recognised, named with format="github"
    fb = read_feedback(bare, format="github")
    assert fb.records[["id", "source_detail"]].values.tolist() == [["3", "github"]]
    error = tmp_path / "404.json"
    error.write_text(json.dumps({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}))
    with pytest.raises(InputFileError, match="holds a GitHub API error, not issues: 'Not Found'"):
        read_feedback(error, format="github")
    with pytest.raises(InputFileError, match="not a GitHub issues export"):
        read_feedback(ASC, format="github")
    tickets = tmp_path / "tickets.json"
    tickets.write_text(json.dumps([{"id": 1, "text": "Export fails"}]))
    with pytest.raises(InputFileError, match=r"its first record is an object with the keys \['id', 'text'\], not an issue"):
        read_feedback(tickets, format="github")


# --- App Store Connect ------------------------------------------------------------------------------------

def test_app_store_customer_reviews():
    assert sniff_format(ASC) == "app_store"
    fb = read_feedback(ASC)
    r = fb.records
    assert r[["author", "rating", "territory"]].values.tolist() == [
        ["notetaker_88", "2", "USA"], ["Ana S.", "5", "BRA"], ["k.tanaka", "3", "JPN"]]
    assert str(r["created_at"].iloc[0]) == "2026-01-04 19:20:31+00:00"  # -08:00 read as UTC
    assert r["text"].iloc[1] == "Love it"  # a body that repeats the title is not doubled
    assert set(r["source"]) == {"app_review"} and set(r["source_detail"]) == {"app_store"}
    assert fb.rejected[["row", "reason"]].values.tolist() == [[4, "placeholder text 'N/A'"]]


def test_app_store_pages_lines_and_one_review(tmp_path):
    page = json.loads(ASC.read_text())
    ids = [d["id"] for d in page["data"][:3]]
    pages = tmp_path / "pages.json"
    pages.write_text(json.dumps([{**page, "data": page["data"][:2]}, {**page, "data": page["data"][2:]}]))
    lines = tmp_path / "reviews.jsonl"
    lines.write_text("\n".join(json.dumps(d) for d in page["data"]) + "\n")
    page_lines = tmp_path / "pages.jsonl"
    page_lines.write_text(json.dumps({**page, "data": page["data"][:2]}) + "\n" + json.dumps({**page, "data": page["data"][2:]}))
    for path in (pages, lines, page_lines):
        fb = read_feedback(path, format="app_store")
        assert fb.records["id"].tolist() == ids and fb.rejected["row"].tolist() == [4], path
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"data": page["data"][0], "links": {"self": "x"}}))
    assert read_feedback(one, format="app_store").records["id"].tolist() == ids[:1]


def test_app_store_hostile_records_and_refusals(tmp_path):
    good = json.loads(ASC.read_text())["data"][0]
    doc = {"data": [good, {"type": "apps", "id": "1234567890", "attributes": {"name": "Notes"}},
                    {"type": "customerReviews", "id": "r3"}, [1, 2],
                    {**good, "id": "r5", "attributes": {**good["attributes"], "body": ["a", "b"]}}]}
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps(doc))
    fb = read_feedback(path)
    assert fb.records["id"].tolist() == [good["id"]]
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [
        [2, "1234567890", "not a customer review (type 'apps')"], [3, "r3", "customer review without attributes"],
        [4, None, "review is a list, not an object"], [5, "r5", "text is list, not str"]]
    error = tmp_path / "401.json"
    error.write_text(json.dumps({"errors": [{"status": "401", "code": "NOT_AUTHORIZED",
                                             "title": "Authentication credentials are missing or invalid.",
                                             "detail": "Provide a properly configured and signed bearer token"}]}))
    with pytest.raises(InputFileError, match="holds an App Store Connect API error, not reviews: 'Provide a properly"):
        read_feedback(error, format="app_store")
    with pytest.raises(InputFileError, match=r"its first record is an object with the keys \['url',"):
        read_feedback(GITHUB, format="app_store")
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"data": [], "links": {}, "meta": {"paging": {"total": 0, "limit": 50}}}))
    assert read_feedback(empty, format="app_store").records.empty


def test_new_readers_leave_other_formats_alone():
    assert sniff_format(FIX / "zendesk_tickets.json") == "zendesk"
    assert sniff_format(FIX / "intercom_conversations.json") == "intercom"
    assert [sniff_format(FIX / "messy" / f) for f in ("messy.csv", "messy.json", "messy.jsonl")] == ["csv", "json", "jsonl"]


def test_play_report_without_its_byte_order_mark(tmp_path):
    """A report re-saved as UTF-16 without the mark: refused naming the encoding, then read as a Play report once it
    is declared (sniffing read its header as UTF-8, so the declared read looked for a 'text' column)."""
    path = tmp_path / "r.csv"
    path.write_bytes(PLAY.read_bytes()[2:])
    with pytest.raises(EncodingError, match="UTF-16 without a byte-order mark"):
        read_feedback(path)
    assert sniff_format(path) == "google_play"
    assert len(read_feedback(path, encoding="utf-16-le").records) == 4


def test_github_format_refuses_gitlab_issues(tmp_path):
    gitlab = tmp_path / "gitlab.json"  # GitLab's issues API: "iid" and "web_url", no "number"
    gitlab.write_text(json.dumps([{"id": 91, "iid": 12, "title": "Crash on start", "description": "Android 14",
                                   "web_url": "https://gitlab.com/acme/notes/-/issues/12"}]))
    assert sniff_format(gitlab) == "json"
    with pytest.raises(InputFileError, match="not a GitHub issues export: its first record"):
        read_feedback(gitlab, format="github")


@pytest.mark.parametrize(("src", "ok", "bad"), [(PLAY, 4, 1), (GITHUB, 3, 0), (GH, 2, 0), (ASC, 3, 1)])
def test_new_exports_through_the_commands(tmp_path, hashed_cli, capsys, src, ok, bad):
    from feedback_nlp.cli import main

    out = tmp_path / "dupes.csv"
    assert main(["dedupe", "--in", str(src), "--out", str(out)]) == 0, capsys.readouterr().err
    assert f"rows in: {ok + bad} = used: {ok} + errors: {bad}" in capsys.readouterr().out


def test_github_pull_requests_from_gh_pr_list_are_skipped(tmp_path):
    """gh pr list --json number,title,url has no pull_request key: the PRs were read as issues (feedback)."""
    prs = tmp_path / "prs.json"
    prs.write_text(json.dumps([{"number": 12, "title": "Fix sync", "url": "https://github.com/acme/notes/pull/12"},
                               {"number": 13, "title": "Sync fails", "url": "https://github.com/acme/notes/issues/13"}]))
    fb = read_feedback(prs, format="github")
    assert fb.records["id"].tolist() == ["acme/notes#13"] and fb.skipped == {"pull request": 1}


def test_play_reports_joined_with_cat_and_crlf(tmp_path):
    jan = _play(tmp_path, _review("gp:A1", "Sync fails"), name="a.csv").read_bytes()
    feb = _play(tmp_path, _review("gp:A2", "Crash\r\non start"), name="b.csv").read_bytes()
    joined = tmp_path / "joined.csv"  # cat a.csv b.csv: b's byte-order mark and header sit inside the file
    joined.write_bytes(jan + feb)
    fb = read_feedback(joined)
    assert fb.records["id"].tolist() == ["gp:A1", "gp:A2"] and fb.records["text"].tolist()[1] == "Crash on start"
    assert fb.rejected[["row", "reason"]].values.tolist() == [[3, "the header line repeated (files joined together?)"]]
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(("\r\n".join([PLAY_HEADER, _review("gp:A1", "Sync fails")]) + "\r\n").encode("utf-16"))
    assert read_feedback(crlf).records[["id", "text", "rating"]].values.tolist() == [["gp:A1", "Sync fails", "3"]]


def test_play_review_link_keeps_its_app_id():
    """The Play Console's app ids are 19 digits from 4; one that passes Luhn (AntennaPod's) made every review link of
    the app '.../app/<CARD>/user-feedback/...'."""
    from feedback_nlp.cleaning import redact_pii

    link = ("https://play.google.com/console/u/0/developers/8008695526664634386/app/4974638472012894302/user-feedback/"
            "review-details?reviewId=gp:AOqpTOF0Hj5dChzt&corpus=PUBLIC_REVIEWS")
    assert redact_pii(link) == link
    assert redact_pii("card 4974638472012894302 declined") == "card <CARD> declined"  # the number itself is one


def test_prepared_tables_are_not_taken_for_exports(tmp_path):
    """A table someone prepared from an export, with a text column of its own, is read as a table: auto must not
    swap its text for the issue's title or the review's text."""
    prepared = tmp_path / "triaged.json"
    prepared.write_text(json.dumps([{"number": 1, "title": "Sync", "url": "https://github.com/acme/notes/issues/1",
                                     "text": "Sync fails on the tablet (summary by support)"}]))
    assert sniff_format(prepared) == "json"
    assert read_feedback(prepared).records["text"].tolist() == ["Sync fails on the tablet (summary by support)"]
    no_body = tmp_path / "links.json"  # number, title and URL only: a list of links, not an issues export
    no_body.write_text(json.dumps([{"number": 1, "title": "Sync", "url": "https://github.com/acme/notes/issues/1"}]))
    assert sniff_format(no_body) == "json"
    play = _play(tmp_path, _review("gp:A1", "Sync fails"))
    play.write_bytes(play.read_bytes().decode("utf-16").replace("Review Link\n", "Review Link,text\n", 1)
                     .replace("PUBLIC_REVIEWS\n", "PUBLIC_REVIEWS,Sync (summary)\n").encode("utf-16"))
    assert sniff_format(play) == "csv"


@pytest.mark.parametrize(("name", "fmt", "rows"), [
    ("gh_issue_list.json", "github", 2), ("app_store_reviews.json", "app_store", 3),
    ("zendesk_tickets.json", "zendesk", 4), ("intercom_conversations.json", "intercom", 4),
    ("zendesk_tickets.jsonl", "zendesk", 3)])
def test_json_exports_saved_as_utf16_are_recognised(tmp_path, name, fmt, rows):
    """Windows PowerShell's '>' (gh issue list --json ... > issues.json) writes UTF-16 with a byte-order mark: auto
    read its bytes as UTF-8, recognised no export, and the file failed with "text column 'text' not found"."""
    path = tmp_path / name
    path.write_bytes((FIX / name).read_text(encoding="utf-8").encode("utf-16"))
    assert sniff_format(path) == fmt
    assert len(read_feedback(path).records) == rows


def test_github_url_that_is_no_string_is_dropped(tmp_path):
    path = tmp_path / "issues.json"
    path.write_text(json.dumps([{"number": 10, "title": "Crash", "body": "on start", "html_url": ["x"], "url": None}]))
    assert read_feedback(path, format="github").records[["id", "url"]].values.tolist() == [["10", None]]


def test_other_real_shapes(tmp_path):
    ghe = tmp_path / "ghe.json"  # GitHub Enterprise: the API under /api/v3, the web URL on the host
    ghe.write_text(json.dumps([{"number": 5, "title": "Slow", "body": "Search takes 10 s", "user": {"login": "a"},
                                "url": "https://ghe.acme.com/api/v3/repos/o/r/issues/5",
                                "html_url": "https://ghe.acme.com/o/r/issues/5"}]))
    assert read_feedback(ghe).records[["id", "url", "source_detail"]].values.tolist() == [
        ["o/r#5", "https://ghe.acme.com/o/r/issues/5", "github/o/r"]]
    api = tmp_path / "api.json"  # only the API URL: the web page is built from it
    api.write_text(json.dumps([{"number": 5, "title": "Slow", "body": "Search takes 10 s", "user": {"login": "a"},
                                "url": "https://api.github.com/repos/o/r/issues/5"}]))
    assert read_feedback(api).records["url"].tolist() == ["https://github.com/o/r/issues/5"]
    page = json.loads(ASC.read_text())  # a page with the developer responses side-loaded
    page["included"] = [{"type": "customerReviewResponses", "id": "r1", "attributes": {"responseBody": "Thanks!"}}]
    included = tmp_path / "included.json"
    included.write_text(json.dumps(page))
    assert len(read_feedback(included).records) == 3
    old = tmp_path / "old.csv"  # an older report without Review Link: named by format, ids from the submit time
    old.write_bytes(("Package Name,Device,Review Submit Date and Time,Review Submit Millis Since Epoch,Star Rating,"
                     "Review Title,Review Text\ncom.x,a52q,2016-06-08T19:04:33Z,1465412673276,2,,Era muito bom\n")
                    .encode("utf-16"))
    assert read_feedback(old, format="google_play").records[["id", "text"]].values.tolist() == [
        ["com.x-1465412673276", "Era muito bom"]]
