"""Streaming, resumable, exactly-once batch tagging of large backlogs.

The input is read in chunks; each finished chunk is written atomically (temp file + rename) as a part in
``<out>.parts/``, together with its rejected rows. After a crash — even SIGKILL — ``resume=True`` skips the
finished parts and redoes only the rest, so every input row ends up exactly once in the output or in the
errors file. The parts are merged into the output at the end, chunk by chunk, so memory stays flat.

The same chunk function runs in-process (``engine="local"``) or on a Dask cluster (``engine="dask"``,
see :mod:`feedback_nlp.dask`), where each worker loads the model once.

Example:
    >>> summary = tag_file("models/request-type", "backlog.csv", "tagged.parquet", resume=True)  # doctest: +SKIP
    >>> summary.rows_in == summary.rows_out + summary.rows_error                                # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._config import DEFAULTS
from .cleaning import MAX_TEXT_CHARS
from .connectors import sniff_format
from .connectors import table_format as _input_table_format
from .errors import InvalidInputError
from .records import REJECT_COLUMNS, FeedbackData, RowValidator, csv_ready, iter_feedback, table_format

__all__ = ["BatchSummary", "ProgressReporter", "embed_file", "load_model_cached", "process_chunk", "read_chunks", "tag_file"]

log = logging.getLogger(__name__)
_MODELS: dict[str, Any] = {}
ERROR_COLUMNS = list(REJECT_COLUMNS)


@dataclass
class BatchSummary:
    """Row accounting of a batch job: ``rows_in == rows_out + rows_error`` always holds."""

    rows_in: int
    rows_out: int
    rows_error: int
    chunks: int
    chunks_reused: int
    seconds: float
    output: str
    errors: str | None
    embedder: str | None = None

    def __str__(self) -> str:
        rate = self.rows_in / self.seconds if self.seconds else 0.0
        return (f"rows in: {self.rows_in} = tagged: {self.rows_out} + errors: {self.rows_error} "
                f"({self.chunks} chunks, {self.chunks_reused} reused; {self.seconds:.1f} s, {rate:.0f} rows/s)")


def load_model_cached(model: str | os.PathLike, cache: str | os.PathLike | bool | None = True,
                      backend: str | None = None) -> Any:
    """Load a tag model once per process (Dask workers call this for every task: only the first loads).

    ``backend`` is the embedding backend; a distributed job passes the one its driver resolved, so that
    workers on different CPUs never mix the vectors of different backends.
    """
    from .embedding import Embedder
    from .tagging import TagClassifier

    key = f"{model}|{cache}|{backend}"
    if key not in _MODELS:
        probe = TagClassifier.load(model, backend=backend)
        if isinstance(probe.embedder_, Embedder) and cache:
            from .cache import EmbeddingCache

            probe.embedder_.cache = EmbeddingCache(None if cache is True else cache)
        _MODELS[key] = probe
    return _MODELS[key]


def _reject_reason(row_id: Any, text: Any, cleaned: str | None, max_chars: int) -> str | None:
    """Why one row would be rejected (the validator's text and id checks, without its dates or duplicates)."""
    chunk = pd.DataFrame({"_row": [1], "id": [row_id], "text": [text]}, dtype=object)
    chunk["_row"] = chunk["_row"].astype(np.int64)
    rejected = RowValidator(id_col="id", max_chars=max_chars, keep_columns=False).validate(chunk).rejected
    return rejected["reason"].iloc[0] if len(rejected) else None


def _pack(fb: FeedbackData) -> pd.DataFrame:
    """One validated chunk as a single frame in source order: ``_row, id, text`` for accepted rows and
    ``_reason, _reject_text`` for rejected ones. This is what travels to Dask workers."""
    ok = pd.DataFrame({"_row": fb.records["row"].to_numpy(dtype=np.int64), "id": fb.records["id"].to_numpy(),
                       "text": fb.records["text"].to_numpy(), "_reason": None, "_reject_text": None})
    bad = pd.DataFrame({"_row": fb.rejected["row"].to_numpy(dtype=np.int64), "id": fb.rejected["id"].to_numpy(),
                        "text": None, "_reason": fb.rejected["reason"].to_numpy(), "_reject_text": fb.rejected["text"].to_numpy()})
    both = pd.concat([f.astype({c: object for c in f.columns if c != "_row"}) for f in (ok, bad) if len(f)] or [ok],
                     ignore_index=True)
    return both.sort_values("_row", kind="stable").reset_index(drop=True)


def read_chunks(path: str | os.PathLike, chunk_size: int, *, text_col: str = "text", id_col: str | None = "id",
                format: str = "auto", encoding: str | None = None,
                max_chars: int = MAX_TEXT_CHARS) -> Iterator[pd.DataFrame]:
    """Stream a file as validated, packed chunks (see :func:`_pack`) through the one shared validator,
    whose duplicate-id memory spans all chunks. Every row of the source is in exactly one chunk."""
    validator = RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars)
    for fb in iter_feedback(path, format=format, encoding=encoding, chunk_size=chunk_size, validator=validator):
        yield _pack(fb)


