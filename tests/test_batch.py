import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from feedback_nlp import InvalidInputError
from feedback_nlp.batch import ProgressReporter, tag_file
from feedback_nlp.records import read_table, write_table
from feedback_nlp.tagging import TagClassifier


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, sample, sample_vectors, embedder):
    clf = TagClassifier(embedder).fit(sample_vectors, sample["request_type"])
    return clf.save(tmp_path_factory.mktemp("model") / "request-type")


@pytest.fixture(scope="module")
def backlog(tmp_path_factory, sample):
    """The sample plus rows that must be rejected: empty, binary, too long, missing id."""
    df = sample[["id", "text", "source"]].copy()
    bad = pd.DataFrame({
        "id": ["BAD-EMPTY", "BAD-BIN", "BAD-LONG", "", "BAD-WS"],
        "text": ["", "abc\x00\x01\x02\x03\x04def", "word " * 6000, "no id on this row", "   "],
        "source": ["support"] * 5,
    })
    df = pd.concat([df.iloc[:1000], bad, df.iloc[1000:]], ignore_index=True)
    path = tmp_path_factory.mktemp("in") / "backlog.csv"
    df.to_csv(path, index=False)
    return path


def _check(out, errors, n_in):
    o, e = read_table(out).drop(columns="_row"), read_table(errors).drop(columns="_row")
    assert len(o) + len(e) == n_in
    rows = np.sort(np.concatenate([o["row"].astype(int), e["row"].astype(int)]))
    # every input row exactly once; `row` is the record's line (CSV/JSONL) or record number (Parquet), from 1
    assert len(np.unique(rows)) == n_in and rows.min() >= 1
    return o, e


def test_errors_accounting(model_dir, backlog, tmp_path, cache_path):
    out = tmp_path / "tagged.parquet"
    summary = tag_file(model_dir, backlog, out, chunk_size=400, cache=cache_path, progress=False)
    assert summary.rows_in == 3005 and summary.rows_error == 5 and summary.rows_out == 3000
    assert str(summary).startswith("rows in: 3005 = tagged: 3000 + errors: 5")
    o, e = _check(out, summary.errors, 3005)
    reasons = dict(zip(e["id"].fillna(""), e["reason"]))
    assert reasons["BAD-EMPTY"].startswith("empty") and reasons["BAD-BIN"].startswith("binary")
    assert reasons["BAD-LONG"].startswith("text too long") and reasons[""] == "missing id"
    assert list(o.columns) == ["row", "id", "tags", "probabilities", "confidence", "needs_review"]
    assert not (tmp_path / "tagged.parquet.parts").exists()


@pytest.mark.parametrize("ext", ["csv", "jsonl"])
def test_other_formats(model_dir, backlog, tmp_path, cache_path, ext):
    src = tmp_path / f"in.{'parquet' if ext == 'csv' else 'jsonl'}"
    write_table(read_table(backlog).drop(columns="_row"), src)
    out = tmp_path / f"tagged.{ext}"
    summary = tag_file(model_dir, src, out, chunk_size=1000, cache=cache_path, progress=False)
    _check(out, summary.errors, 3005)


def read_json_backend(out):
    import json

    manifest = json.loads((out.with_name(out.name + ".parts") / "manifest.json").read_text())
    return manifest["embedding"].rsplit(":", 1)[-1]


def test_interrupted_run_needs_resume(model_dir, backlog, tmp_path, cache_path):
    out = tmp_path / "t.parquet"

    def boom(index):
        if index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False, chunk_hook=boom)
    with pytest.raises(InvalidInputError, match="--resume"):
        tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False)
    with pytest.raises(InvalidInputError, match="different job"):
        tag_file(model_dir, backlog, out, chunk_size=999, cache=cache_path, progress=False, resume=True)
    other = "torch" if read_json_backend(out) != "torch" else "torch-bf16"
    with pytest.raises(InvalidInputError, match="embedding changed"):  # another backend: never mixed in one output
        tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False, resume=True, backend=other)
    summary = tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False, resume=True)
    assert summary.chunks_reused == 3
    _check(out, summary.errors, 3005)


