"""Round 13b of hostile and unusual inputs: batch jobs on Dask (``feedback_nlp.dask``, ``tag --engine dask``).

Each test failed before the fix it guards (the case, what it was and what it is now are in each docstring).
The tests' HashEmbedder stands in for the real model everywhere, and the clusters run in this process (workers as
threads): none of them is about embedding quality or about Dask's own process handling.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import feedback_nlp as fb
from _hostile_support import hashed_tag_model, write_file
from feedback_nlp.errors import UsageError

pytest.importorskip("dask.distributed")
import dask.dataframe as dd  # noqa: E402
from distributed import LocalCluster  # noqa: E402

import feedback_nlp.dask as fdask  # noqa: E402


@pytest.fixture
def model(tmp_path, monkeypatch):
    return hashed_tag_model(tmp_path / "m", monkeypatch)


def _data(tmp_path: Path, n: int = 10) -> str:
    return write_file(tmp_path / "in.csv", "id,text\n" + "".join(f"{i},item {i} export fails\n" for i in range(n))
                      + f"{n},\n")


def _cluster() -> LocalCluster:
    return LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)


def _from_disk(model, cache=True, backend=None):
    """What a worker does: load the model from the path it was sent, resolved against *its* working directory."""
    from conftest import HashEmbedder

    return fb.TagClassifier.load(model, embedder=HashEmbedder())


def test_a_missing_text_in_a_string_column_is_missing_text(model):
    """A dask DataFrame stores text columns as ``string[pyarrow]`` (it converts object columns), where a missing
    cell is ``pd.NA``: such rows were rejected as "text is NAType, not str", while the same rows in an object
    column (or a CSV) said "missing text". Now one reason, whatever the column's dtype."""
    pdf = pd.DataFrame({"id": ["1", "2", "3", "4"], "text": ["export fails", None, np.nan, "add dark mode"]})
    expected = [None, "missing text", "missing text", None]
    for column in (pdf, pdf.astype({"text": "string"}), pdf.astype({"text": "string[pyarrow]"})):
        assert fdask.tag_partition(column, str(model), cache=False)["error"].tolist() == expected
    out = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=2, sort=False), str(model), cache=False)
    assert out.compute(scheduler="sync")["error"].tolist() == expected
    rejected = fb.read_feedback(pdf.astype({"text": "string"})).rejected
    assert rejected["reason"].tolist() == ["missing text", "missing text"]


def test_tag_dataframe_output_writes_to_parquet_with_its_schema(model, tmp_path):
    """``tag_dataframe(ddf, model).to_parquet("tagged/")``, the module's own example, failed in Dask's schema
    inference (``ArrowInvalid: Could not convert <object object ...>``: lists and dicts in object columns), and a
    partial schema failed the same way. ``tag_dataframe_schema()`` is the whole schema, as ``tag`` writes it."""
    pdf = pd.DataFrame({"id": ["1", "2", "3", "4"], "text": ["export fails", "add dark mode", "", "csv broken"]})
    tagged = fb.tag_dataframe(dd.from_pandas(pdf, npartitions=2, sort=False), str(model), cache=False)
    tagged.to_parquet(tmp_path / "tagged", schema=fb.tag_dataframe_schema(), write_index=False,
                      compute_kwargs={"scheduler": "sync"})
    back = pd.read_parquet(tmp_path / "tagged")
    assert back["id"].tolist() == ["1", "2", "3", "4"]
    assert [list(t) for t in back["tags"]] == [["bug"], ["request"], [], ["bug"]]
    assert back["error"].isna().tolist() == [True, True, False, True]
    computed = tagged.compute(scheduler="sync")
    assert [dict(p) for p in back["probabilities"]] == computed["probabilities"].tolist()


def test_tag_dataframe_sends_workers_the_model_folder_by_its_absolute_path(model, tmp_path, monkeypatch):
    """``tag_dataframe(ddf, "models/request-type")`` sent the relative path to every partition: a worker whose
    working directory is another one (another machine, a notebook that changed directory) looked for the model
    there and failed with 'not found'. The client checks the folder and sends its absolute path."""
    monkeypatch.chdir(model.parent)
    caches = []

    def worker_load(model, cache=True, backend=None):
        caches.append(cache)
        return _from_disk(model)

    monkeypatch.setattr(fdask, "load_model_cached", worker_load)
    pdf = pd.DataFrame({"id": ["1", "2"], "text": ["export fails", "add dark mode"]})
    lazy = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=2, sort=False), model.name, cache="emb.sqlite")
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # where the workers run
    assert lazy.compute(scheduler="sync")["tags"].tolist() == [["bug"], ["request"]]
    # and the cache file too: the workers' embeddings went to emb.sqlite in each worker's own directory
    assert set(caches) - {False} == {str(model.parent / "emb.sqlite")}  # False: the client's probe


