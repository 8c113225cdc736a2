"""Raw readers for table files (CSV/TSV, JSONL, JSON, Parquet) that never let one bad row sink a file.

Each reader yields *raw chunks*: DataFrames of the file's own columns plus ``_row`` (the 1-based line of
the record in a CSV/JSONL file, or its 1-based record number in JSON and Parquet). A row that could not be
parsed (ragged CSV row, unclosed quote, malformed JSON line, bytes invalid in the declared encoding) is
kept with ``_error`` (the reason) and ``_raw`` (its source text) so that the validator in
:mod:`feedback_nlp.records` sends it to the rejected rows with its line number. Only a file that cannot be
read at all raises :class:`~feedback_nlp.errors.InputFileError`.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text('id,text\\n1,Export fails\\n2,"unclosed\\n3,Dark mode\\n')
    >>> chunk = next(iter_table(p, "csv"))
    >>> chunk[["_row", "id", "_error"]].values.tolist()
    [[2, '1', None], [3, '2', 'malformed CSV (unexpected end of data)'], [4, '3', None]]
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import io
import itertools
import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pandas as pd

from ..errors import ColumnError, EncodingError, InputFileError, InputNotFoundError, InvalidInputError, quoted

__all__ = ["TABLE_FORMATS", "check_regular", "iter_table", "json_loads", "resolve_encoding", "sniff_table_format",
           "table_format"]

TABLE_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_EXTENSIONS = ((".csv", "csv"), (".tsv", "tsv"), (".tab", "tsv"), (".parquet", "parquet"), (".pq", "parquet"),
               (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"))
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# the codecs that read a file starting with each UTF-16/32 byte-order mark (UTF-32 first: FF FE 00 00 begins
# with UTF-16's FF FE)
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, ("utf-32", "utf-32-le")), (codecs.BOM_UTF32_BE, ("utf-32", "utf-32-be")),
              (codecs.BOM_UTF16_LE, ("utf-16", "utf-16-le")), (codecs.BOM_UTF16_BE, ("utf-16", "utf-16-be")))
_SURROGATE = re.compile("[\udc80-\udcff]")
_RAW_LIMIT = 2000  # characters of a broken record kept for the (redacted) errors file


def table_format(path: str | os.PathLike) -> str | None:
    """The table format implied by a file name (``csv``, ``tsv``, ``parquet``, ``jsonl``, ``json``), or None.

    >>> table_format("tickets.ndjson.gz"), table_format("notes.txt")
    ('jsonl', None)
    """
    name = str(path).lower().removesuffix(".gz")
    return next((fmt for suffix, fmt in _EXTENSIONS if name.endswith(suffix)), None)


def _open(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb")) if str(path).lower().endswith(".gz") else open(path, "rb")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"input file not found: {path}")
    if path.is_dir():
        raise InputFileError(f"{path} is a folder, not a file (only a Slack export may be given as a folder)")
    check_regular(path)
    _refuse_zip(path)


def _refuse_zip(path: Path) -> None:
    """A zip file (a vendor's zipped export, an Excel workbook) given as a table or a JSON export failed as "not
    valid UTF-8 ... declare its encoding, e.g. encoding='cp1252'", advice that read its compressed bytes as rows."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:  # unreadable: the reader says why
        return
    if head == b"PK\x03\x04":
        what = ("an Excel workbook: save it as CSV (File > Save As > CSV UTF-8)" if path.suffix.lower() in (".xlsx", ".xlsm")
                else "a zip file: unzip it and pass the file inside (only a Slack export is read zipped)")
        raise InputFileError(f"{path} is {what}")


def check_regular(path: Path) -> None:
    """Refuse a pipe, socket or device: every reader opens its input more than once (format sniffing,
    encoding check, the read itself), so a FIFO would lose its data or block for ever, and ``/dev/zero``
    would never end."""
    if path.exists() and not path.is_dir() and not path.is_file():
        raise InputFileError(f"{path} is not a regular file (a pipe, socket or device); save the data to a "
                             "file first and pass that file")


class RepeatedKeyError(ValueError):
    """A JSON object names ``key`` twice: ``json`` would keep the last value silently, and which one was meant
    cannot be known."""

    def __init__(self, key: str) -> None:
        super().__init__(f"the key {quoted(key)} is named twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` that raises :class:`RepeatedKeyError` on a key named twice.

    >>> json.loads('{"text": "a", "text": "b"}', object_pairs_hook=unique_keys)
    Traceback (most recent call last):
    ...
    feedback_nlp.connectors._tables.RepeatedKeyError: the key 'text' is named twice in one object
    """
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RepeatedKeyError(key)
        out[key] = value
    return out


def json_loads(text: str | bytes, **kwargs: Any) -> Any:
    """``json.loads`` whose only failure is ``ValueError``: absurdly nested documents (``[[[[…``) raise
    ``ValueError("nested too deeply")`` instead of a ``RecursionError`` that would sink the whole job."""
    try:
        return json.loads(text, **kwargs)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def sniff_table_format(path: str | os.PathLike) -> str:
    """The table format of a file: by extension, else by its first bytes (Parquet magic, JSON, else CSV).

    A ``.json`` file holding one object per line is JSONL; a JSONL file holding one array is JSON.
    """
    path = Path(path)
    _check_file(path)
    by_name = table_format(path)
    if by_name in ("csv", "tsv", "parquet"):
        return by_name
    try:
        with _open(path) as fh:
            head = fh.read(1 << 16)
    except (OSError, EOFError) as exc:
        raise InputFileError(f"cannot read {path}: {exc}") from exc
    if head.startswith(b"PAR1"):
        return "parquet"
    for bom, codec in _BOMS:
        if head.startswith(bom):
            head = head[len(bom):].decode(codec.replace("-sig", ""), errors="ignore").encode()
            break
    stripped = head.lstrip()
    if stripped.startswith(b"["):
        return "json"
    if stripped.startswith(b"{"):
        first, _, rest = stripped.partition(b"\n")
        try:  # one complete object on the first line, and more after it: JSON lines
            json_loads(first)
            return "jsonl" if rest.strip() or by_name == "jsonl" else ("json" if by_name == "json" else "jsonl")
        except ValueError:
            # a pretty-printed object; but a .jsonl file whose first line is broken is still JSON lines (that
            # line is rejected, the rest read), not one document that fails as a whole
            return "jsonl" if by_name == "jsonl" else "json"
    return by_name or "csv"


# --- encodings ------------------------------------------------------------------------------------

_NOT_FILE_ENCODINGS = ("idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape", "utf-7")


def text_codec(encoding: str) -> str:
    """The codec's name, or an error when ``encoding`` names no codec of text files (the CLI checks ``--encoding``
    with it before any work: an unknown one is a usage error, not a failed run)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError as exc:
        raise InvalidInputError(f"unknown encoding {quoted(encoding)} (try utf-8, cp1252, latin-1 or utf-16)") from exc
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_FILE_ENCODINGS:
        # rot13, hex, base64, zlib: no text encodings ("unexpected LookupError"); idna, punycode: for host names;
        # unicode_escape and utf-7 turn "C:\new" or "a+b" into other text without an error
        raise InvalidInputError(f"{quoted(encoding)} is not an encoding of text files (try utf-8, cp1252, latin-1 "
                                "or utf-16)")
    return info.name


def resolve_encoding(path: Path, encoding: str | None) -> tuple[str, bool]:
    """The codec to read ``path`` with, and whether it was declared (or given by a BOM).

    Undeclared files are UTF-8 unless they start with a byte-order mark (UTF-8, UTF-16, UTF-32).
    """
    with _open(path) as fh:
        head = fh.read(4)
    if encoding is None:
        for bom, codec in _BOMS:
            if head.startswith(bom):
                return codec, True
        return "utf-8", False
    name = text_codec(encoding)
    if name == "utf-8" and head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True
    if head.startswith(codecs.BOM_UTF8) and name in ("latin-1", "iso8859-1", "cp1252", "cp1250", "iso8859-15"):
        # the mark says UTF-8: read as latin-1 it becomes "ï»¿" glued to the first column's name, the id
        # column is not found and every id silently becomes a row number
        raise EncodingError(f"{path} starts with a UTF-8 byte-order mark but encoding {encoding!r} was declared: "
                            "it is UTF-8; drop the encoding option")
    marked = next((codecs for bom, codecs in _WIDE_BOMS if head.startswith(bom)), None)
    if marked is not None and name not in marked:
        # a UTF-16 file declared latin-1 (or UTF-16 of the other byte order) read as NUL-strewn garbage: the
        # columns were not found, named as "ÿþi\x00d\x00"
        raise EncodingError(f"{path} starts with a {marked[0].upper()} byte-order mark but encoding {encoding!r} was "
                            f"declared: it is {marked[1].upper()}; drop the encoding option")
    return name, True


def _guess_encoding(sample: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:
        return None
    matches = from_bytes(sample)
    best = matches.best()
    if best is None:
        return None
    # Spreadsheets saved on Windows are cp1252 far more often than the Baltic or Central European code
    # pages that decode the same bytes: prefer it whenever it scores as well. A few accents ("Café crème")
    # are no evidence for cp1250, which charset_normalizer ranks first on a tie; only text that reads
    # better in another code page (Czech "Příliš žluťoučký", where cp1252 is not even a candidate) is.
    # Nor are a few characters evidence for a classic-Mac or DOS code page: "Search – café" in cp1252 was guessed
    # mac-latin2 (coherence 0.83 against 0.65 on two characters), and the encoding suggested read it as "Ė cafť".
    western = {"cp1252", "latin_1", "iso8859_15"}
    legacy = best.encoding.startswith(("mac_", "cp4", "cp7", "cp8"))
    for match in matches:
        names = {match.encoding, *(match.could_be_from_charset or [])}
        if names & western and match.chaos <= best.chaos + 0.01 and (legacy or match.coherence >= best.coherence - 0.01):
            return "cp1252"
    return best.encoding


_LINE_BREAK = re.compile(rb"\r\n?|\n")


def _line_breaks(block: bytes) -> int:
    """The line ends in ``block``: CRLF, LF, and a bare CR (classic Mac), whose files were all "line 1"."""
    return len(_LINE_BREAK.findall(block))


def _check_utf8(path: Path) -> None:
    """Raise :class:`EncodingError` naming the first byte that is not UTF-8 (one streaming pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines = 0, 1
    with _open(path) as fh:
        head = fh.read(4096)
        if head.startswith(b"\x1f\x8b"):  # compressed data named like plain text
            raise EncodingError(f"{path} is gzip-compressed: name it with a .gz ending (e.g. {path.name}.gz) "
                                "or decompress it first")
        if head.count(b"\x00") > len(head) // 4:  # ASCII text in UTF-16 without a BOM is half NUL bytes
            raise EncodingError(f"{path} looks like UTF-16 without a byte-order mark: pass encoding='utf-16-le' "
                                "(or utf-16-be) / --encoding utf-16-le")
        block = head
        while block:
            try:
                decoder.decode(block, final=False)
            except UnicodeDecodeError as exc:
                bad = block[exc.start]
                line = lines + _line_breaks(block[:exc.start])
                guess = _guess_encoding(block[max(0, exc.start - 2000): exc.start + 2000])
                guess = guess if guess and guess.replace("_", "-") not in ("utf-8", "ascii") else None
                example = (guess or "cp1252").replace("_", "-")
                raise EncodingError(
                    f"{path} is not valid UTF-8: byte 0x{bad:02X} at line {line} (byte offset {offset + exc.start}); "
                    f"declare its encoding{f' (it looks like {example})' if guess else ''}, "
                    f"e.g. encoding='{example}' / --encoding {example}") from None
            offset += len(block)
            lines += _line_breaks(block)
            block = fh.read(1 << 20)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise EncodingError(f"{path} is not valid UTF-8: it ends inside a multi-byte character (truncated?); "
                                "declare its encoding with encoding= / --encoding") from None


def _utf8_with_non_ascii(path: Path) -> bool:
    """Whether the whole file is valid UTF-8 and holds at least one multi-byte character (one streaming pass)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    non_ascii = False
    with _open(path) as fh:
        while block := fh.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return False
            non_ascii = non_ascii or not block.isascii()
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return non_ascii


def _refuse_utf8_declared_otherwise(path: Path, codec: str, declared: str) -> None:
    """A UTF-8 file read as latin-1, cp1252, … decodes without a single error into mojibake ("café" becomes
    "cafÃ©") in every row that has an accent: refuse it. Text really written in a single-byte code page
    almost never forms valid multi-byte UTF-8 sequences throughout."""
    if codecs.lookup(codec).name in ("utf-8", "utf-8-sig") or not _ascii_compatible(codec):
        return
    if _utf8_with_non_ascii(path):
        raise EncodingError(f"{path} is UTF-8 (all its non-ASCII bytes form UTF-8 characters) but encoding "
                            f"{declared!r} was declared, which would garble every accented character (as 'café' "
                            "read as latin-1 becomes 'cafÃ©'): drop the encoding option")


def _ascii_compatible(codec: str) -> bool:
    return codecs.lookup(codec).name not in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be")


@functools.lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """Whether ``codec`` is a one-byte-per-character code page (latin-1, cp1252, cp1250, koi8-r, …)."""
    name = codecs.lookup(codec).name
    return (name not in ("utf-8", "utf-8-sig") and _ascii_compatible(codec)
            and len(bytes(range(128, 256)).decode(name, errors="replace")) == 128)


def _is_utf8_text(line: bytes) -> bool:
    """Whether a non-ASCII line is valid UTF-8 (so every accent in it is a multi-byte UTF-8 character)."""
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf8_reason(text: str, codec: str) -> str | None:
    """The reason of a line that was UTF-8 in a file declared in a single-byte code page (see _text_lines)."""
    if not _SURROGATE.search(text):
        return None
    try:
        original = text.encode("ascii", errors="surrogateescape").decode("utf-8")
    except (UnicodeError, ValueError):
        return None
    accented = next((ch for ch in original if not ch.isascii()), "")
    garbled = accented.encode("utf-8").decode(codec, errors="replace")
    return (f"UTF-8 text ({quoted(accented)} would read as {quoted(garbled)}) in a file declared {codec}: "
            "the file mixes encodings; re-save this line in the declared encoding, or the whole file as UTF-8")


MAX_LINE = 64 << 20  # bytes (or characters) of one physical line: far above any record, and held in memory


def _bounded_lines(fh: Any, path: Path) -> Iterator[Any]:
    """The lines of a binary or text stream, refusing the file at a line longer than :data:`MAX_LINE`: iterating
    a file reads a whole line into memory, and a gzip of a few MB without a line break unpacks to gigabytes."""
    number = 0
    while line := fh.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise InputFileError(f"{path}: line {number} is longer than {MAX_LINE >> 20} MB (no line breaks?): not "
                                 "a table of feedback records (a file with classic-Mac CR line ends: convert them)")
        yield line


def _text_lines(path: Path, encoding: str | None) -> Iterator[str]:
    """The file's lines as text (line endings kept). Bytes invalid in the codec become lone surrogates
    (``surrogateescape``) so the record holding them can be rejected by line; the rest reads on."""
    codec, declared = resolve_encoding(path, encoding)
    if not declared:
        _check_utf8(path)
    elif encoding is not None:  # declared by the caller, not by a byte-order mark
        _refuse_utf8_declared_otherwise(path, codec, encoding)
    if not _ascii_compatible(codec):
        with _open(path) as raw:
            text = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
            lines = 0
            try:
                for line in _bounded_lines(text, path):
                    lines += 1
                    yield line
            except UnicodeError as exc:  # also the utf-16 codec's "stream does not start with BOM"
                # the decoder's offset is within its last block ("truncated data at byte 0" for a report whose last
                # byte was cut off, with a hint about byte-order marks it had): say where, by line
                truncated = isinstance(exc, UnicodeDecodeError) and exc.reason == "truncated data"
                where = (f"it ends inside a character after line {lines} (truncated?)" if truncated
                         else f"{exc.reason} after line {lines}" if isinstance(exc, UnicodeDecodeError) else str(exc))
                hint = " (without a byte-order mark: utf-16-le or utf-16-be)" if codec == "utf-16" else ""
                advice = "" if truncated else f"; check the --encoding{hint}"
                raise EncodingError(f"{path} is not valid {codec}: {where}{advice}") from None
        return
    # Declared in a single-byte code page, a line that is valid UTF-8 with accents is a UTF-8 line in a
    # file that mixes encodings: read as cp1252 it would become mojibake ("café" → "cafÃ©") without a
    # single error. Keep its bytes escaped instead, so that its record is rejected by line.
    mixed = encoding is not None and _single_byte(codec)
    with _open(path) as raw:
        first = True
        for line in _bounded_lines(raw, path):
            decoded = _decode_line(line, codec, mixed)
            if first:
                decoded = decoded.removeprefix("\ufeff")
                first = False
            yield decoded


def _decode_line(line: bytes, codec: str, mixed: bool) -> str:
    """One line as text; bytes invalid in ``codec`` become lone surrogates. With ``mixed`` (a single-byte code
    page declared by the caller), a line that is valid UTF-8 keeps all its non-ASCII bytes escaped."""
    if mixed and not line.isascii() and _is_utf8_text(line):
        return line.decode("ascii", errors="surrogateescape")
    return line.decode(codec, errors="surrogateescape")


def _bad_bytes_reason(texts: Iterable[str], codec: str) -> str | None:
    for t in texts:
        m = _SURROGATE.search(t) if isinstance(t, str) else None
        if m:
            mixed = _utf8_reason(t, codec) if _single_byte(codec) else None
            return mixed or f"bytes not valid in {codec} (first: 0x{ord(m.group(0)) - 0xDC00:02X}); check --encoding"
    return None


def _printable(text: str) -> str:
    if _SURROGATE.search(text):
        try:  # a UTF-8 line in a file declared in a code page (see _text_lines): shown as it was written
            return text.encode("ascii", errors="surrogateescape").decode("utf-8")[:_RAW_LIMIT]
        except UnicodeError:
            pass
    return _SURROGATE.sub("\ufffd", text)[:_RAW_LIMIT]


# --- CSV ------------------------------------------------------------------------------------------

class _Lines:
    """Numbered lines with push-back, so a record that swallowed lines can be re-read from its second line."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._it = lines
        self._back: list[tuple[int, str]] = []
        self.number = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> tuple[int, str]:
        if self._back:
            return self._back.pop()
        line = next(self._it)
        self.number += 1
        return self.number, line

    def push_back(self, taken: list[tuple[int, str]]) -> None:
        self._back.extend(reversed(taken))


def _feed(lines: _Lines, taken: list[tuple[int, str]]) -> Iterator[str]:
    """Hand lines to the csv reader, remembering which it took (the reader never reads past a record)."""
    for item in lines:
        taken.append(item)
        yield item[1]


def _csv_records(lines: _Lines, delimiter: str) -> Iterator[tuple[int, list[str] | None, list[tuple[int, str]], str | None]]:
    """(start line, fields or None, lines taken, parse error) per record; blank lines are skipped."""
    while True:
        taken: list[tuple[int, str]] = []
        reader = csv.reader(_feed(lines, taken), delimiter=delimiter, strict=True)
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # Unclosed quote (to the end of the file) or stray quote: reject the first line, re-read the rest.
            reason = (f"text too long (a field over {csv.field_size_limit()} characters)"
                      if "field limit" in str(exc) else f"malformed CSV ({exc})")
            yield taken[0][0], None, taken[:1], reason
            lines.push_back(taken[1:])
            continue
        if len(taken) == 1 and not taken[0][1].strip():
            continue  # blank line
        yield taken[0][0], fields, taken, None


def _loose_fields(line: str, delimiter: str) -> list[str]:
    """Best-effort fields of a broken record (for its id only): lenient CSV, else a plain split."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return line.split(delimiter)


_EXCEL_SEP = re.compile(r"\ufeff?sep=([,;\t|])")
# Invisible characters around a column name: "\u200btext" is not found as "text" and looks just like it.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"


def _bare(field: str) -> str:
    """A header cell as compared with another: without surrounding spaces and invisible characters."""
    return field.strip().strip(_INVISIBLE).strip()


def _header(fields: list[str]) -> list[str]:
    names: list[str] = []
    for i, f in enumerate(fields):
        name = _SURROGATE.sub("\ufffd", f).strip().strip(_INVISIBLE).strip() or f"Unnamed: {i}"
        base, k = name, 1
        while name in names:  # duplicate column names: "text", "text.1" (as pandas does)
            name, k = f"{base}.{k}", k + 1
        names.append(name)
    return names


_AFTER_BARE_CR = re.compile(r"(?<=\r)(?!\n)")


def _split_old_mac(lines: Iterator[str]) -> Iterator[str]:
    """Lines ended by a bare CR (classic Mac, some exporters) become separate lines. A CRLF stays a CRLF: it was
    made an LF, so a quoted cell holding a bare CR and a CRLF (CR, then CR LF) was read with an LF alone."""
    for line in lines:
        if "\r" in line.rstrip("\r\n"):
            yield from (part for part in _AFTER_BARE_CR.split(line) if part)
        else:
            yield line


def _sniff_delimiter(header: str, default: str) -> str:
    """European spreadsheets save CSV with ``;``: use it when the header has no comma but semicolons."""
    if default != ",":
        return default
    counts = {d: header.count(d) for d in (",", ";", "\t", "|")}
    return max(counts, key=lambda d: counts[d]) if counts[","] == 0 and max(counts.values()) > 0 else default


def _iter_csv(path: Path, delimiter: str, encoding: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    codec = resolve_encoding(path, encoding)[0]
    text_lines = _split_old_mac(_text_lines(path, encoding))
    first = next(text_lines, None)
    if first is None:
        raise InputFileError(f"{path} is empty: no header line with column names")
    excel = _EXCEL_SEP.fullmatch(first.rstrip("\r\n"))
    if excel:  # Excel's "sep=;" hint line: it names the delimiter and is not the header (it was read as one)
        delimiter = excel.group(1)
        lines = _Lines(text_lines)
        lines.number = 1  # the hint is line 1: rows keep the line numbers an editor shows
    else:
        delimiter = _sniff_delimiter(first, delimiter)
        lines = _Lines(itertools.chain([first], text_lines))
    records = _csv_records(lines, delimiter)
    for _start, fields, taken, error in records:
        if fields is None:
            raise InputFileError(f"{path}: the header line {taken[0][0]} is not valid CSV ({error})")
        mixed = _utf8_reason("".join(t for _, t in taken), codec) if _single_byte(codec) else None
        if mixed:  # column names garbled (or cut to U+FFFD) would not match --text-col / --id-col
            raise EncodingError(f"{path}: the header line {taken[0][0]} holds {mixed.split(' in a file')[0]}, "
                                f"but encoding {codec!r} was declared; drop the encoding option or re-save the file")
        header = _header(fields)
        _refuse_reserved(header, path)
        names = [_bare(f).casefold() for f in fields]
        break
    else:
        raise InputFileError(f"{path} is empty: no header line with column names")
    width = len(header)
    rows: list[list[Any]] = []
    yielded = False
    for start, fields, taken, error in records:
        raw = "".join(t for _, t in taken)
        if fields is not None and error is None and len(fields) != width:
            if len(taken) > 1:
                # A record spanning lines with the wrong field count is an unclosed quote that swallowed the
                # next rows: reject its first line and read on from the second.
                lines.push_back(taken[1:])
                raw, error = taken[0][1], f"unclosed quote or wrong field count (line has {len(fields)} of {width} fields)"
                fields = _loose_fields(taken[0][1], delimiter)
            else:
                error = f"ragged row: {len(fields)} fields, the header has {width}"
        if fields is None:
            fields = _loose_fields(raw, delimiter)
        if error is None and not raw.isascii():  # only non-ASCII lines can hold escaped bad bytes
            error = _bad_bytes_reason([raw], codec)
        if error is None and fields is not None and width > 1 and _bare(fields[0]).casefold() == names[0] \
                and [_bare(f).casefold() for f in fields] == names:
            # "cat a.csv b.csv": the second header became an item with the text "text" and the id "id" (the
            # second file's byte-order mark, which Excel writes, is inside the joined file: "\ufeffid"; a
            # tool that writes its header in capitals: "ID,TEXT")
            error = "the header line repeated (files joined together?)"
        values = (fields + [None] * width)[:width]
        if error is not None:  # a broken row's fields are unreliable: keep them for its id, never as data
            values = [_SURROGATE.sub("\ufffd", v) if isinstance(v, str) else v for v in values]
        rows.append([start, error, None if error is None else _printable(raw.rstrip("\r\n")), *values])
        if len(rows) >= chunk_size:
            yield _frame(rows, header)
            rows, yielded = [], True
    if rows or not yielded:  # a header-only file still has columns to check
        yield _frame(rows, header)


def _frame(rows: list[list[Any]], header: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["_row", "_error", "_raw", *header], dtype=object)
    df["_row"] = df["_row"].astype(np.int64)
    return _finish(df)


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Drop the error columns of a chunk without errors (most chunks), keep ``_row`` first."""
    if "_error" in df.columns and df["_error"].isna().all():
        df = df.drop(columns=["_error", "_raw"])
    return df


# --- JSON lines and JSON --------------------------------------------------------------------------

class _DuplicateKeys(dict):
    """A JSON object that named a key twice: ``json`` keeps the last value silently, so the record is
    rejected instead (which of the two texts or ids was meant cannot be known)."""

    duplicates: list[str]


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dups: list[str] = []
    for key, value in pairs:
        if key in out and key not in dups:
            dups.append(key)
        out[key] = value
    if not dups:
        return out
    marked = _DuplicateKeys(out)
    marked.duplicates = dups
    return marked


def _duplicate_keys_reason(value: Any) -> str | None:
    if isinstance(value, _DuplicateKeys):
        return "JSON object names the key(s) " + ", ".join(map(quoted, value.duplicates[:3])) + " twice"
    return None


_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


#: The columns every reader adds to a chunk (line number, parse error, raw text of a broken row): a column of
#: the input with one of these names was taken for them (a CSV or Parquet "_error" column rejected every row
#: with its value as the reason; "_row" failed the read with a pandas error).
RESERVED_COLUMNS = ("_row", "_error", "_raw")


def _refuse_reserved(names: Iterable[Any], path: Path) -> None:
    reserved = [str(n) for n in names if n in RESERVED_COLUMNS]
    if reserved:
        raise ColumnError(f"{path}: column(s) {reserved} use names feedback_nlp reserves for row numbers and parse "
                          "errors; rename them")


def _checked_record(value: Any, raw: str) -> tuple[Any, str | None]:
    """A parsed JSON record and why it is rejected (None: it is not): a key named twice (the record is kept
    for its id), or a string holding an escaped lone surrogate ("\\ud800" is valid JSON but no text: the id
    or field holding it failed the whole read with a UnicodeEncodeError; the record is known by its text
    only). Pairs ("\\ud83d\\ude00", an emoji) are one character and pass."""
    if not raw or _ESCAPED_SURROGATE.search(raw):  # no text given: check the value itself
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return {}, "JSON string holds an escaped lone surrogate (\\udXXX): not valid Unicode text"
    reserved = [k for k in RESERVED_COLUMNS if isinstance(value, dict) and k in value]
    if reserved:  # the record is kept for its id, without the keys that would be taken for the reader's own
        return ({k: v for k, v in value.items() if k not in RESERVED_COLUMNS},
                f"JSON object holds the key(s) {reserved}, names feedback_nlp reserves for row numbers and parse errors")
    return value, _duplicate_keys_reason(value)


class JsonNumber(str):
    """A JSON number as the text it was written with (``1.50`` is ``"1.50"``), marked so that a number nested in
    an object or a list can be given back as a number (see :func:`_scalar`)."""

    __slots__ = ()


def _loads(text: str) -> Any:
    # Numbers stay as written ("1", "1.0", "007" is invalid JSON anyway): ids never change type, and
    # revenue/time parsing happens once, in the validator.
    return json_loads(text, parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=JsonNumber,
                      object_pairs_hook=_object)


def _scalar(v: Any) -> Any:
    """A record's value as a cell: numbers and booleans as the text they spell (a CSV cannot tell them from text
    either), a nested object or list as it was given."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, JsonNumber):
        return str(v)
    if isinstance(v, (dict, list)):
        return _nested(v)
    return v


def _nested(v: Any) -> Any:
    """A value inside a record's object or list with its numbers as numbers: ``{"votes": 1}`` was passed on
    (``score``'s output) as ``{"votes": "1"}``. A number no float holds (``1e400``, ``NaN``) stays text."""
    if isinstance(v, JsonNumber):
        try:
            return int(v)
        except ValueError:
            number = float(v)
            return number if math.isfinite(number) else str(v)
    if isinstance(v, dict):
        return {k: _nested(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_nested(x) for x in v]
    return v


def _records_frame(rows: list[dict[str, Any]], numbers: list[int], errors: list[str | None],
                   raws: list[str | None]) -> pd.DataFrame:
    cols: dict[str, None] = {}
    for r in rows:
        cols.update(dict.fromkeys(r))
    body = pd.DataFrame([[_scalar(r.get(c)) for c in cols] for r in rows], columns=list(cols), dtype=object)
    head = pd.DataFrame({"_row": np.asarray(numbers, dtype=np.int64), "_error": errors, "_raw": raws})
    head["_error"] = head["_error"].astype(object)
    head["_raw"] = head["_raw"].astype(object)
    return _finish(pd.concat([head, body], axis=1))


def iter_json_lines(path: Path, encoding: str | None) -> Iterator[tuple[int, dict[str, Any], str | None, str | None]]:
    """(line number, object, parse error, raw line of a broken record) per non-blank line of a JSONL file."""
    codec = resolve_encoding(path, encoding)[0]
    # A JSON text holds no raw CR (strings escape it), so a bare CR ends a line: a classic-Mac JSONL file was
    # one "line" rejected whole as malformed, every record in it lost.
    for number, line in enumerate(_split_old_mac(_text_lines(path, encoding)), start=1):
        if not line.strip():
            continue  # blank lines are not records
        record: dict[str, Any] = {}
        error = _bad_bytes_reason([line], codec)
        if error is None:
            try:
                value = _loads(line)
            except ValueError as exc:
                error = f"malformed JSON line ({str(exc).split(':')[0]})"
            else:
                if isinstance(value, dict):
                    record, error = _checked_record(value, line)
                else:
                    error = f"JSON line is {type(value).__name__ if not isinstance(value, str) else 'a string'}, not an object"
        yield number, record, error, None if error is None else _printable(line.rstrip("\r\n"))


def _record_chunks(items: Iterable[tuple[int, Any, str | None, str | None]], chunk_size: int) -> Iterator[pd.DataFrame]:
    """Frames of at most ``chunk_size`` parsed records: (number, record, why it is rejected, its text)."""
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    errors: list[str | None] = []
    raws: list[str | None] = []
    for number, record, error, raw in items:
        rows.append(record)
        numbers.append(number)
        errors.append(error)
        raws.append(raw)
        if len(rows) >= chunk_size:
            yield _records_frame(rows, numbers, errors, raws)
            rows, numbers, errors, raws = [], [], [], []
    if rows:
        yield _records_frame(rows, numbers, errors, raws)


def _iter_jsonl(path: Path, encoding: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    yield from _record_chunks(iter_json_lines(path, encoding), chunk_size)


def _iter_json(path: Path, encoding: str | None, chunk_size: int) -> Iterator[pd.DataFrame]:
    """The records of a JSON document (a top-level array, the one array an object holds, or a single object),
    parsed one at a time: memory holds one chunk of records, never the whole file (see :mod:`._json`)."""
    from ._json import JsonFile

    doc = JsonFile(path, encoding)
    kind = doc.kind()
    if kind == "value":
        raise InputFileError(f"{path} holds a JSON {type(doc.load()).__name__}, not an array of records")
    key = doc.records_key()
    if kind == "object" and key is None:  # no array at all: the object is a single record
        whole = doc.load()
        value, error = _checked_record(whole, "")
        raw = None if error is None else _printable(json.dumps(whole))  # escaped, as written
        items: Iterable[tuple[int, Any, str | None, str | None]] = [(1, value, error, raw)]
    else:
        items = doc.items(key)
    yield from _record_chunks(((number, *_as_record(value, error, raw)) for number, value, error, raw in items),
                              chunk_size)


def _as_record(value: Any, error: str | None, raw: str | None) -> tuple[dict[str, Any], str | None, str | None]:
    """An element of a JSON array as a record: an object, else ``{}`` rejected with what it is."""
    if error is None and not isinstance(value, dict):
        error = f"JSON record is {type(value).__name__}, not an object"
    if error is not None and raw is None:
        raw = _printable(json.dumps(value, ensure_ascii=False))
    return (value if isinstance(value, dict) else {}), error, raw


# --- Parquet --------------------------------------------------------------------------------------

_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _data_frame(batch: Any, data: list[int], names: list[str]) -> pd.DataFrame:
    """The columns ``data`` of an Arrow batch or table as a frame with the column names ``names``.

    An integer column with a null keeps its integers (Python ints beside None): pandas' default made it float64,
    so ``7`` was written back as ``7.0`` and an id of 2**53 or more lost its last digits."""
    return batch.to_pandas(ignore_metadata=True, integer_object_nulls=True).iloc[:, data].set_axis(names, axis=1)


def _iter_parquet(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        size = path.stat().st_size
        raise InputFileError(f"{path} is not a readable Parquet file (truncated or corrupt? {size} bytes): {exc}") from None
    # Every column as a column: pandas' metadata made a DataFrame's index ("id" after df.set_index("id")) the
    # chunk's index, which was dropped, and the rows were given generated ids. An unnamed index pandas wrote
    # ("__index_level_0__") is no data. Names as a CSV header's: a name given twice (Arrow allows it) is
    # "text", "text.1"; it was an AttributeError deep in the validator.
    fields = [str(n) for n in pf.schema_arrow.names]
    data = [i for i, n in enumerate(fields) if not _PANDAS_INDEX.fullmatch(n)]
    names = _header([fields[i] for i in data])
    _refuse_reserved(names, path)
    start = 1
    batches = pf.iter_batches(batch_size=min(chunk_size, 1 << 30))  # Arrow takes a C long, not 10**20
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            if start == 1:  # no rows: one empty chunk with the columns, as a header-only CSV gives (no chunk at
                # all failed read_feedback with pandas' "No objects to concatenate")
                empty = _data_frame(pf.schema_arrow.empty_table(), data, names)
                empty.insert(0, "_row", np.array([], dtype=np.int64))
                yield empty
            return
        except (pa.ArrowException, OSError) as exc:
            raise InputFileError(f"{path}: Parquet data unreadable after row {start - 1} (truncated or corrupt): {exc}") from None
        chunk = _data_frame(batch, data, names)
        chunk.insert(0, "_row", np.arange(start, start + len(chunk), dtype=np.int64))
        start += len(chunk)
        yield chunk


def iter_table(path: str | os.PathLike, fmt: str = "auto", *, encoding: str | None = None,
               chunk_size: int = 10_000) -> Iterator[pd.DataFrame]:
    """Stream a CSV/TSV/JSONL/JSON/Parquet file as raw chunks of at most ``chunk_size`` rows (see module doc)."""
    if chunk_size < 1:
        raise InvalidInputError(f"chunk_size must be >= 1, got {chunk_size}")
    path = Path(path)
    _check_file(path)
    fmt = sniff_table_format(path) if fmt == "auto" else fmt
    if fmt not in TABLE_FORMATS:
        raise InvalidInputError(f"unknown table format {fmt!r}; expected one of {TABLE_FORMATS}")
    if fmt in ("csv", "tsv", "json") and path.stat().st_size == 0:  # JSON lines have no header: 0 bytes is no
        # records, as blank lines and "[]" are (an export of a quiet day failed with exit 1 as "no header")
        raise InputFileError(f"{path} is empty (0 bytes): no header and no records")
    try:
        if fmt in ("csv", "tsv"):
            chunks = _iter_csv(path, "\t" if fmt == "tsv" else ",", encoding, chunk_size)
        elif fmt == "jsonl":
            chunks = _iter_jsonl(path, encoding, chunk_size)
        elif fmt == "json":
            chunks = _iter_json(path, encoding, chunk_size)
        else:
            chunks = _iter_parquet(path, chunk_size)
        given = False
        for chunk in chunks:
            given = True
            yield chunk
        if not given:  # "[]", blank lines: one empty chunk, as a header-only CSV gives (none at all failed
            # read_feedback with pandas' "No objects to concatenate")
            yield pd.DataFrame({"_row": np.array([], dtype=np.int64)})
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputFileError(f"{path} is truncated or not valid gzip: {exc}") from None
    except PermissionError as exc:
        raise InputFileError(f"cannot read {path}: permission denied") from exc

