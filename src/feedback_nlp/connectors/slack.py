"""Slack workspace exports: the zip file Slack's admin export produces, or the folder it unpacks to.

Layout (Slack's "Export your workspace data"): ``channels.json`` (and ``groups.json``, ``mpims.json``,
``dms.json`` for private channels and direct messages in exports that include them), ``users.json``, and one folder per channel holding one JSON array of messages per day
(``2026-01-05.json``). Each message has ``ts`` (epoch seconds with microseconds, unique in the channel),
``user``, ``text`` in Slack's markup, and for replies ``thread_ts`` (the parent's ``ts``).

One row per human message: joins, topic changes, bot messages, deleted-message tombstones and other
system subtypes are skipped and counted, as are messages that only share a file. Mentions ``<@U…>``,
channel links ``<#C…|name>`` and links ``<https://…|label>`` become readable text.

Example:
    >>> export = read_slack("tests/fixtures/ingest/slack_export")
    >>> export.frame[["id", "source_detail", "author"]].iloc[0].tolist()
    ['C07FEEDB4CK-1767607320.000200', '#product-feedback', 'Maria Garcia']
"""

from __future__ import annotations

import html
import json
import os
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ..errors import InputFileError, InputNotFoundError, quoted
from ._export import Export
from ._tables import _loads

__all__ = ["iter_slack", "read_slack", "slack_to_text"]

# Subtypes that are a person writing; every other subtype is a system event or an integration.
_HUMAN_SUBTYPES = {None, "", "thread_broadcast", "file_share", "me_message", "reply_broadcast"}
_SKIP_NAMES = {"channel_join": "channel join", "channel_leave": "channel leave", "group_join": "channel join",
               "group_leave": "channel leave", "bot_message": "bot message", "tombstone": "deleted message",
               "message_deleted": "deleted message", "channel_topic": "channel event", "channel_purpose": "channel event",
               "channel_name": "channel event", "channel_archive": "channel event", "pinned_item": "channel event"}
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|([^>]*))?>")
_CHANNEL = re.compile(r"<#(C[A-Z0-9]+)(?:\|([^>]*))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^[A-Z0-9]+(?:\|([^>]*))?>|<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<((?:https?|mailto|tel|ftp):[^|>]+)(?:\|([^>]*))?>")


def slack_to_text(text: str, users: dict[str, str] | None = None, channels: dict[str, str] | None = None) -> str:
    """Slack's message markup as readable text: ``<@U1>`` → ``@Maria``, ``<https://x|label>`` → ``label``.

    >>> slack_to_text("<@U1> see <https://acme.io/pricing|the pricing page> &amp; <!here>", {"U1": "Maria"})
    '@Maria see the pricing page & @here'
    """
    users, channels = users or {}, channels or {}
    text = _MENTION.sub(lambda m: "@" + (users.get(m.group(1)) or m.group(2) or m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + (m.group(2) or channels.get(m.group(1)) or m.group(1)), text)
    text = _SPECIAL.sub(lambda m: "@" + m.group(1) if m.group(1) else (m.group(2) or m.group(3) or ""), text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1).removeprefix("mailto:").removeprefix("tel:"), text)
    return html.unescape(text)  # Slack escapes only &, < and >


#: The largest file of an export zip that is unpacked (Slack writes one file per channel and day).
MAX_MEMBER_BYTES = 512 << 20


