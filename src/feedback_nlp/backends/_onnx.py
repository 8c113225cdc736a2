"""The ``onnx-int8`` backend: the sentence-transformers model exported with ``torch.onnx.export``, quantised
to int8 per channel with onnxruntime, cached on disk, run with the fast tokenizer and dynamic padding.

Per-channel quantisation matters: per-tensor int8 (onnxruntime's default) measured cosine 0.961 mean /
0.890 min to fp32 on real sentences — too lossy — against about 0.99 for per-channel.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import _config
from .._optional import require
from ..errors import InvalidInputError, ModelNotFoundError
from ._base import Backend, cpu_threads
from ._torch import _plain_mean_pooling

__all__ = ["OnnxInt8", "OnnxInt8Encoder", "export_int8", "onnx_cache_dir"]

log = logging.getLogger(__name__)


def onnx_cache_dir() -> Path:
    return _config.home() / "onnx"


def _max_seq_length(location: Path) -> int:
    cfg = location / "sentence_bert_config.json"
    if cfg.exists():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


def export_int8(location: Path, weights_hash: str) -> Path:
    """Export + quantise once; later calls return the cached file. Safe against concurrent writers."""
    target = onnx_cache_dir() / weights_hash / "model-int8-perchannel.onnx"
    if target.exists():
        return target
    try:  # before the slow imports: a FEEDBACK_NLP_HOME that cannot hold the export was a bare OSError
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot keep the onnx-int8 export under {target.parent} ({exc.strerror or exc}); "
                                "set FEEDBACK_NLP_HOME to a writable folder") from exc
    require("onnxruntime", "onnx", "the onnx-int8 backend")
    require("onnx", "onnx", "the onnx-int8 backend")
    import warnings

    import torch
    import transformers
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel

    transformers.utils.logging.disable_progress_bar()

    log.info("feedback_nlp: exporting %s to ONNX int8 (one time) -> %s", location, target)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(location), local_files_only=True)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1)

    model = Pooled().eval()
    dummy = torch.ones((2, 8), dtype=torch.long)
    fp32 = target.with_name(f"model-fp32-{os.getpid()}.onnx")
    axes = {0: "batch", 1: "seq"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about data-dependent branches in the HF model
        torch.onnx.export(model, (dummy, dummy, torch.zeros_like(dummy)), str(fp32),
                          input_names=["input_ids", "attention_mask", "token_type_ids"], output_names=["embedding"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                                        "embedding": {0: "batch"}},
                          opset_version=17, dynamo=False)
    tmp = target.with_name(f"{target.stem}-{os.getpid()}.tmp.onnx")
    # onnxruntime logs a "consider pre-processing" notice on the root logger; silence it for this call
    # only (setting the root level for good would hide every warning of the host application).
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    os.replace(tmp, target)
    fp32.unlink(missing_ok=True)
    return target


class OnnxInt8Encoder:
    """Tokenise with the model's fast tokenizer (dynamic padding) and run the int8 graph."""

    def __init__(self, location: Path, weights_hash: str) -> None:
        ort = require("onnxruntime", "onnx", "the onnx-int8 backend")
        from tokenizers import Tokenizer

        path = export_int8(location, weights_hash)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cpu_threads()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.max_seq_length = _max_seq_length(location)
        self.tokenizer = Tokenizer.from_file(str(location / "tokenizer.json"))
        # the bundled tokenizer.json pads and truncates to a fixed 128: reset to dynamic padding
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_seq_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        width = self.session.get_outputs()[0].shape[-1]
        self.dim = int(width) if isinstance(width, int) else int(self.encode(["dimension probe"]).shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
        return np.asarray(out[0], dtype=np.float32)


class OnnxInt8(Backend):
    """onnxruntime int8 (the ``[onnx]`` extra); needs a local model folder to export from."""

    name = "onnx-int8"

    def available(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))

    def load(self, location: Path | str, weights_hash: str, device: str = "cpu") -> OnnxInt8Encoder:
        if not Path(location).is_dir():
            raise ModelNotFoundError("the onnx-int8 backend needs a local model folder")
        if _plain_mean_pooling(Path(location)) is None:
            # the exported graph always mean-pools: a CLS-pooled or lower-casing model got other vectors than
            # torch's, without a word (only a calibration's fidelity gate would have seen it)
            raise InvalidInputError(f"the onnx-int8 backend runs Transformer -> mean pooling models only; {location} "
                                    "pools otherwise (or lower-cases its input): use backend='torch'")
        return OnnxInt8Encoder(Path(location), weights_hash)

