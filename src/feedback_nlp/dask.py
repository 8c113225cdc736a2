"""Scale-out on Dask (the ``feedback-nlp[dask]`` extra).

- :func:`tag_dataframe` tags a ``dask.dataframe`` partition by partition.
- :func:`tag_partition` is the plain pandas → pandas function behind it; it also runs under Spark's
  ``mapInPandas`` (see docs/batch.md).
- :func:`run_chunks` is what ``feedback-nlp tag --engine dask`` uses: the same resumable chunk/part
  mechanism as the local engine, with chunks computed on the cluster.

Only the model *path* travels with a task; each worker process loads the model once and keeps it
(:func:`feedback_nlp._chunks.load_model_cached`).

Example:
    >>> import dask.dataframe as dd                                        # doctest: +SKIP
    >>> ddf = dd.read_parquet("backlog/*.parquet")                         # doctest: +SKIP
    >>> tagged = tag_dataframe(ddf, "models/request-type")                  # doctest: +SKIP
    >>> tagged.to_parquet("tagged/", schema=tag_dataframe_schema())          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ._chunks import _pack, load_model_cached, process_chunk
from ._optional import require
from .cleaning import MAX_TEXT_CHARS
from .errors import ColumnError, FeedbackNLPError, InvalidInputError, ModelMismatchError, UsageError, quoted
from .records import RowValidator, _unique_labels

__all__ = ["run_chunks", "tag_dataframe", "tag_dataframe_schema", "tag_partition"]

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ["row", "id", "tags", "probabilities", "confidence", "needs_review", "error"]


def tag_dataframe_schema() -> Any:
    """The Arrow schema of :func:`tag_dataframe`'s output, for ``.to_parquet(folder, schema=tag_dataframe_schema())``.

    Dask infers a Parquet schema from the output's (object) columns and cannot: ``to_parquet`` without it failed
    with ``ArrowInvalid: Could not convert <object object ...>``. ``tags`` is a list of strings and
    ``probabilities`` a ``map<string,double>``, as in the files of ``feedback-nlp tag``.
    """
    import pyarrow as pa

    return pa.schema([("row", pa.int64()), ("id", pa.string()), ("tags", pa.list_(pa.string())),
                      ("probabilities", pa.map_(pa.string(), pa.float64())), ("confidence", pa.float64()),
                      ("needs_review", pa.bool_()), ("error", pa.string())])


def _for_workers(model: str | os.PathLike) -> str:
    """The model as a worker must name it: a model folder here by its absolute path (a worker resolves a relative
    path against its own working directory, another folder or machine), a bundled model's name as it is."""
    folder = Path(model)
    return str(folder.absolute()) if (folder / "config.json").is_file() else str(model)


def _cache_for_workers(cache: Any) -> Any:
    """A cache file named by a relative path, by its absolute one (for the reason of :func:`_for_workers`)."""
    return str(Path(cache).absolute()) if isinstance(cache, (str, os.PathLike)) else cache


def _this_install(model: str) -> tuple[str, str | None]:
    """(feedback_nlp version, SHA-256 of the model folder's manifest) as this process sees them."""
    import feedback_nlp

    from ._persist import manifest_digest

    folder = Path(model)
    return feedback_nlp.__version__, manifest_digest(folder) if (folder / "config.json").is_file() else None


_SAME_AS_CLIENT: set[tuple[str, tuple[str, str | None]]] = set()


def _check_worker(model: str, client_install: tuple[str, str | None]) -> None:
    """Refuse to tag on a worker whose feedback_nlp version or model folder differs from the client's: each machine
    of a cluster without a shared file system holds its own copy of the model, and a stale copy (or another
    version, which cleans and tags differently) silently gave some chunks other tags than the rest."""
    if (model, client_install) in _SAME_AS_CLIENT:
        return
    version, manifest = _this_install(model)
    if version != client_install[0]:
        raise FeedbackNLPError(f"a Dask worker runs feedback_nlp {version}, the client {client_install[0]}: install "
                               "the same version on every worker (rows would be cleaned and tagged differently)")
    if manifest != client_install[1]:
        raise ModelMismatchError(f"the model folder {quoted(model)} on a Dask worker is not the one the client read "
                                 "(its files differ, or it is missing there): give every worker the same copy (a "
                                 "shared file system, or the same files at the same path on each machine)")
    _SAME_AS_CLIENT.add((model, client_install))


