"""Hostile and unusual inputs, round 17c: vendors' real exports (Qualtrics' three header rows, Intercom parts
without a word, Google Play reports re-saved with Excel's "sep=" line, ...) read through the connectors. Each test
failed before its fix."""

from __future__ import annotations

import json
import struct
import unicodedata
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from feedback_nlp import EncodingError, InputFileError, read_feedback
from feedback_nlp.connectors import sniff_format
from feedback_nlp.connectors.google_play import PLAY_COLUMNS
from feedback_nlp.connectors.survey import read_survey
from feedback_nlp.records import parse_timestamp

# --- 1. Qualtrics: the question texts and ImportId rows are header rows, its dates are in the export's zone ------

_QUALTRICS = (
    "StartDate,EndDate,Status,IPAddress,Progress,Finished,RecordedDate,ResponseId,Q1,Q2_TEXT\r\n"
    "Start Date,End Date,Response Type,IP Address,Progress,Finished,Recorded Date,Response ID,"
    "How likely are you to recommend us?,What is the one thing we should improve?\r\n"
    '"{""ImportId"":""startDate"",""timezone"":""America/Denver""}","{""ImportId"":""endDate"",""timezone"":'
    '""America/Denver""}","{""ImportId"":""status""}","{""ImportId"":""ipAddress""}","{""ImportId"":""progress""}",'
    '"{""ImportId"":""finished""}","{""ImportId"":""recordedDate"",""timezone"":""America/Denver""}",'
    '"{""ImportId"":""_recordId""}","{""ImportId"":""QID1""}","{""ImportId"":""QID2_TEXT""}"\r\n'
    "2026-01-05 09:12:00,2026-01-05 09:14:00,IP Address,1.2.3.4,100,True,2026-01-05 09:14:01,R_1abc,9,"
    "The export to CSV keeps timing out on big projects\r\n"
    '2026-01-06 10:00:00,2026-01-06 10:03:00,IP Address,1.2.3.5,100,True,2026-01-06 10:03:01,R_2def,3,"Search is slow'
    '\r\nand misses exact matches"\r\n'
    "2026-07-07 11:00:00,2026-07-07 11:03:00,IP Address,1.2.3.6,100,True,2026-07-07 11:03:01,R_3ghi,7,"
    "Dark mode please for the web app\r\n")


def _qualtrics(tmp_path: Path) -> Path:
    path = tmp_path / "qualtrics.csv"
    path.write_bytes(_QUALTRICS.encode("utf-8-sig"))
    return path


def test_qualtrics_header_rows_are_no_responses(tmp_path: Path) -> None:
    # before: the question-text row and the ImportId row were two responses each, rejected as "unparseable date
    # 'End Date'" (or kept, with questions=...: the question's own text and '{"ImportId":"QID2_TEXT"}' as feedback)
    fb = read_feedback(_qualtrics(tmp_path), format="survey")
    assert fb.rejected.empty
    assert fb.records["id"].tolist() == ["R_1abc-q10", "R_2def-q10", "R_3ghi-q10"]
    assert fb.records["row"].tolist() == [4, 5, 7]
    assert set(fb.records["source_detail"]) == {"What is the one thing we should improve?"}
    assert fb.records["text"].tolist()[1] == "Search is slow and misses exact matches"


def test_qualtrics_dates_read_in_the_exports_time_zone(tmp_path: Path) -> None:
    # before: "2026-01-05 09:14:00" (America/Denver) was read as 09:14 UTC, seven hours early
    fb = read_feedback(_qualtrics(tmp_path), format="survey")
    assert fb.records["created_at"].tolist() == [pd.Timestamp("2026-01-05 16:14:00", tz="UTC"),
                                                 pd.Timestamp("2026-01-06 17:03:00", tz="UTC"),
                                                 pd.Timestamp("2026-07-07 17:03:00", tz="UTC")]  # summer: UTC-6


def test_qualtrics_questions_named_by_their_column_ids(tmp_path: Path) -> None:
    export = read_survey(_qualtrics(tmp_path), questions=["Q2_TEXT"])
    assert export.frame["text"].tolist()[0] == "The export to CSV keeps timing out on big projects"
    assert len(export.frame) == 3


