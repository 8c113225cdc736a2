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
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import _chunks, _config
from ._atomic import OutputSet, distinct_paths, remove_stale_temps, writable_target
from ._chunks import _pack, load_model_cached, process_chunk
from ._config import DEFAULTS
from ._lock import JobLock, lock_path
from .cleaning import MAX_TEXT_CHARS
from .connectors import resolve_encoding, sniff_format
from .connectors import table_format as _input_table_format
from .errors import InputNotFoundError, IntegrityError, InvalidInputError, UsageError, quoted
from .records import (
    CSV_LINE_END,
    OUTPUT_SUFFIXES,
    REJECT_COLUMNS,
    RowValidator,
    csv_ready,
    iter_feedback,
    open_text_output,
    table_format,
    write_json_array,
)

__all__ = ["BatchSummary", "ProgressReporter", "chunk_digest", "default_errors_path", "embed_file", "load_model_cached",
           "lock_path", "parts_path", "process_chunk", "read_chunks", "tag_file"]

log = logging.getLogger(__name__)
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
        rate = _speed(self.rows_in, self.seconds)
        return (f"rows in: {self.rows_in} = tagged: {self.rows_out} + errors: {self.rows_error} "
                f"({self.chunks} chunks, {self.chunks_reused} reused; {self.seconds:.1f} s{', ' + rate if rate else ''})")


def _speed(rows: int, seconds: float) -> str:
    """How fast rows went, readable at any speed: ``1234 rows/s``, ``2.5 rows/s``, and under one row a second
    the seconds per row (``0 rows/s`` said nothing for a slow model or long rows); empty with no time measured.

    >>> _speed(5000, 4.0), _speed(5, 2.0), _speed(3, 40.0), _speed(3, 0.0)
    ('1250 rows/s', '2.5 rows/s', '13.3 s/row', '')
    """
    if seconds <= 0 or rows <= 0:
        return "0 rows/s" if seconds > 0 else ""
    rate = rows / seconds
    return f"{rate:.0f} rows/s" if rate >= 10 else f"{rate:.1f} rows/s" if rate >= 1 else f"{seconds / rows:.1f} s/row"


def read_chunks(path: str | os.PathLike, chunk_size: int, *, text_col: str = "text", id_col: str | None = "id",
                format: str = "auto", encoding: str | None = None,
                max_chars: int = MAX_TEXT_CHARS) -> Iterator[pd.DataFrame]:
    """Stream a file as validated, packed chunks (see :func:`_pack`) through the one shared validator,
    whose duplicate-id memory spans all chunks. Every row of the source is in exactly one chunk."""
    validator = RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars)
    for fb in iter_feedback(path, format=format, encoding=encoding, chunk_size=chunk_size, validator=validator):
        yield _pack(fb)


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
            seconds = max(now - self.start, 1e-9)
            rate = self.done / seconds
            eta = f", ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate > 0 else ""
            total = f"/{self.total}" if self.total else ""
            print(f"[feedback-nlp] {self.done}{total} rows, {_speed(self.done, seconds)}{eta}", file=self.stream,
                  flush=True)

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


PARTS_FORMAT = 2  # bump when what a part holds changes: a resume never mixes two layouts
_HASH_KEY = b"feedback_nlp.chunk_sha256"

# What each fingerprint entry means, for the message that refuses a resume.
_WHAT = {
    "parts_format": "the feedback_nlp version (its parts layout)",
    "input_size": "the input file (its size)",
    "input_format": "--format", "encoding": "--encoding",
    "chunk_size": "--chunk-size", "text_col": "--text-col", "id_col": "--id-col", "max_chars": "the text length limit",
    "model": "--model",
    "model_manifest": "the model folder's files (retrained or replaced)",
    "embedding": "the embedding model or backend",
    "date_order": "FEEDBACK_NLP_DATE_ORDER (how slash dates are read, so which rows are rejected)",
}


def default_errors_path(out: Path) -> Path:
    """``tagged.parquet`` -> ``tagged.errors.parquet``: where rejected rows go unless told otherwise; the
    format's extension is kept whole (``t.csv.gz`` -> ``t.errors.csv.gz``, ``run.v2.json`` ->
    ``run.v2.errors.json``, ``.json`` -> ``.errors.json``, which had no extension left)."""
    name = out.name
    for suffix, _ in OUTPUT_SUFFIXES:
        for ext in (suffix + ".gz", suffix):
            if name.lower().endswith(ext):
                return out.with_name(name[:len(name) - len(ext)] + ".errors" + name[len(name) - len(ext):])
    return out.with_name(name + ".errors")  # no format: refused by table_format before any work


