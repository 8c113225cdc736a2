"""What happens to each event: tag, score sentiment, look for duplicates, keep the backlog, write back.

The model side is reached through two small interfaces so that the same processor runs inside
``feedback-nlp serve`` (its backlog store) or on its own (:class:`VectorBacklog`):

- a *tagger*: ``predict(texts) -> list[Prediction]`` (:class:`ClassifierTagger` wraps a ``TagClassifier``);
- a *backlog*: ``search(text, k)``, ``upsert(id, text, metadata)``, ``delete(id)``.

Every step is idempotent (a union of tags, an upsert, a delete), so an event processed twice after a crash
leaves the same state as once.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ...cleaning import clean_text, text_problem
from ...dedupe._deduper import _IDENTICAL
from ...errors import quoted
from ...records import _hidden_in_id
from ._client import QuackbackClient
from ._errors import QuackbackAPIError, QuackbackError
from ._events import WebhookEvent
from ._pull import post_text
from ._status import status_stage
from ._store import IntegrationStore

__all__ = ["Backlog", "ClassifierTagger", "Prediction", "Processor", "Tagger", "VectorBacklog", "WriteBack"]

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Tags predicted for one text with their probabilities; ``needs_review`` when the model abstained."""

    tags: dict[str, float]
    needs_review: bool = False

    def confident(self, min_confidence: float) -> list[str]:
        """The tags sure enough to write: none if the model abstained, else those >= ``min_confidence``."""
        if self.needs_review:
            return []
        return [t for t, p in self.tags.items() if p >= min_confidence]


class Tagger(Protocol):
    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...


class Backlog(Protocol):
    def search(self, text: str, k: int) -> list[tuple[str, float]]: ...
    def upsert(self, item_id: str, text: str, metadata: Mapping[str, Any]) -> None: ...
    def delete(self, item_id: str) -> None: ...


class ClassifierTagger:
    """A :class:`~feedback_nlp.TagClassifier` as a :class:`Tagger`; ancestors get their best child's probability.

    Example:
        >>> ClassifierTagger.from_tag_frame([["billing", "billing/refund"]], ['{"billing/refund": 0.8}'], [False])
        [Prediction(tags={'billing/refund': 0.8, 'billing': 0.8}, needs_review=False)]
    """

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        out = self.classifier.tag(list(texts))
        return self.from_tag_frame(out["tags"], out["probabilities"], out["needs_review"])

    @staticmethod
    def from_tag_frame(tags: Sequence[Sequence[str]], probabilities: Sequence[str],
                       review: Sequence[bool]) -> list[Prediction]:
        preds = []
        for names, probs, rev in zip(tags, probabilities, review):
            p = {str(k): float(v) for k, v in json.loads(probs).items()}
            for name in names:  # ancestors come without their own probability
                if name not in p:
                    p[name] = max((v for k, v in p.items() if k.startswith(f"{name}/") or k.startswith(f"{name}.")),
                                  default=max(p.values(), default=0.0))
            preds.append(Prediction(p, bool(rev)))
        return preds