def _row_numbers(rows: pd.Series) -> pd.Series:
    """A partition's own ``_row`` column as int64, or UsageError: a missing number became -9223372036854775808 in
    ``row`` (and that row moved first), and text was a bare ValueError."""
    numbers = pd.to_numeric(rows, errors="coerce")
    bad = numbers.isna() | (numbers != numbers.round())
    if bad.any():
        raise UsageError(f"column '_row' must hold a whole row number in every row; found {quoted(rows[bad].iloc[0])}")
    return numbers.astype("int64")


def tag_partition(pdf: pd.DataFrame, model: str, *, text_col: str = "text", id_col: str = "id",
                  cache: Any = True, max_chars: int = MAX_TEXT_CHARS, backend: str | None = None) -> pd.DataFrame:
    """Tag one pandas partition. Rejected rows stay in the output with ``error`` set (and no tags), so a
    partition never loses a row; filter on ``error.isna()`` to split them. ``row`` is the partition's own
    ``_row`` column when it has one (whole numbers in every row, else UsageError), else the position inside the
    partition (from 0, as in ``tag_dataframe``). Duplicate ids are found inside the partition only."""
    return _tag_partition(pdf, model, text_col=text_col, id_col=id_col, cache=cache, max_chars=max_chars,
                          backend=backend)


def _validator(pdf: pd.DataFrame, text_col: str, id_col: str, max_chars: int,
               taken: dict[str, tuple[int, str]] | None = None, number: int = 0) -> tuple[pd.DataFrame, RowValidator]:
    """The partition with its ``_row`` column, and a validator that holds as taken already the ids of this
    partition that an earlier one claimed (``taken``: ``{claim key: (partition, first id)}``, see
    :func:`_claim_key`), as the one validator of a ``tag`` job holds the ids of its earlier chunks."""
    named = [n for n in pdf.index.names if isinstance(n, str) and n not in pdf.columns]
    if named:  # ddf.set_index("id") (sorted, known divisions): the ids are the index, as read_feedback reads them
        pdf = pdf.reset_index(level=named)
    if pdf.columns.has_duplicates:  # two "text" columns: read as read_feedback reads them (was an AttributeError)
        pdf = pdf.set_axis(_unique_labels(pdf.columns), axis=1)
    reserved = [c for c in ("_error", "_raw") if c in pdf.columns]
    if reserved:  # the readers' own columns: a partition's "_error" column rejected its rows with its values
        raise ColumnError(f"column(s) {reserved} use names feedback_nlp reserves for parse errors; rename them")
    pdf = pdf.assign(_row=_row_numbers(pdf["_row"]) if "_row" in pdf.columns else range(len(pdf)))
    validator = RowValidator(text_col=text_col, id_col=id_col, keep_columns=False, max_chars=max_chars)
    # only this partition's ids are looked up: the time is the partition's, not the number of duplicates
    taken = taken or {}
    claimed = []
    for value in pdf[id_col].tolist() if taken and id_col is not None and id_col in pdf.columns else []:
        row_id = validator._id(value)
        first = taken.get(_claim_key(row_id)) if isinstance(row_id, str) else None
        if first is not None and first[0] < number:
            claimed.append(first[1])
    validator.claim(claimed)
    return pdf, validator