def parts_path(out: Path) -> Path:
    """The folder of finished chunks of a job writing ``out``: ``tagged.parquet.parts``."""
    return out.with_name(out.name + ".parts")


def chunk_digest(chunk: pd.DataFrame) -> str:
    """SHA-256 of a validated chunk's content (row numbers, ids, cleaned texts, reject reasons)."""
    h = hashlib.sha256(json.dumps([str(c) for c in chunk.columns]).encode())
    try:
        h.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists in a JSON input): hash their JSON text instead
        h.update(chunk.to_json(orient="values", date_format="iso", default_handler=str).encode())
    return h.hexdigest()


def _model_folder(model: str | os.PathLike) -> Path | None:
    folder = Path(model)
    if (folder / "config.json").exists():
        return folder
    from .tagging import bundled_models

    return bundled_models().get(str(model))


def _fingerprint(inp: Path, model: str | os.PathLike, embedding: str | None, **options: Any) -> dict[str, Any]:
    """Everything the parts depend on except the input's content, which is checked chunk by chunk."""
    from ._persist import manifest_digest

    folder = _model_folder(model)
    size = sum(p.stat().st_size for p in inp.rglob("*") if p.is_file()) if inp.is_dir() else inp.stat().st_size
    return {"parts_format": PARTS_FORMAT, "input_size": size, **options, "model": str(model),
            "model_manifest": manifest_digest(folder) if folder is not None else None, "embedding": embedding}


def _schema(kind: str) -> Any:
    import pyarrow as pa

    if kind == "errors":
        return pa.schema([("row", pa.int64()), ("id", pa.string()), ("reason", pa.string()), ("text", pa.string())])
    return pa.schema([("row", pa.int64()), ("id", pa.string()), ("tags", pa.list_(pa.string())),
                      ("probabilities", pa.map_(pa.string(), pa.float64())), ("confidence", pa.float64()),
                      ("needs_review", pa.bool_())])