def _validate_chunk(chunk: pd.DataFrame, text_col: str, id_col: str | None,
                    max_chars: int) -> tuple[np.ndarray, list[str], list[str], pd.DataFrame]:
    """(ok mask, ids and cleaned texts of the ok rows, rejected rows) of a packed chunk, or of a raw one
    (a Dask partition), which is validated here on its own."""
    if "_reason" not in chunk.columns:
        chunk = _pack(RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars).validate(chunk))
    ok = chunk["_reason"].isna().to_numpy()
    bad = chunk[~ok]
    errors = pd.DataFrame({"row": bad["_row"].to_numpy(dtype=np.int64), "id": bad["id"].to_numpy(),
                           "reason": bad["_reason"].to_numpy(), "text": bad["_reject_text"].to_numpy()},
                          columns=ERROR_COLUMNS)
    return ok, chunk["id"][ok].tolist(), chunk["text"][ok].tolist(), errors


def process_chunk(chunk: pd.DataFrame, model: Any, *, text_col: str = "text", id_col: str = "id",
                  max_chars: int = MAX_TEXT_CHARS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tag one chunk: returns (tagged rows, rejected rows with a reason). Every input row is in exactly one."""
    if "_reason" not in chunk.columns:
        chunk = _pack(RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars).validate(chunk))
    ok, ids, good, errors = _validate_chunk(chunk, text_col, id_col, max_chars)
    if good:
        out = model.tag(good, ids=ids)
    else:
        out = pd.DataFrame(columns=["id", "tags", "probabilities", "confidence", "needs_review"])
    out.insert(0, "row", chunk["_row"].to_numpy(dtype=np.int64)[ok])
    return out.reset_index(drop=True), errors


def embed_file(path: str | os.PathLike, embedder: Any, *, text_col: str = "text", id_col: str | None = "id",
               chunk_size: int = DEFAULTS.chunk_size, keep: tuple[str, ...] = ("source", "account_id", "account_revenue", "created_at",
                                                                "url", "author", "status", "source_detail"),
               max_chars: int = MAX_TEXT_CHARS, progress: bool = True, format: str = "auto",
               encoding: str | None = None) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Stream a file chunk by chunk: validate, clean and embed each chunk (through the cache).

    Returns ``(records, vectors, rejected)``: records hold ``id``, ``text`` (cleaned), ``row`` and the
    ``keep`` columns present; rejected rows are :data:`~feedback_nlp.records.REJECT_COLUMNS`. Rows are
    validated exactly as :func:`~feedback_nlp.records.read_feedback` does. Only vectors and cleaned texts
    are kept in memory, never the raw input. This is the path ``feedback-nlp dedupe`` and ``themes`` use.
    """
    path = Path(path)
    reporter = ProgressReporter(_count_rows(path), desc="embedding") if progress else None
    parts, vecs, errs = [], [], []
    validator = RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars)
    for fb in iter_feedback(path, format=format, encoding=encoding, chunk_size=chunk_size, validator=validator):
        errs.append(fb.rejected)
        rec = fb.records[[c for c in ("id", "text", "row", *keep) if c in fb.records.columns]]
        parts.append(rec)
        if len(rec):
            vecs.append(embedder.encode(rec["text"].tolist()))
        if reporter:
            reporter.update(len(fb))
    if reporter:
        reporter.close()
    records = pd.concat([p for p in parts if len(p)] or parts[:1] or [pd.DataFrame(columns=["id", "text"])],
                        ignore_index=True)
    vectors = np.vstack(vecs) if vecs else np.zeros((0, embedder.dim), dtype=np.float32)
    rejected = pd.concat([e for e in errs if len(e)] or [pd.DataFrame(columns=ERROR_COLUMNS)], ignore_index=True)
    return records, vectors, rejected


