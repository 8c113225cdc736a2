"""Request and response bodies of the HTTP API (pydantic); the OpenAPI schema at ``/openapi.json`` comes from
these. Limits that depend on the configuration (items per request, text length, k) are checked by the routes,
which answer 413/422 naming the limit; fixed shapes (an id of 1-256 characters, flat metadata) are here."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict

from ..records import _hidden_in_id

__all__ = [
    "BacklogAck", "BacklogItemOut", "BacklogRequest", "DuplicateMatch", "DuplicatesRequest", "DuplicatesResponse",
    "DuplicatesResult", "ErrorBody", "Item", "QueryItem", "TagRequest", "TagResponse", "TagResult",
]

# Control, zero-width and direction-changing characters (the rule files follow, records._hidden_in_id) and lone
# surrogates: an id holding one is stored as given (PostgreSQL refuses NUL and a surrogate failed the SQLite
# insert with a 500) or shows another id in a dashboard ("abc\u202edef" displays as "abcfed", "a\u200bb" as "ab").
_SURROGATES = re.compile("[\ud800-\udfff]")


def _plain_id(value: str) -> str:
    bad = _hidden_in_id(value) or (m.group() if (m := _SURROGATES.search(value)) else None)
    if bad is not None:
        raise ValueError(f"an id may not hold control, invisible, direction-changing or surrogate characters "
                         f"(U+{ord(bad):04X})")
    if value != value.strip():  # a file's ids are read without them: one item would have two ids
        raise ValueError("an id may not start or end with white space")
    if {".", ".."} & set(value.split("/")):  # GET /v1/backlog/a/../b reaches b: clients resolve dot segments
        raise ValueError("an id may not have '.' or '..' as a path segment (a URL cannot address it)")
    return value


def _no_surrogates(value: str) -> str:
    if m := _SURROGATES.search(value):  # pandas' Arrow strings cannot hold one: the demand score failed with a 500
        raise ValueError(f"holds a lone surrogate (U+{ord(m.group()):04X}); send text as UTF-8")
    return value


# A string a score's table holds: no lone surrogate.
CellText = Annotated[str, AfterValidator(_no_surrogates)]


def _scalar_values(meta: Any) -> Any:
    """Metadata whose values are no objects or lists, checked before the value types: a nested value was
    refused four times over, as "metadata.a.str: Input should be a valid string" and so on for each type."""
    if isinstance(meta, dict):
        for key, value in meta.items():
            if isinstance(value, (dict, list)):
                raise ValueError(f"metadata value of {str(key)[:40]!r} is {'an object' if isinstance(value, dict) else 'a list'}; "
                                 "metadata is flat: a string, number, true/false or null per key")
    return meta


def _flat_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata the stores keep as given: no NaN or infinity (JSON has none: they were stored as null), no NUL or
    lone surrogate in a key or a text (a surrogate failed the insert with a 500)."""
    for key, value in meta.items():
        for what, text in (("key", key), ("value of", value)):
            if isinstance(text, str) and (m := re.search("[\x00\ud800-\udfff]", text)):
                raise ValueError(f"metadata {what} {key[:40]!r} holds U+{ord(m.group()):04X} (NUL or a lone surrogate)")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"metadata value of {key[:40]!r} is {value}: only finite numbers")
    return meta


ItemId = Annotated[str, Field(min_length=1, max_length=256, description="your id of the item (ticket id, URL, ...)"),
                   AfterValidator(_plain_id)]
