"""Parameter constraints for feedback_nlp's estimators, declared once per class in scikit-learn's style.

scikit-learn keeps its own validator private (``sklearn.utils._param_validation``), so this is a small shim
with the same shape: each estimator declares ``_parameter_constraints`` — a dict from every ``__init__``
parameter to a list of accepted constraints — and calls ``self._validate_params()`` at the top of ``fit``.
A value is accepted when it meets any one constraint; otherwise :class:`~feedback_nlp.InvalidInputError`
names the parameter, the value and what is accepted. A parameter with no declared constraint is a bug of
the class, reported as such, so a new ``__init__`` argument cannot slip in unchecked.

Constraints: a type (``int``, ``Taxonomy``; ``bool`` is never an ``int`` or a ``float`` here), ``None``,
:class:`Interval`, :class:`Options`, :class:`HasMethods`, or ``"boolean"`` (``bool`` or ``numpy.bool_``).

Example:
    >>> from sklearn.base import BaseEstimator
    >>> class Smoother(ParamsMixin, BaseEstimator):
    ...     _parameter_constraints = {"alpha": [Interval(float, 0, None, closed="neither")],
    ...                               "kind": [Options({"mean", "median"})]}
    ...     def __init__(self, alpha=1.0, kind="mean"):
    ...         self.alpha, self.kind = alpha, kind
    >>> Smoother(alpha=-1)._validate_params()
    Traceback (most recent call last):
    ...
    feedback_nlp.errors.InvalidInputError: Smoother: alpha must be a float in (0, inf), got -1
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import InvalidInputError, quoted

__all__ = ["HasMethods", "Interval", "Options", "ParamsMixin", "validate_params"]

_INTEGRAL = (numbers.Integral,)
_REAL = (numbers.Real,)


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Interval:
    """A number in a range. ``kind`` is ``int`` (integers only) or ``float`` (any real, integers included);
    ``None`` as a bound means unbounded; ``closed`` says which bounds belong to the range. NaN never does."""

    kind: type
    left: float | None
    right: float | None
    closed: Literal["left", "right", "both", "neither"] = "both"

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise TypeError(f"Interval kind must be int or float, got {self.kind!r}")
        if self.closed not in ("left", "right", "both", "neither"):
            raise TypeError(f"Interval closed must be left/right/both/neither, got {self.closed!r}")

    def accepts(self, value: Any) -> bool:
        if _is_bool(value) or not isinstance(value, _INTEGRAL if self.kind is int else _REAL):
            return False
        if not np.isfinite(float(value)) and not (np.isinf(float(value)) and self._unbounded_towards(value)):
            return False
        v = float(value)
        lo_ok = self.left is None or (v >= self.left if self.closed in ("left", "both") else v > self.left)
        hi_ok = self.right is None or (v <= self.right if self.closed in ("right", "both") else v < self.right)
        return bool(lo_ok and hi_ok)

    def _unbounded_towards(self, value: Any) -> bool:
        return (self.right is None) if value > 0 else (self.left is None)

    def __str__(self) -> str:
        lb = "[" if self.closed in ("left", "both") and self.left is not None else "("
        rb = "]" if self.closed in ("right", "both") and self.right is not None else ")"
        lo = "-inf" if self.left is None else f"{self.left:g}"
        hi = "inf" if self.right is None else f"{self.right:g}"
        return f"{'an int' if self.kind is int else 'a float'} in {lb}{lo}, {hi}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``; ``True`` does not stand for ``1``)."""

    values: frozenset

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", frozenset(values))

    def accepts(self, value: Any) -> bool:
        try:
            hit = value in self.values
        except TypeError:  # unhashable value (a list, a dict)
            return False
        # 1 == True in Python: keep a bool from passing for a number option and vice versa
        return bool(hit) and any(v == value and _is_bool(v) == _is_bool(value) for v in self.values)

    def __str__(self) -> str:
        return "one of {" + ", ".join(sorted(repr(v) for v in self.values)) + "}"