# --- 2. Intercom: a rating or a screenshot sent without a word is skipped and counted, not an error ---------------


def test_intercom_rating_and_attachment_parts_without_text_are_skipped(tmp_path: Path) -> None:
    # before: each was a rejected row "missing text", one per rated conversation and per screenshot
    def part(ident: str, part_type: str, body: str | None, **extra: object) -> dict:
        return {"type": "conversation_part", "id": ident, "part_type": part_type, "body": body,
                "created_at": 1767607500, "author": {"type": "user", "id": "u1", "name": "Jane"}, **extra}

    conversation = {"type": "conversation", "id": "555", "created_at": 1767607320, "state": "closed",
                    "source": {"type": "conversation", "id": "900", "body": "<p>Invoices will not export</p>",
                               "author": {"type": "user", "id": "u1", "name": "Jane"}},
                    "conversation_rating": {"rating": 5, "remark": None},
                    "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [
                        part("901", "comment", None, attachments=[{"type": "upload", "name": "s.png"}]),
                        part("902", "comment", "<p><br></p>", attachments=[{"type": "upload", "name": "t.png"}]),
                        part("903", "conversation_rating_changed", None),
                        part("904", "comment", "<p>Still broken in Chrome 120</p>"),
                        part("905", "comment", None)]}}  # no body, no file: still the validator's to reject
    path = tmp_path / "intercom.json"
    path.write_text(json.dumps({"type": "conversation.list", "conversations": [conversation]}))
    fb = read_feedback(path, format="intercom")
    assert fb.records["id"].tolist() == ["900", "904"]
    assert fb.rejected[["id", "reason"]].values.tolist() == [["905", "missing text"]]
    assert fb.skipped["attachment without text"] == 2 and fb.skipped["rating without text"] == 1


# --- 3. "GMT+1" (Google Forms' CSV, JavaScript dates) is one hour east of UTC, not west -------------------------


def test_google_forms_gmt_offset_is_read_east_of_utc(tmp_path: Path) -> None:
    # before: pandas read "GMT+1" the POSIX way (UTC-1): 09:12 GMT+1 became 10:12 UTC instead of 08:12
    path = tmp_path / "google_forms.csv"
    path.write_bytes(
        'sep=,\r\n"Timestamp","Email Address","Which features do you use?","What is frustrating?"\r\n'
        '"2026/01/05 9:12:33 AM GMT+1","a@x.io","Search;Export","The export crashes when the report has images"\r\n'
        '"2026/01/05 10:12:33 PM GMT-5","b@x.io","Search","Café sync is slow on mobile data connections"\r\n'
        '"2026/01/06 11:00:00 AM GMT+05:30","c@x.io","Export","Dark mode for the editor would be lovely"\r\n'
        .encode("cp1252"))
    fb = read_feedback(path, format="survey", encoding="cp1252")
    assert fb.records["created_at"].tolist() == [pd.Timestamp("2026-01-05 08:12:33", tz="UTC"),
                                                 pd.Timestamp("2026-01-06 03:12:33", tz="UTC"),
                                                 pd.Timestamp("2026-01-06 05:30:00", tz="UTC")]
    assert parse_timestamp("Mon Jan 05 2026 09:12:00 GMT+0100 (CET)") == pd.Timestamp("2026-01-05 08:12", tz="UTC")
    assert parse_timestamp("2026-01-05 09:12 UTC") == pd.Timestamp("2026-01-05 09:12", tz="UTC")


# --- 4. Slack: a zip without the UTF-8 flag, a channel folder no list names ------------------------------------


def _slack_zip(path: Path, files: dict[str, object], utf8_flag: bool = True) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, value in files.items():
            zf.writestr(name, json.dumps(value))
    if not utf8_flag:  # as macOS's ditto writes it: UTF-8 names, flag 0x800 not set (Python reads them as cp437)
        data = bytearray(path.read_bytes())
        for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.find(signature)
            while at >= 0:
                flags = struct.unpack_from("<H", data, at + offset)[0]
                struct.pack_into("<H", data, at + offset, flags & ~0x800)
                at = data.find(signature, at + 4)
        path.write_bytes(bytes(data))
    return path


