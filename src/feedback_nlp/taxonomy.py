"""The team's taxonomy: tags with ids, names, descriptions, an optional parent and example texts.

A hierarchy (product area → sub-area) is expressed with ``parent``; predicting a child implies its ancestors.
Top-level tags that have children act as *facets* (e.g. "product_area" and "request_type"): zero-shot
tagging picks one tag per facet.

Example:
    >>> tax = Taxonomy.from_dict({"tags": [
    ...     {"id": "area", "name": "Product area"},
    ...     {"id": "billing", "name": "Billing", "parent": "area", "description": "Invoices and payments"}]})
    >>> tax.ancestors("billing"), tax.leaves()
    (['area'], ['billing'])
"""

from __future__ import annotations

import json
import math
import numbers
import os
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputNotFoundError, InvalidInputError, TaxonomyError, UnknownTagError, quoted, quoted_list
from .records import _hidden_in_id, _missing

__all__ = ["Tag", "Taxonomy"]


_MAX_FILE_BYTES = 16 << 20
_MAX_NODES = 1_000_000  # values in the loaded document, aliases counted each time they are used


def _loader() -> type:
    """A YAML SafeLoader that reads every plain scalar as text, except ``null``/``~``/empty.

    A taxonomy holds only texts, and YAML 1.1 turns ``yes``/``no``/``on``/``off`` into booleans, ``0x10``
    into 16 and ``1.0`` into a float: a tag ``id: no`` became ``"False"``. Quoted or not, ids stay as written.
    """
    import yaml

    class _TextLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            """A key written twice is refused: PyYAML kept the last one, so a second ``tags:`` block
            pasted at the end of the file silently dropped every tag of the first."""
            mapping = super().construct_mapping(node, deep=deep)
            if len(mapping) < len(node.value):
                seen: set[Any] = set()
                for key_node, _ in node.value:
                    key = self.construct_object(key_node, deep=deep)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"the key {quoted(str(key))} is written twice in one mapping (only "
                            "the last would be kept): merge them or remove one", key_node.start_mark)
                    seen.add(key)
            return mapping

    _TextLoader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag == "tag:yaml.org,2002:null"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return _TextLoader


def _check_size(data: Any, path: Path) -> None:
    """Refuse alias bombs ("billion laughs") and self-referencing aliases before anything walks the data:
    aliases are shared references, so a 1 KB file can stand for a billion values."""
    budget = _MAX_NODES
    stack = [data]
    while stack:
        value = stack.pop()
        budget -= 1
        if budget < 0:
            raise TaxonomyError(f"{path} expands to more than {_MAX_NODES} values (YAML aliases nested in "
                                "each other or referring to themselves?)")
        if isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


@dataclass(frozen=True)
class Tag:
    """One tag of a taxonomy."""

    id: str
    name: str
    description: str = ""
    parent: str | None = None
    examples: tuple[str, ...] = field(default_factory=tuple)

    def prompt(self) -> str:
        """The text that stands for this tag in zero-shot matching."""
        return f"{self.name}: {self.description}" if self.description else self.name


def _fold_tag_id(tag: str) -> str:
    """A tag id with case, spacing and Unicode form folded away: "Bug ", "bug" and "BUG" fold to one key."""
    return " ".join(unicodedata.normalize("NFC", tag).casefold().split())