def _atomic_parquet(df: pd.DataFrame, path: Path, kind: str, digest: str | None = None) -> None:
    """Write a part with a fixed schema (an empty part must not change column types), then rename. The
    part carries the digest of the input chunk it was made from, so a resume can tell if the input changed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kind == "tagged":
        df = df.assign(probabilities=pd.Series([list(p.items()) for p in df["probabilities"]], index=df.index))
    table = pa.Table.from_pandas(df, schema=_schema(kind), preserve_index=False)
    if digest is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), _HASH_KEY: digest.encode()})
    tmp = path.with_name(path.name + ".tmp")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is not None:
            raise
        # pyarrow's 'Error writing bytes to file. Detail: [errno 28] No space left on device' named no file
        # and no way on: name the part, and how to finish the job once there is room
        code = exc.errno or next((int(n) for n in re.findall(r"\[errno (\d+)\]", str(exc))), None)
        reason = os.strerror(code) if code else str(exc)
        raise OSError(code, f"{reason} (writing a part of the job; make room, then run again with --resume)",
                      str(path)) from exc
    os.replace(tmp, path)


def _part_digest(path: Path) -> str | None:
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    value = meta.get(_HASH_KEY)
    return value.decode() if value else None


def _for_output(df: pd.DataFrame, fmt: str, raw_csv: bool = False) -> pd.DataFrame:
    if "probabilities" in df.columns:  # a Parquet map reads back as (key, value) pairs
        df = df.assign(probabilities=pd.Series([dict(p) if p is not None else {} for p in df["probabilities"]],
                                               index=df.index))
    if fmt in ("csv", "tsv"):
        return csv_ready(df, raw_csv=raw_csv)
    return df


def _merge_parts(parts: list[Path], target: Path, columns: list[str], fmt: str, raw_csv: bool = False) -> int:
    """Concatenate part files into ``target`` chunk by chunk (flat memory). ``target`` is a temp path of an
    :class:`~feedback_nlp._atomic.OutputSet`, renamed onto the output only when every output is complete."""
    n = 0
    writer = None
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            for p in parts:
                table = pq.read_table(p)
                table = table.replace_schema_metadata({k: v for k, v in (table.schema.metadata or {}).items()
                                                       if k != _HASH_KEY})
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                if table.num_rows or n == 0:
                    writer.write_table(table)
                n += table.num_rows
            if writer is None:
                import pyarrow as pa

                pq.write_table(pa.Table.from_pandas(pd.DataFrame(columns=columns)), target)
        elif fmt == "json":  # one array, written a part at a time: memory holds one part, not the output
            with open_text_output(target) as fh:
                n = write_json_array((_for_output(pd.read_parquet(p), fmt) for p in parts), fh)
        else:
            with open_text_output(target) as fh:  # gzip when the name ends in .gz, as write_table does
                first = True
                for p in parts:
                    df = _for_output(pd.read_parquet(p), fmt, raw_csv)
                    n += len(df)
                    if fmt == "jsonl":
                        if len(df):
                            text = df.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
                            fh.write(text if text.endswith("\n") else text + "\n")
                    else:
                        df.to_csv(fh, index=False, header=first, sep="\t" if fmt == "tsv" else ",",
                                  lineterminator=CSV_LINE_END)
                        first = False
                if first and fmt in ("csv", "tsv"):
                    pd.DataFrame(columns=columns).to_csv(fh, index=False, lineterminator=CSV_LINE_END)
    finally:
        if writer is not None:
            writer.close()
    return n


def _refuse_ambiguous_tags(clf: Any, out: Path) -> None:
    """A model (trained in Python) whose tag holds '|' cannot write CSV: its cells join a row's tags with '|'.
    Refused before any work, not after the last chunk."""
    if table_format(out) not in ("csv", "tsv"):
        return
    bad = next((str(t) for t in getattr(clf, "classes_", []) if "|" in str(t)), None)
    if bad is not None:
        raise UsageError(f"the model's tag {quoted(bad)} holds '|', the separator of a row's tags in CSV outputs, "
                         f"so {out.name} would be ambiguous; write .jsonl, .json or .parquet instead")


def _check_job_paths(inp: Path, out: Path, err: Path) -> None:
    """Refuse, before anything is written, paths that name one file (symlinks, relative paths and hard links
    included), and outputs that cannot be written."""
    paths = {"input": inp, "output": out, "errors file": err, "parts folder": parts_path(out),
             "lock file": lock_path(out), "errors file's lock": lock_path(err)}
    clashes = distinct_paths(**paths)
    if clashes:
        a, b = clashes[0]
        raise UsageError(f"the {a} ({paths[a]}) and the {b} ({paths[b]}) are the same file; choose another "
                         "output path so that nothing is overwritten")
    parts, lock = paths["parts folder"], paths["lock file"]
    if inp.is_dir():  # a Slack export folder: the job's own files would be part of it
        inside = next((name for name in ("output", "errors file", "parts folder", "lock file")
                       if inp.resolve() in paths[name].resolve().parents), None)
        if inside is not None:
            # its size (which a resume compares) grew with every part written, so --resume was always refused,
            # and an output in a channel's folder would be read as a day file by the next run
            raise UsageError(f"the {inside} ({paths[inside]}) is inside the input folder {inp}: the job's own "
                             "files would become part of the export it reads; choose a path outside it")
    for name in ("output", "errors file"):  # the parts folder is deleted when the job ends, with what it holds
        if parts.resolve() in paths[name].resolve().parents:
            raise UsageError(f"the {name} ({paths[name]}) is inside the parts folder {parts}, which is deleted "
                             "when the job ends; choose a path outside it")
    if lock.is_dir():  # was the bare IsADirectoryError of os.open, naming no lock
        raise UsageError(f"the job's lock file {lock} is a folder; remove it (a run holds a file there, not a folder)")
    if parts.exists() and not parts.is_dir():  # was 'holds the parts of an interrupted run'
        raise UsageError(f"the job's parts folder {parts} is a file; remove or rename it")
    for target in (out, err):
        writable_target(target)


_PART_NAME = re.compile(r"part-(\d{6})\.parquet")


def _finished_chunks(parts_dir: Path) -> set[int]:
    """The chunks an interrupted run finished: both its parts are on disk and readable, with the digest a
    resume compares. Any other chunk is done again (its parts rewritten), so a resume always completes:
    a part cut short by a full disk or a crash of the machine was pyarrow's bare ArrowInvalid, and a missing
    errors part was refused at the end of every resume as 'disappeared during the run'. Other files in the
    folder (``part-x.parquet``, a copy) are ignored; they were a ValueError from int()."""
    done = set()
    for path in parts_dir.iterdir():
        match = _PART_NAME.fullmatch(path.name)
        if match is None:
            continue
        index = int(match.group(1))
        errors = parts_dir / f"errors-{index:06d}.parquet"
        try:
            digest = _part_digest(path)
            readable = digest is not None and _part_rows(errors) >= 0
            # an errors part of another chunk (a copy; as many rows) was merged as this one's: its rejected rows
            # were lost and the other's written twice. Parts of an earlier version carry no digest there.
            if readable and _part_digest(errors) not in (None, digest):
                log.warning("redoing chunk %d: its errors part in %s belongs to another chunk", index, parts_dir)
                readable = False
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file; redo the chunk
            log.warning("redoing chunk %d: its parts in %s cannot be read (%s)", index, parts_dir, exc)
            readable = False
        if readable:
            done.add(index)
    return done


def _holds_nothing(parts_dir: Path) -> bool:
    """No manifest and nothing but temp files: the folder of a run killed before its first part was in place
    (or after its cleanup removed every part)."""
    return all(p.is_file() and p.name.endswith(".tmp") for p in parts_dir.iterdir())


def _remove_parts(parts_dir: Path) -> None:
    """Delete the parts folder, its manifest last: a run killed during the deletion leaves either a manifest
    (``--resume`` redoes the deleted chunks) or nothing to reuse, never parts without the manifest that
    vouches for them (refused by every later run until the user deleted the folder by hand)."""
    manifest = parts_dir / "manifest.json"
    for path in parts_dir.iterdir():
        if path == manifest:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    manifest.unlink(missing_ok=True)
    parts_dir.rmdir()


def _part_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _refuse_changed(parts_dir: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    if old is None:
        raise InvalidInputError(f"{parts_dir} has no readable manifest.json: it is not the parts folder of a "
                                "feedback_nlp job; delete it to start over")
    same_files = new.get("model_manifest") is not None and old.get("model_manifest") == new.get("model_manifest")
    # a model folder named another way (m, ./m, /abs/m, a copy) with the same files is the same model: its
    # path alone refused the resume and told the user to delete the finished chunks
    changed = [k for k in new if old.get(k) != new.get(k) and not (k == "model" and same_files)]
    if changed:
        what = "; ".join(f"{_WHAT.get(k, k)} ({old.get(k)!r} -> {new.get(k)!r})" if k not in ("model_manifest",)
                         else _WHAT[k] for k in changed)
        raise InvalidInputError(f"cannot resume: {what} changed since the interrupted run, so its finished chunks "
                                f"would mix with new results; delete {parts_dir} to start over")


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
        resume: finish an interrupted run of the same job (same input content, model files, embedder and
            options; anything else is refused, naming what changed).
        cache: the embedding cache (True: default path; a path; False/None: none).
        engine: ``"local"`` or ``"dask"`` (with ``scheduler``, an address or None for a LocalCluster).
        backend: the embedding backend (default ``auto``, resolved once here and used by every worker).
        raw_csv: write CSV cells as they are (default: spreadsheet formulas neutralised).

    Returns:
        :class:`BatchSummary`; ``rows_in == rows_out + rows_error``.

    Raises:
        UsageError: input, output, errors file or parts folder are one file; JobLockedError: another run
        holds the output's lock; InvalidInputError: parts of an interrupted run exist without ``resume``,
        or the job changed since.
    """
    t0 = time.monotonic()
    if not isinstance(model, (str, os.PathLike)):  # e.g. a fitted TagClassifier: say what to pass instead
        raise UsageError(f"model must be a saved tag-model folder or a bundled model name, got a "
                         f"{type(model).__name__}; save it first (clf.save(folder)) or call clf.tag(texts)")
    inp, out = Path(input_path), Path(output_path)
    if not inp.exists():
        raise InputNotFoundError(f"input file not found: {inp}")
    sniff_format(inp) if format == "auto" else None, table_format(out)  # fail early on unknown formats
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        # 2.5 ran with chunks of 2.5 rows asked for, "3" was a TypeError from a comparison
        raise UsageError(f"chunk_size must be a whole number >= 1, got {chunk_size!r}")
    if engine not in ("local", "dask"):
        raise UsageError(f"engine must be 'local' or 'dask', got {engine!r}")
    err = Path(errors_path) if errors_path else default_errors_path(out)
    _check_job_paths(inp, out, err)
    table_format(err)  # an errors path with no format failed after the last chunk
    parts_dir = parts_path(out)
    clf = load_model_cached(model, cache, backend)  # resolves `auto` once, on the driver
    _refuse_ambiguous_tags(clf, out)
    # the errors file is an output too: two jobs given one --errors each wrote it whole, and the first's rejected
    # rows were lost while both reported success
    with JobLock(lock_path(out), what=f"a job writing {out}") as lock, \
            JobLock(lock_path(err), what=f"a job writing {err}"):
        if lock.took_over is not None:
            log.warning("took over the lock of an earlier run that ended without releasing it (%s)", lock.took_over)
        for stale in remove_stale_temps(out) + remove_stale_temps(err):  # a run killed while writing them
            log.warning("removed %s, left by a run killed while writing its outputs", stale)
        return _run_job(clf, model, inp, out, err, parts_dir, t0, chunk_size=chunk_size, resume=resume,
                        text_col=text_col, id_col=id_col, cache=cache, engine=engine, scheduler=scheduler,
                        progress=progress, keep_parts=keep_parts, max_chars=max_chars, chunk_hook=chunk_hook,
                        format=format, encoding=encoding, raw_csv=raw_csv)


