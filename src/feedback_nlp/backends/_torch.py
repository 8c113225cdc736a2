"""The PyTorch backends: ``torch`` (fp32), ``torch-bf16`` and ``torch-int8``, all through sentence-transformers.

``torch-int8`` quantises the model's Linear layers to int8 with PyTorch's dynamic quantisation (fbgemm):
per-channel symmetric weights, activations quantised per batch at run time. PyTorch's dynamic Linear
hard-codes ``reduce_range=True`` (7-bit activations), which protects CPUs without VNNI from 16-bit
saturation in ``vpmaddubsw`` but costs fidelity: measured cosine to fp32 0.967 mean. With VNNI the int8 dot
products accumulate in 32 bits, so the full 8-bit range is safe there and measured 0.991 — as close as
onnxruntime's int8, and faster, because attention, softmax and layer norm stay in PyTorch's fused kernels.
No export, no extra dependency; quantising at load takes under a second.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError, ModelNotFoundError
from ._base import Backend
from ._cpu import cpu_has_int8_dot, cpu_has_native_bf16

__all__ = ["SentenceTransformerEncoder", "TorchBF16", "TorchFP32", "TorchInt8", "quantize_int8"]


class SentenceTransformerEncoder:
    """A sentence-transformers model behind the :class:`~feedback_nlp.backends.Encoder` contract."""

    def __init__(self, model: Any) -> None:
        self.model = model
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.max_seq_length = int(model.max_seq_length or 512)  # a model without a stated window: BERT's 512

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            vec = self.model.encode(texts, batch_size=len(texts), convert_to_tensor=True,
                                    show_progress_bar=False, normalize_embeddings=False)
        return vec.float().cpu().numpy()


_MEAN_POOLING = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
                 "pooling_mode_mean_sqrt_len_tokens": False}


def _plain_mean_pooling(folder: Path) -> tuple[int, bool] | None:
    """``(max_seq_length, normalize)`` when the folder is a Transformer → mean Pooling (→ Normalize) model
    (all-MiniLM and most sentence encoders), else ``None``: such a model runs on transformers alone."""
    try:
        modules = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads((folder / "modules.json").read_text())]
        pooling_dir = json.loads((folder / "modules.json").read_text())[1].get("path", "1_Pooling")
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
        sbert = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, IndexError, AttributeError):
        return None
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return None
    if any(bool(pooling.get(k, False)) != v for k, v in _MEAN_POOLING.items()) or sbert.get("do_lower_case"):
        return None
    if any(k.startswith("pooling_mode_") and k not in _MEAN_POOLING and v for k, v in pooling.items()):
        return None
    return _checked_window(folder, sbert.get("max_seq_length")), modules[-1] == "Normalize"


def _checked_window(folder: Path, value: Any) -> int:
    """``max_seq_length`` of ``sentence_bert_config.json`` as a window: a whole number >= 1 (unset or 0: BERT's
    512), at most the model's ``max_position_embeddings``. "abc" was a bare ValueError and -5 an OverflowError
    deep in the tokenizer, checked before the model loads."""
    if value is None or value == 0:
        return 512
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{folder / 'sentence_bert_config.json'}: max_seq_length must be a whole number "
                                f">= 1, got {value!r}")
    try:
        positions = json.loads((folder / "config.json").read_text()).get("max_position_embeddings")
    except (OSError, ValueError, AttributeError):
        positions = None
    if isinstance(positions, int) and not isinstance(positions, bool) and value > positions > 0:
        # was a RuntimeError ("size of tensor a (1502) must match ... (512)") at the first long text
        raise InvalidInputError(f"{folder / 'sentence_bert_config.json'}: max_seq_length {value} is more than the "
                                f"model's {positions} positions; set it to {positions} at most (long_text='chunk' "
                                "embeds the rest of a long text)")
    return value


class MeanPoolingEncoder:
    """Transformer → mean pooling (→ normalise) with transformers alone, as sentence-transformers computes it.

    Why: importing sentence-transformers took 4.1 s of a first call (``benchmarks/first_call.py``); this path
    needs only transformers, and its vectors match sentence-transformers' (cosine 1.0, a test checks it).
    """

    def __init__(self, folder: Path, max_seq_length: int, normalize: bool, device: str = "cpu", **kwargs: Any) -> None:
        import transformers
        from transformers import AutoModel, AutoTokenizer

        transformers.utils.logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(folder), local_files_only=True, **kwargs).to(device).eval()
        except OSError as exc:
            raise ModelNotFoundError(f"could not load embedding model {folder!s}: {exc}") from exc
        self.device, self.normalize = device, normalize
        self.max_seq_length = max_seq_length
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, padding=True, truncation="longest_first", max_length=self.max_seq_length,
                             return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**enc)[0]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


def load_encoder(location: Path | str, device: str = "cpu", **kwargs: Any) -> Any:
    """The lightest encoder for the model: :class:`MeanPoolingEncoder` for plain mean-pooling models in a local
    folder, else the sentence-transformers model behind :class:`SentenceTransformerEncoder`."""
    folder = Path(location)
    kwargs = _from_pretrained_kwargs(kwargs)
    plain = _plain_mean_pooling(folder) if folder.is_dir() else None
    if plain is not None:
        return MeanPoolingEncoder(folder, *plain, device=device, **kwargs)
    st_kwargs = {"model_kwargs": kwargs} if kwargs else {}
    return SentenceTransformerEncoder(load_sentence_transformer(location, device, **st_kwargs))


def _from_pretrained_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``from_pretrained`` keywords for the installed transformers: 4.56 renamed ``torch_dtype`` to ``dtype``
    (5.x dropped the old name), and before 4.56 ``dtype`` reached the model's constructor, a TypeError."""
    if "dtype" not in kwargs:
        return kwargs
    import transformers

    major, minor = (int(p) if p.isdigit() else 0 for p in transformers.__version__.split(".")[:2])
    if (major, minor) >= (4, 56):
        return kwargs
    renamed = {k: v for k, v in kwargs.items() if k != "dtype"}
    renamed["torch_dtype"] = kwargs["dtype"]
    return renamed