@dataclass(frozen=True)
class HasMethods:
    """Any object with these methods (duck typing, e.g. an embedder with ``encode``)."""

    methods: tuple[str, ...]

    def __init__(self, *methods: str) -> None:
        object.__setattr__(self, "methods", tuple(methods))

    def accepts(self, value: Any) -> bool:
        # a model name is no embedder, though str has encode(): Deduper("all-MiniLM-L6-v2") failed at fit with
        # "encode() argument 'encoding' must be str, not list"
        return not isinstance(value, (str, bytes)) and all(callable(getattr(value, m, None)) for m in self.methods)

    def __str__(self) -> str:
        return "an object with " + ", ".join(f"{m}()" for m in self.methods)


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return _is_bool(value)
    if isinstance(constraint, type):
        if constraint in (int, float) and _is_bool(value):
            return False
        if constraint is int:
            return isinstance(value, _INTEGRAL)
        if constraint is float:
            return isinstance(value, _REAL)
        return isinstance(value, constraint)
    if hasattr(constraint, "accepts"):
        return bool(constraint.accepts(value))
    raise TypeError(f"unknown parameter constraint {constraint!r}")


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if isinstance(constraint, type):
        name = constraint.__name__
        return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"
    return str(constraint)


def validate_params(constraints: Mapping[str, list[Any]], params: Mapping[str, Any], owner: str) -> None:
    """Check each of ``params`` against its constraints; raise InvalidInputError on the first misfit.

    ``params`` without an entry in ``constraints`` raise TypeError: that is a bug of the class declaring them.
    """
    missing = sorted(set(params) - set(constraints))
    if missing:
        raise TypeError(f"{owner} declares no constraint for parameter(s) {missing}")
    for name, value in params.items():
        allowed = constraints[name]
        if any(_accepts(c, value) for c in allowed):
            continue
        described = [_describe(c) for c in allowed]
        what = described[0] if len(described) == 1 else ", ".join(described[:-1]) + " or " + described[-1]
        raise InvalidInputError(f"{owner}: {name} must be {what}, got {value!r}")


class ParamsMixin:
    """Gives an estimator ``_validate_params()``: checks ``get_params(deep=False)`` against the class's
    ``_parameter_constraints``. Put it before ``BaseEstimator`` in the bases so this validator is the one
    used (scikit-learn's own one expects its private constraint objects)."""

    _parameter_constraints: dict[str, list[Any]] = {}

    def _validate_params(self) -> None:
        params = self.get_params(deep=False)  # type: ignore[attr-defined]
        validate_params(type(self)._parameter_constraints, params, type(self).__name__)

    def set_params(self, **params: Any) -> Any:
        """scikit-learn's ``set_params``, with an :class:`~feedback_nlp.errors.InvalidInputError` (a ValueError,
        as scikit-learn raises) naming the problem: an unknown name (with the closest valid one), or a nested
        ``embedder__…`` key for a part that is not a scikit-learn estimator (was an AttributeError)."""
        import difflib

        name_of = type(self).__name__
        valid = self.get_params(deep=False)  # type: ignore[attr-defined]
        for key in params:
            name, nested, _ = key.partition("__")
            if name not in valid:
                close = difflib.get_close_matches(name, list(valid), n=1)
                hint = f" (did you mean {quoted(close[0])}?)" if close else ""
                raise InvalidInputError(f"{name_of} has no parameter {quoted(name)}{hint}; valid: "
                                        f"{', '.join(sorted(valid))}")
            if nested and not hasattr(valid[name], "set_params"):
                raise InvalidInputError(f"{key}: the {name} ({type(valid[name]).__name__}) has no parameters to set "
                                        f"this way; pass a new one instead, e.g. set_params({name}=...)")
        return super().set_params(**params)  # type: ignore[misc]