class Taxonomy:
    """A validated set of tags, optionally hierarchical.

    Raises :class:`~feedback_nlp.errors.TaxonomyError` naming the offending tag for duplicate ids (ids that
    differ only in case, spacing or Unicode form included: ``Bug`` and ``bug`` are refused, naming both), empty
    ids or names, unknown parents and cycles.
    """

    def __init__(self, tags: Iterable[Tag | Mapping[str, Any]], name: str = "taxonomy") -> None:
        if isinstance(tags, (str, bytes, Mapping)) or not isinstance(tags, Iterable):
            raise TaxonomyError(f"the tags must be a list of mappings with 'id' and 'name', got {type(tags).__name__}")
        parsed: list[Tag] = []
        null_ids: set[int] = set()  # "id: null" in YAML: an id the user meant as a word
        for i, t in enumerate(tags):
            if isinstance(t, Tag):  # checked like a mapping: Tag("a|b", ...) or examples="text" (read letter by
                t = asdict(t)       # letter as examples) passed unchecked
            if not isinstance(t, Mapping):
                raise TaxonomyError(f"tag #{i} must be a mapping with 'id' and 'name', got {type(t).__name__}")
            unknown = set(t) - {"id", "name", "description", "parent", "examples"}
            if unknown:
                raise TaxonomyError(f"tag #{i} ({quoted(t.get('id'))}) has unknown field(s) {quoted_list(sorted(map(str, unknown)))}")
            if any(isinstance(t.get(k), float) and math.isnan(t[k]) for k in ("description", "parent")):
                # an empty cell of a sheet read with pandas (read_csv(...).to_dict("records")) is NaN: no parent, no
                # description (it was refused as "nan as its parent; write it as text")
                t = {k: v for k, v in t.items() if not (k in ("description", "parent") and isinstance(v, float)
                                                        and math.isnan(v))}
            for key in ("id", "name", "description", "parent"):
                if isinstance(t.get(key), (bool, list, tuple, dict, set)):
                    # a JSON true or a list where a name belongs: str() would silently invent "True"
                    raise TaxonomyError(f"tag #{i} has a {type(t[key]).__name__} as its {key} ({t[key]!r:.80}); "
                                        "write it as text (quote it in YAML)")
                if isinstance(t.get(key), bytes) or (isinstance(t.get(key), float) and not math.isfinite(t[key])):
                    # JSON's NaN / YAML's !!binary became the texts "nan" and "b'…'"
                    raise TaxonomyError(f"tag #{i} has {t[key]!r:.80} as its {key}; write it as text")
            tid = str(t.get("id", "")).strip() if t.get("id") is not None else ""
            if "id" in t and t["id"] is None:
                null_ids.add(i)
            if any(ord(c) < 32 or c == "\x7f" for c in tid):
                raise TaxonomyError(f"tag id {quoted(tid)} holds a control character (newline, tab…)")
            hidden = _hidden_in_id(tid)
            if hidden is not None:  # "bug\u200b" shows as "bug": two tags that look like one
                raise TaxonomyError(f"tag id {quoted(tid)} holds the invisible character U+{ord(hidden):04X}: it would "
                                    "look like another id; remove it")
            if "|" in tid:  # CSV outputs join a row's tags with "|": "a|b" would read back as two tags
                raise TaxonomyError(f"tag id {quoted(tid)} holds '|', the separator of tags in CSV outputs and "
                                    "multi-label columns; name the tag without it (e.g. with '/' or '-')")
            examples = t.get("examples") or ()
            if isinstance(examples, str):
                examples = (examples,)
            if not isinstance(examples, (list, tuple)) or not all(
                    isinstance(e, str) or (isinstance(e, (int, float)) and not isinstance(e, bool) and math.isfinite(e))
                    for e in examples):  # true or NaN would become the example texts "True" and "nan"
                raise TaxonomyError(f"tag #{i} ({quoted(tid)}): examples must be a list of texts, got {examples!r:.80}")
            if any(not str(e).strip() for e in examples):  # nothing to embed: an example of nothing
                raise TaxonomyError(f"tag #{i} ({quoted(tid)}) has a blank example; remove it")
            parent = str(t["parent"]).strip() if t.get("parent") is not None else ""
            tname, tdesc = t.get("name"), t.get("description")  # 0 is a text "0", not a missing one
            parsed.append(Tag(id=tid, name="" if tname is None else str(tname).strip(),
                              description="" if tdesc is None else str(tdesc).strip(),  # blank: no description
                              parent=parent or None, examples=tuple(str(e) for e in examples)))
        self.name = name
        self._tags: dict[str, Tag] = {}
        forms: dict[str, str] = {}
        for i, t in enumerate(parsed):
            if not t.id:
                raise TaxonomyError(f"tag #{i} has an empty id" + (" (YAML reads null and ~ as no value: quote the id "
                                    "if that is its name)" if i in null_ids else ""))
            if not t.name:
                example = t.id.replace("_", " ").capitalize()
                raise TaxonomyError(f"tag {quoted(t.id)} has an empty name: give it a 'name' (the words zero-shot "
                                    f"matches and reports show), e.g. name: {quoted(example)}")
            if t.id in self._tags:
                raise TaxonomyError(f"duplicate tag id {quoted(t.id)}")
            twin = forms.get(_fold_tag_id(t.id))
            if twin is not None and unicodedata.normalize("NFC", twin) == unicodedata.normalize("NFC", t.id):
                # "é" composed (NFC) and decomposed (NFD): one word on screen, two tags
                raise TaxonomyError(f"tag ids {quoted(twin)} and {quoted(t.id)} differ only in their Unicode form "
                                    "(composed vs decomposed accents): they look the same but would be two tags; "
                                    "write one form (NFC)")
            if twin is not None:  # "Bug" and "bug": one tag typed two ways, or two tags no reader tells apart
                raise TaxonomyError(f"tag ids {quoted(twin)} and {quoted(t.id)} differ only in case or spacing: "
                                    "they would be two tags that labels, reports and people confuse; keep one id "
                                    "(or name them apart)")
            forms[_fold_tag_id(t.id)] = t.id
            self._tags[t.id] = t
        for t in self._tags.values():
            if t.parent is not None and t.parent not in self._tags:
                raise TaxonomyError(f"tag {quoted(t.id)} has unknown parent {quoted(t.parent)}")
        acyclic: set[str] = set()  # tags whose chain of parents is known to end: each chain is walked once
        for t in self._tags.values():
            seen = {t.id: None}  # insertion-ordered, O(1) membership (a list made deep chains cubic)
            cur = t.parent
            while cur is not None and cur not in acyclic:
                if cur in seen:
                    raise TaxonomyError(f"tag {quoted(t.id)} is in a parent cycle: {' -> '.join(quoted(x, 40) for x in [*seen, cur][:10])}")
                seen[cur] = None
                cur = self._tags[cur].parent
            acyclic.update(seen)
        if not self._tags:
            raise TaxonomyError("the taxonomy has no tags")

    # --- construction / persistence -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Taxonomy:
        """Build from ``{"name": ..., "tags": [...]}`` or a plain list of tag mappings."""
        if isinstance(data, Mapping):
            if "tags" not in data:
                raise TaxonomyError("taxonomy mapping needs a 'tags' list")
            name = data.get("name")
            if name is not None and (isinstance(name, (bool, bytes, Mapping, list, tuple, set))
                                     or (isinstance(name, float) and not math.isfinite(name))):
                raise TaxonomyError(f"the taxonomy's name must be a text, got {name!r:.80}")
            # a blank "name:" was the taxonomy "None"
            return cls(data["tags"], name="taxonomy" if name is None or not str(name).strip() else str(name).strip())
        if data is None:
            raise TaxonomyError("the taxonomy is empty: expected {'tags': [...]} or a list of tags")
        if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
            raise TaxonomyError(f"a taxonomy is {{'tags': [...]}} or a list of tags, got {type(data).__name__}")
        return cls(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Taxonomy:
        """Load a taxonomy from a YAML (``.yaml``/``.yml``) or JSON file."""
        path = Path(path)
        if not path.exists():
            raise InputNotFoundError(f"taxonomy file not found: {path}")
        if not path.is_file():
            raise TaxonomyError(f"{path} is not a regular file (a folder, pipe or device)")
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise TaxonomyError(f"{path} is {path.stat().st_size} bytes: a taxonomy file is at most {_MAX_FILE_BYTES}")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TaxonomyError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02X} at offset "
                                f"{exc.start}): save it as UTF-8") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                data = yaml.load(text, Loader=_loader())  # noqa: S506 - a SafeLoader subclass (see _loader)
            except yaml.YAMLError as exc:
                raise TaxonomyError(f"{path} is not valid YAML: {exc}") from exc
            except RecursionError:  # "[[[[…": a bare RecursionError escaped the CLI
                raise TaxonomyError(f"{path} is not valid YAML: nested too deeply") from None
            _check_size(data, path)
        else:
            from .connectors._tables import RepeatedKeyError, json_loads, unique_keys

            read_as = "" if path.suffix.lower() == ".json" else " (read as JSON: name a YAML file .yaml or .yml)"
            try:
                data = json_loads(text, object_pairs_hook=unique_keys)
            except RepeatedKeyError as exc:  # json kept the last: {"id": "a", "id": "b"} was tag "b"
                raise TaxonomyError(f"{path}: {exc} (only the last would be kept): merge them or remove one") from None
            except ValueError as exc:  # a 5,000-digit number was a bare ValueError
                raise TaxonomyError(f"{path} is not valid JSON{read_as}: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        tags = []
        for t in self._tags.values():
            d = {k: v for k, v in asdict(t).items() if v not in (None, "", ())}
            if "examples" in d:
                d["examples"] = list(d["examples"])
            tags.append(d)
        return {"name": self.name, "tags": tags}

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True), encoding="utf-8")
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        return path

    # --- queries --------------------------------------------------------------------------------
    def __contains__(self, tag_id: object) -> bool:
        return tag_id in self._tags

    def __getitem__(self, tag_id: str) -> Tag:
        try:
            return self._tags[tag_id]
        except KeyError:
            raise UnknownTagError(f"unknown tag {quoted(tag_id)}; known tags: {quoted_list(sorted(self._tags))}") from None

    def __iter__(self):
        return iter(self._tags.values())

    def __len__(self) -> int:
        return len(self._tags)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Taxonomy) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Taxonomy(name={self.name!r}, tags={len(self)})"

    @property
    def ids(self) -> list[str]:
        return list(self._tags)

    def ancestors(self, tag_id: str) -> list[str]:
        """Parent, grandparent, … of a tag (nearest first)."""
        out, cur = [], self[tag_id].parent
        while cur is not None:
            out.append(cur)
            cur = self._tags[cur].parent
        return out

    def children(self, tag_id: str | None) -> list[str]:
        """The tags whose parent is ``tag_id`` (``None``: the top-level tags); an unknown tag is an
        :class:`UnknownTagError`, as in :meth:`ancestors` (it was an empty list, like a leaf's)."""
        if tag_id is not None:
            self[tag_id]
        return [t.id for t in self._tags.values() if t.parent == tag_id]

    def depth(self, tag_id: str) -> int:
        """0 for a top-level tag, 1 for its children, …"""
        return len(self.ancestors(tag_id))

    def leaves(self) -> list[str]:
        parents = {t.parent for t in self._tags.values()}
        return [t for t in self._tags if t not in parents]

    def facets(self) -> dict[str, list[str]]:
        """Top-level tags that have descendants, each with its leaf tags (one choice per facet)."""
        out: dict[str, list[str]] = {}
        for leaf in self.leaves():
            chain = [leaf, *self.ancestors(leaf)]
            if len(chain) > 1:
                out.setdefault(chain[-1], []).append(leaf)
        return out

    def with_ancestors(self, tags: Iterable[str] | str) -> list[str]:
        """The tags plus all their ancestors, deduplicated, in taxonomy order (a string is one tag: it was read
        letter by letter, "unknown tag 'b'" for ``with_ancestors("bug")``)."""
        if isinstance(tags, str):
            tags = [tags]
        wanted = set()
        for t in tags:
            wanted.add(t)
            wanted.update(self.ancestors(t))
        order = self.__dict__.get("_order")
        if order is None:  # positions once: sorting a row's few tags, not a pass over every tag per row
            order = self._order = {t: i for i, t in enumerate(self._tags)}
        return sorted(wanted, key=order.__getitem__)

    def at_level(self, tag_id: str, level: int) -> str | None:
        """The ancestor-or-self of ``tag_id`` at depth ``level`` (None if the tag is shallower)."""
        if isinstance(level, bool) or not isinstance(level, numbers.Integral) or level < 0:
            # -1 counted from the tag's end (the tag itself), 1.5 was a bare TypeError
            raise InvalidInputError(f"level must be a depth, 0 (top level) or more, got {level!r}")
        chain = [tag_id, *self.ancestors(tag_id)][::-1]
        return chain[level] if level < len(chain) else None

    def validate_labels(self, labels: Iterable[Iterable[str] | str]) -> None:
        """Raise :class:`UnknownTagError` listing labels that are not in the taxonomy and their rows.

        Each row is a list of tags, or one tag as a string (a flat list of labels was read letter by letter:
        ``validate_labels(["bug"])`` said "'b' in rows [0]").
        """
        if isinstance(labels, str):
            raise InvalidInputError("labels must be one row of tags per item (a list), got a string")
        bad: dict[str, list[int]] = {}
        for i, row in enumerate(labels):
            if _missing(row):
                continue  # a row without a label has no tag to check (it was "'float' object is not iterable")
            for t in row if isinstance(row, Iterable) and not isinstance(row, (str, bytes)) else [row]:
                if t not in self._tags:
                    bad.setdefault(t, []).append(i)
        if bad:
            folded = {_fold_tag_id(t): t for t in self._tags}

            def near(t: Any) -> str:  # "Bug" for the taxonomy's "bug": say which id was meant
                twin = folded.get(_fold_tag_id(t)) if isinstance(t, str) else None
                return f" (the taxonomy's id is {quoted(twin)}: ids are case-sensitive)" if twin is not None else ""

            detail = "; ".join(f"{quoted(t)} in rows {rows[:5]}{near(t)}" for t, rows in list(bad.items())[:5])
            raise UnknownTagError(f"labels not in taxonomy {self.name!r}: {detail}")