def _tag_partition(pdf: pd.DataFrame, model: str, *, text_col: str, id_col: str, cache: Any, max_chars: int,
                   backend: str | None, taken: dict[str, tuple[int, str]] | None = None,
                   number: int = 0) -> pd.DataFrame:
    clf = load_model_cached(model, cache, backend)
    pdf, validator = _validator(pdf, text_col, id_col, max_chars, taken, number)
    tagged, rejected = process_chunk(_pack(validator.validate(pdf)), clf, text_col=text_col, id_col=id_col,
                                     max_chars=max_chars)
    tagged = tagged.assign(error=None)
    rejected = rejected.rename(columns={"reason": "error"}).assign(tags=[[] for _ in range(len(rejected))],
                                                                     probabilities=[{} for _ in range(len(rejected))], confidence=0.0, needs_review=True)
    out = pd.concat([tagged, rejected[OUTPUT_COLUMNS]], ignore_index=True).sort_values("row", kind="stable")
    out["confidence"] = out["confidence"].astype(float)
    out["needs_review"] = out["needs_review"].astype(bool)
    # object, as the meta of tag_dataframe says: ids and reasons read from a "str" column came back as "str" in
    # the partitions holding a rejected row and as object in the others
    out["id"], out["error"] = out["id"].astype(object), out["error"].astype(object)
    return out[OUTPUT_COLUMNS].reset_index(drop=True)


def _claim_key(row_id: str) -> str:
    """What a validator compares an id by: the id itself (``a...``), and for an id with accents its composed
    Unicode form (``u...``), under which composed and decomposed spellings are one id."""
    return "a" + row_id if row_id.isascii() else "u" + unicodedata.normalize("NFC", row_id)


_CLAIMS_META = pd.DataFrame({"key": pd.Series(dtype="string"), "first": pd.Series(dtype="string")})


def _claims(pdf: pd.DataFrame, number: pd.Series, text_col: str, id_col: str, max_chars: int) -> pd.DataFrame:
    """The ids that a partition's valid rows claim, validated on its own (its first row with each id), each as
    ``key`` (:func:`_claim_key`) and ``first``: the partition's number and the id, so that the smallest is the
    claim of the frame's first partition holding the id."""
    pdf, validator = _validator(pdf, text_col, id_col, max_chars)
    ids = validator.validate(pdf).records["id"].tolist()
    if (validator._cols or {}).get("id") is None:  # ids generated from row numbers (no id column): nothing to claim
        ids = []
    return pd.DataFrame({"key": pd.Series([_claim_key(i) for i in ids], dtype="string"),
                         "first": pd.Series([f"{int(number.iloc[0]):012d}\x00{i}" for i in ids], dtype="string")})


def _taken(reduced: pd.DataFrame) -> dict[str, tuple[int, str]]:
    """``{claim key: (partition, first id)}`` of the ids claimed in more than one partition, from the claims
    reduced per key (their smallest ``first``, and in how many partitions)."""
    taken: dict[str, tuple[int, str]] = {}
    for key, first in zip(reduced.index.tolist(), reduced["first"].tolist()):
        number, row_id = first.split("\x00", 1)
        taken[key] = (int(number), row_id)
    return taken


