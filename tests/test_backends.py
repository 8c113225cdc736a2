"""``auto`` picks the fastest backend that passes the fidelity gate, measured once per machine."""

import json

import numpy as np
import pytest

import feedback_nlp.backends as be
from feedback_nlp import Embedder, InvalidInputError
from feedback_nlp.backends import Calibration, CalibrationRow, calibrate_backends, choose


def row(name, rate, cos=1.0):
    return CalibrationRow(name, rate, cos, cos, 0.1, cos >= be.FIDELITY_GATE)


@pytest.mark.parametrize(("rows", "expected"), [
    ([row("torch", 500), row("torch-bf16", 1500, 0.9999), row("onnx-int8", 900, 0.992)], "torch-bf16"),  # AMX-like
    ([row("torch", 500), row("torch-bf16", 300, 0.9999), row("onnx-int8", 900, 0.992)], "onnx-int8"),   # no AMX
    ([row("torch", 500), row("onnx-int8", 2000, 0.95)], "torch"),      # fast but fails the fidelity gate
    ([row("torch", 500), row("onnx-int8", 540, 0.995)], "torch"),      # 8% faster is within noise: stay exact
    ([row("torch", 500)], "torch"),
])
def test_choice_is_fastest_that_passes_the_gate(rows, expected):
    assert choose(rows) == expected


@pytest.mark.parametrize(("amx", "vnni", "int8_engine", "expected"), [
    (True, True, True, "torch-bf16"), (False, True, True, "torch-int8"), (False, True, False, "torch"),
    (False, False, True, "torch")])
def test_rules_mode_follows_cpu_capability(monkeypatch, amx, vnni, int8_engine, expected):
    monkeypatch.delenv("FEEDBACK_NLP_BACKEND", raising=False)
    monkeypatch.setenv("FEEDBACK_NLP_AUTO", "rules")
    monkeypatch.setattr(be, "cpu_has_native_bf16", lambda: amx)
    monkeypatch.setattr(be, "cpu_has_int8_dot", lambda: vnni)
    monkeypatch.setattr(be, "_torch_int8_available", lambda: int8_engine)
    assert Embedder(cache=None).model_id.endswith(":" + expected)


@pytest.mark.parametrize("winner", ["torch-bf16", "torch-int8", "onnx-int8", "torch"])
def test_measured_choice_is_used_and_remembered(monkeypatch, tmp_path, winner):
    """Force the measurement each way; it runs once, later embedders read the stored result."""
    monkeypatch.delenv("FEEDBACK_NLP_BACKEND", raising=False)
    monkeypatch.setenv("FEEDBACK_NLP_AUTO", "measure")
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path))
    names = ("torch", "torch-bf16", "torch-int8", "onnx-int8")
    monkeypatch.setattr(be, "_candidates", lambda: list(names))
    calls = []

    def fake(location, save=False):
        calls.append(location)
        rates = {"torch": 500, "torch-bf16": 400, "torch-int8": 400, "onnx-int8": 400, winner: 1500}
        rows = [row(b, rates[b], 0.999) for b in names]
        return Calibration(choose(rows), rows, "k", 1.0)

    monkeypatch.setattr(be, "calibrate_backends", fake)
    assert Embedder(cache=None).backend == winner
    assert Embedder(cache=None).model_id.endswith(":" + winner)
    assert len(calls) == 1  # measured once, then read from backends.json
    stored = json.loads((tmp_path / "backends.json").read_text())
    assert [v["choice"] for v in stored.values()] == [winner]
    assert Embedder(cache=None, backend="torch").backend == "torch"  # explicit choice never measures
    assert len(calls) == 1


def test_bad_auto_mode_is_named(monkeypatch):
    monkeypatch.delenv("FEEDBACK_NLP_BACKEND", raising=False)
    monkeypatch.setenv("FEEDBACK_NLP_AUTO", "fastest")
    with pytest.raises(InvalidInputError, match="FEEDBACK_NLP_AUTO"):
        Embedder(cache=None)
    with pytest.raises(InvalidInputError, match="unknown backends"):
        calibrate_backends(candidates=["torch", "tpu"], save=False)


def test_real_calibration_measures_speed_and_fidelity(sample, tmp_path, monkeypatch):
    """End to end on real sentences: fp32 is the reference, int8 passes the gate, the store is written."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(tmp_path))
    texts = sample["text"].drop_duplicates().head(96).tolist()
    result = calibrate_backends(texts=texts, candidates=["onnx-int8", "torch-int8", "torch"], repeats=1)
    by = {r.backend: r for r in result.rows}
    assert list(by) == ["torch", "onnx-int8", "torch-int8"]  # the reference always runs first
    assert by["torch"].cos_mean == pytest.approx(1.0, abs=1e-5)
    for int8 in ("onnx-int8", "torch-int8"):
        assert by[int8].passed and 0.99 <= by[int8].cos_mean < 0.99999  # int8 is close, not identical
    assert all(r.sentences_s > 0 and np.isfinite(r.sentences_s) for r in result.rows)
    assert result.choice == choose(result.rows)
    stored = json.loads((tmp_path / "backends.json").read_text())
    assert stored[result.key]["choice"] == result.choice
    assert "measured" in result.summary() and "onnx-int8" in result.summary()


def test_unwritable_home_falls_back_to_rules(monkeypatch, tmp_path, caplog):
    monkeypatch.delenv("FEEDBACK_NLP_BACKEND", raising=False)
    monkeypatch.setenv("FEEDBACK_NLP_AUTO", "measure")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home folder should be")
    monkeypatch.setenv("FEEDBACK_NLP_HOME", str(blocker))
    monkeypatch.setattr(be, "_candidates", lambda: ["torch", "torch-int8"])
    monkeypatch.setattr(be, "calibrate_backends", lambda *a, **k: pytest.fail("must not measure without a store"))
    with caplog.at_level("WARNING", logger="feedback_nlp.backends"):
        backend = Embedder(cache=None).backend
    assert backend == be._rule_choice()[0]
    assert "FEEDBACK_NLP_HOME" in caplog.text
