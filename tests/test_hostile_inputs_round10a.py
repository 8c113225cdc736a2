"""Round 10a: the declared dependency ranges at their lower ends (an environment that already holds older
packages) and Python 3.10."""

from __future__ import annotations

import asyncio
import types

import numpy as np
import pytest

from feedback_nlp.errors import UsageError


@pytest.mark.parametrize(("version", "key"), [("4.40.0", "torch_dtype"), ("4.55.4", "torch_dtype"),
                                              ("4.56.0", "dtype"), ("5.24.0", "dtype"), ("5.0.0.dev0", "dtype")])
def test_bf16_dtype_keyword_follows_the_installed_transformers(monkeypatch, version, key):
    # transformers 4.40 passed an unknown ``dtype`` on to BertModel.__init__: torch-bf16 failed with a TypeError
    transformers = pytest.importorskip("transformers")
    import torch

    from feedback_nlp.backends._torch import _from_pretrained_kwargs

    monkeypatch.setattr(transformers, "__version__", version)
    out = _from_pretrained_kwargs({"dtype": torch.bfloat16, "other": 1})
    assert out == {key: torch.bfloat16, "other": 1}
    assert _from_pretrained_kwargs({}) == {}


def test_float32_threshold_is_the_smallest_float32_at_or_above_it():
    # NumPy 1.x rounds a float64 scalar to float32 before comparing it with a float32 array, so a score a hair
    # below the threshold passed Deduper.pairs; the comparison value must not depend on NumPy's casting rules
    from feedback_nlp.dedupe._deduper import _float32_at_least

    rng = np.random.default_rng(0)
    scores = rng.random(500).astype(np.float32)
    for s in scores[:100]:
        for thr in (float(s), float(np.nextafter(float(s), 1.0)), float(np.nextafter(float(s), 0.0))):
            t = _float32_at_least(thr)
            assert t.dtype == np.float32
            assert float(t) >= thr and float(np.nextafter(t, np.float32(-np.inf))) < thr
            np.testing.assert_array_equal(scores >= t, scores.astype(np.float64) >= thr)


def test_pairs_exclude_a_score_a_hair_below_the_threshold(hash_embedder):
    from feedback_nlp import Deduper

    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(40, hash_embedder.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    d = Deduper(hash_embedder, threshold=0.5).fit(ids=[f"i{k}" for k in range(40)], embeddings=vecs)
    everything = d.pairs(0.01)
    for s in everything["score"].iloc[::25].tolist():
        thr = float(np.nextafter(s, 1.0))
        p = d.pairs(thr)
        assert (p["score"] >= thr).all() and len(p) == (everything["score"] > s).sum()


def test_dask_timeout_from_asyncio_is_a_usage_error():
    # distributed raises asyncio.TimeoutError ("timed out after 30 s.") when a Client does not start in time:
    # on Python 3.10 that class is not the builtin TimeoutError, and the raw traceback reached the user
    pytest.importorskip("dask")
    from feedback_nlp.dask import _client

    def client(address):
        raise asyncio.TimeoutError("timed out after 30 s.")

    with pytest.raises(UsageError, match="cannot connect to the Dask scheduler"):
        _client(types.SimpleNamespace(Client=client), "tcp://127.0.0.1:1")


def test_backlog_metadata_keeps_true_as_true_in_json():
    # pydantic 2.5 serialised True as 1 for the first-listed int of Union[str, int, float, bool, None]: a stored
    # {"quackback": true} came back from GET /v1/backlog/{id} as 1
    pytest.importorskip("pydantic")
    import json

    from feedback_nlp.service._models import BacklogItemOut

    meta = {"t": True, "f": False, "one": 1, "zero": 0, "half": 0.5, "s": "true", "none": None}
    out = json.loads(BacklogItemOut(id="x", text="y", metadata=meta, updated_at=None).model_dump_json())
    assert out["metadata"] == meta
    assert [type(v) for v in out["metadata"].values()] == [type(v) for v in meta.values()]
