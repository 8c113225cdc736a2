"""feedback_nlp: embed, tag, dedupe, theme and score customer feedback locally.

The public API lives here; modules are organised one concept each (``embedding``, ``cleaning``,
``records``, ``taxonomy``, ``tagging``, ``dedupe``, ``themes``, ``scoring``, ``batch``, ``cli``).

Example:
    >>> import feedback_nlp as fb                                  # doctest: +SKIP
    >>> records, rejected = fb.read_feedback("tickets.csv")        # doctest: +SKIP
    >>> vectors = fb.Embedder(cache=True).encode(records["text"])  # doctest: +SKIP
"""

from .cache import EmbeddingCache
from .cleaning import clean_text, redact_pii
from .dedupe import Deduper, calibrate_threshold
from .embedding import BaseEmbedder, Embedder
from .errors import (
    CacheError,
    ColumnError,
    EncodingError,
    FeedbackNLPError,
    InputFileError,
    InputNotFoundError,
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
from .scoring import ice, moscow, rice, theme_scores
from .tagging import TagClassifier
from .taxonomy import Tag, Taxonomy
from .themes import ThemeModel

__version__ = "0.1.0"

__all__ = [
    "BaseEmbedder",
    "Deduper",
    "EvaluationReport",
    "Tag",
    "TagClassifier",
    "Taxonomy",
    "ThemeModel",
    "calibrate_threshold",
    "ice",
    "moscow",
    "rice",
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
    "read_feedback",
    "redact_pii",
]
