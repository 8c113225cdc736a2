"""feedback_nlp: embed, tag, dedupe, theme and score customer feedback locally.

The public API lives here; modules are organised one concept each (``embedding``, ``cleaning``,
``records``, ``taxonomy``, ``tagging``, ``dedupe``, ``themes``, ``scoring``, ``batch``, ``cli``).

Example:
    >>> import feedback_nlp as fb                                  # doctest: +SKIP
    >>> records, rejected = fb.read_feedback("tickets.csv")        # doctest: +SKIP
    >>> vectors = fb.Embedder(cache=True).encode(records["text"])  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from .backends import calibrate_backends
from .batch import tag_file
from .cache import EmbeddingCache
from .cleaning import clean_text, redact_pii
from .dask import tag_dataframe, tag_dataframe_schema
from .datasets import load_sample
from .dedupe import Deduper, calibrate_threshold
from .embedding import BaseEmbedder, Embedder
from .errors import (
    CacheError,
    ColumnError,
    EncodingError,
    FeedbackNLPError,
    InputFileError,
    InputNotFoundError,
    InputTypeError,
    IntegrityError,
    InvalidInputError,
    MissingDependencyError,
    ModelMismatchError,
    ModelNotFoundError,
    NotFittedError,
    TaxonomyError,
    UnknownTagError,
)
from .evaluation import EvaluationReport
from .records import FeedbackData, read_feedback
from .report import build_report
from .scoring import demand_scores, ice, moscow, rice, theme_scores
from .tagging import TagClassifier
from .taxonomy import Tag, Taxonomy
from .themes import ThemeModel

try:
    __version__ = _version("feedback-nlp")  # one source of truth: the installed package's metadata
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = [
    "BaseEmbedder",
    "Deduper",
    "EvaluationReport",
    "Tag",
    "TagClassifier",
    "Taxonomy",
    "ThemeModel",
    "build_report",
    "calibrate_backends",
    "calibrate_threshold",
    "demand_scores",
    "ice",
    "moscow",
    "rice",
    "tag_file",
    "tag_dataframe",
    "tag_dataframe_schema",
    "theme_scores",
    "CacheError",
    "ColumnError",
    "Embedder",
    "EmbeddingCache",
    "FeedbackData",
    "EncodingError",
    "FeedbackNLPError",
    "InputFileError",
    "InputNotFoundError",
    "InputTypeError",
    "IntegrityError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelMismatchError",
    "ModelNotFoundError",
    "NotFittedError",
    "TaxonomyError",
    "UnknownTagError",
    "__version__",
    "clean_text",
    "load_sample",
    "read_feedback",
    "redact_pii",
]
