"""Round 11a of hostile and unusual inputs: the reading path (vendor exports, files) and batch jobs.

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere: none of them is about embedding quality.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import hashed_tag_model, interrupted_tag_job, write_file
from feedback_nlp.cli import main
from feedback_nlp.errors import JobLockedError


def _slack_export(folder: Path, days: dict[str, bytes]) -> Path:
    (folder / "general").mkdir(parents=True)
    (folder / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (folder / "users.json").write_text(json.dumps([{"id": "U1", "name": "ann", "is_bot": False}]))
    for day, raw in days.items():
        (folder / "general" / f"{day}.json").write_bytes(raw)
    return folder


def _message(ts: str, text: object, **extra: object) -> dict:
    return {"type": "message", "user": "U1", "ts": ts, "text": text, **extra}


def test_a_slack_message_whose_text_or_user_is_no_string_is_rejected_alone(tmp_path):
    """``"text": {...}`` or a number stopped the whole export with an AttributeError ('dict' object has no
    attribute 'strip'), and ``"user": {...}`` with a TypeError (unhashable type); a ``user_profile`` that is no
    object with an AttributeError. Now each such message is a rejected row and the others are read."""
    messages = [_message("1767607200.000100", "Export to CSV fails"),
                _message("1767607201.000100", {"blocks": ["x"]}),
                _message("1767607202.000100", 5),
                _message("1767607203.000100", "Dark mode please", user={"id": "U1"}),
                _message("1767607204.000100", "SSO please", user="U9", user_profile=["not", "an", "object"])]
    export = _slack_export(tmp_path / "export", {"2026-01-05": json.dumps(messages).encode()})
    fb_data = fb.read_feedback(export)
    assert fb_data.records["text"].tolist() == ["Export to CSV fails", "5", "Dark mode please", "SSO please"]
    assert fb_data.rejected["reason"].tolist() == ["text is dict, not str"]
    assert len(fb_data.records) + len(fb_data.rejected) == len(messages)


def test_a_slack_day_file_that_is_no_list_of_messages_is_a_rejected_row(tmp_path):
    """A day file holding ``{}`` or ``null`` (a tool that wrote an object, a file emptied by hand) was left
    out without a word: no row, no reject, no skip count. Now it is one rejected row naming the file."""
    ok = json.dumps([_message("1767607200.000100", "Export to CSV fails")]).encode()
    export = _slack_export(tmp_path / "export", {"2026-01-05": ok, "2026-01-06": b'{"messages": []}',
                                                 "2026-01-07": b"null"})
    fb_data = fb.read_feedback(export)
    assert fb_data.records["text"].tolist() == ["Export to CSV fails"]
    assert fb_data.rejected["reason"].tolist() == [
        "the Slack day file general/2026-01-06.json holds an object, not a list of messages",
        "the Slack day file general/2026-01-07.json holds null, not a list of messages"]


def test_a_slack_message_with_bytes_not_valid_in_utf8_is_rejected_not_garbled(tmp_path):
    """A day file holding a Latin-1 byte (``caf\\xe9``) was decoded with errors="replace": the message was
    kept as ``caf\ufffd``, silently altered. Now that message is rejected naming the byte, the rest of the
    day file is read."""
    raw = (b'[{"type": "message", "user": "U1", "ts": "1767607200.000100", "text": "caf\xe9 cr\xe8me is cold"},'
           b' {"type": "message", "user": "U1", "ts": "1767607201.000100", "text": "Export to CSV fails"}]')
    fb_data = fb.read_feedback(_slack_export(tmp_path / "export", {"2026-01-05": raw}))
    assert fb_data.records["text"].tolist() == ["Export to CSV fails"]
    assert fb_data.rejected["reason"].tolist() == ["bytes not valid in UTF-8 (first: 0xE9) in the message"]
    assert "\ufffd" not in "".join(fb_data.records["text"])


def test_an_intercom_conversation_without_messages_is_counted_not_lost(tmp_path):
    """A conversation without ``source`` and parts (deleted, or exported without its parts) gave no row, no
    reject and no skip count. Now it is counted in ``skipped``."""
    conversations = [{"type": "conversation", "id": "c1"},
                     {"type": "conversation", "id": "c2", "source": None, "conversation_parts": None},
                     {"type": "conversation", "id": "c3", "created_at": 1767607200,
                      "source": {"id": "s3", "body": "<p>Export fails</p>", "author": {"type": "user", "id": "u"}}}]
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps({"type": "conversation.list", "conversations": conversations}))
    fb_data = fb.read_feedback(path, format="intercom")
    assert fb_data.records["id"].tolist() == ["s3"]
    assert fb_data.skipped == {"conversation without messages": 2}


def test_a_zendesk_subject_or_description_that_is_an_object_is_rejected_not_its_repr(tmp_path):
    """``"subject": {"a": 1}`` became the text ``{'a': 1} ...`` (Python's repr, then tagged and embedded); a JSON
    file's text that is an object is rejected. Now the ticket is rejected the same way."""
    tickets = [{"id": 1, "subject": "CSV export broken", "description": "fails"},
               {"id": 2, "subject": {"a": 1}, "description": "Dark mode please"},
               {"id": 3, "subject": "SSO", "description": ["login", "broken"]}]
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps({"tickets": tickets}))
    fb_data = fb.read_feedback(path, format="zendesk")
    assert fb_data.records["id"].tolist() == ["1"]
    assert fb_data.rejected[["id", "reason"]].values.tolist() == [["2", "text is dict, not str"],
                                                                   ["3", "text is list, not str"]]