def test_a_dask_job_sends_workers_the_model_folder_by_its_absolute_path(model, tmp_path, monkeypatch):
    """``feedback-nlp tag --model models/x --engine dask`` sent ``models/x`` with each chunk: workers in another
    working directory failed to load it. Here the directory changes after the first chunk, as for a worker
    started elsewhere; every chunk is tagged and the output equals the local engine's byte for byte."""
    data = _data(tmp_path)
    local = tmp_path / "local.csv"
    fb.tag_file(model, data, local, chunk_size=3, cache=False, progress=False)
    monkeypatch.chdir(model.parent)
    from feedback_nlp import _chunks

    monkeypatch.setitem(_chunks._MODELS, f"{model.name}|False|None", _chunks._MODELS[f"{model}|False|None"])
    monkeypatch.setattr(fdask, "load_model_cached", _from_disk)
    elsewhere = tmp_path / "worker-cwd"
    elsewhere.mkdir()
    out = tmp_path / "dask.csv"
    with _cluster() as cluster:
        summary = fb.tag_file(model.name, data, out, chunk_size=3, cache=False, progress=False, engine="dask",
                              scheduler=cluster.scheduler_address, chunk_hook=lambda i: monkeypatch.chdir(elsewhere))
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (11, 10, 1)
    assert out.read_bytes() == local.read_bytes()


def test_a_scheduler_that_goes_away_mid_job_is_a_clear_error_and_resume_finishes(model, tmp_path):
    """The scheduler stopped (or restarted) while chunks were in flight: the job failed with Dask's
    ``FutureCancelledError`` and the CLI printed 'unexpected FutureCancelledError ... please report it', naming
    no way on. Now the error says the cluster lost a chunk and that --resume finishes; the resumed job reuses the
    finished chunks and its output equals the local engine's: no row lost or duplicated."""
    data = _data(tmp_path)
    local = tmp_path / "local.csv"
    fb.tag_file(model, data, local, chunk_size=3, cache=False, progress=False)
    out = tmp_path / "dask.csv"
    cluster = _cluster()
    try:
        def stop(index: int) -> None:
            if index == 0:
                cluster.close()

        with pytest.raises(fb.FeedbackNLPError, match=r"lost chunk \d.*--resume") as caught:
            fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, engine="dask",
                        scheduler=cluster.scheduler_address, chunk_hook=stop)
        assert "cancelled" in str(caught.value) and not out.exists()
    finally:
        cluster.close()
    with _cluster() as again:
        summary = fb.tag_file(model, data, out, chunk_size=3, cache=False, progress=False, engine="dask",
                              scheduler=again.scheduler_address, resume=True)
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (11, 10, 1) and summary.chunks_reused >= 1
    assert out.read_bytes() == local.read_bytes()
    assert not out.with_name(out.name + ".parts").exists()


def test_a_chunk_that_killed_its_workers_is_a_clear_error(model, tmp_path, monkeypatch, capsys):
    """A chunk whose workers died each time it ran (out of memory on huge rows) ended the job with Dask's
    ``KilledWorker``, reported by the CLI as an unexpected error to report. Now it names the chunk, a smaller
    --chunk-size and --resume."""
    from distributed import KilledWorker

    from feedback_nlp.cli import main

    def killed(model, cache=True, backend=None):
        raise KilledWorker("_remote_chunk-1", SimpleNamespace(address="tcp://127.0.0.1:1"), 3)

    monkeypatch.setattr(fdask, "load_model_cached", killed)
    with _cluster() as cluster:
        code = main(["tag", "--model", str(model), "--in", _data(tmp_path), "--out", str(tmp_path / "o.csv"),
                     "--no-cache", "--engine", "dask", "--scheduler", cluster.scheduler_address, "--json", "-q"])
    error = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["error"]
    assert code == 1 and "unexpected" not in error
    assert "lost chunk 0" in error and "--chunk-size" in error and "--resume" in error