def _message(ts: str, text: str) -> dict[str, str]:
    return {"type": "message", "user": "U1", "text": text, "ts": ts}


_SLACK = {"Acme export/channels.json": [{"id": "C1", "name": "feedback"}, {"id": "C2", "name": "ñandú"}],
          "Acme export/users.json": [{"id": "U1", "name": "ana"}],
          "Acme export/feedback/2026-01-05.json": [_message("1767607320.000200", "Export fails")],
          "Acme export/ñandú/2026-01-05.json": [_message("1767607320.000300", "Sync fails on the Spanish keyboard")],
          "__MACOSX/Acme export/._channels.json": "AppleDouble"}


def test_slack_zip_without_utf8_flag_keeps_non_ascii_channels(tmp_path: Path) -> None:
    # before: the folder read as "├▒and├║" matched no channel and its messages were left out without a word
    fb = read_feedback(_slack_zip(tmp_path / "export.zip", _SLACK, utf8_flag=False), format="slack")
    assert fb.records["id"].tolist() == ["C1-1767607320.000200", "C2-1767607320.000300"]
    assert fb.records["source_detail"].tolist() == ["#feedback", "#ñandú"]
    assert fb.rejected.empty


def test_slack_folder_of_an_unlisted_channel_is_rejected_not_dropped(tmp_path: Path) -> None:
    # before: a private channel's folder, its groups.json left out of the zip, was not read and nothing said so
    files = {**_SLACK, "Acme export/secret/2026-01-05.json": [_message("1767607320.000400", "Pricing is unclear")],
             "Acme export/secret/2026-01-06.json": [_message("1767693720.000500", "Invoices are wrong")]}
    fb = read_feedback(_slack_zip(tmp_path / "export.zip", files), format="slack")
    assert len(fb.records) == 2
    assert fb.rejected["row"].tolist() == [3, 4]
    assert all("'secret' is no channel" in r for r in fb.rejected["reason"])


# --- 5. Google Play: a report re-saved with Excel's "sep=" line is still recognised ------------------------------


def test_google_play_report_with_excel_sep_line_is_recognised(tmp_path: Path) -> None:
    # before: sniffing read "sep=;" as the header, the report was read as a plain table: "text column 'text' not
    # found"
    header = ";".join(PLAY_COLUMNS)
    review = ("com.acme.notes;412;4.12.0;en;a52q;2026-01-03T10:15:22Z;1767435322000;;;5;;\"Love it;\r\nbut sync is "
              "slow\";;;;http://play.google.com/console/developers/1/app/2/user-feedback/review-details?reviewId="
              "gp:AOqpTOA1&corpus=PUBLIC_REVIEWS")
    path = tmp_path / "reviews_reviews_com.acme.notes_202601.csv"
    path.write_bytes(f"sep=;\r\n{header}\r\n{review}\r\n".encode("utf-16"))
    assert sniff_format(path) == "google_play"
    fb = read_feedback(path)
    assert fb.records[["id", "text", "source_detail", "row"]].values.tolist() == [
        ["gp:AOqpTOA1", "Love it; but sync is slow", "google_play/com.acme.notes", 3]]
    assert fb.records["rating"].tolist() == ["5"]


# --- 6. a survey whose respondent ids are numbers (Parquet) keeps them -----------------------------------------


def test_survey_numeric_respondent_ids_are_kept(tmp_path: Path) -> None:
    # before: an integer "Respondent ID" was no str, so every answer was named by its row number ("1-q2")
    path = tmp_path / "survey.parquet"
    pd.DataFrame({"Respondent ID": [114239203954, 114239203955, None],
                  "What should we improve?": ["Search should understand typos please",
                                              "Faster export of long reports to PDF",
                                              "Dark mode for the editor would be nice"],
                  "Rate": [1, 2, 3]}).to_parquet(path)  # None: the ids are stored as floats
    fb = read_feedback(path, format="survey")
    assert fb.records["id"].tolist() == ["114239203954-q2", "114239203955-q2", "3-q2"]


