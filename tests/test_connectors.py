"""The four vendor connectors on realistic exports built from each vendor's documented format
(tests/fixtures/ingest/), through read_feedback so that they share the validator."""

import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from feedback_nlp import InputFileError, InvalidInputError, read_feedback
from feedback_nlp.connectors.slack import slack_to_text
from feedback_nlp.connectors.survey import free_text_questions, read_survey

FIX = Path(__file__).parent / "fixtures" / "ingest"
SLACK = FIX / "slack_export"


def _zip(folder: Path, dest: Path, top: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for p in sorted(folder.rglob("*.json")):
            zf.write(p, top + p.relative_to(folder).as_posix())
    return dest


# --- Slack ----------------------------------------------------------------------------------------

def test_slack_one_row_per_human_message():
    fb = read_feedback(SLACK)  # format auto: a folder with channels.json is a Slack export
    r = fb.records
    assert r["id"].tolist() == [
        "C07FEEDB4CK-1767607320.000200", "C07FEEDB4CK-1767608100.000300", "C07FEEDB4CK-1767609000.000400",
        "C07FEEDB4CK-1767610000.000600", "C07FEEDB4CK-1767610400.000800", "C07FEEDB4CK-1767694000.000400",
        "C07ESCAL8TN-1767611000.000200"]
    assert set(r["source"]) == {"slack"}
    assert r["source_detail"].tolist()[-1] == "#support-escalations"
    # joins, the bot, the topic change, the deleted tombstone and the file-only upload are skipped and counted
    assert fb.skipped == {"channel join": 2, "bot message": 1, "file without text": 1, "channel event": 1,
                          "deleted message": 1}
    # the "n/a" message is a placeholder: rejected with its message number, not dropped
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [
        [11, "C07FEEDB4CK-1767693800.000300", "placeholder text 'n/a'"]]


def test_slack_markup_threads_times_and_authors():
    r = read_feedback(SLACK).records.set_index("id")
    parent = r.loc["C07FEEDB4CK-1767607320.000200"]
    assert "@Tom Lee can we share a date? They read the pricing page and expected it on Pro" in parent["text"]
    assert parent["author"] == "Maria Garcia" and parent["thread_id"] == "C07FEEDB4CK-1767607320.000200"
    reply = r.loc["C07FEEDB4CK-1767608100.000300"]
    assert reply["thread_id"] == "C07FEEDB4CK-1767607320.000200"  # linked to its parent
    broadcast = r.loc["C07FEEDB4CK-1767609000.000400"]
    assert broadcast["text"].startswith("Two more accounts want SSO & SCIM") and "<EMAIL>" in broadcast["text"]
    assert broadcast["author"] == "priya"  # no real name: the display name
    assert str(parent["created_at"]) == "2026-01-05 10:02:00.000200+00:00"  # ts, microseconds kept, UTC
    edited = r.loc["C07FEEDB4CK-1767610000.000600"]
    assert edited["edited_at"] == "1767610200.000000" and "#support-escalations too" in edited["text"]
    assert "<PHONE>" in r.loc["C07FEEDB4CK-1767694000.000400", "text"]  # a message with a file and text is kept


def test_slack_zip_equals_folder(tmp_path):
    folder = read_feedback(SLACK)
    for top in ("", "Acme Slack export Jan 1 2026 - Jan 7 2026/"):  # Slack's zips sometimes wrap a folder
        z = read_feedback(_zip(SLACK, tmp_path / "export.zip", top))
        pd.testing.assert_frame_equal(z.records, folder.records)
        pd.testing.assert_frame_equal(z.rejected, folder.rejected)


def test_slack_broken_day_file_is_one_rejected_row(tmp_path):
    copy = shutil.copytree(SLACK, tmp_path / "export")
    (copy / "product-feedback" / "2026-01-07.json").write_text('[{"type": "message", "text": "cut off', encoding="utf-8")
    fb = read_feedback(copy, format="slack")
    bad = fb.rejected[fb.rejected["reason"].str.contains("malformed JSON")]
    assert len(bad) == 1 and "product-feedback/2026-01-07.json" in bad["reason"].iloc[0]
    assert len(fb.records) == 7  # every other message still read


def test_slack_not_an_export(tmp_path):
    z = tmp_path / "photos.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.jpg", b"\xff\xd8")
    with pytest.raises(InvalidInputError, match="not a Slack export"):
        read_feedback(z)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "channels.json").write_text("[]")
    with pytest.raises(InputFileError, match="no channels"):
        read_feedback(tmp_path / "empty", format="slack")


def test_slack_markup_helper():
    assert slack_to_text("<@U1|bob> in <#C9|general>: <https://x.io> <mailto:a@b.io|a@b.io> &lt;3") == "@bob in #general: https://x.io a@b.io <3"


# --- Zendesk --------------------------------------------------------------------------------------