def test_vendor_export_fields_of_another_json_type_never_stop_the_export(tmp_path):
    """Fields of another JSON type than the vendor writes were TypeErrors or AttributeErrors that stopped the
    whole export: Zendesk ``"tags": true``, Intercom ``"tags": {"tags": null}`` and a tag ``name`` that is an
    object, Slack ``channels.json`` holding ``true``-like entries with a list as ``id``, a user whose ``profile``
    is a string or whose ``real_name`` is a list (when a mention of them was shown). Now each reads."""
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps({"tickets": [{"id": 1, "description": "Export fails", "tags": True,
                                             "custom_fields": 5}]}))
    assert fb.read_feedback(path, format="zendesk").records["id"].tolist() == ["1"]

    source = {"id": "s1", "body": "Export fails", "author": {"type": "user", "id": "u"}}
    path = tmp_path / "conversations.json"
    for tags in ({"tags": None}, {"tags": [{"name": {"a": 1}}, {"name": "vip"}]}):
        path.write_text(json.dumps([{"type": "conversation", "id": "c1", "source": source, "tags": tags,
                                     "conversation_parts": {"conversation_parts": 5}}]))
        fb_data = fb.read_feedback(path, format="intercom")
        assert fb_data.records["id"].tolist() == ["s1"] and fb_data.skipped == {"not a conversation part": 1}

    export = _slack_export(tmp_path / "export", {"2026-01-05": json.dumps([
        _message("1767607200.000100", "<@U1> says export fails"), _message("1767607201.000100", "<@U2> too")]).encode()})
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}, {"id": [1], "name": None}]))
    (export / "users.json").write_text(json.dumps([{"id": "U1", "name": "ann", "profile": "x"},
                                                   {"id": "U2", "name": "bob", "real_name": ["Bob"]}]))
    assert fb.read_feedback(export).records["text"].tolist() == ["@ann says export fails", "@bob too"]


