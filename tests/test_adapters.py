"""Fine-tuned tag models saved as LoRA adapters: small, bound to their base model's hash, identical on reload."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from feedback_nlp import Embedder
from feedback_nlp._adapters import Adapter, add_lora
from feedback_nlp._model import resolve_model, weight_file_digests
from feedback_nlp._persist import write_manifest
from feedback_nlp.errors import IntegrityError, ModelMismatchError
from feedback_nlp.tagging import TagClassifier

TEXTS = ["the app crashes on start", "please add dark mode", "crash when I open a file", "add an export button",
         "it freezes when I save", "I would love a calendar view", "error 500 on login", "support markdown please"]
LABELS = ["bug", "feature"] * 4
PROBE = ["it crashes every time", "add a button for that", "login fails with an error", "a dark theme would be nice"]


def _fit(head: str = "finetune", **kw) -> TagClassifier:
    settings = {"finetune_epochs": 1, "finetune_batch_size": 4, "finetune_max_seq_length": 16, "cv": 2, **kw}
    return TagClassifier(Embedder(backend="torch", cache=None), head=head, **settings).fit(TEXTS, LABELS)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One LoRA fine-tuned model, fitted once for the module: (classifier, its saved folder)."""
    clf = _fit()
    return clf, clf.save(tmp_path_factory.mktemp("adapter") / "model")


def _scratch_dirs() -> set[Path]:
    # this process's only (named after its pid): other test runs on the machine make and sweep their own
    return set(Path(tempfile.gettempdir()).glob(f"feedback_nlp_ft_{os.getpid()}_*"))


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


def test_round_trip_gives_identical_predictions(saved):
    clf, folder = saved
    loaded = TagClassifier.load(folder)
    assert np.array_equal(clf.predict_proba(PROBE).to_numpy(), loaded.predict_proba(PROBE).to_numpy())
    assert list(clf.predict(PROBE)) == list(loaded.predict(PROBE))
    # the merge is byte-identical, so the loaded encoder has the fitted one's id (and its cache entries)
    assert loaded.embedder_.model_id == clf.embedder_.model_id
    again = loaded.save(folder.parent / "resaved")  # a loaded adapter model saves as an adapter again
    assert (again / "adapter.npz").read_bytes() == (folder / "adapter.npz").read_bytes()


def test_saved_model_is_small_and_names_its_base(saved):
    _, folder = saved
    files = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    assert "encoder" not in {f.split("/")[0] for f in files}
    assert sum(files.values()) < 3_000_000, files  # a full encoder is ~90 MB
    meta = json.loads((folder / "config.json").read_text())["embedder"]["adapter"]
    assert meta["base_weights_sha256"] == weight_file_digests(resolve_model()[1])
    assert meta["rank"] == 8 and meta["parameters"] == 331_776  # rank 8 on the 36 linear layers of MiniLM-L6
    assert "LoRA adapter" in (folder / "README.md").read_text()


def test_lora_trains_only_the_low_rank_matrices(saved):
    clf, folder = saved
    base = Embedder(backend="torch", cache=None)
    # the fine-tuned encoder differs from the base: training changed something
    assert not np.allclose(base.encode(PROBE), clf.embedder_.encode(PROBE), atol=1e-4)
    from safetensors.numpy import load_file

    merged = load_file(str(Path(clf.embedder_.location) / "model.safetensors"))
    original = load_file(str(Path(resolve_model()[1]) / "model.safetensors"))
    changed = {k for k in original if not np.array_equal(original[k], merged[k])}
    assert changed and all(k.startswith("encoder.layer.") and k.endswith(".weight") for k in changed)
    assert not any("LayerNorm" in k or "embeddings" in k for k in changed)


def test_wrong_base_is_refused_naming_the_expected_hash(saved, tmp_path):
    _, folder = saved
    fake_base = tmp_path / "other-base"
    shutil.copytree(resolve_model()[1], fake_base)
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(fake_base / "model.safetensors"))
    weights["embeddings.LayerNorm.bias"] = weights["embeddings.LayerNorm.bias"] + 1e-3
    save_file(weights, str(fake_base / "model.safetensors"), metadata={"format": "pt"})
    expected = weight_file_digests(resolve_model()[1])["model.safetensors"]
    before = _scratch_dirs()
    with pytest.raises(ModelMismatchError) as err:
        TagClassifier.load(folder, embedder=Embedder(fake_base, backend="torch", cache=None))
    msg = str(err.value)
    assert expected in msg and str(fake_base) in msg and "all-MiniLM-L6-v2" in msg
    assert _scratch_dirs() == before  # a refused load leaves nothing behind


def test_missing_base_is_refused_with_where_it_looked(saved, tmp_path, monkeypatch):
    _, folder = saved
    expected = weight_file_digests(resolve_model()[1])["model.safetensors"]
    empty = tmp_path / "no-weights"
    shutil.copytree(resolve_model()[1], empty, ignore=shutil.ignore_patterns("model.safetensors"))
    monkeypatch.setenv("FEEDBACK_NLP_MODEL", str(empty))
    with pytest.raises(ModelMismatchError) as err:
        TagClassifier.load(folder)
    msg = str(err.value)
    assert "no base weights were found" in msg and str(empty) in msg and expected in msg