def tag_dataframe(ddf: Any, model: str, *, text_col: str = "text", id_col: str = "id", cache: Any = True,
                  backend: str | None = None) -> Any:
    """Tag a ``dask.dataframe.DataFrame`` lazily; returns a dask DataFrame with :data:`OUTPUT_COLUMNS`
    (``row`` is the position inside the partition).

    A duplicate id is found across partitions, as ``feedback-nlp tag`` finds it across chunks: the first valid
    row with an id (in partition order) keeps it, later ones get ``error`` "duplicate id". For that, this call
    reads the partitions once for their ids (validated as for tagging; reduced per id on the cluster, only the
    ids found in several partitions come back here), so the frame is read twice in all.

    The embedding ``backend`` (default ``auto``) is resolved here, on the client, and every partition uses
    that one, so workers on different CPUs never mix backends.
    """
    dd = require("dask.dataframe", "dask", "tag_dataframe")
    import dask

    if not isinstance(ddf, dd.DataFrame):  # a pandas frame was "'DataFrame' object has no attribute 'map_partitions'"
        hint = (": pass dask.dataframe.from_pandas(df, npartitions=...), or tag a pandas frame in this process with "
                "TagClassifier.load(model).tag(df[text_col])") if isinstance(ddf, pd.DataFrame) else ""
        raise InvalidInputError(f"tag_dataframe tags a dask DataFrame (with a {text_col!r} column), got "
                                f"{type(ddf).__module__.split('.')[0]}.{type(ddf).__name__}{hint}")
    model, cache = _for_workers(model), _cache_for_workers(cache)
    backend = getattr(load_model_cached(model, False, backend).embedder_, "backend", backend)
    meta = pd.DataFrame({"row": pd.Series(dtype="int64"), "id": pd.Series(dtype=object), "tags": pd.Series(dtype=object),
                         "probabilities": pd.Series(dtype=object), "confidence": pd.Series(dtype=float),
                         "needs_review": pd.Series(dtype=bool), "error": pd.Series(dtype=object)})

    client_install = _this_install(model)
    # duplicate ids across partitions, as a `tag` job finds them across chunks: a first pass reads the partitions
    # for the ids their valid rows claim, reduced per id on the cluster (only the ids claimed in several partitions
    # come back); then each partition is validated holding the ids an earlier partition claimed as taken. Without
    # it, an id in two partitions was tagged twice (the CLI's job sends the second to errors as "duplicate id").
    # Each task is given its partition's number: Dask's partition_info is the number after its optimiser moved a
    # selection (tagged.partitions[2]) before the tagging, so that partition was tagged as the first.
    numbers = dd.from_delayed([dask.delayed(pd.Series)([number], dtype="int64") for number in range(ddf.npartitions)],
                              meta=pd.Series(dtype="int64"), verify_meta=False)
    claims = ddf.map_partitions(_claims, numbers, text_col, id_col, MAX_TEXT_CHARS, meta=_CLAIMS_META,
                                align_dataframes=False)
    reduced = claims.groupby("key").agg(first=("first", "min"), partitions=("first", "count"),
                                        split_out=max(1, ddf.npartitions // 16))
    taken = dask.delayed(_taken(reduced[reduced["partitions"] > 1].compute()), traverse=False)

    def _one(pdf: pd.DataFrame, number: pd.Series, taken: dict[str, tuple[int, str]]) -> pd.DataFrame:
        _check_worker(model, client_install)
        return _tag_partition(pdf, model, text_col=text_col, id_col=id_col, cache=cache, max_chars=MAX_TEXT_CHARS,
                              backend=backend, taken=taken, number=int(number.iloc[0]))

    return ddf.map_partitions(_one, numbers, taken, meta=meta, align_dataframes=False)


def _remote_chunk(chunk: pd.DataFrame, model: str, cache: Any, text_col: str, id_col: str,
                  max_chars: int, backend: str | None = None,
                  client_install: tuple[str, str | None] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    if client_install is not None:
        _check_worker(model, client_install)
    clf = load_model_cached(model, cache, backend)
    return process_chunk(chunk, clf, text_col=text_col, id_col=id_col, max_chars=max_chars)


def _connect(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``; on failure Dask's own error, with the process's scheduler
    setting as it was."""
    import dask

    before = dask.config.get("scheduler", None)
    try:
        return distributed.Client(scheduler)
    except (ValueError, OSError, MemoryError, TimeoutError, asyncio.TimeoutError):
        # asyncio.TimeoutError: Dask's own, for a Client that does not start in time (on Python 3.10 it is not
        # the builtin TimeoutError; one class from 3.11 on)
        # a Client that fails to start has already made itself the process's scheduler: every later dask
        # computation (a dask.dataframe in the same notebook) failed with "no Client active"
        if before is None:
            dask.config.config.pop("scheduler", None)
        else:
            dask.config.set(scheduler=before)
        raise


def _client(distributed: Any, scheduler: str) -> Any:
    """A client of the scheduler at ``scheduler``, or UsageError naming the address and what went wrong.

    Dask's own errors read as a bug of the command: "missing port number" (a ValueError), "unknown address
    scheme 'http'", and a server that is no Dask scheduler (the dashboard's port, a proxy) answered with bytes
    read as a message length: a MemoryError for 3 EiB, reported as "out of memory". An address that does not
    answer fails after Dask's connect timeout (``distributed.comm.timeouts.connect``, 30 s by default).
    """
    try:
        return _connect(distributed, scheduler)
    except ValueError as exc:
        error = UsageError(f"--scheduler {quoted(scheduler)} is not a Dask scheduler address such as "
                           f"tcp://host:8786 ({exc})")
    except (OSError, MemoryError, TimeoutError, asyncio.TimeoutError) as exc:
        why = "it answered, but not as a Dask scheduler" if isinstance(exc, MemoryError) else str(exc)
        error = UsageError(f"cannot connect to the Dask scheduler at {quoted(scheduler)}: {why}; check the address "
                           "and that the scheduler is running (without --scheduler a local cluster is started)")
    # The Client that failed to start is left in a reference cycle (through the error's traceback). Whenever the
    # garbage collector ran its __del__ later, inside the next Client's start, it waited on the loop lock that
    # start holds: the next dask run hung for ever (distributed 2026.8). Collected here, it closes at once.
    gc.collect()
    raise error


def _result(distributed: Any, fut: Any, index: int) -> Any:
    """A chunk's result, or FeedbackNLPError saying that the cluster lost it and that ``--resume`` finishes the job.

    Dask's own errors read as a bug of the command ("unexpected FutureCancelledError ... please report it"): a
    scheduler that went away or was restarted cancels every chunk in flight, and a chunk whose workers died
    each time it ran (out of memory) is a KilledWorker. The chunks finished before are kept as parts.
    """
    from concurrent.futures import CancelledError

    try:
        return fut.result()
    except (CancelledError, distributed.KilledWorker) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # "use a smaller --chunk-size; ... run the same command again with --resume" read as one advice, and a
        # resume refuses another chunk size (the finished chunks are of the first one)
        hint = ("; if its workers ran out of memory (each time the chunk ran), a smaller --chunk-size is needed, "
                "which a resume cannot change: delete the job's .parts folder and start over with one") \
            if isinstance(exc, distributed.KilledWorker) else ""
        raise FeedbackNLPError(f"the Dask cluster lost chunk {index} ({why}); the chunks finished so far are kept: "
                               f"run the same command again with --resume to finish the job{hint}") from exc
    except ImportError as exc:
        if isinstance(exc, FeedbackNLPError):  # a missing extra, named by feedback_nlp itself
            raise
        # a worker without feedback_nlp cannot even read the task: "unexpected ModuleNotFoundError"
        raise FeedbackNLPError(f"a Dask worker cannot run chunk {index} ({exc}): install feedback-nlp[dask], the "
                               "client's version, on every worker") from exc


def run_chunks(chunks: Iterable[tuple[int, pd.DataFrame]], done: set[int],
               on_done: Callable[[int, pd.DataFrame, pd.DataFrame], None], *, model: str, cache: Any = True,
               text_col: str = "text", id_col: str = "id", max_chars: int = MAX_TEXT_CHARS,
               scheduler: str | None = None, max_in_flight: int | None = None, backend: str | None = None) -> None:
    """Compute chunks on a Dask cluster with a bounded number in flight (flat memory on the client).

    ``scheduler`` is an address such as ``tcp://10.0.0.5:8786``; ``None`` starts a LocalCluster.
    """
    distributed = require("dask.distributed", "dask", "the Dask engine")
    model, cache = _for_workers(model), _cache_for_workers(cache)
    own = scheduler is None
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) if own else None
    client = distributed.Client(cluster) if scheduler is None else _client(distributed, scheduler)
    try:
        client_install = _this_install(model)
        workers = len(client.scheduler_info().get("workers", {}))
        if not workers:  # an adaptive cluster starts workers on demand: wait, but say why nothing moves
            log.warning("the Dask scheduler at %s has no workers: the chunks wait until a worker joins",
                        client.scheduler.address)
        workers = max(1, workers)
        limit = max_in_flight or 2 * workers
        in_flight: dict[Any, int] = {}
        pending = distributed.as_completed()

        def drain(block_until: int) -> None:
            while len(in_flight) > block_until:
                fut = next(pending)
                index = in_flight.pop(fut)
                tagged, rejected = _result(distributed, fut, index)
                on_done(index, tagged, rejected)
                fut.release()

        for index, chunk in chunks:
            if index in done:
                continue
            fut = client.submit(_remote_chunk, chunk, model, cache, text_col, id_col, max_chars, backend, client_install,
                                pure=False)
            in_flight[fut] = index
            pending.add(fut)
            drain(limit - 1)
        drain(0)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


