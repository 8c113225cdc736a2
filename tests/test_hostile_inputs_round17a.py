"""Round 17a of hostile and unusual inputs: batch jobs at scale (``feedback_nlp.dask``, ``feedback_nlp.batch``).

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model; Dask runs with the synchronous scheduler or a cluster in
this process (workers as threads).
"""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import hashed_tag_model, write_file
from feedback_nlp.batch import BatchSummary, ProgressReporter

pytest.importorskip("dask.distributed")
import dask.dataframe as dd  # noqa: E402
from distributed import Client, LocalCluster  # noqa: E402

import feedback_nlp.dask as fdask  # noqa: E402


@pytest.fixture
def model(tmp_path, monkeypatch):
    return hashed_tag_model(tmp_path / "m", monkeypatch)


def _reasons(frame: pd.DataFrame, column: str) -> list[tuple[str, str]]:
    bad = frame[frame[column].notna()]
    return sorted(zip(bad["id"].astype(str), bad[column]))


CAFE, CAFE_DECOMPOSED = "caf\u00e9", "cafe\u0301"


def test_an_id_in_two_partitions_is_a_duplicate_as_in_a_tag_job(model, tmp_path):
    """An id repeated in another partition was tagged twice by ``tag_dataframe`` (duplicates were looked for inside
    each partition only), where ``tag`` on the same rows sends the second copy to errors as "duplicate id". Now
    the same rows are rejected with the same reasons, accents in another Unicode form included, and the first
    copy (in partition order) keeps the id."""
    ids = ["a", "b", "a", CAFE, "c", "b", CAFE_DECOMPOSED, "c", "d", CAFE]
    pdf = pd.DataFrame({"id": ids, "text": [f"item {i} export fails" for i in range(len(ids))]})
    pdf.loc[4, "text"] = ""  # the first "c" is rejected for its text: the second one claims the id
    out = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=4, sort=False), str(model), cache=False)
    out = out.compute(scheduler="sync")
    src = write_file(tmp_path / "in.csv", pdf.to_csv(index=False))
    fb.tag_file(str(model), src, tmp_path / "out.csv", cache=False, progress=False, chunk_size=3)
    job = pd.read_csv(tmp_path / "out.errors.csv", dtype=str, keep_default_na=False)
    assert _reasons(out, "error") == _reasons(job, "reason")
    assert out["error"].notna().sum() == 5 and out.loc[out["error"].isna(), "id"].is_unique
    assert sorted(out.loc[out["error"].isna(), "id"]) == sorted(pd.read_csv(tmp_path / "out.csv", dtype=str)["id"])
    # a partition taken alone is tagged as in the whole (Dask's partition_info numbered it 0 there)
    tagged = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=4, sort=False), str(model), cache=False)
    alone = tagged.partitions[2].compute(scheduler="sync")
    assert alone["error"].tolist() == out.iloc[6:8]["error"].tolist() == ["duplicate id: 'café' in another Unicode "
                                                                          "form (composed vs decomposed accents)", None]


def test_ids_claimed_across_partitions_on_a_cluster(model):
    """The same on a distributed cluster, with ints in one partition and the same ids as text in another (read
    as one id, as in a file): the later copies are duplicates, whatever the order the partitions finish in."""
    first = pd.DataFrame({"id": pd.Series([1, 2, 3], dtype=object), "text": ["export fails"] * 3})
    second = pd.DataFrame({"id": pd.Series(["2", "3", "4"], dtype=object), "text": ["add dark mode"] * 3})
    ddf = dd.concat([dd.from_pandas(first, npartitions=1), dd.from_pandas(second, npartitions=1)])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster):
        out = fdask.tag_dataframe(ddf, str(model), cache=False).compute()
    assert out["error"].tolist() == [None, None, None, "duplicate id", "duplicate id", None]
    # without an id column, ids are generated per partition (its row numbers): not duplicates of each other
    generated = fdask.tag_dataframe(ddf[["text"]], str(model), id_col=None, cache=False).compute(scheduler="sync")
    assert generated["error"].isna().all() and generated["id"].tolist() == ["0", "1", "2"] * 2


def test_progress_under_one_row_a_second_says_seconds_per_row():
    """A slow model (or long rows) tagged under one row a second: progress lines and the summary said "0 rows/s".
    Now they give the seconds per row."""
    buf = io.StringIO()
    reporter = ProgressReporter(total=4, every=0.0, stream=buf)
    reporter.start -= 50.0  # as if the first row took 50 s
    reporter.update(1)
    assert re.search(r"1/4 rows, 5\d\.\d s/row, ETA 1\d\d s", buf.getvalue()), buf.getvalue()
    summary = BatchSummary(3, 2, 1, 1, 0, 40.0, "out.csv", "out.errors.csv")
    assert "40.0 s, 13.3 s/row" in str(summary)
    assert "2.5 rows/s" in str(BatchSummary(5, 5, 0, 1, 0, 2.0, "out.csv", None))


def test_a_partition_with_two_text_columns_reads_the_first_as_read_feedback_does(model):
    """Two columns named ``text`` in a partition (a join, a concat of frames): ``tag_partition`` and
    ``tag_dataframe`` failed with a bare ``AttributeError: 'DataFrame' object has no attribute 'tolist'``, where
    ``read_feedback`` of the same frame reads the first and keeps the second as ``text.1``. Now the same."""
    pdf = pd.DataFrame([["1", "export fails", ""], ["2", "", "export fails"]], columns=["id", "text", "text"])
    expected = fb.read_feedback(pdf).rejected[["id", "reason"]].values.tolist()
    assert expected == [["2", "empty text after cleaning"]]
    out = fdask.tag_partition(pdf, str(model), cache=False)
    assert out.loc[out["error"].notna(), ["id", "error"]].values.tolist() == expected
    out = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=1), str(model), cache=False).compute(scheduler="sync")
    assert out["error"].tolist() == [None, "empty text after cleaning"]