@pytest.mark.parametrize("name", ["_row", "_error", "_raw"])
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_column_named_like_the_readers_own_is_refused_by_name(tmp_path, name, fmt):
    """A CSV or Parquet column named ``_error`` rejected every row with its value as the reason (Parquet) or
    failed with pandas' "truth value of a Series is ambiguous" (CSV); ``_row`` with "invalid literal for int()"
    or "cannot insert _row"; ``_raw`` was dropped without a word. A DataFrame with such a column was already
    refused by name; now a file is too."""
    frame = pd.DataFrame({"id": ["1", "2"], "text": ["Export fails", "Dark mode please"], name: ["boom", None]})
    path = tmp_path / f"in.{fmt}"
    frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path)
    with pytest.raises(fb.ColumnError, match=rf"\['{name}'\] use names feedback_nlp reserves"):
        fb.read_feedback(path)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_json_record_with_a_key_named_like_the_readers_own_is_rejected_alone(tmp_path, fmt):
    """``{"id": 1, "text": "...", "_error": "boom"}`` failed the whole read (the truth value of a Series is
    ambiguous) and ``"_row": "x"`` too (invalid literal for int()). Now that record is rejected, naming the key."""
    records = [{"id": 1, "text": "Export fails", "_error": "boom"}, {"id": 2, "text": "Dark mode please"},
               {"id": 3, "text": "SSO please", "_row": "x"}]
    path = tmp_path / f"in.{fmt}"
    path.write_text("\n".join(map(json.dumps, records)) if fmt == "jsonl" else json.dumps(records))
    fb_data = fb.read_feedback(path)
    assert fb_data.records["id"].tolist() == ["2"]
    assert fb_data.rejected[["row", "id"]].values.tolist() == [[1, "1"], [3, "3"]]
    assert fb_data.rejected["reason"].str.contains("names feedback_nlp reserves").all()


def test_tag_with_a_reserved_column_is_one_error_line(tmp_path, monkeypatch, capsys):
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text,_error\n1,Export fails,boom\n")
    assert main(["tag", "--model", str(model), "--in", data, "--out", str(tmp_path / "t.csv"), "--no-cache"]) == 1
    assert capsys.readouterr().err == (f"error: {data}: column(s) ['_error'] use names feedback_nlp reserves for "
                                       "row numbers and parse errors; rename them\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "m"]




def test_a_resume_under_another_date_order_is_refused_naming_it(tmp_path, monkeypatch):
    """The date order decides which rows are rejected (``13/01/2026`` is no month-first date). A resume after
    FEEDBACK_NLP_DATE_ORDER changed went on silently when the finished chunks held no date only one order reads
    (the rest of the file was judged by the other order: row 8 accepted here, rejected had the job run
    through), and was refused saying "the input file changed" (it had not) when they did. Now it names the
    setting."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text,created_at\n" + "".join(
        f"{i},item {i} export fails,{'13/01/2026' if i == 8 else '05/01/2026'}\n" for i in range(10)))
    out = tmp_path / "out.csv"
    interrupted_tag_job(model, data, out)
    monkeypatch.setenv("FEEDBACK_NLP_DATE_ORDER", "dmy")
    with pytest.raises(fb.InvalidInputError, match=r"FEEDBACK_NLP_DATE_ORDER .*\('mdy' -> 'dmy'\) changed"):
        fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, resume=True)
    monkeypatch.delenv("FEEDBACK_NLP_DATE_ORDER")
    summary = fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, resume=True)
    assert (summary.rows_in, summary.rows_error, summary.chunks_reused) == (10, 1, 2)


def test_a_json_document_with_two_arrays_of_records_is_refused_and_an_empty_one_is_passed_over(tmp_path):
    """``{"records": [...], "items": [...]}`` read ``records`` and left the ``items`` out without a word, and
    ``{"records": [], "data": [...]}`` read the empty array: no rows, none rejected. Now two filled arrays are
    refused naming them, and an empty one is passed over for the one that holds records."""
    path = tmp_path / "two.json"
    path.write_text(json.dumps({"records": [{"id": 1, "text": "Export fails"}], "items": [{"id": 2, "text": "SSO"}]}))
    with pytest.raises(fb.InputFileError, match=r"several arrays of records \(\['records', 'items'\]\)"):
        fb.read_feedback(path)
    path.write_text(json.dumps({"records": [], "data": [{"id": 2, "text": "Dark mode please"}], "messages": []}))
    assert fb.read_feedback(path).records["id"].tolist() == ["2"]


def test_a_parquet_file_saved_with_its_ids_as_the_index_keeps_them(tmp_path):
    """``df.set_index("id").to_parquet(...)`` (a common pandas habit): pandas' metadata made the ids the
    chunk's index, which was dropped, and every row was given its row number as id, silently (and so did
    ``read_feedback(df.set_index("id"))``). Now a named index is read as the column it names; an unnamed index
    pandas wrote (``__index_level_0__``) is no data."""
    frame = pd.DataFrame({"id": ["a-7", "b-9"], "text": ["Export fails", "Dark mode please"]})
    frame.set_index("id").to_parquet(tmp_path / "named.parquet")
    assert fb.read_feedback(tmp_path / "named.parquet").records["id"].tolist() == ["a-7", "b-9"]
    frame.set_axis([5, 9]).to_parquet(tmp_path / "unnamed.parquet")
    got = fb.read_feedback(tmp_path / "unnamed.parquet").records
    assert got["id"].tolist() == ["a-7", "b-9"] and not any(c.startswith("__index") for c in got.columns)
    assert fb.read_feedback(frame.set_index("id")).records["id"].tolist() == ["a-7", "b-9"]  # the frame too


def test_a_parquet_column_named_twice_reads_like_the_same_csv_and_a_binary_id_says_what_it_is(tmp_path):
    """Arrow allows two columns of one name: such a file failed with an AttributeError ('DataFrame' object has
    no attribute 'tolist'). Now it reads as the CSV does ("text", "text.1"). A binary id that is no UTF-8 was
    rejected as "missing id"; now the reason says what it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_arrays([pa.array([b"1", b"\xff"]), pa.array(["Export fails", "Dark mode"]),
                                  pa.array(["second", "texts"])], names=["id", "text", "text"])
    pq.write_table(table, tmp_path / "twice.parquet")
    got = fb.read_feedback(tmp_path / "twice.parquet")
    assert got.records[["id", "text", "text.1"]].values.tolist() == [["1", "Export fails", "second"]]
    assert got.rejected["reason"].tolist() == ["id is bytes not valid in UTF-8 (\"b'\\\\xff'\")"]