def _run_job(clf: Any, model: str | os.PathLike, inp: Path, out: Path, err: Path, parts_dir: Path, t0: float, *,
             chunk_size: int, resume: bool, text_col: str, id_col: str, cache: Any, engine: str, scheduler: str | None,
             progress: bool, keep_parts: bool, max_chars: int, chunk_hook: Callable[[int], None] | None,
             format: str, encoding: str | None, raw_csv: bool) -> BatchSummary:
    # the embedder's id (weights and backend) and the model folder's manifest are part of the job
    # the format as read, not as named: --format auto then --format csv on a CSV file is one job (was refused)
    resolved = sniff_format(inp) if format == "auto" else format
    # and the codec read with: --encoding unset and --encoding utf-8 (or UTF8) on a UTF-8 file are one job too
    def codec(declared: str | None) -> str | None:
        return resolve_encoding(inp, declared)[0] if inp.is_file() else declared

    fingerprint = _fingerprint(inp, model, getattr(clf.embedder_, "model_id", None), input_format=resolved,
                               encoding=codec(encoding), chunk_size=chunk_size, text_col=text_col, id_col=id_col,
                               max_chars=max_chars, date_order=_config.date_order())
    manifest = parts_dir / "manifest.json"
    done: set[int] = set()
    if parts_dir.is_dir() and _holds_nothing(parts_dir):
        # a run killed after creating the folder but before its manifest was in place, or while deleting the
        # folder at its end: no chunk to reuse, so start over (was 'no readable manifest.json: delete it')
        _remove_parts(parts_dir)
    if parts_dir.exists():
        if not resume:
            raise InvalidInputError(f"{parts_dir} holds the parts of an interrupted run: pass --resume (resume=True) "
                                    "to finish it, or delete the folder to start over")
        try:
            old = json.loads(manifest.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and old.get("input_format") == "auto":  # parts of a version that kept "auto"
            old["input_format"] = sniff_format(inp)
        if isinstance(old, dict) and "encoding" in old and old["encoding"] is None:  # ... and kept no codec
            old["encoding"] = codec(None)
        if isinstance(old, dict) and "date_order" not in old:  # ... nor the date order: the chunks' hashes judge
            old["date_order"] = fingerprint["date_order"]
        _refuse_changed(parts_dir, old if isinstance(old, dict) else None, fingerprint)
        for stale in parts_dir.glob("*.tmp"):
            stale.unlink()
        done = _finished_chunks(parts_dir)

    def start_parts() -> None:
        # created only once the first chunk was read and validated: a failed start leaves nothing behind
        if not parts_dir.exists():
            parts_dir.mkdir(parents=True)
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text(json.dumps(fingerprint, indent=2))
            os.replace(tmp, manifest)

    reporter = ProgressReporter(_count_rows(inp)) if progress else None
    rows_in = 0
    n_chunks = 0
    digests: dict[int, str] = {}

    def finish(index: int, tagged: pd.DataFrame, rejected: pd.DataFrame) -> None:
        start_parts()
        # errors first, then the part: a chunk counts as done only once both are on disk
        digest = digests.pop(index)  # in both parts: an errors part of another chunk is never taken for this one's
        _atomic_parquet(rejected, parts_dir / f"errors-{index:06d}.parquet", "errors", digest)
        _atomic_parquet(tagged, parts_dir / f"part-{index:06d}.parquet", "tagged", digest)
        if chunk_hook is not None:
            chunk_hook(index)

    def read() -> Iterator[tuple[int, pd.DataFrame]]:
        """The input's chunks, each hashed as it is read; a finished chunk must hash as it did before."""
        nonlocal rows_in, n_chunks
        chunks = read_chunks(inp, chunk_size, text_col=text_col, id_col=id_col, format=format, encoding=encoding,
                             max_chars=max_chars)
        for index, chunk in enumerate(chunks):
            n_chunks += 1
            rows_in += len(chunk)
            digest = chunk_digest(chunk)
            if index in done:
                if _part_digest(parts_dir / f"part-{index:06d}.parquet") != digest:
                    rows = chunk["_row"]
                    raise InvalidInputError(
                        f"cannot resume: the input file changed since the interrupted run (chunk {index}, rows "
                        f"{rows.min()}-{rows.max()}, differs from what was tagged); delete {parts_dir} to start over")
                if reporter:
                    reporter.update(len(chunk))
            else:
                digests[index] = digest
            yield index, chunk

    if engine == "local":
        for index, chunk in read():
            if index not in done:
                tagged, rejected = process_chunk(chunk, clf, text_col=text_col, id_col=id_col, max_chars=max_chars)
                finish(index, tagged, rejected)
                if reporter:
                    reporter.update(len(chunk))
    else:
        from .dask import run_chunks

        def on_done(index: int, tagged: pd.DataFrame, rejected: pd.DataFrame) -> None:
            finish(index, tagged, rejected)
            if reporter:
                reporter.update(len(tagged) + len(rejected))

        run_chunks(read(), done, on_done, model=str(model), cache=cache, text_col=text_col, id_col=id_col,
                   max_chars=max_chars, scheduler=scheduler, backend=getattr(clf.embedder_, "backend", None))
    if reporter:
        reporter.close()

    start_parts()  # an empty input: no chunk at all
    parts = [parts_dir / f"part-{i:06d}.parquet" for i in range(n_chunks)]
    err_parts = [parts_dir / f"errors-{i:06d}.parquet" for i in range(n_chunks)]
    missing = [p.name for p in parts + err_parts if not p.exists()]
    if missing:  # removed while the job ran: not a bug to report, a folder to start over
        raise IntegrityError(f"parts {missing[:5]} of {parts_dir} disappeared during the run; run again with "
                             "--resume (resume=True) to redo them")
    with OutputSet() as outs:
        rows_out = _merge_parts(parts, outs.file(out), _chunks.TAG_COLUMNS, table_format(out), raw_csv)
        rows_err = _merge_parts(err_parts, outs.file(err), ERROR_COLUMNS, table_format(err), raw_csv)
        if rows_out + rows_err != rows_in:  # a part edited or damaged between runs: never a silent loss
            raise IntegrityError(f"the parts in {parts_dir} do not add up: {rows_in} rows in, {rows_out} tagged + "
                                 f"{rows_err} errors (a part was edited or damaged?); nothing was written: delete "
                                 f"{parts_dir} and run again")
    summary = BatchSummary(rows_in, rows_out, rows_err, n_chunks, len(done & set(range(n_chunks))),
                           round(time.monotonic() - t0, 2), str(out), str(err), getattr(clf.embedder_, "model_id", None))
    if not keep_parts:
        _remove_parts(parts_dir)
    log.info("batch summary: %s", asdict(summary))
    return summary
