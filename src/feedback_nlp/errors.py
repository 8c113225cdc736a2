"""One small exception hierarchy: callers catch :class:`FeedbackNLPError` or a precise subclass."""

from __future__ import annotations

from collections.abc import Iterable

from sklearn.exceptions import NotFittedError as _SklearnNotFittedError

# errors imports nothing of the package at import time (it is the lowest layer: cleaning raises InputTypeError);
# quoted_cell imports the redactor when it runs


class FeedbackNLPError(Exception):
    """Base class of every error raised on purpose by feedback_nlp."""


class InvalidInputError(FeedbackNLPError, ValueError):
    """Input data is unusable: empty text, wrong types, out-of-range values, mismatched lengths."""


class InputTypeError(InvalidInputError, TypeError):
    """An argument is of the wrong type (``clean_text(None)``, ``redact_pii(b"...")``); the message names the
    argument, the type expected and the type received.

    Also a ``TypeError``, what Python raises for a wrong type, so code written to catch that catches it too."""


class UsageError(InvalidInputError):
    """The call itself is wrong: an option out of range, paths that collide, a file that is not there.

    The command line reports it as a usage error (exit code 2); other input problems exit with 1.
    """


class JobLockedError(FeedbackNLPError):
    """Another live run holds the lock of the same output (the message names its pid and host)."""


class ColumnError(InvalidInputError, KeyError):
    """A required column is missing, or a column holds values of the wrong kind."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""


class InputFileError(InvalidInputError):
    """A whole input file cannot be read: missing, a folder, empty without a header, truncated, corrupt,
    or in an undeclared encoding. The message names the file and the problem."""


class InputNotFoundError(InputFileError, FileNotFoundError):
    """An input file or export folder does not exist."""


class EncodingError(InputFileError):
    """A file's bytes are not valid in the encoding it was read with; the message names the first bad
    byte and its line, and suggests ``encoding=`` / ``--encoding``."""


class TaxonomyError(InvalidInputError):
    """The taxonomy is malformed (duplicate ids, unknown parent, cycle, empty name)."""


class UnknownTagError(InvalidInputError):
    """A label names a tag that is not in the taxonomy."""


class ModelNotFoundError(FeedbackNLPError, FileNotFoundError):
    """No embedding model or tag model could be found where it was looked for."""


class ModelMismatchError(FeedbackNLPError):
    """A saved model, cache or index was built with a different embedder than the one given."""


class CacheError(FeedbackNLPError):
    """The embedding cache file is corrupt, foreign or was written by an incompatible version."""


class IntegrityError(FeedbackNLPError):
    """A saved artefact fails its checksum: it was modified or truncated after saving."""


class NotFittedError(FeedbackNLPError, _SklearnNotFittedError):
    """A method that needs a fitted estimator was called before ``fit``.

    Also a ``sklearn.exceptions.NotFittedError`` (hence a ValueError and an AttributeError), so code written
    for scikit-learn estimators catches it too."""


class MissingDependencyError(FeedbackNLPError, ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


def quoted(value: object, limit: int = 80) -> str:
    """``repr`` of user data quoted in an error message, cut to ``limit`` characters: a cell, label or column
    name can hold megabytes, and one message must stay one readable line.

    >>> quoted("export fails"), quoted("x" * 200)[-4:]
    ("'export fails'", "xx…'")
    """
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def quoted_cell(value: object, limit: int = 80) -> str:
    """:func:`quoted` for a cell of the user's data: PII-redacted first, because error messages reach consoles,
    CI logs and tickets ("revenue ... (e.g. 'x jane@acme.io')" showed the address).

    >>> quoted_cell("paid by jane@acme.io")
    "'paid by <EMAIL>'"
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) > 4 * limit:  # cut at a space, so that the cut never splits an address the redactor then misses
        cut = text.rfind(" ", 0, 4 * limit)
        text = text[: cut if cut > 0 else 4 * limit]
    from .cleaning import redact_pii  # here, not at the top: cleaning imports errors

    return quoted(redact_pii(text), limit)


def quoted_list(values: object, limit: int = 20) -> str:
    """A list of user values (column names, labels) for an error message: each :func:`quoted`, at most ``limit``.

    >>> quoted_list(["id", "text"]), quoted_list(range(30), limit=2)
    ("['id', 'text']", "['0', '1', … 28 more]")
    """
    # one value (a str, None, a number) is a list of one: None was "'NoneType' object is not iterable" from the
    # message meant to explain the caller's mistake
    items = list(values) if isinstance(values, Iterable) and not isinstance(values, (str, bytes)) else [values]
    shown = ", ".join(quoted(v) for v in items[:limit])
    more = f", … {len(items) - limit} more" if len(items) > limit else ""
    return f"[{shown}{more}]"


__all__ = [
    "CacheError",
    "ColumnError",
    "EncodingError",
    "FeedbackNLPError",
    "InputFileError",
    "InputNotFoundError",
    "InputTypeError",
    "IntegrityError",
    "JobLockedError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFittedError",
    "TaxonomyError",
    "UnknownTagError",
    "UsageError",
]