class _Tree:
    """Read files from an export folder or zip alike (a zip may wrap everything in one top folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None
        # each name as the export wrote it -> its member in the zip (see _written_name)
        self.members = {_written_name(i): i.filename for i in self.zip.infolist()} if self.zip else {}
        names = list(self.members) if self.zip else [p.relative_to(path).as_posix() for p in path.rglob("*.json")]
        roots = [n[: -len("channels.json")] for n in names if n.rsplit("/", 1)[-1] == "channels.json"]
        self.root = min(roots, key=len) if roots else ""
        self.names = sorted(n[len(self.root):] for n in names if n.startswith(self.root) and n.endswith(".json"))

    def read(self, name: str) -> Any:
        if self.zip is None and not (self.path / self.root / name).is_file():
            return None
        member = self.members.get(self.root + name, "")
        if self.zip is not None and member in self.zip.NameToInfo:
            size = self.zip.getinfo(member).file_size  # the unpacked size, which reading never exceeds
            if size > MAX_MEMBER_BYTES:  # a zip bomb: a few MB that unpack to many GB in memory
                raise InputFileError(f"{name} in the Slack export {self.path} unpacks to {size:,} bytes (over "
                                     f"{MAX_MEMBER_BYTES >> 20} MB): not a Slack day file")
        try:
            raw = self.zip.read(member) if self.zip else (self.path / self.root / name).read_bytes()
        except KeyError:
            return None
        except OSError as exc:
            raise InputFileError(f"cannot read {name} in the Slack export {self.path}: {exc}") from exc
        # in a day file, bytes not valid in UTF-8 stay as lone surrogates, so that the message holding them is
        # rejected alone (errors="replace" turned them into U+FFFD and the message was kept, silently altered);
        # in a listing (channels.json, users.json) a name shown as U+FFFD is only a name
        listing = "/" not in name
        text = raw.decode("utf-8-sig", errors="replace" if listing else "surrogateescape")
        self.bad_byte = None if listing else _first_bad_byte(raw)
        return _loads(text)

    bad_byte: str | None = None  # the first byte not valid in UTF-8 of the file read last ("0xE9"), if any

    def close(self) -> None:
        if self.zip:
            self.zip.close()


def _written_name(info: zipfile.ZipInfo) -> str:
    """A member's name as written: a zip made without the UTF-8 flag (macOS's ditto, older tools) holds UTF-8
    names that Python decodes as cp437, so the folder of channel "ñandú" was "├▒and├║" and matched no channel: its
    messages were left out without a word."""
    if info.flag_bits & 0x800 or info.filename.isascii():
        return info.filename
    try:
        return info.filename.encode("cp437").decode("utf-8")
    except UnicodeError:  # really cp437 (an old DOS tool): as Python read it
        return info.filename


def _first_bad_byte(raw: bytes) -> str | None:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"0x{raw[exc.start]:02X}"
    return None


def _user_names(users: Any) -> tuple[dict[str, str], set[str]]:
    names, bots = {}, set()
    for u in users if isinstance(users, list) else []:
        if not isinstance(u, dict) or not isinstance(u.get("id"), str):
            continue
        profile = u["profile"] if isinstance(u.get("profile"), dict) else {}
        # the first name that is text: a name of another JSON type stopped the export when a mention was shown
        names[u["id"]] = next((n for n in (profile.get("real_name"), u.get("real_name"), profile.get("display_name"),
                                           u.get("name")) if isinstance(n, str) and n), u["id"])
        if u.get("is_bot") or u.get("id") == "USLACKBOT":
            bots.add(u["id"])
    return names, bots


def read_slack(path: str | os.PathLike) -> Export:
    """Read a Slack export (zip or folder) into one raw row per human message (see module doc).

    Rows carry ``id`` (``<channel id>-<ts>``), ``text``, ``source="slack"``, ``source_detail``
    (``#channel``), ``created_at`` (``ts``), ``author``, ``thread_id`` (the parent's id for a reply,
    the message's own id for a thread parent), ``edited_at``, ``export_file`` and ``_row`` (the
    message's number in the export, in channel, day and file order). A day file that is not valid JSON, or
    not a list of messages, or lies in a folder that no channel list names, becomes one rejected row naming it; a
    message holding bytes not valid in UTF-8 is rejected alone. The whole export as one table: :func:`iter_slack` gives the same rows
    a day file at a time, in bounded memory.
    """
    skipped: dict[str, int] = {}
    frame = pd.DataFrame(list(iter_slack(path, skipped=skipped)), columns=_COLUMNS)
    frame = frame.astype({c: object for c in _COLUMNS if c != "_row"})
    frame["_row"] = frame["_row"].astype("int64")
    if frame["_error"].isna().all():
        frame = frame.drop(columns=["_error", "_raw"])
    return Export(frame, skipped)


def iter_slack(path: str | os.PathLike, *, skipped: dict[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of :func:`read_slack`, one day file read at a time: memory holds the largest day file, not
    the export (a workspace's export is gigabytes; each day file of a channel is small). ``skipped`` gains
    what was left out (``{"bot message": 3}``) as the rows are read.

    >>> [r["id"] for r in iter_slack("tests/fixtures/ingest/slack_export")][:1]
    ['C07FEEDB4CK-1767607320.000200']
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"Slack export not found: {path}")
    try:
        tree = _Tree(path)
    except zipfile.BadZipFile as exc:
        raise InputFileError(f"{path} is not a readable zip file (truncated?): {exc}") from None
    try:
        yield from _rows(tree, path, skipped if skipped is not None else {})
    finally:
        tree.close()


def _rows(tree: _Tree, path: Path, skipped: dict[str, int]) -> Iterator[dict[str, Any]]:
    try:
        channels = []
        # public channels, private channels, group DMs and DMs (whose folder is the DM's id: no name)
        for listing in ("channels.json", "groups.json", "mpims.json", "dms.json"):
            listed = tree.read(listing)
            for c in listed if isinstance(listed, list) else []:
                # an id or name of another JSON type is no channel (it was a TypeError, unhashable type)
                ident, name = (v if isinstance(v, str) else None for v in (c.get("id"), c.get("name"))) \
                    if isinstance(c, dict) else (None, None)
                if name or ident:
                    channels.append({**c, "id": ident, "name": name or ident, "_dm": listing == "dms.json"})
        users, bots = _user_names(tree.read("users.json"))
        # a name that is no text ("\ud800" in users.json) is left out: its messages show the user id instead
        users = {k: v for k, v in users.items() if not (isinstance(v, str) and _LONE_SURROGATE.search(v))}
    except ValueError as exc:
        raise InputFileError(f"{path}: channels.json, groups.json or users.json is not valid JSON: {exc}") from None
    if not channels:
        raise InputFileError(f"{path} is not a Slack export: no channels in channels.json")
    channel_names = {c.get("id", ""): c["name"] for c in channels}
    files: dict[str, list[str]] = {}  # each channel's day files, found in one pass over the export's names
    for name in tree.names:
        # folder names compared composed: unpacked on macOS (HFS+) and zipped again, "café" is "cafe" + U+0301
        files.setdefault(unicodedata.normalize("NFC", PurePosixPath(name).parent.as_posix()), []).append(name)

    def skip(kind: str) -> None:
        skipped[kind] = skipped.get(kind, 0) + 1

    number = 0
    for channel in sorted(channels, key=lambda c: c["name"]):
        cid, cname = channel.get("id") or channel["name"], channel["name"]
        detail = f"dm {cname}" if channel["_dm"] else f"#{cname}"
        for name in files.get(unicodedata.normalize("NFC", cname), []):
            try:
                messages = tree.read(name)
            except ValueError as exc:  # not JSON, or too large to unpack (InputFileError): that file is one reject
                number += 1
                reason = str(exc) if isinstance(exc, InputFileError) else f"malformed JSON in the Slack day file {name} ({exc})"
                yield _reject(number, reason, None, detail, name)
                continue
            if not isinstance(messages, list):  # "{}" or "null": a day file of no messages was left out unsaid
                number += 1
                yield _reject(number, f"the Slack day file {name} holds {_json_kind(messages)}, not a list of "
                              "messages", _printable_json(messages), detail, name)
                continue
            for msg in messages:
                number += 1
                if not isinstance(msg, dict):
                    skip("not a message")
                    continue
                kind = _skip_reason(msg, bots)
                if kind:
                    skip(kind)
                    continue
                row = _row(msg, number, cid, detail, name, users, channel_names)
                if any(isinstance(v, str) and _LONE_SURROGATE.search(v) for v in row.values()):
                    # "\ud800" in the JSON: no text; the message (or its channel's name) failed the
                    # whole export with a UnicodeEncodeError. Rejected alone, its text shown escaped.
                    reason = (f"bytes not valid in UTF-8 (first: {tree.bad_byte}) in the message" if tree.bad_byte
                              else "an escaped lone surrogate (\\udXXX) in the message or its channel's name: not "
                              "valid Unicode text")
                    row = _reject(number, reason, _escaped(msg.get("text")), _escaped(detail), name)
                yield row
    listed = {unicodedata.normalize("NFC", c["name"]) for c in channels}
    for folder, names in files.items():  # a private channel's folder whose groups.json was left out of the zip:
        # its messages were not read and nothing said so
        if folder in listed or folder == "." or "/" in folder:  # the export's own files; __MACOSX/..., deeper
            continue
        for name in names:
            number += 1
            yield _reject(number, f"the folder {quoted(folder)} is no channel of channels.json, groups.json, mpims.json "
                          "or dms.json (its list left out of the export?): its messages were not read", None, None, name)


def _json_kind(value: Any) -> str:
    return "null" if value is None else "an object" if isinstance(value, dict) else f"a {type(value).__name__}"


def _printable_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)[:500]


def _reject(number: int, reason: str, raw: str | None, detail: str | None, file: str) -> dict[str, Any]:
    """A rejected row with every column of an accepted one (a chunk of rows has the same columns either way)."""
    return {**dict.fromkeys(_COLUMNS), "_row": number, "_error": reason, "_raw": raw, "source": "slack",
            "source_detail": detail, "export_file": file}


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(value: Any) -> str | None:
    return value.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(value, str) else None


_COLUMNS = ["_row", "_error", "_raw", "id", "text", "source", "source_detail", "created_at", "author", "thread_id",
            "edited_at", "reply_count", "export_file"]


def _skip_reason(msg: dict[str, Any], bots: set[str]) -> str | None:
    subtype = msg.get("subtype")
    if subtype not in _HUMAN_SUBTYPES:
        return _SKIP_NAMES.get(str(subtype), f"{subtype} event")
    user, text = msg.get("user"), msg.get("text")
    # a user or text of another JSON type (an object, a list, a number) is the validator's to reject by row:
    # here it was a TypeError ("unhashable type: 'dict'") or an AttributeError ('dict' has no 'strip') that
    # stopped the whole export
    # Slackbot ("Reminder: ...", its auto-responses) writes as USLACKBOT, which users.json seldom lists
    if msg.get("bot_id") or user == "USLACKBOT" or (isinstance(user, str) and user in bots):
        return "bot message"
    if not (text.strip() if isinstance(text, str) else text) and msg.get("files"):
        return "file without text"
    return None


def _row(msg: dict[str, Any], number: int, cid: str, detail: str, file: str, users: dict[str, str],
         channels: dict[str, str]) -> dict[str, Any]:
    ts = msg.get("ts")
    thread = msg.get("thread_ts")
    edited = msg.get("edited") or {}
    user = msg.get("user")
    text = msg.get("text")
    return {
        "_row": number, "_error": None, "_raw": None,
        "id": f"{cid}-{ts}" if ts else None,
        "text": slack_to_text(text, users, channels) if isinstance(text, str) else text,
        "source": "slack", "source_detail": detail, "created_at": ts,
        "author": users.get(str(user)) or (profile.get("real_name") if isinstance(profile := msg.get("user_profile"), dict)
                                           else None) or user,
        "thread_id": f"{cid}-{thread}" if thread else None,
        "edited_at": edited.get("ts") if isinstance(edited, dict) else None,
        "reply_count": msg.get("reply_count"),
        "export_file": file,
    }

