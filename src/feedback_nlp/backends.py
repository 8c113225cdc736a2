"""Which numeric backend embeds fastest on this machine, measured rather than guessed.

``Embedder(backend="auto")`` (the default) asks :func:`select_backend`. Capability rules alone pick wrongly
on real CPUs: measured on a 2-core Xeon with AVX512-BF16 but no AMX, torch bf16 ran at 0.6× fp32, while on
an AMX Xeon it ran at 3×. So ``auto`` measures, once per machine and model: each candidate backend embeds
the same 256 sample sentences, candidates whose mean cosine to torch fp32 is below 0.99 are rejected, and
the fastest remaining one wins (fp32 unless another is at least 10% faster, so that timing noise does not
trade exactness for nothing). The result is written to ``$FEEDBACK_NLP_HOME/backends.json`` keyed by CPU,
thread count, library versions and model weights, so later processes read it in microseconds.

``FEEDBACK_NLP_AUTO=rules`` skips the measurement and uses the capability rules (AMX → bf16; VNNI →
torch int8; else fp32).

Example:
    >>> from feedback_nlp.backends import calibrate_backends
    >>> result = calibrate_backends()                 # doctest: +SKIP
    >>> result.choice, [r.backend for r in result.rows]  # doctest: +SKIP
    ('torch-int8', ['torch', 'torch-bf16', 'torch-int8', 'onnx-int8'])
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ._persist import feedback_home
from .errors import InvalidInputError

__all__ = ["BACKENDS", "Calibration", "CalibrationRow", "calibrate_backends", "cpu_has_bf16_instructions",
           "cpu_has_int8_dot", "cpu_has_native_bf16", "select_backend"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "torch-bf16", "torch-int8", "onnx-int8")
FIDELITY_GATE = 0.99  # mean cosine to torch fp32 (issue 7)
MIN_SPEEDUP = 1.10  # leave exact fp32 only for a measured gain larger than timing noise
_CALIBRATION_VERSION = 3  # bump when what is measured changes (batch sizes, texts)
_N_TEXTS = 256


@functools.cache
def _cpuinfo_field(name: str) -> str:
    """The first ``name : value`` line of /proc/cpuinfo ('' elsewhere); the CPU does not change mid-run."""
    if platform.system() != "Linux":
        return ""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="ignore")
    except OSError:
        return ""
    line = next((ln for ln in text.splitlines() if ln.startswith(name)), "")
    return line.split(":", 1)[-1].strip()


def _cpu_flags() -> str:
    return " " + _cpuinfo_field("flags") + " "


def _cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_has_native_bf16() -> bool:
    """True when the CPU exposes AMX bf16 tiles (the only bf16 path measured faster than fp32)."""
    return " amx_bf16 " in _cpu_flags()


def cpu_has_bf16_instructions() -> bool:
    """True when the CPU has any bf16 arithmetic (AVX512-BF16 or AMX): bf16 is then worth measuring."""
    flags = _cpu_flags()
    return " avx512_bf16 " in flags or " amx_bf16 " in flags


def cpu_has_int8_dot() -> bool:
    """True when the CPU has VNNI int8 dot products (AVX512-VNNI or AVX-VNNI)."""
    flags = _cpu_flags()
    return " avx512_vnni " in flags or " avx_vnni " in flags


def _onnx_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def _torch_int8_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return False
    return any(e in torch.backends.quantized.supported_engines for e in ("fbgemm", "x86"))


def _rule_choice() -> tuple[str, str]:
    if cpu_has_native_bf16():
        return "torch-bf16", "AMX bf16"
    if cpu_has_int8_dot() and _torch_int8_available():
        return "torch-int8", "VNNI int8"
    return "torch", "no fast low-precision path"


def _candidates() -> list[str]:
    """Backends worth timing here; the rest cannot win (no bf16 instructions, no onnxruntime)."""
    out = ["torch"]
    if cpu_has_bf16_instructions():
        out.append("torch-bf16")
    if _torch_int8_available():
        out.append("torch-int8")  # without VNNI it runs 7-bit activations: the fidelity gate decides
    if _onnx_available():
        out.append("onnx-int8")
    return out


@dataclasses.dataclass(frozen=True)
class CalibrationRow:
    """One backend's measurement: sentences per second and cosine to torch fp32 on the same texts."""

    backend: str
    sentences_s: float
    cos_mean: float
    cos_min: float
    load_s: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_backends` measured and which backend it chose."""

    choice: str
    rows: list[CalibrationRow]
    key: str
    seconds: float

    def to_dict(self) -> dict:
        return {"choice": self.choice, "key": self.key, "seconds": self.seconds,
                "rows": [dataclasses.asdict(r) for r in self.rows], "version": _CALIBRATION_VERSION}

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        return cls(choice=data["choice"], key=data["key"], seconds=float(data["seconds"]),
                   rows=[CalibrationRow(**r) for r in data["rows"]])

    def summary(self) -> str:
        parts = [f"{r.backend} {r.sentences_s:.0f}/s cos {r.cos_mean:.4f}" + ("" if r.passed else " (fails gate)")
                 for r in self.rows]
        return f"chose {self.choice}; measured " + ", ".join(parts)


def choose(rows: Sequence[CalibrationRow]) -> str:
    """The fastest backend that passed the fidelity gate; fp32 unless another is >= 10% faster."""
    by_name = {r.backend: r for r in rows}
    if "torch" not in by_name:
        raise InvalidInputError("a calibration needs the torch fp32 reference row")
    best = max((r for r in rows if r.passed), key=lambda r: r.sentences_s)
    if best.backend != "torch" and best.sentences_s < MIN_SPEEDUP * by_name["torch"].sentences_s:
        return "torch"
    return best.backend


def _threads() -> int:
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return os.cpu_count() or 1


def machine_key(weights_hash: str) -> str:
    """What the measurement depends on: CPU, threads, library versions, model weights."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for pkg in ("torch", "onnxruntime", "sentence-transformers"):
        try:
            versions.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            versions.append(f"{pkg}=none")
    raw = "|".join([_cpu_model(), _cpu_flags().strip(), f"threads={_threads()}", *versions, weights_hash,
                    f"v{_CALIBRATION_VERSION}"])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise calibrations across processes (Dask workers starting together) where flock exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: concurrent runs just measure twice
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_store(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(path: Path, key: str, result: Calibration) -> dict:
    """Add ``result`` under ``key`` to the store at ``path`` (call under :func:`_locked`); returns the record."""
    data = _read_store(path)
    data[key] = record = result.to_dict()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return record


def _calibration_texts(n: int = _N_TEXTS) -> list[str]:
    from .datasets import load_sample

    texts = load_sample()["text"].drop_duplicates()
    return texts.sample(min(n, len(texts)), random_state=0).tolist()


def _measure(location: str | os.PathLike, backend: str, texts: list[str], repeats: int) -> tuple[np.ndarray, float, float]:
    from .embedding import Embedder

    t = time.perf_counter()
    emb = Embedder(location, backend=backend, cache=None)
    emb.encode(texts[:32])  # load, export (first time) and warm up
    load_s = time.perf_counter() - t
    best = float("inf")
    vectors = np.empty(0)
    for _ in range(repeats):
        t = time.perf_counter()
        vectors = emb.encode(texts)
        best = min(best, time.perf_counter() - t)
    return vectors, len(texts) / best, load_s


def calibrate_backends(model: str | os.PathLike | None = None, *, texts: Sequence[str] | None = None,
                       candidates: Sequence[str] | None = None, repeats: int = 2,
                       save: bool = True) -> Calibration:
    """Time every candidate backend on the same texts, gate on fidelity, and pick the fastest.

    Args:
        model: the embedding model (as for :class:`~feedback_nlp.Embedder`); default the bundled one.
        texts: sentences to time on; default 256 from the bundled sample.
        candidates: backends to try; default those this CPU and install can run (torch always first).
        repeats: timed passes per backend (the best is kept: the others saw noise, not the backend).
        save: store the result in ``$FEEDBACK_NLP_HOME/backends.json`` for :func:`select_backend`.
    """
    from .embedding import _weights_hash, resolve_model

    _, location = resolve_model(model)
    candidates = list(candidates or _candidates())
    unknown = [c for c in candidates if c not in BACKENDS or c == "auto"]
    if unknown:
        raise InvalidInputError(f"unknown backends {unknown}; choose from {BACKENDS[1:]}")
    if candidates[0] != "torch":
        candidates = ["torch"] + [c for c in candidates if c != "torch"]
    texts = list(texts) if texts is not None else _calibration_texts()
    start = time.perf_counter()
    rows, reference = [], None
    for backend in candidates:
        try:
            vectors, rate, load_s = _measure(location, backend, texts, repeats)
        except Exception as exc:  # a backend that cannot run here simply loses
            log.warning("feedback_nlp: backend %s failed during calibration: %s", backend, exc)
            continue
        if reference is None:
            reference = vectors
        cos = (vectors * reference).sum(axis=1)
        rows.append(CalibrationRow(backend, float(rate), float(cos.mean()), float(cos.min()), float(load_s),
                                   bool(cos.mean() >= FIDELITY_GATE)))
    result = Calibration(choose(rows), rows, machine_key(_weights_hash(location)), time.perf_counter() - start)
    if save:
        path = feedback_home() / "backends.json"
        with _locked(path.with_suffix(".lock")):
            _store(path, result.key, result)
    return result


def select_backend(requested: str, location: str | os.PathLike | None = None, weights_hash: str | None = None) -> str:
    """Resolve ``requested`` to a concrete backend; ``auto`` reads or runs the per-machine calibration.

    Without a local model folder (a hub name) or with ``FEEDBACK_NLP_AUTO=rules``, ``auto`` falls back to
    the capability rules.
    """
    if requested not in BACKENDS:
        raise InvalidInputError(f"unknown backend {requested!r}; choose one of {BACKENDS}")
    if requested != "auto":
        return requested
    mode = os.environ.get("FEEDBACK_NLP_AUTO", "measure").lower()
    if mode not in {"measure", "rules"}:
        raise InvalidInputError(f"FEEDBACK_NLP_AUTO must be 'measure' or 'rules', not {mode!r}")
    if mode == "rules" or location is None or weights_hash is None or not Path(location).is_dir():
        choice, why = _rule_choice()
        log.info("feedback_nlp: backend 'auto' chose %s by capability (%s)", choice, why)
        return choice
    if _candidates() == ["torch"]:
        return "torch"  # nothing to compare against
    key = machine_key(weights_hash)
    path = feedback_home() / "backends.json"
    stored = _read_store(path).get(key)
    if stored is None:
        try:
            with _locked(path.with_suffix(".lock")):
                stored = _read_store(path).get(key)  # another process may have measured while we waited
                if stored is None:
                    log.info("feedback_nlp: measuring embedding backends on this machine (once; "
                             "FEEDBACK_NLP_AUTO=rules skips)")
                    result = calibrate_backends(location, save=False)
                    stored = _store(path, key, result)
        except OSError as exc:  # a read-only home: measuring in every process would be worse than the rules
            choice, why = _rule_choice()
            log.warning("feedback_nlp: cannot store the backend measurement under %s (%s); 'auto' chose %s by "
                        "capability (%s). Set FEEDBACK_NLP_HOME to a writable folder.", path.parent, exc, choice, why)
            return choice
    calibration = Calibration.from_dict(stored)
    log.info("feedback_nlp: backend 'auto' %s", calibration.summary())
    return calibration.choice