def test_zendesk_tickets_json():
    fb = read_feedback(FIX / "zendesk_tickets.json", format="zendesk")
    r = fb.records.set_index("id")
    assert r.index.tolist() == ["35436", "35437", "35438", "35440"]  # ids as written, strings
    t = r.loc["35436"]
    # subject + HTML description, the quoted Gmail thread dropped; names from the side-loaded users/orgs
    assert t["text"] == ("CSV export cuts off long descriptions Hi team, When we export the backlog to CSV, every "
                         "description longer than 255 characters is cut. Can you fix this? We rely on it for our weekly review.")
    assert (t["source"], t["source_detail"], t["author"], t["account_id"], t["status"]) == (
        "support", "zendesk/web", "Ana Souza", "Globex", "open")
    assert t["url"] == "https://acme.zendesk.com/agent/tickets/35436"
    assert (t["custom_27642"], t["custom_27648"], t["custom_360011"]) == ("745", "yes", "csv|reports")
    assert t["zendesk_tags"] == "export|enterprise" and t["priority"] == "high"
    assert r.loc["35437", "text"] == "Dark mode please!"  # subject repeated in the body, signature cut
    assert r.loc["35438", "text"] == "SSO with Okta"  # subject only
    assert str(r.loc["35438", "created_at"]) == "2026-01-06 07:00:00+00:00"  # +01:00 normalised to UTC
    assert "<CARD>" in r.loc["35440", "text"] and "4111" not in r.loc["35440", "text"]
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [
        [4, "35439", "missing text"], [6, "35441", "unparseable date 'not-a-date' in column 'created_at'"]]


def test_zendesk_json_lines_with_a_cut_line():
    fb = read_feedback(FIX / "zendesk_tickets.jsonl", format="zendesk")
    assert fb.records["id"].tolist() == ["35436", "35437", "35438"]
    assert fb.records["author"].tolist() == ["20978392", "20978393", "20978394"]  # no side-loads: ids
    assert fb.rejected["row"].tolist() == [3] and fb.rejected["reason"].str.startswith("malformed JSON line").all()


def test_zendesk_wrong_shape(tmp_path):
    p = tmp_path / "t.json"
    p.write_text(json.dumps({"tickets": {"id": 1}}))
    with pytest.raises(InputFileError, match="not a Zendesk tickets export"):
        read_feedback(p, format="zendesk")


# --- Intercom -------------------------------------------------------------------------------------

def test_intercom_customer_parts_only():
    fb = read_feedback(FIX / "intercom_conversations.json", format="intercom")
    r = fb.records.set_index("id")
    assert r.index.tolist() == ["403918320", "6003", "403918321", "6020"]
    assert r.loc["403918320", "text"] == "Hi, the CSV export cuts off long descriptions. Is that a known bug?"
    assert r.loc["6003", "text"] == "Chrome 120 on Windows. It happens for every description over 255 characters."
    assert r.loc["6003", "conversation_id"] == "1911149811" and r.loc["6003", "status"] == "closed"
    assert r.loc["403918320", "page_url"] == "https://app.acme.io/reports/export"
    assert r.loc["403918321", "author"] == "5ba682d23d7cf92bef87bfd5"  # a lead without a name: its id
    assert "<PHONE>" in r.loc["6020", "text"]
    assert fb.skipped == {"workflow event": 2, "agent reply": 2, "internal note": 1, "bot message": 1}
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [
        [6, "6005", "empty text after cleaning"],  # "Thanks!" is only a sign-off
        [10, "6011", "empty text after cleaning"], [11, "6012", "placeholder text 'N/A'"]]


def test_intercom_single_conversation_and_lines(tmp_path):
    doc = json.loads((FIX / "intercom_conversations.json").read_text())
    one = tmp_path / "one.json"
    one.write_text(json.dumps(doc["conversations"][0]))
    assert read_feedback(one, format="intercom").records["id"].tolist() == ["403918320", "6003"]
    lines = tmp_path / "c.jsonl"
    lines.write_text("\n".join(json.dumps(c) for c in doc["conversations"]) + "\n{broken\n")
    fb = read_feedback(lines, format="intercom")
    assert len(fb.records) == 4 and fb.rejected["reason"].iloc[-1].startswith("malformed JSON line")


# --- surveys --------------------------------------------------------------------------------------

def test_typeform_one_row_per_free_text_answer():
    fb = read_feedback(FIX / "survey_typeform.csv", format="survey")
    r = fb.records
    assert r["id"].tolist() == ["a1f3e9-q3", "b7c2d1-q3", "b7c2d1-q5", "d4e5f6-q5", "e1e2e3-q3", "e1e2e3-q5"]
    assert set(r["source_detail"]) == {"What is the one thing we should improve?", "Anything else you'd like to tell us?"}
    assert r["row"].tolist() == [2, 3, 3, 5, 7, 7]  # the response's line in the CSV
    assert str(r["created_at"].iloc[0]) == "2026-01-05 09:03:12+00:00" and r["account_id"].iloc[1] == "Initech"
    assert r["text"].iloc[3] == "Mobile app logs me out every hour. Also the widget flickers on iPad."
    assert "<EMAIL>" in r["text"].iloc[5]
    assert fb.skipped == {"empty answer": 4}
    assert fb.rejected[["row", "id", "reason"]].values.tolist() == [
        [5, "d4e5f6-q3", "placeholder text 'N/A'"], [8, "f0f1f2-q3", "placeholder text '-'"],
        [9, "g5g6g7", "ragged row: 11 fields, the header has 9"]]


