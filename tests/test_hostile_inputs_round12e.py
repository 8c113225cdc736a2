"""Round 12e of hostile and unusual inputs: batch jobs killed at any moment, then finished with ``--resume``.

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere: none of them is about embedding quality.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import hashed_tag_model, interrupted_tag_job, write_file


@pytest.fixture
def job(tmp_path, monkeypatch):
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text\n" + "".join(f"{i},item {i} export fails\n" for i in range(10))
                      + "10,\n")
    return model, data, tmp_path / "out.csv"


def _run(job, **kwargs):
    model, data, out = job
    return fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, **kwargs)


def _rows(out):
    tagged = pd.read_csv(out, dtype={"id": str})["id"].tolist()
    rejected = pd.read_csv(out.with_name("out.errors.csv"), dtype={"id": str})["id"].tolist()
    return sorted(tagged, key=int), rejected


def test_a_run_killed_before_its_parts_manifest_was_written_resumes(job):
    """A kill between creating ``<out>.parts/`` and renaming its manifest into place left a folder holding at most
    ``manifest.tmp``: the run without --resume said 'pass --resume', and --resume said 'no readable
    manifest.json: delete it', so the user had to delete it by hand. Now the empty folder is started over."""
    model, data, out = job
    parts = out.with_name("out.csv.parts")
    parts.mkdir()
    (parts / "manifest.tmp").write_text('{"parts_format": ')  # cut short by the kill
    summary = _run(job, resume=True)
    assert (summary.rows_in, summary.rows_out, summary.rows_error, summary.chunks_reused) == (11, 10, 1, 0)
    assert _rows(out) == ([str(i) for i in range(10)], ["10"])
    assert not parts.exists()
    parts.mkdir()  # and an empty folder (killed right after mkdir) does not even need --resume
    assert _run(job).rows_in == 11 and not parts.exists()


def test_a_run_killed_while_deleting_its_parts_resumes_to_the_same_output(job, monkeypatch):
    """The end of a job deleted ``<out>.parts/`` with shutil.rmtree, in the folder's order: a kill once the
    manifest was gone but parts were left (after the output was written) made every later run refuse ('no
    readable manifest.json: delete it'). Now the manifest is deleted last, so --resume always finishes."""
    model, data, out = job
    real_unlink = os.unlink

    def killed_after_manifest(path, *args, **kwargs):
        real_unlink(path, *args, **kwargs)
        if os.fspath(path).endswith("manifest.json"):
            raise KeyboardInterrupt  # the kill lands right after the manifest went

    monkeypatch.setattr(os, "unlink", killed_after_manifest)
    with pytest.raises(KeyboardInterrupt):
        _run(job)
    monkeypatch.setattr(os, "unlink", real_unlink)
    first = out.read_bytes()
    summary = _run(job, resume=True)
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (11, 10, 1)
    assert out.read_bytes() == first
    assert _rows(out) == ([str(i) for i in range(10)], ["10"])
    assert not out.with_name("out.csv.parts").exists()


def test_a_resume_removes_the_temp_outputs_a_killed_run_left_beside_them(job):
    """A SIGKILL (or a crash of the machine) while the parts were merged left ``.tmp-xxxxxxxx-out.csv`` (and the
    errors file's) beside the outputs for good: no later run removed them. Now the next run, holding the
    outputs' locks, removes them; a file of the user's of another shape is left alone."""
    model, data, out = job
    stale = [out.with_name(".tmp-ab12_xyz-out.csv"), out.with_name(".tmp-0a1b2c3d-out.errors.csv")]
    for path in stale:
        path.write_text("id,tags\n1,half a merge")
    mine = out.with_name(".tmp-notes-out.csv")
    mine.write_text("keep me")
    summary = _run(job)
    assert summary.rows_in == 11
    assert not any(path.exists() for path in stale)
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        ["m", "in.csv", "out.csv", "out.errors.csv", ".tmp-notes-out.csv"])


def test_sigterm_while_outputs_are_renamed_into_place_leaves_the_whole_new_set(tmp_path, monkeypatch):
    """Only Ctrl-C was held during the renames that commit a set of outputs: a SIGTERM (which the CLI raises like
    Ctrl-C) between the output's rename and the errors file's left a new ``tagged.csv`` beside the errors of the
    run before (its temp file removed), a pair that never existed. Now SIGTERM is held too, then delivered."""
    import signal

    from feedback_nlp import _atomic
    from feedback_nlp.cli import _raise_terminated, _Terminated

    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("old")
    real = _atomic._replace

    def terminated(tmp, final):
        if final.name == "a.csv":
            os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stops the job right as the first rename starts
        real(tmp, final)

    monkeypatch.setattr(_atomic, "_replace", terminated)
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with pytest.raises(_Terminated), _atomic.OutputSet() as outs:
            for name in ("a.csv", "b.csv"):
                outs.file(tmp_path / name).write_text("new")
        assert signal.getsignal(signal.SIGTERM) is _raise_terminated
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [(tmp_path / n).read_text() for n in ("a.csv", "b.csv")] == ["new", "new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]


def test_a_full_disk_while_a_part_is_written_names_the_part_and_the_way_on(job, monkeypatch):
    """pyarrow's own error was all the user saw: 'Error writing bytes to file. Detail: [errno 28] No space left
    on device', naming no file (the parts folder, not the output, filled the disk) and no way on. Now it is an
    OSError with errno ENOSPC naming the part and --resume, its temp file removed; the resume then finishes."""
    import errno

    import pyarrow.parquet as pq

    real = pq.write_table

    def full(table, where, *args, **kwargs):
        if "part-000002" in str(where):
            Path(where).write_bytes(b"PAR1 cut short")
            raise OSError("Error writing bytes to file. Detail: [errno 28] No space left on device")
        return real(table, where, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(OSError, match=r"No space left on device \(.*--resume\)") as caught:
        _run(job)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename.endswith("part-000002.parquet")
    parts = job[2].with_name("out.csv.parts")
    assert not list(parts.glob("*.tmp"))
    monkeypatch.setattr(pq, "write_table", real)
    summary = _run(job, resume=True)
    assert (summary.rows_in, summary.rows_out, summary.rows_error, summary.chunks_reused) == (11, 10, 1, 2)
    assert _rows(job[2]) == ([str(i) for i in range(10)], ["10"])


def test_an_errors_part_of_another_chunk_is_redone_not_merged(tmp_path, monkeypatch):
    """Only the tagged part carried the digest of its input chunk: an errors part copied from another chunk with
    as many rejected rows passed the resume's checks and the row count, so one chunk's rejected row was lost and
    the other's written twice, silently. Now both parts carry it and such a chunk is done again."""
    model = hashed_tag_model(tmp_path / "m", monkeypatch)
    data = write_file(tmp_path / "in.csv", "id,text\n0,export fails\n1,\n2,add sso\n3,dark mode\n4,N/A\n5,csv broken\n"
                      "6,more\n")
    out = tmp_path / "out.csv"
    stop = interrupted_tag_job(model, data, out)  # chunks of 3: rows 0-2 and 3-5 done, each with one rejected row
    shutil.copy(stop / "errors-000001.parquet", stop / "errors-000000.parquet")
    summary = fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, resume=True)
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (7, 5, 2)
    assert sorted(pd.read_csv(out.with_name("out.errors.csv"), dtype={"id": str})["id"]) == ["1", "4"]