class ProgressReporter:
    """A tqdm bar (rows/s, ETA) on a terminal; a plain log line every ``every`` seconds otherwise."""

    def __init__(self, total: int | None, desc: str = "tagging", every: float = 10.0, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.total, self.done, self.every, self.start = total, 0, every, time.monotonic()
        self.last = self.start
        self.bar = None
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="rows", unit_scale=True, file=self.stream)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= self.every or (self.total is not None and self.done >= self.total):
            self.last = now
            rate = self.done / max(now - self.start, 1e-9)
            eta = f", ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate > 0 else ""
            total = f"/{self.total}" if self.total else ""
            print(f"[feedback-nlp] {self.done}{total} rows, {rate:.0f} rows/s{eta}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _count_rows(path: Path) -> int | None:
    fmt = _input_table_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # noqa: BLE001 - a corrupt file is reported by the reader, with its name
            return None
    return None  # counting CSV rows means reading quoted newlines properly: not worth a second pass


def _fingerprint(path: Path, chunk_size: int, model: str, text_col: str, id_col: str, embedding: str | None) -> dict[str, Any]:
    st = path.stat()
    h = hashlib.sha256()
    if path.is_dir():  # an export folder (Slack): its files' names, sizes and times stand for its content
        for p in sorted(path.rglob("*")):
            h.update(f"{p.relative_to(path)}|{p.stat().st_size}|{p.stat().st_mtime_ns}\n".encode())
    else:
        with open(path, "rb") as fh:  # head and tail: a changed input is noticed without hashing gigabytes
            h.update(fh.read(1 << 20))
            fh.seek(max(0, st.st_size - (1 << 20)))
            h.update(fh.read())
    return {"input": str(path.resolve()), "size": st.st_size, "sample_sha256": h.hexdigest(),
            "chunk_size": chunk_size, "model": str(model), "text_col": text_col, "id_col": id_col,
            "embedding": embedding}


def _schema(kind: str) -> Any:
    import pyarrow as pa

    if kind == "errors":
        return pa.schema([("row", pa.int64()), ("id", pa.string()), ("reason", pa.string()), ("text", pa.string())])
    return pa.schema([("row", pa.int64()), ("id", pa.string()), ("tags", pa.list_(pa.string())),
                      ("probabilities", pa.string()), ("confidence", pa.float64()), ("needs_review", pa.bool_())])


def _atomic_parquet(df: pd.DataFrame, path: Path, kind: str) -> None:
    """Write a part with a fixed schema (an empty part must not change column types), then rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(pa.Table.from_pandas(df, schema=_schema(kind), preserve_index=False), tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _for_output(df: pd.DataFrame, fmt: str, raw_csv: bool = False) -> pd.DataFrame:
    if fmt in ("csv", "tsv"):
        return csv_ready(df, raw_csv=raw_csv)
    return df


def default_errors_path(out: Path) -> Path:
    """``tagged.parquet`` -> ``tagged.errors.parquet``: where rejected rows go unless told otherwise."""
    return out.with_name(out.name.split(".")[0] + ".errors" + "".join(out.suffixes))


def _merge_parts(parts: list[Path], out: Path, columns: list[str], raw_csv: bool = False) -> int:
    """Concatenate part files into ``out`` chunk by chunk (flat memory), atomically."""
    fmt = table_format(out)
    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    writer = None
    try:
        if fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            for p in parts:
                table = pq.read_table(p)
                if table.num_rows == 0 and writer is not None:
                    continue
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                n += table.num_rows
            if writer is None:
                pq.write_table(pa.Table.from_pandas(pd.DataFrame(columns=columns)), tmp)
        else:
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                first = True
                for p in parts:
                    df = _for_output(pd.read_parquet(p), fmt, raw_csv)
                    n += len(df)
                    if fmt == "jsonl":
                        if len(df):
                            fh.write(df.to_json(orient="records", lines=True, force_ascii=False, date_format="iso"))
                            if not df.to_json(orient="records", lines=True).endswith("\n"):
                                fh.write("\n")
                    else:
                        df.to_csv(fh, index=False, header=first, sep="\t" if fmt == "tsv" else ",")
                        first = False
                if first and fmt in ("csv", "tsv"):
                    pd.DataFrame(columns=columns).to_csv(fh, index=False)
    finally:
        if writer is not None:
            writer.close()
    os.replace(tmp, out)
    return n


def tag_file(
    model: str | os.PathLike,
    input_path: str | os.PathLike,
    output_path: str | os.PathLike,
    *,
    errors_path: str | os.PathLike | None = None,
    chunk_size: int = DEFAULTS.chunk_size,
    resume: bool = False,
    text_col: str = "text",
    id_col: str = "id",
    cache: str | os.PathLike | bool | None = True,
    engine: str = "local",
    scheduler: str | None = None,
    backend: str | None = None,
    progress: bool = True,
    keep_parts: bool = False,
    max_chars: int = MAX_TEXT_CHARS,
    chunk_hook: Callable[[int], None] | None = None,
    format: str = "auto",
    encoding: str | None = None,
    raw_csv: bool = False,
) -> BatchSummary:
    """Tag a CSV/Parquet/JSONL backlog into CSV/Parquet/JSONL, streaming, resumable and exactly once.

    Args:
        model: a saved tag-model folder or a bundled model name.
        input_path, output_path: files; formats follow the extensions.
        errors_path: where rejected rows go (``row, id, reason, text``); default ``<output stem>.errors.<ext>``.
        format, encoding: how to read the input (see :func:`~feedback_nlp.records.read_feedback`).
        chunk_size: rows per chunk (memory is bounded by it, not by the input size).
        resume: reuse the finished chunks of an interrupted run of the same job.
        cache: the embedding cache (True: default path; a path; False/None: none).
        engine: ``"local"`` or ``"dask"`` (with ``scheduler``, an address or None for a LocalCluster).
        backend: the embedding backend (default ``auto``, resolved once here and used by every worker).

    Returns:
        :class:`BatchSummary`; ``rows_in == rows_out + rows_error``.
    """
    t0 = time.monotonic()
    inp, out = Path(input_path), Path(output_path)
    if not inp.exists():
        raise FileNotFoundError(f"input file not found: {inp}")
    sniff_format(inp) if format == "auto" else None, table_format(out)  # fail early on unknown formats
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    if engine not in ("local", "dask"):
        raise InvalidInputError(f"engine must be 'local' or 'dask', got {engine!r}")
    err = Path(errors_path) if errors_path else default_errors_path(out)
    parts_dir = out.with_name(out.name + ".parts")
    clf = load_model_cached(model, cache, backend)  # resolves `auto` once, on the driver
    # the embedder's id (weights and backend) is part of the job: a resume never mixes two backends' tags
    fingerprint = _fingerprint(inp, chunk_size, str(model), text_col, id_col, getattr(clf.embedder_, "model_id", None))
    manifest = parts_dir / "manifest.json"
    if parts_dir.exists():
        if not resume:
            raise InvalidInputError(f"{parts_dir} holds the parts of an interrupted run: pass --resume (resume=True) "
                                    "to finish it, or delete the folder to start over")
        old = json.loads(manifest.read_text()) if manifest.exists() else None
        if old != fingerprint:
            changed = sorted(k for k in set(fingerprint) | set(old or {}) if (old or {}).get(k) != fingerprint.get(k))
            raise InvalidInputError(f"{parts_dir} belongs to a different job ({', '.join(changed)} changed: input, "
                                    "chunk size, model, columns or embedding backend); delete it to start over")
    else:
        parts_dir.mkdir(parents=True)
        tmp = manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(fingerprint, indent=2))
        os.replace(tmp, manifest)
    for stale in parts_dir.glob("*.tmp"):
        stale.unlink()

    done = {int(p.stem.split("-")[1]) for p in parts_dir.glob("part-*.parquet")}
    reporter = ProgressReporter(_count_rows(inp)) if progress else None
    rows_in = 0
    n_chunks = 0

    def finish(index: int, tagged: pd.DataFrame, rejected: pd.DataFrame) -> None:
        # errors first, then the part: a chunk counts as done only once both are on disk
        _atomic_parquet(rejected, parts_dir / f"errors-{index:06d}.parquet", "errors")
        _atomic_parquet(tagged, parts_dir / f"part-{index:06d}.parquet", "tagged")
        if chunk_hook is not None:
            chunk_hook(index)

    chunks: Iterator[pd.DataFrame] = read_chunks(inp, chunk_size, text_col=text_col, id_col=id_col, format=format,
                                                 encoding=encoding, max_chars=max_chars)
    embedder_backend = getattr(clf.embedder_, "backend", None)
    if engine == "local":
        for index, chunk in enumerate(chunks):
            n_chunks += 1
            rows_in += len(chunk)
            if index not in done:
                tagged, rejected = process_chunk(chunk, clf, text_col=text_col, id_col=id_col, max_chars=max_chars)
                finish(index, tagged, rejected)
            if reporter:
                reporter.update(len(chunk))
    elif engine == "dask":
        from .dask import run_chunks

        def counted() -> Iterator[tuple[int, pd.DataFrame]]:
            nonlocal rows_in, n_chunks
            for index, chunk in enumerate(chunks):
                n_chunks += 1
                rows_in += len(chunk)
                if reporter and index in done:
                    reporter.update(len(chunk))
                yield index, chunk

        def on_done(index: int, tagged: pd.DataFrame, rejected: pd.DataFrame) -> None:
            finish(index, tagged, rejected)
            if reporter:
                reporter.update(len(tagged) + len(rejected))

        run_chunks(counted(), done, on_done, model=str(model), cache=cache, text_col=text_col, id_col=id_col,
                   max_chars=max_chars, scheduler=scheduler, backend=embedder_backend)
    if reporter:
        reporter.close()

    parts = [parts_dir / f"part-{i:06d}.parquet" for i in range(n_chunks)]
    err_parts = [parts_dir / f"errors-{i:06d}.parquet" for i in range(n_chunks)]
    missing = [p.name for p in parts + err_parts if not p.exists()]
    if missing:
        raise RuntimeError(f"batch job incomplete: {missing[:5]} missing; run again with resume=True")
    rows_out = _merge_parts(parts, out, ["row", "id", "tags", "probabilities", "confidence", "needs_review"], raw_csv)
    rows_err = _merge_parts(err_parts, err, ERROR_COLUMNS, raw_csv)
    if rows_out + rows_err != rows_in:
        raise RuntimeError(f"row accounting failed: {rows_in} in, {rows_out} out, {rows_err} errors; parts kept in {parts_dir}")
    summary = BatchSummary(rows_in, rows_out, rows_err, n_chunks, len(done & set(range(n_chunks))),
                           round(time.monotonic() - t0, 2), str(out), str(err), getattr(clf.embedder_, "model_id", None))
    if not keep_parts:
        shutil.rmtree(parts_dir)
    log.info("batch summary: %s", asdict(summary))
    return summary
