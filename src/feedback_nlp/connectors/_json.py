"""JSON documents read in bounded memory: the records of a large array one at a time.

A JSON export is one document: ``[{...}, {...}, ...]``, or an object holding the array of records
(``{"tickets": [...], "count": 3}``). ``json.load`` holds the whole text and every parsed record at once (about
ten times the file's size in Python objects); :class:`JsonFile` reads the text in blocks of a megabyte and
parses one record at a time with ``json.JSONDecoder.raw_decode``, so memory stays at the size of the largest
record. A record that holds bytes not valid in the file's encoding, or names a key twice, is returned with a
reason (rejected by record, as a JSON line would be); a syntax error stops the file with its line and record.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.json"
    >>> _ = p.write_text('{"count": 2, "tickets": [{"id": 1, "text": "Export fails"}, {"id": 2, "text": "Dark mode"}]}')
    >>> doc = JsonFile(p, None)
    >>> doc.records_key(), [(n, v["id"]) for n, v, _, _ in doc.items("tickets")]
    ('tickets', [(1, '1'), (2, '2')])
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import EncodingError, InputFileError, quoted, quoted_list
from ._tables import (
    JsonNumber,
    _ascii_compatible,
    _bad_bytes_reason,
    _check_utf8,
    _checked_record,
    _decode_line,
    _object,
    _open,
    _printable,
    _refuse_utf8_declared_otherwise,
    _single_byte,
    resolve_encoding,
)

__all__ = ["ARRAY_KEYS", "MAX_RECORD", "JsonFile"]

#: Keys of an object's record array, in order of preference when the object holds several arrays.
ARRAY_KEYS = ("records", "data", "items", "results", "rows", "feedback", "tickets", "conversations",
              "messages", "responses", "entries")
_BLOCK = 1 << 20  # characters read at a time
MAX_RECORD = 64 << 20  # characters of one record: far above any feedback item, and held in memory
_MARGIN = 64  # a value ending this close to the end of the text read so far may be cut short (a number)
_WHITESPACE = " \t\n\r"
_ARRAY = object()  # marks the keys of an object whose values are arrays (not kept in memory)

# Numbers stay as written ("1", "1.0"): ids never change type; revenue/time parsing happens in the validator.
_DECODER = json.JSONDecoder(parse_int=JsonNumber, parse_float=JsonNumber, parse_constant=JsonNumber,
                            object_pairs_hook=_object)


def _check_encoding(path: Path, encoding: str | None) -> None:
    """:func:`._tables._text_lines`' whole-file checks: an undeclared file must be UTF-8, a UTF-8 file must not be
    declared in a code page (one streaming pass each)."""
    codec, declared = resolve_encoding(path, encoding)
    if not declared:
        _check_utf8(path)
    elif encoding is not None:
        _refuse_utf8_declared_otherwise(path, codec, encoding)


def _text_blocks(path: Path, encoding: str | None) -> Iterator[str]:
    """The file's text in blocks of about a megabyte (checked by :func:`_check_encoding` first): bytes invalid
    in the codec become lone surrogates (their record is rejected); a UTF-8 line in a file declared in a code
    page keeps its bytes escaped, as :func:`._tables._text_lines` does."""
    codec = resolve_encoding(path, encoding)[0]
    if not _ascii_compatible(codec):
        with _open(path) as raw:
            reader = io.TextIOWrapper(raw, encoding=codec, errors="strict", newline="")
            try:
                while block := reader.read(_BLOCK):
                    yield block
            except UnicodeError as exc:
                where = f"{exc.reason} at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else str(exc)
                raise EncodingError(f"{path} is not valid {codec}: {where}; check the --encoding") from None
        return
    mixed = encoding is not None and _single_byte(codec)
    decoder = codecs.getincrementaldecoder(codec)(errors="surrogateescape")
    carry, first = b"", True
    with _open(path) as raw:
        while True:
            chunk = raw.read(_BLOCK)
            data = carry + chunk
            if mixed and chunk:  # whole lines only: each is checked for UTF-8 on its own
                cut = data.rfind(b"\n") + 1 or (len(data) if len(data) > 4 * _BLOCK else 0)
                data, carry = data[:cut], data[cut:]
            else:
                carry = b""
            if mixed:
                text = "".join(_decode_line(line, codec, True) for line in data.splitlines(keepends=True))
            else:
                text = decoder.decode(data, final=not chunk)
            if first and text:
                text, first = text.removeprefix("\ufeff"), False
            if text:
                yield text
            if not chunk:
                return


class _Scanner:
    """A cursor over the text of a JSON document read block by block; ``line`` is the cursor's line."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path = path
        self._blocks = _text_blocks(path, encoding)
        self.buf, self.pos, self.eof = "", 0, False
        self._line, self._counted = 1, 0

    def _more(self, at_least: int = 1) -> bool:
        """Read ``at_least`` more characters (or to the end), dropping what was parsed; False at the end."""
        if self.eof:
            return False
        self._count()
        parts, got = [self.buf[self.pos:]], 0
        for block in self._blocks:  # joined once: "+=" on an attribute copies the whole text each time
            parts.append(block)
            got += len(block)
            if got >= at_least:
                break
        else:
            self.eof = True
        self.buf, self._counted, self.pos = "".join(parts), 0, 0
        return got > 0

    def _count(self) -> None:
        self._line += self.buf.count("\n", self._counted, self.pos)
        self._counted = self.pos

    @property
    def line(self) -> int:
        self._count()
        return self._line

    def peek(self) -> str:
        """The next character that is not white space ('' at the end), without taking it."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf) or not self._more():
                return self.buf[self.pos] if self.pos < len(self.buf) else ""

    def take(self, char: str) -> None:
        assert self.peek() == char
        self.pos += 1

    def value(self, what: str) -> tuple[Any, str]:
        """The next JSON value and its text. A value cut at the end of the text read so far is read again with
        twice the text (so a record of any size is parsed a bounded number of times)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                cut = exc.msg.startswith("Unterminated string") or exc.pos + _MARGIN > len(self.buf)
                if cut and not self.eof:  # read on and parse again (_more moves the text: never reuse offsets)
                    if len(self.buf) - self.pos > MAX_RECORD:  # an unclosed string would read the whole file
                        self.fail(f"{what} is longer than {MAX_RECORD >> 20} MB (an unclosed string?)")
                    self._more(max(_BLOCK, len(self.buf) - self.pos))
                    continue
                self.fail(f"{exc.msg} in {what}", exc.pos)
            except RecursionError:
                self.fail(f"nested too deeply in {what}", self.pos)
            if end + _MARGIN > len(self.buf) and not self.eof:
                self._more(_BLOCK)  # "12" might be the start of "12.5"
                continue
            raw, self.pos = self.buf[self.pos:end], end
            return value, raw

    def fail(self, message: str, at: int | None = None) -> Any:
        if at is not None:
            self.pos = min(at, len(self.buf))
        raise InputFileError(f"{self.path} is not valid JSON: {message} (line {self.line})")


