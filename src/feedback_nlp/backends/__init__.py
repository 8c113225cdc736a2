"""Numeric backends of the embedder, one small class each, and how ``auto`` picks one.

| backend | what |
|---|---|
| ``torch`` | fp32, everywhere (the reference) |
| ``torch-bf16`` | bf16; fast only with AMX tiles |
| ``torch-int8`` | PyTorch dynamic int8 Linear layers, per-channel weights |
| ``onnx-int8`` | onnxruntime int8 graph exported once per model (``[onnx]`` extra) |

A backend is a :class:`Backend` subclass (``available``, ``worth_measuring``, ``default_batch``, ``load``)
registered with :func:`register`; :class:`~feedback_nlp.Embedder` looks it up by name and never branches on it.

Example:
    >>> from feedback_nlp.backends import BACKENDS, get_backend
    >>> BACKENDS
    ('auto', 'torch', 'torch-bf16', 'torch-int8', 'onnx-int8')
    >>> get_backend("torch-bf16").default_batch
    128
"""

from __future__ import annotations

from ._auto import (
    BUSY_LIMIT,
    FIDELITY_GATE,
    MIN_SPEEDUP,
    NOISE_LIMIT,
    RETRIEVAL_GATE,
    Calibration,
    CalibrationRow,
    calibrate_backends,
    choose,
    rule_choice,
    select_backend,
    topk_agreement,
)
from ._base import Backend, Encoder, get_backend, plan_batches, register, registered
from ._cpu import cpu_has_bf16_instructions, cpu_has_int8_dot, cpu_has_native_bf16
from ._onnx import OnnxInt8
from ._torch import TorchBF16, TorchFP32, TorchInt8, quantize_int8

__all__ = ["BACKENDS", "BUSY_LIMIT", "FIDELITY_GATE", "MIN_SPEEDUP", "NOISE_LIMIT", "RETRIEVAL_GATE", "Backend", "Calibration",
           "CalibrationRow", "Encoder", "calibrate_backends", "choose", "cpu_has_bf16_instructions",
           "cpu_has_int8_dot", "cpu_has_native_bf16", "get_backend", "plan_batches", "quantize_int8", "register",
           "registered", "rule_choice", "select_backend", "topk_agreement"]

for _builtin in (TorchFP32(), TorchBF16(), TorchInt8(), OnnxInt8()):  # the order `feedback-nlp backends` shows
    register(_builtin)

BACKENDS: tuple[str, ...] = ("auto", *registered())