def test_a_source_with_its_format_reads_alone_and_a_tuple_of_one_is_named(tmp_path):
    """``read_feedback(("notes.txt", "csv"))`` was read as two paths ("input file not found: csv"), and
    ``[("a.csv",)]`` was a ValueError (not enough values to unpack). Now the pair reads as it does inside a
    list, and a tuple that is no pair is an input error saying what a pair is."""
    path = write_file(tmp_path / "notes.txt", "id,text\n1,Export fails\n")
    assert fb.read_feedback((path, "csv")).records["id"].tolist() == ["1"]
    with pytest.raises(fb.InvalidInputError, match=r"a source given as a tuple is a \(path, format\) pair"):
        fb.read_feedback([(path,)])


def test_a_tag_job_writing_inside_the_slack_export_it_reads_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    """``tag --in export/ --out export/tagged.csv``: the export's size (which --resume compares) counted the
    job's own parts, so an interrupted run could never be resumed ("the input file (its size) changed"), and
    an output in a channel's folder would be read as a day file by the next run. Now it is a usage error."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    export = _slack_export(tmp_path / "export", {"2026-01-05": json.dumps(
        [_message(f"17676072{i:02d}.000100", f"item {i} export fails") for i in range(4)]).encode()})
    before = sorted(export.rglob("*"))
    code = main(["tag", "--model", str(model), "--in", str(export), "--out", str(export / "tagged.csv"), "--no-cache"])
    assert code == 2 and "is inside the input folder" in capsys.readouterr().err
    assert sorted(export.rglob("*")) == before
    summary = fb.tag_file(model, export, tmp_path / "tagged.csv", cache=False, progress=False)
    assert summary.rows_out == 4


def test_a_named_pipe_at_the_lock_path_is_named_not_an_illegal_seek(tmp_path, monkeypatch, capsys):
    """A named pipe planted at ``<out>.lock`` made the job fail with the bare "error: Illegal seek". Now the
    lock file is named and what to do is said, before any work; the pipe is left as it is."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text\n1,Export fails\n")
    os.mkfifo(tmp_path / "t.csv.lock")
    assert main(["tag", "--model", str(model), "--in", data, "--out", str(tmp_path / "t.csv"), "--no-cache"]) == 2
    assert "the lock file" in (err := capsys.readouterr().err) and "is not a regular file (a pipe" in err
    assert (tmp_path / "t.csv.lock").is_fifo() and not (tmp_path / "t.csv").exists()