def test_a_worker_with_another_copy_of_the_model_folder_is_refused(model, tmp_path, monkeypatch):
    """Without a shared file system each machine holds its own copy of the model folder: a worker whose copy was
    stale (another training at the same path) tagged its partitions with that model, silently, and the output
    mixed two models. Workers now compare the folder's manifest with the client's and refuse."""
    monkeypatch.setattr(fdask, "load_model_cached", _from_disk)
    pdf = pd.DataFrame({"id": ["1", "2"], "text": ["export fails", "add dark mode"]})
    lazy = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=2, sort=False), str(model), cache=False)
    from conftest import HashEmbedder

    other = fb.TagClassifier(HashEmbedder()).fit(["export fails", "csv export broken", "add dark mode", "sso please"],
                                                 ["request", "request", "bug", "bug"])
    shutil.rmtree(model)
    other.save(model)  # what the workers find at that path
    with pytest.raises(fb.ModelMismatchError, match="on a Dask worker is not the one the client read"):
        lazy.compute(scheduler="sync")


def test_a_worker_with_another_feedback_nlp_is_refused(model):
    """A worker with another feedback_nlp version (cleaning and tagging differ between versions) tagged its chunks
    without a word; one without feedback_nlp failed with 'unexpected ModuleNotFoundError ... please report it'."""
    chunk = pd.DataFrame({"id": ["1"], "text": ["export fails"]})
    with pytest.raises(fb.FeedbackNLPError, match="runs feedback_nlp .* the client 0.0.1: install the same version"):
        fdask._remote_chunk(chunk, str(model), False, "text", "id", 20000, None, ("0.0.1", None))

    class Missing:
        def result(self):
            raise ModuleNotFoundError("No module named 'feedback_nlp'")

    import distributed

    with pytest.raises(fb.FeedbackNLPError, match="cannot run chunk 4 .*install feedback-nlp"):
        fdask._result(distributed, Missing(), 4)


@pytest.mark.parametrize("text", ["object", "str", "string[pyarrow]", "category"])
def test_every_partition_has_the_dtypes_of_the_meta(model, text):
    """The output's ``id`` was ``str`` in partitions holding a rejected row and object elsewhere (the meta says
    object): the dtype of one column depended on how the rows fell into partitions. Every partition, empty or not,
    now has the meta's dtypes."""
    pdf = pd.DataFrame({"id": ["1", "2", "3", "4", "5"], "text": ["export fails", None, "add dark mode", "", "sso"]})
    pdf = pdf.astype({"id": "str", "text": text})
    lazy = fdask.tag_dataframe(dd.from_pandas(pdf, npartitions=3, sort=False), str(model), cache=False)
    meta = lazy._meta.dtypes.to_dict()
    for part in [pdf.iloc[:0], pdf.iloc[:1], pdf.iloc[1:2], pdf]:
        assert fdask.tag_partition(part, str(model), cache=False).dtypes.to_dict() == meta
    assert lazy.compute(scheduler="sync").dtypes.to_dict() == meta


def test_a_scheduler_without_workers_says_why_the_job_waits(model, tmp_path, caplog):
    """A scheduler whose workers had not started (or had all gone) left the job silent, with no row moving and no
    word why, until workers joined. It still waits (an adaptive cluster starts workers on demand), and says so."""
    data = _data(tmp_path)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster:
        timer = threading.Timer(1.0, cluster.scale, args=(1,))
        timer.start()
        try:
            with caplog.at_level("WARNING", logger="feedback_nlp.dask"):
                summary = fb.tag_file(model, data, tmp_path / "o.csv", chunk_size=3, cache=False, progress=False,
                                      engine="dask", scheduler=cluster.scheduler_address)
        finally:
            timer.join()
    assert (summary.rows_in, summary.rows_out, summary.rows_error) == (11, 10, 1)
    assert f"the Dask scheduler at {cluster.scheduler_address} has no workers" in caplog.text


@pytest.mark.parametrize("rows", [[1.0, np.nan, 3.0], ["a", "b", "c"], [1, 2.5, 3], [1, None, 3]])
def test_a_partition_row_column_that_is_no_row_numbers_is_a_usage_error(model, rows):
    """``tag_partition`` takes the partition's ``_row`` column (the Spark recipe makes one): a missing number came
    out as row -9223372036854775808, sorted first, without a word; text was a bare ValueError from int()."""
    pdf = pd.DataFrame({"id": ["1", "2", "3"], "text": ["export fails", "add dark mode", "csv broken"], "_row": rows})
    with pytest.raises(UsageError, match="column '_row' must hold a whole row number"):
        fdask.tag_partition(pdf, str(model), cache=False)
    assert fdask.tag_partition(pdf.assign(_row=[7.0, 8.0, 9.0]), str(model), cache=False)["row"].tolist() == [7, 8, 9]