def test_intercom_api_1_conversation_message_is_the_opening(tmp_path: Path) -> None:
    # before: API 1.x names the opening message "conversation_message"; it was left out without a word, and with it
    # the customer's request (only the replies were read)
    conversation = {"type": "conversation", "id": "147", "created_at": 1400850973, "open": True,
                    "conversation_message": {"type": "conversation_message", "id": "2001", "subject": "",
                                             "body": "<p>The CSV import drops the last column</p>", "url": None,
                                             "author": {"type": "user", "id": "u9"}, "attachments": []},
                    "conversation_parts": {"type": "conversation_part.list", "conversation_parts": [
                        {"type": "conversation_part", "id": "2002", "part_type": "comment", "created_at": 1400851000,
                         "body": "<p>Which file?</p>", "author": {"type": "admin", "id": "a1"}}]}}
    path = tmp_path / "intercom_v1.json"
    path.write_text(json.dumps({"type": "conversation.list", "conversations": [conversation]}))
    fb = read_feedback(path)
    assert fb.records[["id", "text", "conversation_id"]].values.tolist() == [
        ["2001", "The CSV import drops the last column", "147"]]
    assert fb.records["created_at"].tolist() == [pd.Timestamp(1400850973, unit="s", tz="UTC")]
    assert fb.skipped == {"agent reply": 1}


# --- 7. Zendesk and Intercom pages saved as a list, or one page per line ---------------------------------------


def _ticket(i: int) -> dict:
    return {"id": i, "subject": f"Subject {i}", "description": f"Broken thing number {i}", "via": {"channel": "web"},
            "created_at": "2026-01-05T09:00:00Z", "status": "open"}


def _conversation(i: int) -> dict:
    return {"type": "conversation", "id": str(i), "created_at": 1767607320,
            "source": {"id": f"s{i}", "body": f"<p>Message {i} is here</p>", "author": {"type": "user", "id": "u"}},
            "conversation_parts": {"conversation_parts": []}}


def test_zendesk_pages_saved_as_a_list_or_lines_are_read_ticket_by_ticket(tmp_path: Path) -> None:
    # before: each page was one record without an id: two rows "missing id", the four tickets lost
    pages = [{"tickets": [_ticket(1), _ticket(2)], "next_page": "https://acme.zendesk.com/api/v2/tickets.json?page=2"},
             {"tickets": [_ticket(3), "not a ticket", _ticket(4)], "next_page": None}]
    (tmp_path / "pages.json").write_text(json.dumps(pages))
    (tmp_path / "pages.jsonl").write_text("\n".join(json.dumps(p) for p in pages) + "\n")
    for name in ("pages.json", "pages.jsonl"):
        assert sniff_format(tmp_path / name) == "zendesk"  # was read as a plain table: "text column not found"
        fb = read_feedback(tmp_path / name, format="zendesk")
        assert fb.records[["id", "row"]].values.tolist() == [["1", 1], ["2", 2], ["3", 3], ["4", 5]]
        assert fb.rejected[["row", "reason"]].values.tolist() == [[4, "ticket is a str, not an object"]]


def test_intercom_pages_saved_as_a_list_or_lines_are_read(tmp_path: Path) -> None:
    # before: each page was a conversation without messages, skipped and counted: both conversations lost
    pages = [{"type": "conversation.list", "conversations": [_conversation(1)]},
             {"type": "conversation.list", "conversations": [_conversation(2)]}]
    (tmp_path / "pages.json").write_text(json.dumps(pages))
    (tmp_path / "pages.jsonl").write_text("\n".join(json.dumps(p) for p in pages) + "\n")
    for name in ("pages.json", "pages.jsonl"):
        assert sniff_format(tmp_path / name) == "intercom"
        fb = read_feedback(tmp_path / name, format="intercom")
        assert fb.records[["id", "text", "conversation_id"]].values.tolist() == [
            ["s1", "Message 1 is here", "1"], ["s2", "Message 2 is here", "2"]]
        assert fb.skipped == {} and fb.rejected.empty


# --- 8. a UTF-16 report cut short: "truncated", not "at byte 0" with advice about byte-order marks ----------------