# bool before int: pydantic 2.5 (the lowest allowed) wrote the first member whose type the value is an instance of, so a
# stored {"quackback": true} came back from GET /v1/backlog as 1 (bool is a subclass of int)
MetaValue = Union[str, bool, int, float, None]
# A score's inputs: finite numbers, never true/false or a numeric string ("reach": true was scored as 1).
Number = Annotated[float, Strict()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Finite(_Strict):
    """Bodies of the scoring endpoints: NaN and Infinity (which Python's JSON parser accepts) are refused by
    name instead of being read as a missing value or failing deep in the scorer."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Item(_Strict):
    """A feedback item: its id, its raw text (cleaned and PII-redacted by the service) and flat metadata."""

    id: ItemId
    text: str = Field(description="raw text; HTML, quoted replies and signatures are removed, PII redacted")
    metadata: Annotated[dict[str, MetaValue], BeforeValidator(_scalar_values), AfterValidator(_flat_metadata)] = Field(
        default_factory=dict, max_length=64, description="flat key/value metadata kept with backlog items")


class QueryItem(_Strict):
    """A text to look up; ``id`` is echoed back (and, for duplicates, excluded from its own matches)."""

    id: ItemId | None = None
    text: str


class TagRequest(_Strict):
    items: list[Item] = Field(min_length=1)
    model: str | None = Field(default=None, description="a served model name (GET /v1/models); default: the first")


class TagResult(BaseModel):
    id: str
    tags: list[str]
    probabilities: dict[str, float]
    confidence: float
    needs_review: bool


class TagResponse(BaseModel):
    model: str
    results: list[TagResult]


class ServedModelInfo(BaseModel):
    name: str
    tags: list[str]
    multi_label: bool


class Limits(BaseModel):
    max_body_bytes: int
    max_items: int
    max_text_chars: int
    max_k: int


class ModelsResponse(BaseModel):
    models: list[ServedModelInfo]
    limits: Limits = Field(description="the request limits; an error body names the one that was hit")


class Readiness(BaseModel):
    ready: bool
    reason: str | None = Field(default=None, description="why not ready: loading, or loading failed")


class SentimentRequest(_Strict):
    items: list[Item] = Field(min_length=1)


class SentimentResult(BaseModel):
    id: str
    sentiment: str | None = Field(description="positive, neutral or negative; null when needs_review")
    probabilities: dict[str, float]
    confidence: float
    needs_review: bool


class SentimentResponse(BaseModel):
    model: str
    results: list[SentimentResult]


class DuplicatesRequest(_Strict):
    items: list[QueryItem] = Field(min_length=1)
    k: int = Field(default=5, ge=1, strict=True)  # true was read as k=1
    # strict and finite: true was read as 1.0, "0.5" as 0.5, and NaN was refused as "not <= 1"
    min_score: float | None = Field(default=None, ge=-1.0, le=1.0, strict=True, allow_inf_nan=False)


class DuplicateMatch(BaseModel):
    id: str
    score: float
    duplicate: bool = Field(description="score >= the service's duplicate threshold")


class DuplicatesResult(BaseModel):
    id: str | None
    matches: list[DuplicateMatch]


class DuplicatesResponse(BaseModel):
    threshold: float
    results: list[DuplicatesResult]


class BacklogRequest(_Strict):
    items: list[Item] = Field(min_length=1)


class BacklogAck(BaseModel):
    created: list[str]
    updated: list[str]
    backlog_size: int


class BacklogItemOut(BaseModel):
    id: str
    text: str = Field(description="the stored text: cleaned and PII-redacted")
    metadata: dict[str, MetaValue]
    updated_at: str | None


class ThemeAssignRequest(_Strict):
    items: list[QueryItem] = Field(min_length=1)


class ThemeAssignResult(BaseModel):
    id: str | None
    theme: int = Field(description="theme id, -1 when no theme is close enough")
    label: str


class ThemeAssignResponse(BaseModel):
    results: list[ThemeAssignResult]


class ThemeOut(BaseModel):
    id: int
    label: str
    keywords: list[str]
    size: int
    share: float


class ThemesResponse(BaseModel):
    themes: list[ThemeOut]


class RiceItem(_Finite):
    id: ItemId
    reach: Number
    impact: Number
    confidence: Number
    effort: Number


class RiceRequest(_Finite):
    items: list[RiceItem] = Field(min_length=1)
    confidence_scale: Literal["fraction", "percent"] = "fraction"


class IceItem(_Finite):
    id: ItemId
    impact: Number
    confidence: Number
    ease: Number


class IceRequest(_Finite):
    items: list[IceItem] = Field(min_length=1)
    method: Literal["product", "mean"] = "product"


class MoscowItem(_Finite):
    id: ItemId
    score: Number
    commitment: bool = False
    deadline: bool = False


class MoscowRequest(_Finite):
    items: list[MoscowItem] = Field(min_length=1)
    # Number, as the items' scores: "cutoffs": {"must": true, "should": false, ...} was read as 1, 0, 0 (every item a
    # must), and "8" as 8, where the library refuses both
    cutoffs: dict[Literal["must", "should", "could"], Number] | None = None
    quantiles: tuple[Number, Number, Number] = (0.8, 0.5, 0.2)


class DemandItem(_Finite):
    id: ItemId
    theme: CellText
    account_id: CellText | None = None
    account_revenue: Number | None = None
    created_at: CellText | None = Field(default=None, description="ISO 8601 time of the feedback")


class DemandRequest(_Finite):
    items: list[DemandItem] = Field(min_length=1)
    weights: dict[Literal["volume", "unique_accounts", "revenue", "growth"], Number] | None = None  # true was 1
    window: str = Field(default="28D", max_length=16)
    now: CellText | None = None


class ScoreResult(BaseModel):
    id: str
    score: float | None = None
    category: str | None = None


class ScoreResponse(BaseModel):
    framework: str
    results: list[ScoreResult]


class DemandRow(BaseModel):
    theme: str
    volume: int
    unique_accounts: int
    revenue: float
    growth: float
    priority: float


class DemandResponse(BaseModel):
    framework: Literal["demand"] = "demand"
    results: list[DemandRow]
    items_without_theme: int = Field(default=0, description="items left uncounted: their theme is empty, "
                                     "'-1' or 'outlier' (no theme)")
    revenue_items_without_account: int = Field(default=0, description="items with an account_revenue but no "
                                               "account_id: revenue counts once per account, so theirs is not counted")


class ErrorDetail(BaseModel):
    loc: str
    msg: str
    type: str


class ErrorInfo(BaseModel):
    code: str
    message: str
    limit: str | None = Field(default=None, description="the name of the limit that was hit, if any")
    max: int | None = None
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo
    request_id: str


def error_body(code: str, message: str, request_id: str, **extra: Any) -> dict[str, Any]:
    """A JSON error body (see :class:`ErrorBody`)."""
    return {"error": {"code": code, "message": message, **extra}, "request_id": request_id}