class VectorBacklog:
    """An in-process backlog: embeddings of the live posts, searched by cosine similarity.

    Rebuilt at start from the integration's store (texts are durable there; the embedding cache makes the
    rebuild cheap). Used when the integration runs without the service's backlog store.
    """

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        self._last: tuple[str, np.ndarray] | None = None  # a post is searched, then added: embed it once

    def _encode(self, text: str) -> np.ndarray:
        last = self._last
        if last is not None and last[0] == text:
            return last[1]
        vector = np.asarray(self.embedder.encode([text]), dtype=np.float32)[0]
        self._last = (text, vector)
        return vector

    def load(self, items: Mapping[str, str]) -> VectorBacklog:
        ids = [i for i, t in items.items() if t]
        vectors = self.embedder.encode([items[i] for i in ids]) if ids else np.zeros((0, 0), dtype=np.float32)
        with self._lock:
            self._ids, self._vectors = ids, np.asarray(vectors, dtype=np.float32)
        return self

    def __len__(self) -> int:
        return len(self._ids)

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        with self._lock:
            ids, vectors = list(self._ids), self._vectors
        if not ids or k < 1:
            return []
        scores = vectors @ self._encode(text)
        top = np.argsort(-scores)[:k]
        return [(ids[i], float(scores[i])) for i in top]

    def upsert(self, item_id: str, text: str, metadata: Mapping[str, Any]) -> None:
        vector = self._encode(text)[None, :]
        with self._lock:
            if item_id in self._ids:
                self._vectors[self._ids.index(item_id)] = vector[0]
            else:
                self._ids.append(item_id)
                self._vectors = vector if len(self._vectors) == 0 else np.vstack([self._vectors, vector])

    def delete(self, item_id: str) -> None:
        with self._lock:
            if item_id in self._ids:
                i = self._ids.index(item_id)
                self._ids.pop(i)
                self._vectors = np.delete(self._vectors, i, axis=0)