def test_recorded_base_hash_is_checked(saved, tmp_path):
    """A config whose base hash was edited (and the manifest rewritten to match) still does not load over the
    real base: the hash in the config is what the base is checked against."""
    _, folder = saved
    forged = _copy(folder, tmp_path / "forged")
    config = json.loads((forged / "config.json").read_text())
    config["embedder"]["adapter"]["base_weights_sha256"]["model.safetensors"] = "0" * 64
    (forged / "config.json").write_text(json.dumps(config))
    write_manifest(forged)
    with pytest.raises(ModelMismatchError, match="0{64}"):
        TagClassifier.load(forged)


def test_tampered_adapter_is_refused_by_the_manifest(saved, tmp_path):
    _, folder = saved
    bad = _copy(folder, tmp_path / "tampered")
    with np.load(bad / "adapter.npz") as data:
        arrays = {k: data[k] for k in data.files}
    key = sorted(arrays)[0]
    arrays[key] = arrays[key] * 2
    np.savez(bad / "adapter.npz", **arrays)
    with pytest.raises(IntegrityError, match="adapter.npz"):
        TagClassifier.load(bad)
    (bad / "adapter.npz").unlink()
    with pytest.raises(IntegrityError, match="adapter.npz"):
        TagClassifier.load(bad)


@pytest.mark.parametrize("edit", ["drop_b", "wrong_rank", "pickle", "nan", "strings"])
def test_malformed_adapter_arrays_are_refused(saved, tmp_path, edit):
    """Even with a matching manifest (a hostile folder rewrites it), the arrays must form LoRA pairs."""
    _, folder = saved
    bad = _copy(folder, tmp_path / edit)
    with np.load(bad / "adapter.npz") as data:
        arrays = {k: data[k] for k in data.files}
    b_key = next(k for k in sorted(arrays) if k.endswith(".lora_B"))
    if edit == "drop_b":
        del arrays[b_key]
        np.savez(bad / "adapter.npz", **arrays)
    elif edit == "wrong_rank":
        arrays[b_key] = arrays[b_key][:, :3]
        np.savez(bad / "adapter.npz", **arrays)
    elif edit == "nan":
        arrays[b_key] = np.full_like(arrays[b_key], np.nan)
        np.savez(bad / "adapter.npz", **arrays)
    elif edit == "strings":
        arrays[b_key] = np.full(arrays[b_key].shape, "x")
        np.savez(bad / "adapter.npz", **arrays)
    else:
        np.savez(bad / "adapter.npz", **arrays, evil=np.array([object()], dtype=object))
    write_manifest(bad)
    with pytest.raises(IntegrityError):
        TagClassifier.load(bad)


def test_loaded_adapter_keeps_the_given_embedders_settings(saved, tmp_path):
    clf, folder = saved
    base = Embedder(backend="torch", cache=tmp_path / "cache.sqlite", batch_size=7)
    loaded = TagClassifier.load(folder, embedder=base)
    assert loaded.embedder_ is not base and loaded.embedder_.cache is base.cache
    assert loaded.embedder_.batch_size == 7
    assert np.array_equal(loaded.predict_proba(PROBE).to_numpy(), clf.predict_proba(PROBE).to_numpy())


def test_loaded_adapter_scratch_goes_with_the_classifier(saved):
    import gc

    _, folder = saved
    before = _scratch_dirs()
    loaded = TagClassifier.load(folder)
    assert len(_scratch_dirs() - before) == 1
    del loaded
    gc.collect()
    assert _scratch_dirs() == before


def test_full_finetuning_is_still_available(tmp_path):
    clf = _fit(adapter=None)
    folder = clf.save(tmp_path / "full")
    assert (folder / "encoder" / "model.safetensors").is_file() and not (folder / "adapter.npz").exists()
    loaded = TagClassifier.load(folder)
    assert np.allclose(clf.predict_proba(PROBE).to_numpy(), loaded.predict_proba(PROBE).to_numpy(), atol=1e-6)
    assert "adapter" not in json.loads((folder / "config.json").read_text())["embedder"]


def test_saving_over_a_full_model_removes_its_encoder(saved, tmp_path):
    clf, _ = saved
    folder = _fit(adapter=None).save(tmp_path / "m")
    clf.save(folder)  # the adapter model replaces the full one in the same folder
    assert not (folder / "encoder").exists() and (folder / "adapter.npz").is_file()
    assert np.array_equal(TagClassifier.load(folder).predict_proba(PROBE).to_numpy(),
                          clf.predict_proba(PROBE).to_numpy())