def test_an_id_column_labelled_0_is_read(model):
    """A frame without a header row has columns 0, 1, ...: ``id_col=0`` was read as no id column (``0 or "id"``),
    so every row was rejected as "missing id" by ``tag_partition``, ``tag_dataframe`` and ``read_feedback``."""
    pdf = pd.DataFrame({0: ["a", "b", "a"], 1: ["export fails", "add dark mode", "csv broken"]})
    assert fb.read_feedback(pdf, text_col=1, id_col=0).records["id"].tolist() == ["a", "b"]
    out = fdask.tag_partition(pdf, str(model), text_col=1, id_col=0, cache=False)
    assert out["id"].tolist() == ["a", "b", "a"] and out["error"].tolist() == [None, None, "duplicate id"]


@pytest.mark.parametrize("column", ["_error", "_reason"])
def test_a_partition_column_named_as_the_readers_own_is_no_reason(model, column):
    """A partition's own ``_error`` column rejected its rows with the column's values as reasons (``read_feedback``
    refuses the frame), and a ``_reason`` column was taken for an already validated chunk: a bare
    ``KeyError: '_reject_text'``, and with a ``_reject_text`` column too, rows tagged unvalidated. Now ``_error``
    (and ``_raw``) is refused as ``read_feedback`` refuses it, and ``_reason`` is a column like any other."""
    pdf = pd.DataFrame({"id": ["1", "2"], "text": ["export fails", ""], column: ["boom", None]})
    if column == "_error":
        with pytest.raises(fb.errors.ColumnError, match=r"\['_error'\] use names feedback_nlp reserves"):
            fdask.tag_partition(pdf, str(model), cache=False)
        return
    for frame in (pdf, pdf.assign(_reject_text="x")):
        assert fdask.tag_partition(frame, str(model), cache=False)["error"].tolist() == [None, "empty text after cleaning"]


def test_a_model_retrained_into_the_same_folder_is_loaded_again(tmp_path, monkeypatch):
    """A process (a notebook, a Dask worker) keeps each model it loaded: after the model was retrained and saved
    into the same folder, every later job of the process still tagged with the first model, without a word (the
    job's manifest even recorded the new folder's digest). Now a folder saved again since is loaded again."""
    from conftest import HashEmbedder

    load = fb.TagClassifier.load.__func__
    monkeypatch.setattr(fb.TagClassifier, "load", classmethod(
        lambda cls, folder, embedder=None, backend=None: load(cls, folder, embedder=HashEmbedder())))
    texts = ["export fails", "csv export broken", "add dark mode", "please add sso"]
    src = write_file(tmp_path / "in.csv", "id,text\n1,export fails\n2,add dark mode\n")
    for labels in (["bug", "bug", "request", "request"], ["praise", "praise", "complaint", "complaint"]):
        fb.TagClassifier(HashEmbedder()).fit(texts, labels).save(tmp_path / "m")
        fb.tag_file(str(tmp_path / "m"), src, tmp_path / "out.csv", cache=False, progress=False)
        assert pd.read_csv(tmp_path / "out.csv")["tags"].tolist() == [labels[0], labels[2]]
        (tmp_path / "out.csv").unlink()


def test_a_chunk_that_killed_its_workers_does_not_advise_a_resume_with_another_chunk_size():
    """A chunk that killed its workers (out of memory) said "use a smaller --chunk-size; ... run the same command
    again with --resume", which a resume refuses ("--chunk-size (3 -> 1) changed ... delete the parts folder").
    Now the message says that a smaller chunk size means starting over, and --resume only to retry as it was."""
    from types import SimpleNamespace

    import distributed

    class Lost:
        def result(self):
            raise distributed.KilledWorker("_remote_chunk-1", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)

    with pytest.raises(fb.errors.FeedbackNLPError) as info:
        fdask._result(distributed, Lost(), 4)
    message = str(info.value)
    assert "lost chunk 4" in message and "--resume to finish the job" in message
    assert re.search(r"smaller --chunk-size is needed, which a resume cannot change: delete the job's \.parts "
                     r"folder and start over", message), message


def test_a_frame_indexed_by_its_ids_is_tagged_under_them(model):
    """``ddf.set_index("id")`` (the way to sorted partitions with known divisions in Dask) moved the ids into the
    index, and ``tag_dataframe`` failed with "id column 'id' not found; available columns: ['text']", where
    ``read_feedback`` of the same pandas frame reads the named index as the id column. Now the same."""
    pdf = pd.DataFrame({"id": ["b", "a", "c", "a"], "text": ["export fails", "add sso", "", "csv broken"]})
    ddf = dd.from_pandas(pdf, npartitions=2, sort=False).set_index("id")
    out = fdask.tag_dataframe(ddf, str(model), cache=False).compute(scheduler="sync")
    assert sorted(zip(out["id"], out["error"].fillna(""))) == [("a", ""), ("a", "duplicate id"), ("b", ""),
                                                               ("c", "empty text after cleaning")]
    assert fb.read_feedback(pdf.set_index("id")).records["id"].tolist() == ["b", "a"]