class JsonFile:
    """A JSON document on disk, read in bounded memory (see the module doc).

    ``kind()`` is ``"array"``, ``"object"`` or ``"value"``; ``keys()`` the top-level object's keys with their
    values (arrays stand as a marker, never held; :meth:`arrays` lists their keys); ``items(key)`` streams the records of the top-level
    array (``key=None``) or of the array at ``key``; ``load()`` parses the whole document (for small ones).
    """

    def __init__(self, path: str | Path, encoding: str | None) -> None:
        self.path, self.encoding = Path(path), encoding
        self._keys: dict[str, Any] | None = None
        self._sizes: dict[str, int] = {}  # elements of each top-level array
        self._checked_encoding = False

    def _scanner(self) -> _Scanner:
        if not self._checked_encoding:
            _check_encoding(self.path, self.encoding)
            self._checked_encoding = True
        scan = _Scanner(self.path, self.encoding)
        if scan.peek() == "":
            raise InputFileError(f"{self.path} is empty: no JSON records")
        return scan

    def kind(self) -> str:
        first = self._scanner().peek()
        return "array" if first == "[" else "object" if first == "{" else "value"

    def load(self) -> Any:
        """The whole document (numbers kept as written)."""
        scan = self._scanner()
        value, raw = scan.value("the document")
        self._end(scan)
        reason = _bad_bytes_reason([raw], resolve_encoding(self.path, self.encoding)[0])
        if reason:
            raise InputFileError(f"{self.path}: {reason}")
        return value

    def _end(self, scan: _Scanner) -> None:
        if scan.peek() != "":
            scan.fail("extra data after the document (one object per line? use format='jsonl')")

    def keys(self) -> dict[str, Any]:
        """The top-level object's keys in order: arrays as a marker, other values parsed (one pass). An array
        named twice is refused (which one holds the records?); other keys named twice are left to the record
        they make, which is rejected for it."""
        if self._keys is None:
            self._keys = {}
            for key, scan in self._walk(lambda _key: True):
                if scan.peek() == "[":
                    self._sizes[key] = sum(1 for _ in self._elements(scan, key))
                    value: Any = _ARRAY
                else:
                    value = scan.value(f"the value of {quoted(key)}")[0]
                if key in self._keys and _ARRAY in (value, self._keys[key]):
                    scan.fail(f"the key {quoted(key)} is named twice at the top level")
                self._keys[key] = value
        return self._keys

    def arrays(self) -> list[str]:
        return [k for k, v in self.keys().items() if v is _ARRAY]

    def records_key(self) -> str | None:
        """Which top-level array holds the records: None for a top-level array (or a single record)."""
        if self.kind() != "object":
            return None
        arrays = self.arrays()
        if len(arrays) == 1:
            return arrays[0]
        known = [k for k in ARRAY_KEYS if k in arrays]
        filled = [k for k in known if self._sizes.get(k)]
        if len(filled) > 1:  # {"records": [...], "items": [...]}: the second array's records were left out unsaid
            raise InputFileError(f"{self.path} holds several arrays of records ({quoted_list(filled, 6)}): cannot tell "
                                 "which are the records; keep one")
        found = next(iter(filled or known), None)  # {"records": [], "data": [...]} read the empty one
        if found is None and arrays:
            raise InputFileError(f"{self.path} holds several arrays ({quoted_list(sorted(arrays), 6)}): cannot tell which "
                                 "are the records")
        return found

    def _walk(self, wanted: Callable[[str], bool]) -> Iterator[tuple[str, _Scanner]]:
        """(key, scanner at its value) for each ``wanted`` key of the top-level object, whose value the caller
        reads; the values of other keys are skipped (arrays a record at a time)."""
        scan = self._scanner()
        if scan.peek() != "{":
            return
        scan.take("{")
        if scan.peek() == "}":
            scan.take("}")
            self._end(scan)
            return
        while True:
            if scan.peek() != '"':
                scan.fail("expected a key in double quotes in the top-level object")
            key, _ = scan.value("a key")
            if scan.peek() != ":":
                scan.fail(f"expected ':' after the key {quoted(key)}")
            scan.take(":")
            if wanted(key):
                yield key, scan
            elif scan.peek() == "[":
                for _ in self._elements(scan, key):
                    pass
            else:
                scan.value(f"the value of {quoted(key)}")
            after = scan.peek()
            if after == "}":
                scan.take("}")
                self._end(scan)
                return
            if after != ",":
                scan.fail(f"expected ',' or '}}' after the value of {quoted(key)}")
            scan.take(",")

    def _elements(self, scan: _Scanner, key: str | None) -> Iterator[tuple[int, Any, str, int]]:
        """(record number, value, text, line) of each element of the array at the cursor."""
        where = "the array" if key is None else f"the array {quoted(key)}"
        scan.take("[")
        if scan.peek() == "]":
            scan.take("]")
            return
        number = 0
        while True:
            number += 1
            line = scan.line
            value, raw = scan.value(f"record {number} of {where}")
            yield number, value, raw, line
            after = scan.peek()
            if after == "]":
                scan.take("]")
                return
            if after != ",":
                scan.fail(f"expected ',' or ']' after record {number} of {where}")
            scan.take(",")

    def items(self, key: str | None = None) -> Iterator[tuple[int, Any, str | None, str | None]]:
        """(record number, value, reason it is rejected or None, its text when rejected) per record of the
        top-level array (``key=None``) or of the array at ``key``, one at a time."""
        codec = resolve_encoding(self.path, self.encoding)[0]
        if key is None:
            scan = self._scanner()
            if scan.peek() != "[":
                scan.fail("expected an array of records")
            yield from self._checked(self._elements(scan, None), codec)
            self._end(scan)
            return
        for _, scan in self._walk(lambda name: name == key):
            if scan.peek() != "[":
                scan.fail(f"{quoted(key)} is not an array")
            yield from self._checked(self._elements(scan, key), codec)

    @staticmethod
    def _checked(elements: Iterator[tuple[int, Any, str, int]], codec: str,
                 ) -> Iterator[tuple[int, Any, str | None, str | None]]:
        for number, value, raw, _line in elements:
            reason = _bad_bytes_reason([raw], codec) if not raw.isascii() else None
            if reason is not None:  # its strings hold escaped bytes: the record is known by its text only
                yield number, {}, reason, _printable(raw)
                continue
            value, reason = _checked_record(value, raw)
            yield number, value, reason, None if reason is None else _printable(raw)
