"""Shared pieces of saving and loading: JSON configs with SHA-256 checksums, no pickle anywhere, and the
folder where feedback_nlp keeps what it derives on a machine (ONNX exports, backend measurements)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import _config
from .errors import IntegrityError, ModelMismatchError


def feedback_home() -> Path:
    """The per-machine folder (``FEEDBACK_NLP_HOME``); see :func:`feedback_nlp._config.home`."""
    return _config.home()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_config(folder: Path, fmt: str, files: Iterable[str], **fields: Any) -> dict[str, Any]:
    """Write ``config.json`` with the format name, the fields and the checksums of ``files``."""
    config = {"format": fmt, **fields, "checksums": {f: sha256_file(folder / f) for f in files}}
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return config


def read_config(folder: Path, fmt: str) -> dict[str, Any]:
    """Read ``config.json``, check the format name and every checksum (IntegrityError on any mismatch)."""
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(f"{folder} has no config.json: not a saved {fmt}") from None
    except json.JSONDecodeError as exc:
        raise IntegrityError(f"{folder / 'config.json'} is not valid JSON: {exc}") from exc
    if config.get("format") != fmt:
        raise IntegrityError(f"{folder} is not a saved {fmt}")
    for name, digest in config.get("checksums", {}).items():
        f = folder / name
        if not f.exists():
            raise IntegrityError(f"{f} is missing")
        if sha256_file(f) != digest:
            raise IntegrityError(f"{f} does not match its checksum: modified after saving")
    return config


def check_embedder(saved_model_id: str | None, embedder: Any, what: str) -> None:
    """Raise ModelMismatchError when ``embedder`` is not the embedding model ``what`` was built with."""
    if embedder is None or not saved_model_id:
        return
    saved = saved_model_id.split(":", 1)[0]
    if embedder.base_model_id != saved:
        raise ModelMismatchError(f"{what} was built on embeddings of {saved}, but the embedder is "
                                 f"{embedder.base_model_id}; pass the matching embedder")