def test_truncated_utf16_report_says_it_is_truncated(tmp_path: Path) -> None:
    # before: "is not valid utf-16: truncated data at byte 0; check the --encoding (without a byte-order mark:
    # utf-16-le or utf-16-be)" for a report with a byte-order mark whose last byte was cut off
    header = ",".join(PLAY_COLUMNS)
    review = "com.acme.notes,,,en,,2026-01-03T10:15:22Z,,,,5,,Love it,,,,"
    path = tmp_path / "reviews_reviews_com.acme.notes_202601.csv"
    path.write_bytes(f"{header}\r\n{review}\r\n{review}\r\n".encode("utf-16")[:-1])
    with pytest.raises(EncodingError) as info:
        read_feedback(path, format="google_play")
    message = str(info.value)
    assert "truncated?" in message and "at byte 0" not in message and "byte-order mark" not in message


# --- 9. a cp1252 file with classic-Mac line ends: the right line, and not a Mac code page as the guess -----------


def test_undeclared_cp1252_with_bare_cr_names_its_line_and_cp1252(tmp_path: Path) -> None:
    # before: "byte 0x96 at line 1 ... (it looks like mac-latin2)": a file of CR line ends was all line 1, and the
    # encoding suggested read "accents – café" as "accents Ė cafť"
    path = tmp_path / "survey.csv"
    path.write_bytes('#,What should we improve?,Submit Date (UTC)\r"a1","The export\rcuts off long descriptions",'
                     '2026-01-05 09:03:12\r"b2","Search is slow and ignores accents – café",2026-01-05 10:15:40\r'
                     .encode("cp1252"))
    with pytest.raises(EncodingError, match=r"byte 0x96 at line 4 .*it looks like cp1252"):
        read_feedback(path, format="survey")
    fb = read_feedback(path, format="survey", encoding="cp1252")
    assert fb.records["text"].tolist()[1] == "Search is slow and ignores accents – café"


# --- 10. a zipped export given to a reader of files: "unzip it", not "declare encoding='cp1252'" -----------------


@pytest.mark.parametrize("fmt", ["zendesk", "intercom", "survey", "google_play", "github", "app_store", "csv", "jsonl"])
def test_zipped_export_given_to_a_file_reader_says_unzip(tmp_path: Path, fmt: str) -> None:
    # before: "is not valid UTF-8: byte 0x83 at line 1; declare its encoding, e.g. encoding='cp1252'": declared so,
    # the compressed bytes would be read as rows
    path = tmp_path / "export-2026-01-05.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tickets.json", "\n".join(json.dumps(_ticket(i)) for i in range(50)))
    with pytest.raises(InputFileError, match="is a zip file: unzip it"):
        read_feedback(path, format=fmt)
    workbook = tmp_path / "responses.xlsx"
    workbook.write_bytes(path.read_bytes())
    with pytest.raises(InputFileError, match="is an Excel workbook: save it as CSV"):
        read_feedback(workbook, format=fmt)


def test_qualtrics_legacy_export_header_row_is_no_response(tmp_path: Path) -> None:
    # before: the second row (ResponseID, ..., the question texts) was a response: "What should we improve?" kept
    # as feedback, every id a line number ("3-q12"), no created_at
    path = tmp_path / "legacy.csv"
    path.write_text(
        "V1,V2,V3,V4,V5,V6,V7,V8,V9,V10,Q1,Q2\r\n"
        "ResponseID,ResponseSet,Name,ExternalDataReference,EmailAddress,IPAddress,Status,StartDate,EndDate,Finished,"
        "How likely are you to recommend us?,What should we improve?\r\n"
        "R_1abc,Default Response Set,Anonymous,,,1.2.3.4,0,2016-01-05 09:12:00,2016-01-05 09:14:00,1,9,"
        "The export to CSV keeps timing out on big projects\r\n"
        "R_2def,Default Response Set,Anonymous,,,1.2.3.5,0,2016-01-06 10:00:00,2016-01-06 10:03:00,1,3,"
        "Search is slow and misses exact matches\r\n"
        "R_3ghi,Default Response Set,Anonymous,,,1.2.3.6,0,2016-01-07 11:00:00,2016-01-07 11:03:00,1,7,"
        "Dark mode please for the web app\r\n", newline="")
    fb = read_feedback(path, format="survey")
    assert fb.records["id"].tolist() == ["R_1abc-q12", "R_2def-q12", "R_3ghi-q12"]
    assert set(fb.records["source_detail"]) == {"What should we improve?"}
    assert fb.records["created_at"].tolist()[0] == pd.Timestamp("2016-01-05 09:14", tz="UTC")
    assert fb.rejected.empty


