"""How ``backend="auto"`` picks a backend: capability rules, or a measurement stored earlier.

``Embedder()`` never times anything. ``auto`` reads the measurement that ``feedback-nlp backends`` (or
:func:`calibrate_backends`) stored for this machine, model and library versions in
``$FEEDBACK_NLP_HOME/backends.json``; without one it uses the capability rules: AMX bf16 tiles →
``torch-bf16`` (measured ~3x fp32, cosine 0.9999), otherwise exact ``torch`` fp32. The rules never pick
int8: its speed-up is real (~1.7x) but it moves nearest neighbours, which costs duplicate recall, so int8
is used only where a measurement on this machine showed it passes both fidelity gates.

The measurement embeds sample sentences with every backend worth trying here and keeps a backend only if

- its mean cosine to torch fp32 is at least :data:`FIDELITY_GATE` (0.99), and
- its top-5 neighbours agree with fp32's on at least :data:`RETRIEVAL_GATE` (0.98) of the neighbours
  (duplicate search and themes read neighbours, not single vectors);

then times every backend in interleaved rounds (each round runs each backend once, so a burst of load
from another process hits all of them alike) and compares each with fp32 *within* a round. A backend wins
only if it is at least 10% faster than fp32 in every round. When the rounds disagree too much to tell
(a noisy machine), or when the process got less than :data:`BUSY_LIMIT` of its CPUs while timing (a busy
machine, whose rounds can agree and still mislead), nothing is stored and the message says so. bf16 is only
tried where AMX exists: without it, it ran at 0.6x fp32 on the idle machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import statistics
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _config
from .._model import resolve_model, weights_hash
from ..errors import InvalidInputError
from . import _cpu
from ._base import Encoder, cpu_threads, get_backend, plan_batches, registered

__all__ = ["BUSY_LIMIT", "FIDELITY_GATE", "MIN_SPEEDUP", "NOISE_LIMIT", "RETRIEVAL_GATE", "Calibration", "CalibrationRow",
           "calibrate_backends", "choose", "rule_choice", "select_backend", "topk_agreement"]

log = logging.getLogger(__name__)

FIDELITY_GATE = 0.99  # mean cosine to torch fp32 (issue 7)
# Mean share of fp32's top-5 neighbours a backend must find too (issue 15). Measured on 512 sample sentences:
# bf16 0.997, torch-int8 0.936, onnx-int8 0.942; int8's 6% of moved neighbours cost 1.3 points of duplicate
# recall@5 on a held-out set (0.840 vs fp32's 0.853), so the gate allows at most 2% of them to move.
RETRIEVAL_GATE = 0.98
TOP_K = 5
MIN_SPEEDUP = 1.10  # leave exact fp32 only for a gain larger than timing noise, in every round
NOISE_LIMIT = 0.25  # a backend's speed ratio to fp32 varying more than 25% across rounds: too noisy to tell
# Share of its CPUs the process must get while timing. Under steady contention the rounds agree with each
# other and still mislead: with ~9 runnable processes per core here, bf16 timed 2.4x fp32 in every round,
# while on the idle machine it runs at 0.6x. Too little CPU time per wall second is how a busy machine shows.
BUSY_LIMIT = 0.75
MIN_ROUNDS = 3
_CALIBRATION_VERSION = 4  # bump when what is measured or how it is decided changes
_N_TEXTS = 512  # fidelity and neighbours on 512 sentences; speed on the first 256
_N_TIMED = 256


def rule_choice() -> tuple[str, str]:
    """``(backend, reason)`` from CPU capability alone (no measurement)."""
    if _cpu.cpu_has_native_bf16():
        return "torch-bf16", "AMX bf16 tiles"
    return "torch", "no measurement stored; fp32 is exact (run `feedback-nlp backends` to measure faster ones)"


@dataclasses.dataclass(frozen=True)
class CalibrationRow:
    """One backend's measurement: speed (median of the rounds), its spread, and fidelity to torch fp32."""

    backend: str
    sentences_s: float
    speedup: float  # median over rounds of (fp32 time / this backend's time) in the same round
    speedup_min: float
    speedup_max: float
    cos_mean: float
    cos_min: float
    topk_agreement: float
    load_s: float
    passed: bool


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_backends` measured, which backend ``auto`` uses, and whether it was stored."""

    choice: str
    rows: list[CalibrationRow]
    key: str
    seconds: float
    decided: bool = True  # False: the machine was too noisy or busy to tell; nothing was stored
    note: str = ""
    cpu_share: float = 1.0  # CPU seconds per wall second per thread while timing (1.0: nothing competed)

    def to_dict(self) -> dict[str, Any]:
        return {"choice": self.choice, "key": self.key, "seconds": self.seconds, "decided": self.decided,
                "note": self.note, "cpu_share": self.cpu_share, "rows": [dataclasses.asdict(r) for r in self.rows],
                "version": _CALIBRATION_VERSION}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(choice=data["choice"], key=data["key"], seconds=float(data["seconds"]),
                   rows=[CalibrationRow(**r) for r in data["rows"]], decided=bool(data.get("decided", True)),
                   note=str(data.get("note", "")), cpu_share=float(data.get("cpu_share", 1.0)))

    def summary(self) -> str:
        parts = [f"{r.backend} {r.sentences_s:.0f}/s ({r.speedup_min:.2f}-{r.speedup_max:.2f}x fp32) "
                 f"cos {r.cos_mean:.4f} top{TOP_K} {r.topk_agreement:.3f}" + ("" if r.passed else " (fails gate)")
                 for r in self.rows]
        head = f"chose {self.choice}" if self.decided else f"stored nothing ({self.note}); auto uses {self.choice}"
        return f"{head}; measured " + ", ".join(parts)


def topk_agreement(reference: np.ndarray, other: np.ndarray, k: int = TOP_K) -> float:
    """Mean share of each row's ``k`` nearest neighbours (cosine, self excluded) under ``reference`` that
    ``other`` finds too.

    >>> x = np.eye(4, dtype=np.float32) + 0.1
    >>> topk_agreement(x, x, k=2)
    1.0
    """
    k = min(k, len(reference) - 1)
    if k < 1:
        return 1.0

    def neighbours(v: np.ndarray) -> np.ndarray:
        sims = v @ v.T
        np.fill_diagonal(sims, -np.inf)
        return np.argpartition(-sims, k - 1, axis=1)[:, :k]

    a, b = neighbours(reference), neighbours(other)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a.tolist(), b.tolist())]))


def choose(rows: Sequence[CalibrationRow]) -> tuple[str, bool, str]:
    """``(backend, decided, note)``: the backend faster than fp32 by at least 10% in every round, among those
    passing both gates (the largest median speed-up); fp32 when none is; undecided when a passing backend's
    rounds disagree by more than :data:`NOISE_LIMIT` around the 10% line."""
    if not any(r.backend == "torch" for r in rows):
        raise InvalidInputError("a calibration needs the torch fp32 reference row")
    noisy = [r for r in rows if r.backend != "torch" and r.passed and r.speedup_min < MIN_SPEEDUP <= r.speedup_max
             and r.speedup_max / max(r.speedup_min, 1e-9) - 1 > NOISE_LIMIT]
    if noisy:
        detail = ", ".join(f"{r.backend} ran {r.speedup_min:.2f}-{r.speedup_max:.2f}x fp32" for r in noisy)
        return rule_choice()[0], False, f"machine too noisy to tell: {detail} across rounds; rerun when it is idle"
    winners = [r for r in rows if r.backend != "torch" and r.passed and r.speedup_min >= MIN_SPEEDUP]
    if not winners:
        return "torch", True, "no backend passing the gates was 10% faster than fp32 in every round"
    best = max(winners, key=lambda r: r.speedup)
    return best.backend, True, f"{best.backend} ran {best.speedup_min:.2f}-{best.speedup_max:.2f}x fp32"


def machine_key(weights: str) -> str:
    """What the measurement depends on: CPU, threads, library versions, model weights."""
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for pkg in ("torch", "onnxruntime", "sentence-transformers"):
        try:
            versions.append(f"{pkg}={version(pkg)}")
        except PackageNotFoundError:
            versions.append(f"{pkg}=none")
    raw = "|".join([_cpu.cpu_model(), _cpu.cpu_flags().strip(), f"threads={_torch_threads()}", *versions, weights,
                    f"v{_CALIBRATION_VERSION}"])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _torch_threads() -> int:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return cpu_threads()
    return int(torch.get_num_threads())


def store_path() -> Path:
    return _config.home() / "backends.json"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers of the store across processes where flock exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: concurrent writers may each write once
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_store(path: Path | None = None) -> dict[str, Any]:
    try:
        data = json.loads((path or store_path()).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store(result: Calibration) -> None:
    path = store_path()
    try:
        with _locked(path.with_suffix(".lock")):
            data = read_store(path)
            data[result.key] = result.to_dict()
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, path)
    except OSError as exc:
        raise InvalidInputError(f"cannot store the backend measurement under {path.parent} ({exc}); set "
                                "FEEDBACK_NLP_HOME to a writable folder") from exc


def _calibration_texts(n: int = _N_TEXTS) -> list[str]:
    from ..cleaning import clean_text
    from ..datasets import load_sample

    texts = load_sample()["text"].map(clean_text).drop_duplicates()
    return texts.sample(min(n, len(texts)), random_state=0).tolist()


def embed_with(encoder: Encoder, texts: list[str], batch_size: int, max_batch_tokens: int | None = None) -> np.ndarray:
    """Embed ``texts`` with a loaded encoder the way :class:`~feedback_nlp.Embedder` batches them, normalised."""
    order, bounds = plan_batches([len(t) for t in texts], batch_size, max_batch_tokens or _config.DEFAULTS.max_batch_tokens)
    out = np.empty((len(texts), encoder.dim), dtype=np.float32)
    for lo, hi in bounds:
        idx = order[lo:hi]
        out[idx] = encoder.encode([texts[i] for i in idx])
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def calibrate_backends(model: str | os.PathLike | None = None, *, texts: Sequence[str] | None = None,
                       candidates: Sequence[str] | None = None, repeats: int = 5,
                       save: bool = True) -> Calibration:
    """Measure every candidate backend's fidelity and speed here, and store ``auto``'s choice.

    Args:
        model: the embedding model (as for :class:`~feedback_nlp.Embedder`); default the bundled one.
        texts: sentences to measure on; default 512 from the bundled sample (speed on the first 256).
        candidates: backends to try; default those worth trying on this CPU and install (fp32 always).
        repeats: timing rounds (at least 3 for a stored decision; each round times every backend once).
        save: store the result in ``$FEEDBACK_NLP_HOME/backends.json`` when it is decided.

    Example:
        >>> result = calibrate_backends(candidates=["torch", "torch-int8"], save=False)  # doctest: +SKIP
        >>> result.choice, result.decided                                               # doctest: +SKIP
        ('torch', True)
    """
    _, location = resolve_model(model)
    weights = weights_hash(location)
    names = list(candidates) if candidates is not None else [n for n, b in registered().items() if b.worth_measuring()]
    for name in names:
        if name == "auto":
            raise InvalidInputError("unknown backends ['auto']: calibrate concrete backends")
        try:
            get_backend(name)
        except InvalidInputError:
            raise InvalidInputError(f"unknown backends {[n for n in names if n not in registered()]}; "
                                    f"choose from {list(registered())}") from None
    names = ["torch"] + [n for n in dict.fromkeys(names) if n != "torch"]
    if repeats < 1:
        raise InvalidInputError(f"repeats must be >= 1, got {repeats}")
    texts = list(texts) if texts is not None else _calibration_texts()
    if len(texts) < 2:
        raise InvalidInputError("calibration needs at least 2 texts")
    timed = texts[:_N_TIMED]
    start = time.perf_counter()
    encoders: dict[str, Encoder] = {}
    vectors: dict[str, np.ndarray] = {}
    load_s: dict[str, float] = {}
    for name in names:
        t = time.perf_counter()
        try:
            with warnings.catch_warnings():  # the measurement below says how far its vectors move
                warnings.filterwarnings("ignore", message="torch-int8 on a CPU without VNNI")
                encoders[name] = get_backend(name).load(location, weights)
            vectors[name] = embed_with(encoders[name], texts, get_backend(name).default_batch)
        except Exception as exc:  # a backend that cannot run here simply loses
            if name == "torch":
                raise
            log.warning("feedback_nlp: backend %s failed during calibration: %s", name, exc)
            encoders.pop(name, None)
            continue
        load_s[name] = time.perf_counter() - t
    times: dict[str, list[float]] = {name: [] for name in encoders}
    shares: list[float] = []
    threads = max(1, min(_torch_threads(), cpu_threads()))
    order = list(encoders)
    for r in range(repeats):
        for name in order[r % len(order):] + order[:r % len(order)]:  # rotate: no backend always runs first
            cpu, t = time.process_time(), time.perf_counter()
            embed_with(encoders[name], timed, get_backend(name).default_batch)
            times[name].append(time.perf_counter() - t)
            shares.append((time.process_time() - cpu) / max(times[name][-1] * threads, 1e-9))
    reference = vectors["torch"]
    rows = []
    for name in encoders:
        ratios = [a / b for a, b in zip(times["torch"], times[name])]
        cos = (vectors[name] * reference).sum(axis=1)
        agree = topk_agreement(reference, vectors[name])
        rows.append(CalibrationRow(name, len(timed) / statistics.median(times[name]), statistics.median(ratios),
                                   min(ratios), max(ratios), float(cos.mean()), float(cos.min()), agree,
                                   load_s[name], bool(cos.mean() >= FIDELITY_GATE and agree >= RETRIEVAL_GATE)))
    choice, decided, note = choose(rows)
    share = statistics.median(shares)
    if decided and len(rows) > 1 and share < BUSY_LIMIT:
        choice, decided, note = rule_choice()[0], False, (
            f"machine too busy to tell: this process got {share:.0%} of its {threads} CPU(s) while timing "
            "(other processes compete for them); rerun when it is idle")
    if decided and repeats < MIN_ROUNDS and len(rows) > 1:
        choice, decided, note = rule_choice()[0], False, f"{repeats} timing round(s) cannot show noise; use >= {MIN_ROUNDS}"
    result = Calibration(choice, rows, machine_key(weights), time.perf_counter() - start, decided, note, share)
    if save and decided:
        _store(result)
    return result


def select_backend(requested: str | None, location: str | os.PathLike | None = None,
                   weights: str | None = None) -> str:
    """Resolve ``requested`` (argument > ``FEEDBACK_NLP_BACKEND`` > ``auto``) to a concrete backend name.

    ``auto`` reads the measurement stored for this machine and model, else applies the capability rules
    (and always the rules with ``FEEDBACK_NLP_AUTO=rules``). It never measures.
    """
    name = _config.backend(requested)
    if name != "auto":
        return get_backend(name).name
    if _config.auto_mode() == "measured" and weights is not None:
        store = read_store()  # no store (a fresh home): skip the key, which imports torch to count its threads
        stored = store.get(machine_key(weights)) if store else None
        if stored and stored.get("decided", True) and stored.get("choice") in registered():
            log.info("feedback_nlp: backend 'auto' uses the stored measurement: %s", stored.get("note", ""))
            return str(stored["choice"])
    choice, why = rule_choice()
    log.info("feedback_nlp: backend 'auto' chose %s by capability (%s)", choice, why)
    return choice
