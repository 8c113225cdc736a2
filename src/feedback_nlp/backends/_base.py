"""The contract of a numeric backend, and how texts are grouped into batches for any of them."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np

from ..errors import InvalidInputError

__all__ = ["Backend", "Encoder", "get_backend", "plan_batches", "register"]


class Encoder(Protocol):
    """A loaded model: turns a batch of texts into float32 rows (normalisation is the embedder's job)."""

    dim: int
    max_seq_length: int  # the model window in tokens, special tokens included

    def encode(self, texts: list[str]) -> np.ndarray: ...


class Backend(ABC):
    """One way of running the model's numbers: fp32, bf16, int8, ONNX.

    A backend says whether it can run here (:meth:`available`), whether it is worth timing on this CPU
    (:meth:`worth_measuring`), how many texts a batch holds by default, and loads an :class:`Encoder`.
    """

    name: ClassVar[str]
    default_batch: ClassVar[int] = 32

    def available(self) -> bool:
        """True when this install can run the backend at all."""
        return True

    def worth_measuring(self) -> bool:
        """True when it could beat fp32 on this CPU (``feedback-nlp backends`` times only these)."""
        return self.available()

    @abstractmethod
    def load(self, location: Path | str, weights_hash: str, device: str = "cpu") -> Encoder:
        """Load the model at ``location`` (a folder or a cached hub name) for this backend."""

    def __repr__(self) -> str:
        return f"<backend {self.name}>"


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Add ``backend`` under its name (a later registration with the same name replaces it)."""
    _REGISTRY[backend.name] = backend
    return backend


def registered() -> dict[str, Backend]:
    return dict(_REGISTRY)


def get_backend(name: str) -> Backend:
    """The backend called ``name``; :class:`InvalidInputError` naming the choices otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown backend {name!r}; choose one of {['auto', *_REGISTRY]}") from None


def plan_batches(lengths: list[int], batch_size: int, max_batch_tokens: int,
                 window: int = 512) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Order texts longest first and cut that order into batches of at most ``batch_size`` texts and about
    ``max_batch_tokens`` tokens (~4 characters a token), so that a tail of long texts runs in small batches
    and peak memory does not depend on the longest feedback. Returns ``(order, [(lo, hi), ...])``.

    >>> plan_batches([4, 4000, 40], batch_size=2, max_batch_tokens=500, window=256)[1]
    [(0, 1), (1, 3)]
    """
    order = np.argsort([-n for n in lengths], kind="stable")  # longest first: an OOM shows up at once
    bounds, start = [], 0
    while start < len(order):
        est_tokens = min(lengths[order[start]] // 4 + 2, window)
        size = max(1, min(batch_size, max_batch_tokens // est_tokens))
        bounds.append((start, min(start + size, len(order))))
        start += size
    return order, bounds


def cpu_threads() -> int:
    """The CPUs this process may use (a container's cpuset), not the host's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