def test_sigkill_and_resume(model_dir, backlog, tmp_path, cache_path):
    out = tmp_path / "k.parquet"
    parts = tmp_path / "k.parquet.parts"
    env = {**os.environ, "FEEDBACK_NLP_CACHE": str(cache_path)}
    cmd = [sys.executable, "-m", "feedback_nlp.cli", "tag", "--model", str(model_dir), "--in", str(backlog),
           "--out", str(out), "--chunk-size", "100"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(parts.glob("part-*.parquet"))) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(parts.glob("part-*.parquet")))
    assert 4 <= done_before < 31, "the job should have been killed mid-run"
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "rows in: 3005 = tagged: 3000 + errors: 5" in res.stdout
    o, _ = _check(out, tmp_path / "k.errors.parquet", 3005)
    assert o["id"].is_unique


def test_progress_plain_lines(capsys):
    import io

    buf = io.StringIO()
    p = ProgressReporter(total=100, every=0.0, stream=buf)
    p.update(50)
    p.update(50)
    lines = buf.getvalue().strip().splitlines()
    assert lines[-1].startswith("[feedback-nlp] 100/100 rows") and "rows/s" in lines[0]


def test_missing_column(model_dir, tmp_path):
    src = tmp_path / "x.csv"
    pd.DataFrame({"id": ["1"], "body": ["x y"]}).to_csv(src, index=False)
    from feedback_nlp import ColumnError

    with pytest.raises(ColumnError, match="text column 'text' not found"):
        tag_file(model_dir, src, tmp_path / "o.csv", progress=False)


@pytest.mark.slow
def test_dask_engine_equals_local(model_dir, backlog, tmp_path, cache_path):
    pytest.importorskip("dask.distributed")
    local = tmp_path / "local.parquet"
    tag_file(model_dir, backlog, local, chunk_size=500, cache=cache_path, progress=False)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dist = tmp_path / "dask.parquet"
        summary = tag_file(model_dir, backlog, dist, chunk_size=500, cache=cache_path, progress=False,
                           engine="dask", scheduler=cluster.scheduler_address)
        assert summary.rows_in == 3005
        a, b = read_table(local), read_table(dist)
        pd.testing.assert_frame_equal(a.drop(columns="_row"), b.drop(columns="_row"))

        import dask.dataframe as dd
        from dask.distributed import Client

        from feedback_nlp.dask import tag_dataframe

        with Client(cluster):
            ddf = dd.from_pandas(read_table(backlog).drop(columns="_row"), npartitions=3)
            res = tag_dataframe(ddf, str(model_dir), cache=str(cache_path)).compute()
        assert len(res) == 3005 and res["error"].notna().sum() == 5
        ok = res[res["error"].isna()]
        assert sorted(ok["id"]) == sorted(a["id"])


def test_workers_use_the_backend_the_driver_resolved(model_dir, backlog, monkeypatch, cache_path):
    """`auto` is resolved once on the client; every partition and chunk gets that concrete backend."""
    pytest.importorskip("dask.dataframe")
    import dask.dataframe as dd

    import feedback_nlp.batch as batch_mod
    import feedback_nlp.dask as fdask

    seen = []
    real = batch_mod.load_model_cached

    def spy(model, cache=True, backend=None):
        seen.append(backend)
        return real(model, cache, backend)

    monkeypatch.setattr(fdask, "load_model_cached", spy)
    monkeypatch.delenv("FEEDBACK_NLP_BACKEND", raising=False)
    driver = real(str(model_dir), False).embedder_.backend
    ddf = dd.from_pandas(read_table(backlog).drop(columns="_row").head(300), npartitions=3)
    res = fdask.tag_dataframe(ddf, str(model_dir), cache=str(cache_path)).compute(scheduler="sync")
    assert len(res) == 300
    assert seen[0] is None and set(seen[1:]) == {driver} and len(seen) >= 4  # client probe, then 3 partitions
    clf = real(str(model_dir), False, "torch")
    assert clf.embedder_.backend == "torch" and clf is not real(str(model_dir), False, "onnx-int8")