def test_slackbot_messages_are_bot_messages_without_a_users_entry(tmp_path: Path) -> None:
    # before: users.json seldom lists Slackbot, so its reminders were read as a person's feedback
    files = {**_SLACK, "Acme export/feedback/2026-01-05.json": [
        _message("1767607320.000200", "Export fails"),
        {"type": "message", "user": "USLACKBOT", "text": "Reminder: fill in the quarterly survey.",
         "ts": "1767607400.000300"}]}
    fb = read_feedback(_slack_zip(tmp_path / "export.zip", files), format="slack")
    assert fb.records["text"].tolist() == ["Export fails", "Sync fails on the Spanish keyboard"]
    assert fb.skipped == {"bot message": 1}


def test_slack_channel_folder_in_decomposed_unicode_is_the_channel(tmp_path: Path) -> None:
    # before: a folder unpacked on macOS (HFS+ decomposes "ñ" to "n" + U+0303) and zipped again matched no channel
    files = {name.replace("ñandú", unicodedata.normalize("NFD", "ñandú")): value for name, value in _SLACK.items()}
    fb = read_feedback(_slack_zip(tmp_path / "export.zip", files), format="slack")
    assert fb.records["source_detail"].tolist() == ["#feedback", "#ñandú"]
    assert fb.rejected.empty


def test_survey_contact_questions_are_not_feedback(tmp_path: Path) -> None:
    # before: "What is your name?", "Company name", "Job title" (wordy, all different) were free-text questions:
    # every respondent's name became a feedback row
    path = tmp_path / "form.csv"
    path.write_text("Timestamp,What is your name?,Company name,Job title,What should we improve?\n"
                    "2026-01-05 09:00,Jane Doe,Globex Corp,Product Manager,Search is slow on big projects\n"
                    "2026-01-05 10:00,Bob Smith,Initech Inc,Senior Engineer,Export breaks on long reports\n"
                    "2026-01-05 11:00,Ana Souza,Acme Ltd,Head of Support,Dark mode for the editor please\n")
    fb = read_feedback(path, format="survey")
    assert set(fb.records["source_detail"]) == {"What should we improve?"}
    assert len(fb.records) == 3


def test_zendesk_search_results_that_are_no_tickets_say_so(tmp_path: Path) -> None:
    # before: a user found by the Search API (query without type:ticket) was a ticket rejected as "missing text"
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"results": [{**_ticket(1), "result_type": "ticket"},
                                            {"id": 9, "name": "Jane Doe", "result_type": "user"}],
                                "count": 2, "next_page": None}))
    fb = read_feedback(path, format="zendesk")
    assert fb.records["id"].tolist() == ["1"]
    assert fb.rejected[["id", "reason"]].values.tolist() == [["9", "a search result of type 'user', not a ticket"]]


def test_intercom_parts_cut_off_by_the_api_are_counted(tmp_path: Path) -> None:
    # before: a conversation exported with 2 of its 40 parts (the API returns at most 500; the list endpoint none)
    # lost the other 38 without a word
    conversation = _conversation(1)
    conversation["conversation_parts"] = {"type": "conversation_part.list", "total_count": 40, "conversation_parts": [
        {"type": "conversation_part", "id": f"p{i}", "part_type": "comment", "body": f"<p>Reply number {i}</p>",
         "created_at": 1767607400, "author": {"type": "user", "id": "u"}} for i in range(2)]}
    path = tmp_path / "intercom.json"
    path.write_text(json.dumps({"type": "conversation.list", "conversations": [conversation]}))
    fb = read_feedback(path)
    assert len(fb.records) == 3
    assert fb.skipped == {"part not in the export": 38}