class WriteBack:
    """Writes predicted tags to Quackback as a union with the post's current tags (never removing one).

    Tag names map to ids case-insensitively through ``GET /tags`` (cached, refreshed once on a miss); missing
    tags are created only with ``create_tags``, otherwise skipped and reported.
    """

    def __init__(self, client: QuackbackClient, *, create_tags: bool = False, tag_color: str = "#6b7280") -> None:
        self.client = client
        self.create_tags = create_tags
        self.tag_color = tag_color
        self._tags: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> dict[str, str]:
        # a tag without a name (null) was known as "none", and an object as id was sent as its repr
        self._tags = {_tag_key(t["name"]): str(t["id"]) for t in self.client.list_tags()
                      if isinstance(t, Mapping) and isinstance(t.get("name"), str) and t["name"]
                      and isinstance(t.get("id"), (str, int)) and not isinstance(t["id"], bool) and t["id"] != ""}
        return self._tags

    def tag_ids(self, names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        """``{name: tag id}`` for the names Quackback has (or that were created), and the names skipped."""
        with self._lock:
            known = self._tags if self._tags is not None else self._refresh()
            if any(_tag_key(n) not in known for n in names):
                known = self._refresh()  # a person may have created it since the last look
            found, missing = {}, []
            for name in names:
                if _tag_key(name) in known:
                    found[name] = known[_tag_key(name)]
                elif self.create_tags and 1 <= _utf16_length(name) <= 50:
                    tag_id = self._create(name)
                    if tag_id is None:
                        missing.append(name)
                    else:
                        known[_tag_key(name)] = found[name] = tag_id
                else:
                    missing.append(name)
            return found, missing

    def _create(self, name: str) -> str | None:
        """Create the tag ``name``; its id, or None when Quackback answered that it exists but the tags listed again
        do not show it. A 409 (a person or another worker created it since the last look) failed the whole event
        for good; the tag is looked up again instead."""
        try:
            created = self.client.create_tag(name, self.tag_color, "created by feedback_nlp")
        except QuackbackAPIError as exc:
            if exc.status == 400:
                # a name Quackback will not take (its own rules): that tag is reported missing; the event failed
                # for good, and the post's other, writable tags were never written
                logger.warning("quackback: could not create the tag %s (%s)", quoted(name), exc)
                return None
            if exc.status != 409:
                raise
            return self._refresh().get(_tag_key(name))
        tag_id = created.get("id") if isinstance(created, Mapping) else None
        if not isinstance(tag_id, (str, int)) or isinstance(tag_id, bool) or tag_id == "":
            raise QuackbackAPIError(f"POST /tags: the tag {quoted(name)} was created without an id in the answer",
                                    status=200)
        return str(tag_id)

    def apply(self, post_id: str, names: Sequence[str]) -> dict[str, Any]:
        """Add ``names`` to the post's tags; returns what was added and what was skipped.

        A 400 on the write usually means a cached tag was deleted in Quackback meanwhile: the tags are read
        again and the write is tried once more. A post deleted in Quackback (404, or ``deletedAt`` set) raises
        :class:`QuackbackAPIError` (not retryable); its tags are left alone.
        """
        try:
            return self._apply(post_id, names)
        except QuackbackAPIError as exc:
            if exc.status != 400:
                raise
            logger.info("quackback %s: tag write refused (%s); re-reading the tags once", post_id, exc.code)
            with self._lock:
                self._tags = None
            return self._apply(post_id, names)

    def _apply(self, post_id: str, names: Sequence[str]) -> dict[str, Any]:
        found, missing = self.tag_ids(list(dict.fromkeys(names)))
        # Read the current tags right before replacing them: PATCH replaces the set, so the union must include
        # whatever a person set, up to this moment.
        current = _current_tag_ids(post_id, _live(post_id, self.client.get_post(post_id)))
        added = [tid for tid in found.values() if tid not in current]
        if added:
            self.client.set_post_tags(post_id, current + added)
        names_by_id = {v: k for k, v in found.items()}
        return {"added": [names_by_id[t] for t in added], "kept": current, "missing_tags": missing}


def _live(post_id: str, post: dict[str, Any]) -> dict[str, Any]:
    """``post`` as ``GET /posts/{id}`` gave it, unless Quackback deleted it: it deletes softly and still answers
    for the post with ``deletedAt`` set, and such a post had the predicted tags written to it (or, read for an
    update, its text became a live backlog item). Fails like a post gone for good (a 404): not retried."""
    if post.get("deletedAt"):
        raise QuackbackAPIError(f"GET /posts/{post_id}: the post was deleted in Quackback (deletedAt "
                                f"{quoted(post['deletedAt'])}); it is left as it is", status=200, code="NOT_FOUND")
    return post


def _tag_key(name: str) -> str:
    """A tag name as it is matched: case-insensitively and in one Unicode form (NFC), so that "café" typed with a
    combining accent (NFD, as macOS writes file names) finds Quackback's "café" instead of being reported missing,
    or created a second time, looking the same."""
    return unicodedata.normalize("NFC", name).casefold()


def _utf16_length(name: str) -> int:
    """A tag name's length as Quackback counts it (JavaScript's, in UTF-16 code units): its 50-character limit
    refused a name of 26 emoji, which Python counts as 26."""
    return len(name.encode("utf-16-le")) // 2


def _current_tag_ids(post_id: str, post: Any) -> list[str]:
    """The ids of a post's tags as ``GET /posts/{id}`` gives them. Anything else than a list of tags with ids (no
    ``tags`` at all, null, ids alone, a tag without an id) raises: the union computed from it is sent as the post's
    whole tag set, and the tags a person set were replaced by the predicted ones."""
    tags = post.get("tags") if isinstance(post, Mapping) else None  # Quackback lists [] for a post without tags
    if not isinstance(tags, list) or not all(
            isinstance(t, Mapping) and isinstance(t.get("id"), (str, int)) and not isinstance(t["id"], bool)
            and t["id"] != "" for t in tags):
        raise QuackbackAPIError(f"GET /posts/{post_id}: the post's current tags are not a list of tags with ids, so "
                                "their union with the predicted ones cannot be computed; its tags are left as they are",
                                status=200)
    return [str(t["id"]) for t in tags]


@dataclass
class Processor:
    """Turns one :class:`WebhookEvent` into work; returns a JSON-able summary (ids, tags, scores; no texts).

    Args:
        store: the integration's :class:`IntegrationStore`.
        tagger: predicts tags (optional: without it, events only keep the backlog and statuses).
        backlog: where posts become searchable for duplicates (optional).
        sentiment: a second tagger whose single best tag is the sentiment (optional).
        write_back: a :class:`WriteBack` to write confident tags to Quackback (optional).
        client: the Quackback client, to read a post an update event only refers to, and to merge (optional).
        min_confidence: probability a tag needs to be written back.
        duplicate_threshold: similarity from which a backlog item is reported as a duplicate candidate.
        auto_merge_above: merge the new post into its best candidate above this score (None: never merge).
        k: candidates looked at per post.
        max_text_chars: longest cleaned text processed (None: the cleaning default); a longer post is skipped
            with its reason. Inside ``feedback-nlp serve``, the service's ``--max-text-chars``.
    """

    store: IntegrationStore
    tagger: Tagger | None = None
    backlog: Backlog | None = None
    sentiment: Tagger | None = None
    write_back: WriteBack | None = None
    client: QuackbackClient | None = None
    min_confidence: float = 0.5
    duplicate_threshold: float = 0.9
    auto_merge_above: float | None = None
    k: int = 5
    max_text_chars: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.duplicate_threshold <= 1.0:  # NaN matched nothing: duplicates were never reported
            raise QuackbackError("duplicate_threshold must lie in [0, 1]")
        if self.auto_merge_above is not None and not self.duplicate_threshold <= self.auto_merge_above <= 1.0:
            raise QuackbackError("auto_merge_above must lie between the duplicate threshold and 1")
        if self.auto_merge_above is not None and self.client is None:
            raise QuackbackError("auto_merge_above needs a Quackback client (--quackback-url and a key)")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise QuackbackError("min_confidence must lie in [0, 1]")

    def process(self, event: WebhookEvent) -> dict[str, Any]:
        handler = {
            "post.created": self._post_text, "post.updated": self._post_text,
            "post.status_changed": self._status, "post.deleted": self._deleted, "post.merged": self._merged,
            "post.voted": self._voted, "post.restored": self._restored, "post.unmerged": self._restored,
        }.get(event.type)
        if handler is None:
            return {"event": event.id, "type": event.type, "action": "ignored"}
        return {"event": event.id, "type": event.type, "post": event.post_id, **handler(event)}

    # --- handlers -------------------------------------------------------------------------------
    def _post_text(self, event: WebhookEvent) -> dict[str, Any]:
        post_id, post = _post_id(event), event.post
        if not _addressable(post_id):
            # it becomes a backlog item, which the service's API refuses and could not address (GET
            # /v1/backlog/a/../b reaches b; " post_1" prints as "post_1"), while every duplicate search returned it
            raise QuackbackError(f"invalid Quackback id: {quoted(post_id)} (white space around it, an invisible "
                                 "character or a '.'/'..' path segment; Quackback's ids are post_…)")
        known = self.store.post(post_id)
        at = _event_time(event)
        stale = _text_stale(known, event, at)
        if stale:
            # a late post.created still gives what only it carries (when the post was created)
            if event.type == "post.created" and stale == _NEWER_TEXT:
                created = _created_at(event)
                self.store.update_post(post_id, lambda now: None if now and now.get("created_at")
                                       else {"created_at": created})
            return {"action": "skipped", "reason": stale}
        raw = event.text
        if "content" not in post:  # an update may carry only a reference: read the post, or keep what we have
            if self.client is not None:
                full = _live(post_id, self.client.get_post(post_id))
                raw = post_text(full.get("title"), full.get("content"))
                at = _time(full.get("updatedAt")) or at  # the post as it is now
            elif known and known.get("text"):
                raw = known["text"]
        # Cleaned and PII-redacted once, here: what is tagged, searched and stored is never the raw post.
        text = clean_text(raw) if isinstance(raw, str) else ""
        problem = text_problem(raw, text, **({"max_chars": self.max_text_chars} if self.max_text_chars else {}))
        if problem:
            return {"action": "skipped", "reason": problem}
        out: dict[str, Any] = {"action": "tagged" if self.tagger else "stored"}
        clock = _Clock()
        prediction = self.tagger.predict([text])[0] if self.tagger else Prediction({})
        clock.lap("tag")
        confident = prediction.confident(self.min_confidence)
        out["predicted"] = {t: round(p, 4) for t, p in prediction.tags.items()}
        out["confident"] = confident
        sentiment = None
        if self.sentiment is not None:
            s = self.sentiment.predict([text])[0].tags
            sentiment = max(s, key=lambda t: s[t]) if s else None
            out["sentiment"] = sentiment
        candidates: list[tuple[str, float]] = []
        if self.backlog is not None:
            # 1.0 means identical, as in Deduper and the service: a float32 vector times its copy is 1 ± 6e-7
            floor = min(self.duplicate_threshold, _IDENTICAL)
            candidates = [(i, round(s, 4)) for i, s in self.backlog.search(text, self.k + 1)
                          if i != post_id and s >= floor][: self.k]
        fields: dict[str, Any] = {"text": text, "predicted": out["predicted"], "deleted": 0}
        if at is not None:
            fields["text_at"] = at
        if isinstance(post.get("boardSlug"), str):  # a dict or a number was stored as the board's name
            fields["board"] = post["boardSlug"]
        if event.type == "post.created":
            fields["created_at"] = _created_at(event)
        if sentiment is not None:
            fields["sentiment"] = sentiment

        def write(now: dict[str, Any] | None) -> dict[str, Any] | None:
            # Checked again inside the write's transaction: another worker may have deleted the post or stored
            # a newer text while this one was tagging (seconds), and the first check is stale by then.
            if _text_stale(now, event, at):
                return None
            votes_newer = now and _before(at, now.get("votes_at"), strict=True)
            if _count(post.get("voteCount")) is not None and not votes_newer:
                return {**fields, "votes": post["voteCount"], **({"votes_at": at} if at is not None else {})}
            return fields

        if self.store.update_post(post_id, write) is None:
            return {"action": "skipped", "reason": _text_stale(self.store.post(post_id), event, at) or _NEWER_TEXT}
        if self.backlog is not None:
            if candidates:
                self.store.add_suggestions(post_id, candidates, event.id)
                logger.info("quackback %s: %d duplicate candidate(s), best %s at %.3f", post_id, len(candidates),
                            candidates[0][0], candidates[0][1])
            # the board as metadata only when it is text: an object there made the service's GET /v1/backlog/{id}
            # of the post fail with a 500 (its metadata is flat)
            board = post.get("boardSlug") if isinstance(post.get("boardSlug"), str) else None
            self.backlog.upsert(post_id, text, {"source": board, "quackback": True})
            if (self.store.post(post_id) or {}).get("deleted"):
                # deleted by another worker after the write above: a deletion marks the store before it clears
                # the backlog, so either that clearing comes after this upsert or this check sees the mark
                self.backlog.delete(post_id)
            clock.lap("duplicates")
        out["duplicates"] = [{"id": i, "score": s} for i, s in candidates]
        if self.write_back is not None and confident:
            result = self.write_back.apply(post_id, confident)
            out["written"] = result["added"]
            out["missing_tags"] = result["missing_tags"]
            self.store.upsert_post(post_id, written=result["added"])
            clock.lap("write_back")
        if self.client is not None and self.auto_merge_above is not None and candidates:
            best_id, best = candidates[0]
            if best >= self.auto_merge_above:
                try:
                    self.client.merge_post(post_id, best_id)
                except QuackbackAPIError as exc:
                    if exc.retryable:
                        raise
                    # e.g. 403 (the key is not an admin's) or 409 (merged meanwhile): the tags are written and
                    # the suggestion stands; the refusal is reported rather than failing the whole event
                    if exc.status != 409 or not self._merged_into(post_id, best_id):
                        out["merge_error"] = str(exc)
                        out["ms"] = clock.laps
                        return out
                self.store.mark_merged(post_id, best_id)
                self.store.upsert_post(post_id, canonical_post_id=best_id, deleted=1)
                if self.backlog is not None:  # always: candidates imply a backlog
                    self.backlog.delete(post_id)
                out["merged_into"] = best_id
        out["ms"] = clock.laps
        return out

    def _merged_into(self, post_id: str, canonical_id: str) -> bool:
        """Whether Quackback holds ``post_id`` as merged into ``canonical_id``: a merge whose answer was lost (the
        connection dropped after Quackback did it) made the event retried, and the retry's 409 "already merged"
        was reported as a refused merge, the post kept live in the backlog and the suggestion unmerged."""
        assert self.client is not None
        try:
            post = self.client.get_post(post_id)
        except QuackbackAPIError as exc:
            if exc.retryable:
                raise
            return False
        return post.get("canonicalPostId") == canonical_id

    def _status(self, event: WebhookEvent) -> dict[str, Any]:
        new = event.data.get("newStatus")
        if not isinstance(new, str) or not new.strip():
            # an object, a number or nothing as the new status erased the post's recorded status (and dated the
            # erasure, so that the real change, retried later, counted as the older one)
            return {"action": "skipped", "reason": "the event carries no new status (a name)", "status": None}
        changed = _time(event.created_at)  # None: no usable time (applied in arrival order, see _event_time)
        seen: dict[str, Any] = {}

        def write(known: dict[str, Any] | None) -> dict[str, Any] | None:
            known = known or {}
            seen.update(known)
            if known.get("status_changed_at") and _before(changed, known["status_changed_at"], strict=True):
                return None  # deliveries are retried out of order: an older change must not undo a newer one
            fields: dict[str, Any] = {"status": new, "status_stage": status_stage(new), "status_changed_at": changed}
            if not known.get("first_status_change_at"):
                fields["first_status_change_at"] = changed
            if not known.get("text"):
                fields["text"] = event.text  # title only: enough for the report until a pull fills the content
            if isinstance(event.post.get("boardSlug"), str):
                fields["board"] = event.post["boardSlug"]
            return fields

        fields = self.store.update_post(_post_id(event), write)
        if fields is None:
            return {"action": "skipped", "reason": "a newer status change is already recorded",
                    "status": new, "current": seen.get("status")}
        return {"action": "status", "status": new, "stage": fields["status_stage"],
                "previous": event.data.get("previousStatus")}

    def _deleted(self, event: WebhookEvent) -> dict[str, Any]:
        # the store is marked before the backlog is cleared: a worker storing this post's text meanwhile checks
        # the mark after its own backlog upsert (see _post_text), so the post cannot stay searchable
        fields = self.store.update_post(_post_id(event), lambda known: None if _restored_since(known, event)
                                        else {"deleted": 1, "deleted_at": event.created_at})
        if fields is None:
            return {"action": "skipped", "reason": _RESTORED_SINCE}
        if self.backlog is not None:
            self.backlog.delete(_post_id(event))
        return {"action": "deleted"}

    def _restored(self, event: WebhookEvent) -> dict[str, Any]:
        """``post.restored`` and ``post.unmerged``: the post is live again (it stayed deleted, out of the backlog and
        of the report, until a later update happened to bring it back)."""
        post_id, at = _post_id(event), _time(event.created_at)
        seen: dict[str, Any] = {}

        def write(known: dict[str, Any] | None) -> dict[str, Any] | None:
            seen["known"] = known
            if not known or not known.get("deleted"):
                return None
            if _before(at, known.get("deleted_at"), strict=True):  # the deletion held is newer: it stands
                return None
            # deleted_at now dates the restore, so that an older deletion retried late does not undo it
            return {"deleted": 0, "deleted_at": at, **({"canonical_post_id": None}
                                                       if event.type == "post.unmerged" else {})}

        if self.store.update_post(post_id, write) is None:
            known = seen["known"]
            reason = ("the post is not known or not deleted" if not known or not known.get("deleted")
                      else "a newer deletion or merge is recorded")
            return {"action": "skipped", "reason": reason}
        known = seen["known"] or {}
        if self.backlog is not None and known.get("text"):
            self.backlog.upsert(post_id, known["text"], {"source": known.get("board"), "quackback": True})
        return {"action": "restored"}

    def _merged(self, event: WebhookEvent) -> dict[str, Any]:
        data = event.data
        nested = data.get("canonicalPost")
        # the first id that is text: a string as canonicalPost failed the event for good with an AttributeError,
        # and a list as canonicalPostId was reported as the canonical post while None was stored
        found = (data.get("canonicalPostId"), nested.get("id") if isinstance(nested, dict) else None,
                 event.post.get("canonicalPostId"))
        canonical = next((c for c in found if isinstance(c, str) and c), None)
        if self.store.update_post(_post_id(event), lambda known: None if _restored_since(known, event) else
                                  {"deleted": 1, "deleted_at": event.created_at, "canonical_post_id": canonical}) is None:
            return {"action": "skipped", "reason": _RESTORED_SINCE, "canonical": canonical}
        if self.backlog is not None:
            self.backlog.delete(_post_id(event))  # the duplicate's demand now counts on the canonical post
        return {"action": "merged", "canonical": canonical}

    def _voted(self, event: WebhookEvent) -> dict[str, Any]:
        votes, at = _count(event.post.get("voteCount")), _event_time(event)
        if votes is None:
            return {"action": "skipped", "reason": "the event carries no vote count (a non-negative integer)",
                    "votes": None}
        seen: dict[str, Any] = {}

        def write(known: dict[str, Any] | None) -> dict[str, Any] | None:
            seen["known"] = known
            if known and _before(at, known.get("votes_at"), strict=True):  # older than the count held: stale
                return None
            return {"votes": votes, **({"votes_at": at} if at is not None else {})}

        if self.store.update_post(_post_id(event), write) is None:
            return {"action": "skipped", "reason": "a newer vote count is already recorded", "votes": votes,
                    "current": (seen["known"] or {}).get("votes")}
        out: dict[str, Any] = {"action": "votes", "votes": votes}
        if not seen["known"] or seen["known"].get("text") is None:
            # a vote may be delivered before the post.created it follows (retries reorder deliveries): the count
            # is kept on the post's row, and the post's text, when it comes, keeps the newer of the two counts
            out["note"] = "the post itself is not known yet; its vote count is kept for it"
        return out


_NEWER_TEXT = "a newer text of this post is already recorded"
_RESTORED_SINCE = "the post was restored (or unmerged) after this event"


def _restored_since(known: dict[str, Any] | None, event: WebhookEvent) -> bool:
    """Whether a live post was restored after ``event``, a deletion or merge retried late (its ``deleted_at`` then
    dates the restore: only a restore sets it on a live post)."""
    return bool(known and not known.get("deleted") and known.get("deleted_at")
                and _before(_time(event.created_at), known["deleted_at"], strict=True))


def _text_stale(known: dict[str, Any] | None, event: WebhookEvent, at: str | None) -> str | None:
    """Why an event's text must not be stored over what is known of the post, or None: the post was deleted or
    merged after the event (a late retry would put it back in the backlog for good), it is merged (an edit does
    not undo a merge), or a newer text is held (retries deliver out of order)."""
    if not known:
        return None
    if known.get("deleted") and _before(event.created_at, known.get("deleted_at")):
        return "the post was deleted or merged after this event"
    if known.get("deleted") and known.get("canonical_post_id"):
        # A merged post lives on in Quackback and can still be edited (a deleted one cannot: an edit after the
        # deletion says it was restored). Such an edit made it live again, back in the backlog, where every new
        # post like it was reported a duplicate of the merged post: only post.unmerged (or post.restored) undoes it.
        return "the post is merged into another (a post.unmerged event brings it back)"
    if _before(at, known.get("text_at"), strict=True):
        return _NEWER_TEXT
    return None


def _addressable(post_id: str) -> bool:
    """Whether a post id can be a backlog item: no surrounding white space, invisible character or '.'/'..' path
    segment (the rules of the service's item ids)."""
    return _hidden_in_id(post_id) is None and post_id == post_id.strip() and not {".", ".."} & set(post_id.split("/"))


def _count(value: Any) -> int | None:
    """A vote count as Quackback sends it (a non-negative integer), else None: 1.5, true, NaN or 10**30 were
    stored as they came (or failed the event with an OverflowError)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


# An event dated further ahead than this is not trusted to order anything: a clock that ran ahead (or a
# forged createdAt of 9999) would otherwise freeze the post's text or votes against every later event.
_MAX_AHEAD = pd.Timedelta(hours=1)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _time(value: Any) -> str | None:
    """``value`` if it is a readable ISO time no later than an hour from now, else None ("now" and "today",
    which pandas reads as the moment of processing, would make a late retry the newest event)."""
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None
    try:
        t = pd.Timestamp(value)
        t = t.tz_localize("UTC") if t.tzinfo is None else t
    except (ValueError, TypeError, OverflowError):
        return None
    if pd.isna(t) or t > pd.Timestamp.now(tz="UTC") + _MAX_AHEAD:
        return None
    return value


def _created_at(event: WebhookEvent) -> str | None:
    """When the post was created: its ``createdAt``, else the delivery's, whichever is a readable time first (an
    object there was stored as its JSON text, "yesterday" as it came)."""
    return _time(event.post.get("createdAt")) or _time(event.created_at)


def _event_time(event: WebhookEvent) -> str | None:
    """When the state an event carries was current: the post's ``updatedAt`` where the event carries one (the
    REST shape of a post), else the event's own ``createdAt`` (every Quackback delivery has one). None when
    neither is a usable time: such an event is applied in arrival order, the only order there is, and dates
    nothing (a later dated event is compared with the last dated state)."""
    return _time(event.post.get("updatedAt")) or _time(event.created_at)


def _before(event_time: str | None, recorded: str | None, *, strict: bool = False) -> bool:
    """Whether an event happened before a recorded time (ISO strings); unknown or unreadable times: ``not
    strict`` says before (an event of unknown age does not undo a deletion), ``strict`` says not."""
    if event_time is None or recorded is None:
        return not strict
    try:
        a, b = pd.Timestamp(event_time), pd.Timestamp(recorded)
        if a.tzinfo is None:
            a = a.tz_localize("UTC")
        if b.tzinfo is None:
            b = b.tz_localize("UTC")
    except (ValueError, TypeError, OverflowError):
        return not strict
    if pd.isna(a) or pd.isna(b):
        return not strict
    return bool(a < b)


def _post_id(event: WebhookEvent) -> str:
    """The post id of a post event (``parse_event`` refuses post events without one)."""
    if event.post_id is None:
        raise QuackbackError(f"a {event.type} event needs data.post.id")
    return event.post_id


class _Clock:
    """Milliseconds spent per step, reported with each result (where the latency goes)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._t) * 1000, 1)
        self._t = now


def is_retryable(exc: BaseException) -> bool:
    """Failures that may pass later (rate limits, Quackback down, the service's store locked by another
    process) as opposed to ones that never will. An error says so with a true ``retryable`` attribute: a
    ``StoreBusyError`` failed its event for good, though nothing had been written."""
    if isinstance(exc, QuackbackAPIError):
        return exc.retryable
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
        # the integration's own store held by another process past its timeout: the event failed for good
        return True
    return getattr(type(exc), "retryable", False) is True