def test_surveymonkey_two_header_rows():
    fb = read_feedback(FIX / "survey_surveymonkey.csv", format="survey")
    assert fb.records["source_detail"].tolist() == [
        "What do you like most about Acme?", "What should we improve?", "What should we improve?",
        "Which features do you use? / Other (please specify)", "What do you like most about Acme?"]
    # metadata (IP, e-mail, names) and the choice question never become feedback
    assert not fb.records["text"].str.contains("203.0.113.7|Satisfied|ana.souza").any()
    assert fb.records["id"].iloc[0] == "11812345678-q10"


def test_survey_question_choice():
    frame = pd.DataFrame({"Respondent ID": ["1", "2", "3"], "NPS": ["9", "10", "3"], "Plan": ["Pro", "Pro", "Team"],
                          "Why?": ["Fast and simple to use", "Great support team", "Too expensive for small teams"],
                          "Submitted At": ["2026-01-01", "2026-01-02", "2026-01-03"]})
    assert free_text_questions(frame) == ["Why?"]
    export = read_survey(FIX / "survey_typeform.csv", questions=["Which plan are you on?"])
    answers = export.frame[export.frame["_error"].isna()]  # the ragged response is an error row
    assert set(answers["text"]) == {"Pro", "Team", "Free"}


# --- several channels at once ---------------------------------------------------------------------

def test_several_sources_into_one_frame(tmp_path):
    csv = tmp_path / "notes.csv"
    csv.write_text("id,text,source\nn1,Customer wants audit logs,sales call\n")
    fb = read_feedback([SLACK, FIX / "zendesk_tickets.json", csv], format="auto")
    assert set(fb.records["source"]) == {"slack", "support", "sales_call"}
    assert fb.records.groupby("source_file").size().to_dict() == {str(SLACK): 7, str(FIX / "zendesk_tickets.json"): 4,
                                                                 str(csv): 1}
    assert set(fb.rejected["source_file"]) == {str(SLACK), str(FIX / "zendesk_tickets.json")}


# --- through the commands -------------------------------------------------------------------------

@pytest.mark.slow
def test_connectors_through_the_commands(tmp_path, cache_path, capsys):
    from feedback_nlp.cli import main

    cases = [(_zip(SLACK, tmp_path / "export.zip"), "auto", 7, 1), (SLACK, "slack", 7, 1),
             (FIX / "zendesk_tickets.json", "auto", 4, 2), (FIX / "zendesk_tickets.jsonl", "zendesk", 3, 1),
             (FIX / "intercom_conversations.json", "intercom", 4, 3), (FIX / "survey_typeform.csv", "survey", 6, 3)]
    for src, fmt, ok, bad in cases:
        out = tmp_path / f"{Path(src).stem}-{fmt}.csv"
        rc = main(["dedupe", "--in", str(src), "--format", fmt, "--out", str(out), "--cache", str(cache_path)])
        printed = capsys.readouterr()
        assert rc == 0, printed.err
        assert f"rows in: {ok + bad} = used: {ok} + errors: {bad}" in printed.out, (src, printed.out)
    # tag streams an export folder as well (the job's fingerprint covers the folder's files)
    rc = main(["tag", "--model", "request-type", "--in", str(SLACK), "--out", str(tmp_path / "t.csv"),
               "--cache", str(cache_path)])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert "rows in: 8 = tagged: 7 + errors: 1" in printed.out
    tagged = pd.read_csv(tmp_path / "t.csv", dtype=str)
    assert tagged["id"].tolist() == read_feedback(SLACK).records["id"].tolist()


def test_slack_private_channels_and_dms(tmp_path):
    copy = shutil.copytree(SLACK, tmp_path / "export")
    (copy / "dms.json").write_text(json.dumps([{"id": "D07DM00001", "members": ["U07MARIA01", "U07TOMLEE2"]}]))
    (copy / "D07DM00001").mkdir()
    (copy / "D07DM00001" / "2026-01-08.json").write_text(json.dumps([
        {"type": "message", "user": "U07TOMLEE2", "ts": "1767866400.000100", "text": "Globex asks for an audit log export"}]))
    r = read_feedback(copy).records
    assert r.set_index("id").loc["D07DM00001-1767866400.000100", "source_detail"] == "dm D07DM00001"
    assert len(r) == 8
