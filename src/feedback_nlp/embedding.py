"""Local sentence embeddings with a persistent cache and swappable CPU backends.

:class:`BaseEmbedder` is the small contract every component accepts (``encode``, ``model_id``, ``dim``);
:class:`Embedder` is the default implementation over sentence-transformers. Texts are cleaned (HTML, quoted
replies, PII) before they are embedded or cached, each distinct text is encoded once per call, and batches
are sorted by length so that padding is minimal. Texts longer than the model window are cut at the
window and counted (``long_text="truncate"``, the default) or split into overlapping windows whose vectors
are averaged (``"chunk"``).

Example:
    >>> emb = Embedder()                                  # doctest: +SKIP
    >>> emb.encode(["Export to CSV fails"]).shape          # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import logging
import numbers
import os
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import _config
from ._model import DEFAULT_MODEL_NAME, resolve_model, setup_hash, weights_hash
from .backends import BACKENDS, Encoder, get_backend, plan_batches, select_backend
from .cache import EmbeddingCache
from .cleaning import _SURROGATE, clean_text
from .errors import CacheError, InvalidInputError

__all__ = ["BACKENDS", "DEFAULT_MODEL_NAME", "BaseEmbedder", "Embedder", "resolve_model"]

log = logging.getLogger(__name__)

# Tokens two neighbouring windows of a long text share, so a sentence cut by a window edge is whole in one of
# them (1/8 of MiniLM's 254-token window: the cost is ~14% more windows).
_OVERLAP = 32


class BaseEmbedder(ABC):
    """What the rest of the library needs from an embedder.

    Subclasses set ``model_id`` (a string that changes whenever the vectors would change) and ``dim``,
    and implement :meth:`encode` returning L2-normalised float32 rows. A test double, a hosted API or an
    ONNX model plugs in anywhere an :class:`Embedder` is taken.
    """

    model_id: str
    dim: int

    @property
    def base_model_id(self) -> str:
        """The model identity without the numeric backend; saved tag models compare this."""
        return self.model_id.split(":", 1)[0]

    @abstractmethod
    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed ``texts`` into a float32 array of shape ``(n, dim)``."""

    def __call__(self, texts: Sequence[str] | str) -> np.ndarray:
        return self.encode(texts)


def _blank(text: str) -> bool:
    """Empty, or only whitespace, control and format (Cf) characters; printable text is decided at once."""
    if not text.strip():
        return True
    return not text.isprintable() and all(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def _refuse_empty(texts: Sequence[str]) -> None:
    """InvalidInputError naming the positions of texts that are empty or only whitespace: nothing to embed.

    Invisible format characters (zero-width spaces and joiners, a byte-order mark, direction marks) count as
    whitespace here: the default embedder's cleaning removes them and refuses what is left, and a custom
    embedder embedded "\u200b" as if it said something.

    >>> _refuse_empty(["export fails", "dark mode"])
    """
    empty = [i for i, t in enumerate(texts) if _blank(t)]
    if empty:
        raise InvalidInputError(f"empty text at positions {empty[:10]}"
                                + (f" (and {len(empty) - 10} more)" if len(empty) > 10 else "")
                                + "; remove or fill these rows before embedding")


def _check_device(device: Any) -> None:
    """A device torch can use here, checked now: an unavailable one failed later with torch's bare
    ``AssertionError: Torch not compiled with CUDA enabled``."""
    if not isinstance(device, str) or not device.strip():
        raise InvalidInputError(f"device must be a name such as 'cpu' or 'cuda', got {device!r}")
    if device == "cpu":
        return
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise InvalidInputError(f"device {device!r} is not a device name torch knows ('cpu', 'cuda', 'cuda:1', "
                                "'mps'…)") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())}
    if not available.get(kind, False):
        raise InvalidInputError(f"device {device!r} is not available on this machine (torch {torch.__version__} "
                                "sees no such accelerator); use device='cpu'")