def test_two_jobs_given_one_errors_file_do_not_lose_each_others_rejected_rows(tmp_path, monkeypatch):
    """Two tag jobs with their own outputs but one ``--errors`` file both ran: the lock covered the output
    only, each wrote the errors file whole, and the first job's rejected rows were lost while both reported
    success. Now the errors file is locked too: the second job is refused while the first runs."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    a = write_file(tmp_path / "a.csv", "id,text\n1,Export fails\na2,N/A\n")
    b = write_file(tmp_path / "b.csv", "id,text\n1,Dark mode please\nb2,N/A\n")
    errors = tmp_path / "errors.csv"
    refused = []

    def second_job(index):
        try:
            fb.tag_file(model, b, tmp_path / "b_out.csv", errors_path=errors, cache=False, progress=False)
        except JobLockedError as exc:
            refused.append(str(exc))

    summary = fb.tag_file(model, a, tmp_path / "a_out.csv", errors_path=errors, cache=False, progress=False,
                          chunk_hook=second_job)
    assert summary.rows_error == 1 and len(refused) == 1 and f"lock file {errors}.lock" in refused[0]
    assert pd.read_csv(errors)["id"].tolist() == ["a2"]
    assert not (tmp_path / "b_out.csv").exists() and not (tmp_path / "errors.csv.lock").exists()


@pytest.mark.parametrize("cache", ["t.csv", "t.errors.csv", "in.csv", "m/cache.sqlite"])
def test_a_cache_that_is_one_of_the_commands_files_is_refused_before_any_work(tmp_path, monkeypatch, capsys, cache):
    """``tag --cache t.csv --out t.csv``: the cache was created there, the output renamed over it, and the next
    run stopped at "t.csv is not a usable feedback_nlp embedding cache ... delete it" (the output). A cache
    inside the saved model folder broke its manifest. Now each is refused before any work."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text\n1,Export fails\n")
    monkeypatch.chdir(tmp_path)
    code = main(["tag", "--model", str(model), "--in", data, "--out", "t.csv", "--cache", cache])
    err = capsys.readouterr().err
    assert code in (1, 2) and err.startswith("error: ") and ("same file" in err or "saved feedback_nlp folder" in err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "m"]
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "manifest.json",
                                                                  "weights.npz"]


@pytest.mark.parametrize(("data", "declared", "told"), [
    ("utf-16", "latin-1", "a UTF-16 byte-order mark but encoding 'latin-1' was declared: it is UTF-16-LE"),
    ("utf-16", "utf-16-be", "a UTF-16 byte-order mark but encoding 'utf-16-be' was declared: it is UTF-16-LE"),
    ("utf-32", "utf-16", "a UTF-32 byte-order mark but encoding 'utf-16' was declared: it is UTF-32-LE"),
])
def test_a_byte_order_mark_that_contradicts_the_declared_encoding_is_named(tmp_path, data, declared, told):
    """Excel's "Unicode text" (UTF-16 with its mark) read with ``--encoding latin-1`` failed as "text column
    'text' not found; available columns: ['ÿþi\\x00d\\x00', ...]"; the UTF-8 mark was already named. Now every
    byte-order mark that contradicts the declared encoding is, and the file reads once the option is dropped."""
    path = tmp_path / "unicode.csv"
    path.write_bytes("id,text\n1,Café crème\n".encode(data))
    with pytest.raises(fb.EncodingError, match=told):
        fb.read_feedback(path, encoding=declared)
    assert fb.read_feedback(path).records["text"].tolist() == ["Café crème"]


@pytest.mark.parametrize("column", ["id", "author", "account_id", "ticket_ref"])
def test_a_lone_surrogate_in_any_column_of_a_frame_rejects_its_row_not_the_read(column):
    """A DataFrame built from text decoded with ``errors="surrogateescape"`` (or a JSON ``"\\ud800"``) whose id,
    author or any other column held a lone surrogate failed the whole read with a UnicodeEncodeError (only the
    text was checked). Now that row is rejected naming the column, and the others are read."""
    rows = [{"id": "1", "text": "Export fails"}, {"id": "2", "text": "Dark mode please"}]
    rows[0][column] = "caf\udce9"
    got = fb.read_feedback(pd.DataFrame(rows, dtype=object))
    assert got.records["id"].tolist() == ["2"]
    assert got.rejected["reason"].tolist() == [f"a lone surrogate (\\udXXX) in column '{column}': not valid Unicode text"]
