"""Round 12e of hostile and unusual inputs: batch jobs killed at any moment, then finished with ``--resume``.

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere: none of them is about embedding quality.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import hashed_tag_model, write_file


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