def _as_text_list(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if hasattr(texts, "tolist") and not isinstance(texts, list):
        texts = texts.tolist()
    if isinstance(texts, str):  # a 0-d array
        return [texts]
    if isinstance(texts, (bytes, dict)) or not isinstance(texts, Iterable):  # 5, None, NaN: not a list of texts
        raise InvalidInputError(f"texts must be a string or a sequence of strings, got {type(texts).__name__}")
    if isinstance(texts, (set, frozenset)):  # no order the caller can match the vectors back to
        raise InvalidInputError(f"texts must be an ordered sequence of strings, got a {type(texts).__name__}: "
                                "its vectors could not be matched back to its texts; pass a list")
    if hasattr(texts, "columns"):  # list(DataFrame) is its column names, which would be embedded silently
        raise InvalidInputError("texts must be a sequence of strings, got a DataFrame: pass its text column, "
                                "e.g. df['text']")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidInputError(f"texts must be strings; positions {bad[:10]} hold "
                                f"{sorted({type(texts[i]).__name__ for i in bad})}")
    broken = [i for i, t in enumerate(texts) if not t.isascii() and _SURROGATE.search(t)]
    if broken:  # the tokenizer and the cache cannot encode them: say which rows, not a TypeError deep inside
        raise InvalidInputError(f"texts at positions {broken[:10]} hold lone surrogates (not valid Unicode; "
                                "bytes decoded with the wrong encoding?)")
    return texts


def _as_embeddings(embeddings: Any, n: int) -> np.ndarray:
    """Precomputed embeddings as a float32 ``(n, dim)`` array, or :class:`InvalidInputError` naming the problem:
    text or objects (a raw ValueError from numpy), the wrong shape, no dimensions, NaN or infinity (which gave
    duplicate scores of NaN without a word).

    >>> _as_embeddings([[1, 0], [0, 1]], 2).dtype
    dtype('float32')
    """
    try:
        emb = np.asarray(embeddings, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"embeddings must be numbers (a float array), not {type(embeddings).__name__} "
                                f"({str(exc)[:80]})") from None
    if emb.ndim != 2 or len(emb) != n or (n and emb.shape[1] == 0):
        raise InvalidInputError(f"embeddings must have shape ({n}, dim) with dim >= 1, got {emb.shape}")
    bad = np.flatnonzero(~np.isfinite(emb).all(axis=1))
    if len(bad):
        raise InvalidInputError(f"embeddings are not finite (NaN or inf) at rows {bad[:10].tolist()}")
    return emb


class Embedder(BaseEmbedder):
    """Sentence-transformers embeddings, offline, cached, cleaned and length-batched.

    Args:
        model: a local model folder or a model name in the local Hugging Face cache; ``None`` resolves
            env ``FEEDBACK_NLP_MODEL`` and then the bundled all-MiniLM-L6-v2 (see :func:`resolve_model`).
        cache: an :class:`EmbeddingCache`, a path to its SQLite file, ``True`` for the default path
            (env ``FEEDBACK_NLP_CACHE``), or ``None``/``False`` for no cache.
        batch_size: texts per forward pass; ``None`` (default) uses the backend's measured best (32 for
            ``torch``, ``torch-int8`` and ``onnx-int8``; 128 for ``torch-bf16``).
        normalize: L2-normalise the vectors (cosine similarity becomes a dot product).
        show_progress: show a progress bar over batches.
        backend: ``"auto"`` (default), ``"torch"``, ``"torch-bf16"``, ``"torch-int8"`` or ``"onnx-int8"``;
            env ``FEEDBACK_NLP_BACKEND`` sets the default. ``auto`` never measures: it uses a measurement
            stored by ``feedback-nlp backends``, else capability rules (see :mod:`feedback_nlp.backends`).
            The backend is part of :attr:`model_id`, so vectors of different backends never share cache entries.
        clean: apply :func:`~feedback_nlp.cleaning.clean_text` before embedding and caching.
        device: torch device (``"cpu"`` by default).
        max_batch_tokens: token budget of one batch (estimated from characters); long texts run in smaller
            batches so that peak memory does not depend on how long the longest feedback is.
        long_text: texts longer than the model window: ``"truncate"`` (default; env
            ``FEEDBACK_NLP_LONG_TEXT``) keeps the first window and logs how many texts were cut, ``"chunk"``
            embeds overlapping windows and averages them (measured: better where the end of a text matters,
            worse for tagging GitHub issues by type, whose title and first lines carry the label). Both
            count what they did in :attr:`long_text_counts`; the mode is part of :attr:`model_id`.

    Example:
        >>> emb = Embedder(cache="emb.sqlite")                       # doctest: +SKIP
        >>> v = emb.encode(["Dark mode please", "Add a dark theme"])  # doctest: +SKIP
        >>> float(v[0] @ v[1]) > 0.6                                 # doctest: +SKIP
        True
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        cache: EmbeddingCache | str | os.PathLike | bool | None = None,
        batch_size: int | None = None,
        normalize: bool = True,
        show_progress: bool = False,
        backend: str | None = None,
        clean: bool = True,
        device: str = "cpu",
        max_batch_tokens: int | None = None,
        long_text: str | None = None,
    ) -> None:
        for name, value in (("batch_size", batch_size), ("max_batch_tokens", max_batch_tokens)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
                raise InvalidInputError(f"{name} must be a whole number >= 1, got {value!r}")
        for name, flag in (("normalize", normalize), ("show_progress", show_progress), ("clean", clean)):
            if not isinstance(flag, (bool, np.bool_)):  # "no" or "false" would read as True
                raise InvalidInputError(f"{name} must be True or False, got {flag!r}")
        _check_device(device)
        if cache is not None and not isinstance(cache, (EmbeddingCache, str, os.PathLike, bool)):
            # cache=0 or cache=1 was kept as the cache itself and failed at the first encode (AttributeError)
            raise InvalidInputError(f"cache must be an EmbeddingCache, a path to its file, True (the default path) "
                                    f"or False/None (no cache), got {type(cache).__name__} {cache!r:.60}")
        self.name, self.location = resolve_model(model)
        self.weights_hash = weights_hash(self.location)
        self.backend = select_backend(backend, self.location, self.weights_hash)
        self._backend = get_backend(self.backend)
        self.long_text = _config.long_text(long_text)
        self.normalize = normalize
        self.show_progress = show_progress
        self.clean = clean
        self.device = device
        self.batch_size = batch_size if batch_size is not None else self._backend.default_batch
        self.max_batch_tokens = max_batch_tokens if max_batch_tokens is not None else _config.DEFAULTS.max_batch_tokens
        # the configuration hash keeps apart two folders of one set of weights that embed differently (another
        # max_seq_length, pooling or tokenizer); it stays out of base_model_id, which saved tag models compare.
        # A ':' in a folder name cut base_model_id before the weights hash: "run:1" and "run:2" compared equal.
        base = f"{self.name.replace(':', '_')}@{self.weights_hash}"
        self.model_id = (f"{base}:{self.backend}:cfg{setup_hash(self.location)}:{self.long_text}"
                         + ("" if normalize else ":raw"))
        if cache is True:
            cache = EmbeddingCache()
        elif isinstance(cache, (str, os.PathLike)):
            cache = EmbeddingCache(cache)
        self.cache: EmbeddingCache | None = None if cache is None or cache is False else cache
        #: texts longer than the model window this embedder has encoded: split ("chunked") or cut ("truncated")
        self.long_text_counts = {"chunked": 0, "truncated": 0}
        self._model: Encoder | None = None
        self._tokenizer: Any = None

    def __repr__(self) -> str:
        return f"Embedder(model_id={self.model_id!r}, cache={self.cache!r})"

    def __getstate__(self) -> dict[str, Any]:  # ship the recipe, not the weights: workers load their own copy
        state = self.__dict__.copy()
        state["_model"] = state["_tokenizer"] = None
        return state

    @property
    def model(self) -> Encoder:
        """The loaded model of the chosen backend, loaded on first use."""
        if self._model is None:
            self._model = self._backend.load(self.location, self.weights_hash, self.device)
        return self._model

    @property
    def dim(self) -> int:  # type: ignore[override]
        return int(self.model.dim)

    @property
    def window(self) -> int:
        """Content tokens per forward pass: the model's window less its two special tokens."""
        return int(self.model.max_seq_length) - 2

    @property
    def tokenizer(self) -> Any:
        """The model's fast tokenizer (``tokenizers.Tokenizer``), without padding or truncation."""
        if self._tokenizer is None:
            from ._model import local_folder

            path = local_folder(self.location) / "tokenizer.json"
            if path.exists():
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(path))
            else:
                from transformers import AutoTokenizer

                tok = AutoTokenizer.from_pretrained(str(self.location), local_files_only=True).backend_tokenizer
            tok.no_padding()
            tok.no_truncation()
            self._tokenizer = tok
        return self._tokenizer

    def _windows(self, text: str) -> list[str]:
        """``text`` as it is embedded: one piece when it fits the window, else overlapping windows (chunk)
        or the first window (truncate). Windows start and end on word boundaries."""
        window = self.window
        if len(text) <= window:  # every token covers at least one character: it fits
            return [text]
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        n = len(enc.ids)
        if n <= window:
            return [text]
        words, offsets = enc.word_ids, enc.offsets
        if self.long_text == "truncate":
            self.long_text_counts["truncated"] += 1
            return [text]  # the backend cuts at its window, as it always did
        self.long_text_counts["chunked"] += 1
        pieces, start = [], 0
        while start < n:
            end = min(start + window, n)
            while end < n and end - start > window // 2 and words[end] is not None and words[end] == words[end - 1]:
                end -= 1  # do not split a word between two windows
            pieces.append(text[offsets[start][0]:offsets[end - 1][1]])
            if end >= n:
                break
            nxt = max(end - _OVERLAP, start + 1)
            while nxt < end and words[nxt] is not None and words[nxt] == words[nxt - 1]:
                nxt += 1  # begin the next window on a word start
            start = nxt
        return pieces

    def _encode_pieces(self, pieces: list[str]) -> np.ndarray:
        order, bounds = plan_batches([len(p) for p in pieces], self.batch_size, self.max_batch_tokens)
        batches: Iterable[tuple[int, int]] = bounds
        if self.show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(bounds, desc="embedding", unit="batch")
        out = np.empty((len(pieces), self.dim), dtype=np.float32)
        for lo, hi in batches:
            idx = order[lo:hi]
            out[idx] = self.model.encode([pieces[i] for i in idx])
        return out

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        before = dict(self.long_text_counts)
        split = [self._windows(t) for t in texts]
        owner = np.repeat(np.arange(len(texts)), [len(s) for s in split])
        vectors = self._encode_pieces([p for s in split for p in s])
        if len(vectors) > len(texts):  # chunked: each text's vector is the mean of its window vectors
            if self.normalize:  # every window weighs the same, however its length came out
                vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            pooled = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            np.add.at(pooled, owner, vectors)
            vectors = pooled / np.bincount(owner, minlength=len(texts))[:, None].astype(np.float32)
        if self.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        cut = self.long_text_counts["truncated"] - before["truncated"]
        if cut:
            log.warning("feedback_nlp: %d of %d texts were longer than the model window (%d tokens) and were cut; "
                        "long_text='chunk' embeds all of their text", cut, len(texts), self.window)
        return vectors

    def prepare(self, texts: Sequence[str] | str) -> list[str]:
        """The texts as they will be embedded (cleaned unless ``clean=False``); empty ones raise."""
        texts = _as_text_list(texts)
        prepared = [clean_text(t) for t in texts] if self.clean else [t.strip() for t in texts]
        _refuse_empty(prepared)
        return prepared

    def encode(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed ``texts`` (a string or a sequence of strings) into float32 rows of shape ``(n, dim)``.

        Raises:
            InvalidInputError: a text is not a string or is empty after cleaning.
        """
        prepared = self.prepare(texts)
        if not prepared:
            return np.empty((0, self.dim), dtype=np.float32)
        unique = list(dict.fromkeys(prepared))
        vectors: dict[str, np.ndarray] = {}
        missing = unique
        if self.cache is not None:
            hits, miss_idx = self.cache.get(self.model_id, unique)
            vectors = {unique[i]: v for i, v in hits.items()}
            missing = [unique[i] for i in miss_idx]
        if missing:
            # batches are cut from texts sorted by length; among equal lengths the input order decided which texts
            # shared a batch, and a batch's shape moves float sums: the same backlog shuffled got vectors ~1e-7
            # apart, enough to change a theme clustering. Sorted, the same texts always form the same batches.
            missing = sorted(missing)
            new = self._encode_uncached(missing)
            if self.cache is not None:
                self.cache.put(self.model_id, missing, new)
            vectors.update(zip(missing, new))
        dims = {len(v) for v in vectors.values()}
        if len(dims) != 1:
            raise CacheError(f"cache returned vectors of sizes {sorted(dims)} for model {self.model_id}")
        return np.stack([vectors[t] for t in prepared]).astype(np.float32, copy=False)
