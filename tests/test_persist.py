"""Saved artefacts: a required manifest covers every file (config included); hostile manifests and folders
are refused with the file named, before anything outside the folder is touched."""

import json
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from conftest import HashEmbedder
from feedback_nlp import Deduper, IntegrityError, TagClassifier, ThemeModel
from feedback_nlp._persist import MANIFEST, read_config, verify_manifest, write_config
from feedback_nlp.tagging import bundled_models

TEXTS = ["export to csv fails", "csv export broken", "dark mode please", "add a dark theme", "invoice is wrong",
         "billing charged twice", "sso login broken", "cannot log in with sso"] * 4
LABELS = ["bug", "bug", "feature", "feature", "billing", "billing", "bug", "bug"] * 4


@pytest.fixture
def model_dir(tmp_path):
    clf = TagClassifier(HashEmbedder()).fit(TEXTS, LABELS)
    return clf.save(tmp_path / "model")


def _load(folder):
    return TagClassifier.load(folder, embedder=HashEmbedder())


def _manifest(folder):
    return json.loads((folder / MANIFEST).read_text())


def _write_manifest(folder, manifest):
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_manifest_covers_every_file_including_config_and_card(model_dir):
    files = _manifest(model_dir)["files"]
    on_disk = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    assert sorted([*files, MANIFEST]) == on_disk and {"config.json", "README.md", "weights.npz"} <= set(files)
    assert _load(model_dir).predict(["csv export fails"])[0] == "bug"


def test_config_tampering_is_refused_naming_the_file(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    config["temperature"] = 1000.0  # every confidence would silently become 1/n_classes
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match=r"config\.json does not match its checksum"):
        _load(model_dir)


def test_removing_the_checksums_or_the_manifest_is_refused(model_dir):
    manifest = _manifest(model_dir)
    del manifest["files"]["config.json"]
    _write_manifest(model_dir, manifest)
    with pytest.raises(IntegrityError, match="covering config.json"):
        _load(model_dir)
    _write_manifest(model_dir, {**manifest, "files": {}})
    with pytest.raises(IntegrityError):
        _load(model_dir)
    (model_dir / MANIFEST).unlink()
    with pytest.raises(IntegrityError, match="has no manifest.json"):
        _load(model_dir)


def test_replaced_weights_are_refused_even_with_the_config_edited_to_match(model_dir):
    other = TagClassifier(HashEmbedder()).fit(TEXTS, LABELS[::-1])
    other.save(model_dir.parent / "other")
    (model_dir / "weights.npz").write_bytes((model_dir.parent / "other" / "weights.npz").read_bytes())
    with pytest.raises(IntegrityError, match=r"weights\.npz does not match"):
        _load(model_dir)


@pytest.mark.parametrize("key", ["../../etc/passwd", "/etc/passwd", "/dev/zero", "sub/../../x", "./config.json",
                                 "a//b", "..\\..\\x", "C:/x", "", "\x00"])
def test_unsafe_manifest_keys_are_refused_before_any_file_is_opened(model_dir, key, monkeypatch):
    manifest = _manifest(model_dir)
    manifest["files"][key] = "0" * 64
    _write_manifest(model_dir, manifest)
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    with pytest.raises(IntegrityError, match="unsafe path"):
        verify_manifest(model_dir)
    assert opened == []  # not even the folder's own files: keys are checked first


def test_dev_zero_and_fifo_cannot_hang_a_load(model_dir):
    os.mkfifo(model_dir / "pipe")
    manifest = _manifest(model_dir)
    manifest["files"]["pipe"] = "0" * 64
    _write_manifest(model_dir, manifest)
    result = {}

    def load():
        try:
            _load(model_dir)
        except IntegrityError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=load, daemon=True)
    start = time.monotonic()
    t.start()
    t.join(20)
    assert not t.is_alive() and time.monotonic() - start < 20
    assert "not a regular file" in result["error"] and "pipe" in result["error"]


def test_symlinks_are_refused_even_to_identical_content(model_dir, tmp_path):
    outside = tmp_path / "outside.npz"
    outside.write_bytes((model_dir / "weights.npz").read_bytes())
    (model_dir / "weights.npz").unlink()
    (model_dir / "weights.npz").symlink_to(outside)
    with pytest.raises(IntegrityError, match=r"weights\.npz is a symbolic link"):
        _load(model_dir)


def test_a_symlinked_subfolder_is_refused(tmp_path):
    folder = tmp_path / "m"
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.bin").write_bytes(b"x")
    folder.mkdir()
    (folder / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(IntegrityError, match="symbolic link"):
        write_config(folder, "demo", ["sub/w.bin"])


def test_files_added_after_saving_are_refused(model_dir):
    (model_dir / "notes.py").write_text("import os; os.system('echo pwned')")
    with pytest.raises(IntegrityError, match=r"notes\.py is not covered by manifest.json"):
        _load(model_dir)


def test_a_missing_file_is_named(model_dir):
    (model_dir / "weights.npz").unlink()
    with pytest.raises(IntegrityError, match=r"weights\.npz is missing"):
        _load(model_dir)


def test_any_flipped_byte_in_any_file_is_refused_naming_it(model_dir):
    rng = np.random.default_rng(0)
    for path in sorted(p for p in model_dir.iterdir() if p.name != MANIFEST):
        data = bytearray(path.read_bytes())
        at = int(rng.integers(len(data)))
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(IntegrityError, match=rf"{path.name} does not match"):
            _load(model_dir)
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
    _load(model_dir)


def test_manifest_that_is_not_json_or_not_a_manifest(model_dir):
    (model_dir / MANIFEST).write_text("{oops")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        _load(model_dir)
    (model_dir / MANIFEST).write_text(json.dumps(["config.json"]))
    with pytest.raises(IntegrityError, match="not a feedback_nlp manifest"):
        _load(model_dir)


def test_theme_and_dedupe_artefacts_are_covered_and_store_redacted_text(tmp_path):
    emb = HashEmbedder()
    texts = [f"please call me at +44 20 7946 09{i:02d} about the csv export" for i in range(12)]
    records = pd.DataFrame({"id": [str(i) for i in range(12)], "text": texts})
    d = Deduper(emb, threshold=0.9).fit(records)
    d.save(tmp_path / "d")
    assert "7946" not in (tmp_path / "d" / "items.json").read_text()
    assert {"config.json", "items.json", "embeddings.npy"} <= set(_manifest(tmp_path / "d")["files"])
    Deduper.load(tmp_path / "d", embedder=emb)
    tm = ThemeModel(emb, min_theme_size=3).fit(texts * 3)
    tm.save(tmp_path / "t")
    assert "7946" not in (tmp_path / "t" / "items.json").read_text()
    cfg = json.loads((tmp_path / "t" / "config.json").read_text())
    cfg["assign_threshold_"] = -1.0
    (tmp_path / "t" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(IntegrityError, match="config.json"):
        ThemeModel.load(tmp_path / "t", embedder=emb)


def test_bundled_models_carry_a_valid_manifest():
    for name, folder in bundled_models().items():
        files = verify_manifest(folder)
        assert "config.json" in files, name
        assert read_config(folder, "feedback_nlp.TagClassifier")["format"] == "feedback_nlp.TagClassifier"
