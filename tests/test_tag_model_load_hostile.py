"""TagClassifier.load and tag on hostile inputs: folders edited with their checksums recomputed, wrong types."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from feedback_nlp._persist import write_manifest
from feedback_nlp.errors import IntegrityError, InvalidInputError
from feedback_nlp.tagging import TagClassifier

TEXTS = ["crash now", "crash again", "it crashes", "add dark mode", "add export", "add a button"]
LABELS = ["bug", "bug", "bug", "feature", "feature", "feature"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, hash_embedder_module):
    clf = TagClassifier(hash_embedder_module, cv=2).fit(TEXTS, LABELS)
    return clf.save(tmp_path_factory.mktemp("tag") / "model")


@pytest.fixture(scope="module")
def hash_embedder_module():
    from conftest import HashEmbedder

    return HashEmbedder()


def _edited(saved, tmp_path, *, config=None, arrays=None, drop=()):
    """A copy of the saved folder with config keys or weight arrays replaced, and the manifest recomputed."""
    folder = tmp_path / "edited"
    shutil.copytree(saved, folder)
    c = json.loads((folder / "config.json").read_text())
    for key, value in (config or {}).items():
        target = c
        *path, last = key.split(".")
        for p in path:
            target = target[p]
        target[last] = value
    for key in drop:
        c.pop(key)
    (folder / "config.json").write_text(json.dumps(c))
    if arrays is not None:
        with np.load(folder / "weights.npz") as data:
            w = {k: data[k] for k in data.files}
        for key, value in arrays.items():
            if value is None:
                w.pop(key)
            else:
                w[key] = value
        np.savez(folder / "weights.npz", **w)
    write_manifest(folder)
    return folder


@pytest.mark.parametrize("change", [
    {"arrays": {"coef_": np.zeros((3, 5), dtype=np.float32)}},           # wrong shape
    {"arrays": {"coef_": None}},                                           # missing array
    {"arrays": {"classes_": None}},
    {"arrays": {"intercept_": np.array([np.nan, 0.0], dtype=np.float32)}},  # not finite
    {"config": {"temperature": "hot"}},
    {"config": {"temperature": -1.0}},
    {"config": {"params.min_confidence": 7}},                              # would send every item to review
    {"config": {"params.head": "magic"}},
    {"config": {"embedder.dim": "wide"}},
    {"drop": ("embedder",)},
    {"drop": ("params",)},
])
def test_edited_folder_with_recomputed_checksums_is_one_integrity_error(saved, tmp_path, change,
                                                                        hash_embedder_module):
    folder = _edited(saved, tmp_path, **change)
    with pytest.raises(IntegrityError, match="holds files that pass manifest.json but not what a save writes"):
        TagClassifier.load(folder, embedder=hash_embedder_module)


def test_untouched_folder_still_loads(saved, tmp_path, hash_embedder_module):
    folder = _edited(saved, tmp_path)  # manifest recomputed, nothing changed
    loaded = TagClassifier.load(folder, embedder=hash_embedder_module)
    assert list(loaded.predict(TEXTS)) == list(TagClassifier.load(saved, embedder=hash_embedder_module).predict(TEXTS))


@pytest.mark.parametrize("path", [None, 3, ["model"]])
def test_load_refuses_what_is_not_a_path(path):
    with pytest.raises(InvalidInputError, match="path must be a model folder or a bundled model's name"):
        TagClassifier.load(path)


@pytest.mark.parametrize("X", [None, 5, 2.5, object()])
def test_tag_and_predict_refuse_what_is_not_texts(saved, hash_embedder_module, X):
    clf = TagClassifier.load(saved, embedder=hash_embedder_module)
    for call in (clf.tag, clf.predict, clf.predict_proba):
        with pytest.raises(InvalidInputError, match="X must be texts"):
            call(X)