def test_zendesk_one_page_of_the_api_saved_alone_counts_the_rest(tmp_path: Path) -> None:
    # before: the first page of GET /api/v2/tickets.json (100 of 2,350 tickets) was read as the whole export,
    # the other tickets lost without a word
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps({"tickets": [_ticket(i) for i in range(1, 4)], "count": 2350,
                                "next_page": "https://acme.zendesk.com/api/v2/tickets.json?page=2",
                                "previous_page": None}))
    fb = read_feedback(path)
    assert len(fb.records) == 3
    assert fb.skipped == {"ticket not in the export (one page of the API saved alone?)": 2347}
    whole = tmp_path / "whole.json"  # the last page, or an export of everything: nothing is missing
    whole.write_text(json.dumps({"tickets": [_ticket(1)], "count": 1, "next_page": None}))
    assert read_feedback(whole).skipped == {}


def test_app_store_one_page_of_the_api_saved_alone_counts_the_rest(tmp_path: Path) -> None:
    # before: the first page of GET /v1/apps/{id}/customerReviews (links.next set, meta.paging.total 250) was read
    # as the whole export, the other reviews lost without a word
    review = {"type": "customerReviews", "id": "r1", "attributes": {
        "rating": 5, "title": "Great", "body": "Love the widgets", "reviewerNickname": "jo",
        "createdDate": "2026-01-05T09:12:00-07:00", "territory": "USA"}}
    path = tmp_path / "reviews.json"
    path.write_text(json.dumps({"data": [review], "links": {
        "self": "https://api.appstoreconnect.apple.com/v1/apps/1/customerReviews",
        "next": "https://api.appstoreconnect.apple.com/v1/apps/1/customerReviews?cursor=AQ"},
        "meta": {"paging": {"total": 250, "limit": 1}}}))
    fb = read_feedback(path)
    assert fb.records[["id", "rating"]].values.tolist() == [["r1", "5"]]
    assert fb.records["created_at"].tolist() == [pd.Timestamp("2026-01-05 16:12", tz="UTC")]
    assert fb.skipped == {"review not in the export (one page of the API saved alone?)": 249}


def test_github_search_page_saved_alone_counts_the_rest(tmp_path: Path) -> None:
    # before: one page of GET /search/issues (30 of total_count 412) was read as the whole export
    issue = {"url": "https://api.github.com/repos/acme/notes/issues/12", "number": 12, "title": "Sync fails",
             "body": "Steps to reproduce", "user": {"login": "mk"}, "created_at": "2026-01-05T09:12:00Z"}
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"total_count": 412, "incomplete_results": False, "items": [issue]}))
    fb = read_feedback(path)
    assert fb.records["id"].tolist() == ["acme/notes#12"]
    assert fb.skipped == {"issue not in the export (one page of the search API saved alone?)": 411}


def test_surveymonkey_label_row_in_another_language_is_no_response(tmp_path: Path) -> None:
    # before: only "Response"/"Open-Ended Response" marked the label row: in German ("Offene Antwort") it was a
    # response, and "Offene Antwort" was kept as feedback
    path = tmp_path / "surveymonkey_de.csv"
    path.write_text(
        "Respondent ID,Collector ID,Start Date,End Date,IP Address,Welche Tools nutzen Sie?,,Was sollten wir verbessern?\r\n"
        ",,,,,Slack,Jira,Offene Antwort\r\n"
        "114239203954,431,01/05/2026 09:12:00 AM,01/05/2026 09:14:00 AM,1.2.3.4,Slack,,Die Suche sollte Tippfehler "
        "verstehen\r\n"
        "114239203955,431,01/05/2026 10:12:00 AM,01/05/2026 10:14:00 AM,1.2.3.5,,Jira,Schnellerer Export langer "
        "Berichte\r\n", newline="")
    fb = read_feedback(path, format="survey")
    assert fb.records["id"].tolist() == ["114239203954-q8", "114239203955-q8"]
    assert "Offene Antwort" not in fb.records["text"].tolist()
    first = tmp_path / "first_without_id.csv"  # a response without an id is still a response: it has a date
    first.write_text("Respondent ID,End Date,What should we improve?\n"
                     ",01/05/2026 09:14:00 AM,Search should understand typos please\n"
                     "114239203955,01/05/2026 10:14:00 AM,Faster export of long reports to PDF\n"
                     "114239203956,01/05/2026 11:14:00 AM,Dark mode for the editor would be nice\n")
    assert read_feedback(first, format="survey").records["id"].tolist() == [
        "2-q3", "114239203955-q3", "114239203956-q3"]