def load_sentence_transformer(location: Path | str, device: str = "cpu", **kwargs: Any) -> Any:
    """Load from the local folder or local Hugging Face cache only (``local_files_only``: never the network)."""
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar in services
    try:
        model = SentenceTransformer(str(location), device=device, local_files_only=True, **kwargs)
    except OSError as exc:
        raise ModelNotFoundError(f"could not load embedding model {location!s}: {exc}") from exc
    return model.eval()


class TorchFP32(Backend):
    """Exact fp32, everywhere: the reference every other backend is measured against."""

    name = "torch"

    def load(self, location: Path | str, weights_hash: str, device: str = "cpu") -> Any:
        return load_encoder(location, device)


class TorchBF16(Backend):
    """bf16 weights and activations: ~3x fp32 with AMX tiles, 0.6x with AVX512-BF16 alone (measured)."""

    name = "torch-bf16"
    default_batch = 128  # AMX tiles fill better with more rows

    def worth_measuring(self) -> bool:
        # Only with AMX: on AVX512-BF16 alone it ran at 0.6x fp32 idle, yet 2.4x under heavy contention,
        # so a measurement there could only ever store it by mistake.
        return cpu_has_native_bf16()

    def load(self, location: Path | str, weights_hash: str, device: str = "cpu") -> Any:
        import torch

        return load_encoder(location, device, dtype=torch.bfloat16)


class TorchInt8(Backend):
    """Dynamic int8 Linear layers (per-channel weights); full 8-bit activations on VNNI CPUs."""

    name = "torch-int8"

    def available(self) -> bool:
        import torch

        return any(e in torch.backends.quantized.supported_engines for e in ("fbgemm", "x86"))

    def load(self, location: Path | str, weights_hash: str, device: str = "cpu") -> Any:
        encoder = load_encoder(location, device)
        full_range = cpu_has_int8_dot()
        if not full_range:
            # without VNNI, 8-bit activations can overflow PyTorch's 16-bit sums: the 7-bit range is the safe one,
            # and it moves the vectors (cosine to fp32 0.974 mean on an AVX2-only AMD EPYC) for ~1.5x speed
            warnings.warn("torch-int8 on a CPU without VNNI quantises activations to 7 bits: vectors move "
                          "(cosine to fp32 ~0.97 mean, below the 0.99 gate of `feedback-nlp backends`); "
                          "backend='onnx-int8' keeps 0.99 here, backend='torch' is exact", UserWarning, stacklevel=2)
        encoder.model = quantize_int8(encoder.model, full_range=full_range, inplace=True)
        return encoder


def quantize_int8(model: Any, full_range: bool, inplace: bool = False) -> Any:
    """Quantise every ``nn.Linear`` of ``model`` to dynamic int8; returns the quantised model (a copy unless
    ``inplace``: in place, the fp32 weights are freed instead of held beside the int8 ones)."""
    import torch
    from torch.ao.nn.quantized import dynamic as nnqd
    from torch.ao.quantization import PerChannelMinMaxObserver, PlaceholderObserver, QConfig, quantize_dynamic

    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "x86", "qnnpack") if e in engines), None)
    if engine is None:
        raise MissingDependencyError(f"this PyTorch build has no int8 engine (supported: {engines}); use backend='torch'")
    torch.backends.quantized.engine = engine
    qconfig = QConfig(
        activation=PlaceholderObserver.with_args(dtype=torch.quint8, quant_min=0, quant_max=255, is_dynamic=True),
        weight=PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                                  quant_min=-127, quant_max=127),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's notice about moving to torchao
        quantized = quantize_dynamic(model, {torch.nn.Linear: qconfig}, dtype=torch.qint8, inplace=inplace)
    if full_range:
        for module in quantized.modules():
            if type(module) is nnqd.Linear and module._packed_params.dtype == torch.qint8:
                module.__class__ = _full_range_linear()
    return quantized


def _full_range_linear() -> type:
    """Dynamic int8 Linear with 8-bit activations (safe with VNNI's 32-bit accumulation); built lazily so
    that importing the backends does not import torch."""
    global _FULL_RANGE
    if _FULL_RANGE is None:
        import torch
        from torch.ao.nn.quantized import dynamic as nnqd

        class FullRangeLinear(nnqd.Linear):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False)
                return y.to(x.dtype)

        _FULL_RANGE = FullRangeLinear
    return _FULL_RANGE


_FULL_RANGE: type | None = None