def test_adapter_merge_is_the_lora_formula():
    import torch

    layer = torch.nn.Linear(5, 3)
    holder = torch.nn.Module()
    holder.encoder = torch.nn.Module()
    holder.encoder.layer = torch.nn.ModuleList([torch.nn.Module()])
    holder.encoder.layer[0].dense = layer
    wrapped = add_lora(holder, rank=2, alpha=4.0, seed=0)
    w = wrapped["encoder.layer.0.dense"]
    with torch.no_grad():
        w.lora_B.normal_()
    x = torch.randn(4, 5)
    a = Adapter(rank=2, alpha=4.0, base_name="t", base_weights={"model.safetensors": "0" * 64},
                tensors={"m.lora_A": w.lora_A.detach().numpy(), "m.lora_B": w.lora_B.detach().numpy()})
    merged = layer.weight.detach().numpy() + a.delta("m")
    expected = x.numpy() @ merged.T + layer.bias.detach().numpy()
    assert np.allclose(w(x).detach().numpy(), expected, atol=1e-5)
    assert not layer.weight.requires_grad and w.lora_A.requires_grad and w.lora_B.requires_grad


def test_cli_and_batch_tag_with_an_adapter_model(saved, tmp_path, capsys):
    import pandas as pd

    from feedback_nlp import tag_file
    from feedback_nlp.cli import main

    clf, folder = saved
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(PROBE))], "text": PROBE}).to_csv(src, index=False)
    expected = list(clf.predict(PROBE))
    assert main(["tag", "--model", str(folder), "--in", str(src), "--out", str(tmp_path / "cli.csv")]) == 0
    assert pd.read_csv(tmp_path / "cli.csv")["tags"].tolist() == expected
    tag_file(folder, src, tmp_path / "batch.csv")
    assert pd.read_csv(tmp_path / "batch.csv")["tags"].tolist() == expected


def test_cli_names_the_base_it_needs(saved, tmp_path, monkeypatch, capsys):
    from feedback_nlp.cli import main

    folder = _copy(saved[1], tmp_path / "model")  # a path no earlier test loaded (batch keeps loaded models)
    expected = weight_file_digests(resolve_model()[1])["model.safetensors"]
    empty = tmp_path / "elsewhere"
    shutil.copytree(resolve_model()[1], empty, ignore=shutil.ignore_patterns("model.safetensors"))
    monkeypatch.setenv("FEEDBACK_NLP_MODEL", str(empty))
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,it crashes\n")
    code = main(["tag", "--model", str(folder), "--in", str(src), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code != 0 and expected in err and str(empty) in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize("field,value", [("rank", 0), ("file", "../../outside.npz"), ("max_seq_length", True),
                                         ("base_weights_sha256", {})])
def test_hostile_adapter_config_is_refused(saved, tmp_path, field, value):
    _, folder = saved
    bad = _copy(folder, tmp_path / "hostile")
    np.savez(tmp_path / "outside.npz", x=np.zeros(1))  # must never be read
    config = json.loads((bad / "config.json").read_text())
    config["embedder"]["adapter"][field] = value
    (bad / "config.json").write_text(json.dumps(config))
    write_manifest(bad)
    if field == "file":  # the name in the config is ignored: adapter.npz is read, and it is intact
        assert np.array_equal(TagClassifier.load(bad).predict(PROBE), saved[0].predict(PROBE))
        return
    with pytest.raises(IntegrityError):
        TagClassifier.load(bad)


def test_unknown_adapter_kind_is_refused(saved, tmp_path):
    _, folder = saved
    bad = _copy(folder, tmp_path / "peft")
    config = json.loads((bad / "config.json").read_text())
    config["embedder"]["adapter"]["method"] = "prefix-tuning"
    (bad / "config.json").write_text(json.dumps(config))
    write_manifest(bad)
    with pytest.raises(IntegrityError, match="unknown adapter"):
        TagClassifier.load(bad)


def test_adapter_keeps_its_training_window(saved):
    clf, folder = saved
    meta = json.loads((folder / "config.json").read_text())["embedder"]["adapter"]
    assert meta["max_seq_length"] == 16  # the fixture trains with finetune_max_seq_length=16
    loaded = TagClassifier.load(folder)
    settings = json.loads((Path(loaded.embedder_.location) / "sentence_bert_config.json").read_text())
    assert settings["max_seq_length"] == 16 and loaded.embedder_.window == clf.embedder_.window


def test_base_without_safetensors_is_refused_before_training(tmp_path):
    from feedback_nlp.errors import InvalidInputError

    base = tmp_path / "bin-only"
    shutil.copytree(resolve_model()[1], base, ignore=shutil.ignore_patterns("model.safetensors"))
    (base / "pytorch_model.bin").write_bytes(b"not loaded: refused before training")
    with pytest.raises(InvalidInputError, match="adapter=None"):
        TagClassifier(Embedder(base, backend="torch", cache=None), head="finetune").fit(TEXTS, LABELS)


def test_bundled_models_stay_small():
    from feedback_nlp.tagging import bundled_models

    for name, folder in bundled_models().items():
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert sum(p.stat().st_size for p in files) < 5_000_000, name  # an encoder would be ~90 MB
        assert not (folder / "encoder").exists(), name
