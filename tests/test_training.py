"""Fine-tuning schedule: length-bucketed batches and the row/token budget for the default epochs."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedback_nlp.training import bucketed_batches, default_epochs, padded_tokens


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(1, 128), min_size=1, max_size=400), st.integers(1, 40), st.integers(0, 10))
def test_every_row_once_per_epoch(lengths, batch_size, seed):
    batches = bucketed_batches(lengths, batch_size, np.random.default_rng(seed))
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    assert all(1 <= len(b) <= batch_size for b in batches)


def test_bucketing_cuts_padding_and_stays_random():
    rng = np.random.default_rng(0)
    lengths = np.minimum(rng.lognormal(3.0, 0.9, 5000).astype(int) + 3, 128)  # long-tailed like app reviews
    bucketed = bucketed_batches(lengths, 32, np.random.default_rng(1))
    order = np.random.default_rng(1).permutation(len(lengths))
    plain = [order[i:i + 32] for i in range(0, len(order), 32)]
    assert padded_tokens(bucketed, lengths) < 0.6 * padded_tokens(plain, lengths)
    again = bucketed_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(bucketed, again))  # seeded: same batches
    other = bucketed_batches(lengths, 32, np.random.default_rng(2))
    assert not all(np.array_equal(a, b) for a, b in zip(bucketed, other))
    # batches are not in length order: the model does not see all short texts first
    maxima = [lengths[b].max() for b in bucketed]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)


@pytest.mark.parametrize(("rows", "tokens", "expected"), [
    (10_000, 10_000 * 16, 3),   # banking77-like: the row budget decides
    (300, 300 * 20, 10),        # few-shot: capped at 10
    (2_568, 2_568 * 40, 6),     # long reviews: the token budget decides (rows alone would give 10+)
    (50_000, 50_000 * 300, 1),  # never below one epoch
])
def test_default_epochs_respect_both_budgets(rows, tokens, expected):
    assert default_epochs(rows, tokens) == expected


def test_finetune_records_its_schedule(tmp_path):
    from feedback_nlp.embedding import resolve_model
    from feedback_nlp.training import finetune_encoder

    texts = ["the app crashes on start", "please add dark mode", "how do I invite my team?"] * 4
    out = finetune_encoder(resolve_model()[1], texts, np.array([0, 1, 2] * 4), out_dir=tmp_path / "enc",
                           batch_size=4, random_state=0)
    info = json.loads((out / "training.json").read_text())
    assert info["epochs"] == 10 and info["rows"] == 12  # 12 rows: the row budget allows far more, capped
    assert info["padded_tokens_per_epoch"] >= sum(len(t.split()) for t in texts)


_FIT_AND_EXIT = """
import sys
from feedback_nlp import Embedder
from feedback_nlp.tagging import TagClassifier
import gc, tempfile, pathlib
texts = ["the app crashes on start", "please add dark mode", "crash when I open a file", "add an export button",
         "it freezes when I save", "I would love a calendar view", "error 500 on login", "support markdown please"]
clf = TagClassifier(Embedder(backend="torch"), head="finetune", finetune_epochs=1, finetune_batch_size=4, cv=2)
clf.fit(texts, ["bug", "feature"] * 4)
assert clf.calibration_.startswith("cross-fitted")  # two more encoders were tuned on halves of the rows
assert clf.predict(["it crashes"])[0] in ("bug", "feature")
gc.collect()
print("LIVE", len(list(pathlib.Path(tempfile.gettempdir()).glob("feedback_nlp_ft_*"))))
mode = sys.argv[1]
if mode == "del":  # the classifier goes away while the process lives on
    del clf
    gc.collect()
    left = list(pathlib.Path(tempfile.gettempdir()).glob("feedback_nlp_ft_*"))
    print("LEFT", len(left))
"""


@pytest.mark.parametrize("mode", ["exit", "del"])
def test_unsaved_finetune_leaves_no_encoder_behind(tmp_path, mode):
    import os
    import subprocess
    import sys

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", _FIT_AND_EXIT, mode], env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    # while the model lives only its own encoder's folder does: the calibration halves' went with them
    assert "LIVE 1" in res.stdout
    if mode == "del":
        assert "LEFT 0" in res.stdout  # removed as soon as the model is collected, not only at exit
    assert list(tmp.glob("feedback_nlp_ft_*")) == []


def test_sweep_removes_only_dead_processes_scratch(tmp_path):
    import os
    import subprocess
    import sys

    from feedback_nlp.training import SCRATCH_PREFIX, sweep_scratch_dirs

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f"{SCRATCH_PREFIX}{dead}_abc"
    (stale / "encoder").mkdir(parents=True)
    (stale / "encoder" / "model.safetensors").write_bytes(b"x" * 10)
    mine = tmp_path / f"{SCRATCH_PREFIX}{os.getpid()}_def"
    mine.mkdir()
    parent = tmp_path / f"{SCRATCH_PREFIX}{os.getppid()}_ghi"  # alive: another process's running fit
    parent.mkdir()
    legacy = tmp_path / f"{SCRATCH_PREFIX}q8x_z"  # not ours to judge: no pid in the name
    legacy.mkdir()
    other = tmp_path / "something_else"
    other.mkdir()
    assert sweep_scratch_dirs(tmp_path) == [stale]
    assert not stale.exists()
    assert mine.exists() and parent.exists() and legacy.exists() and other.exists()


def test_failed_finetune_removes_its_scratch(tmp_path, monkeypatch):
    import tempfile

    import feedback_nlp.training as training
    from feedback_nlp import Embedder
    from feedback_nlp.tagging import TagClassifier

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def boom(*args, **kwargs):
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-training

    monkeypatch.setattr(training, "finetune_encoder", boom)
    with pytest.raises(KeyboardInterrupt):
        TagClassifier(Embedder(backend="torch"), head="finetune").fit(["a b", "c d", "e f", "g h"], [0, 1, 0, 1])
    assert list(tmp_path.glob("feedback_nlp_ft_*")) == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=200), st.sampled_from([4, 8, 32]), st.integers(0, 5))
def test_class_balanced_batches_give_every_row_positives(labels, batch_size, seed):
    from feedback_nlp.training import class_balanced_batches

    labels = np.array(labels)
    batches = class_balanced_batches(labels, batch_size, 2, np.random.default_rng(seed))
    seen = np.concatenate(batches)
    assert set(seen.tolist()) <= set(range(len(labels)))
    assert len(seen) >= min(len(labels), 2)
    for b in batches:
        counts = np.unique(labels[b], return_counts=True)[1]
        assert len(np.unique(labels[b])) >= min(2, len(np.unique(labels)))  # negatives in every batch
        assert (counts == np.minimum(2, [np.sum(labels == c) for c in np.unique(labels[b])])).all()
    # balanced classes: each row is reached, because rows are cycled, not drawn with replacement
    counts = np.unique(labels, return_counts=True)[1]
    if len(labels) >= 20 and counts.min() == counts.max() and len(counts) * 2 <= batch_size:
        assert set(seen.tolist()) == set(range(len(labels)))


def test_supervised_contrastive_loss_prefers_grouped_embeddings():
    import torch

    from feedback_nlp.training import supervised_contrastive_loss

    labels = torch.tensor([0, 0, 1, 1])
    grouped = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive_loss(grouped, labels) < supervised_contrastive_loss(mixed, labels)
    single = supervised_contrastive_loss(grouped, torch.tensor([0, 1, 2, 3]))  # no positives: no signal
    assert float(single) == 0.0
    grad = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    supervised_contrastive_loss(grad, torch.tensor([0, 0])).backward()
    assert grad.grad is not None and torch.isfinite(grad.grad).all()


def test_contrastive_head_trains_saves_and_reloads(tmp_path):
    from feedback_nlp import Embedder
    from feedback_nlp.tagging import TagClassifier

    texts = ["the app crashes on start", "crash when I open a file", "it freezes and crashes",
             "please add dark mode", "add an export button", "I would like a calendar view"]
    labels = ["bug"] * 3 + ["feature"] * 3
    clf = TagClassifier(Embedder(backend="torch"), head="contrastive", finetune_epochs=1, finetune_batch_size=4,
                        cv=2).fit(texts, labels)
    info = json.loads((Path(clf.embedder_.location) / "training.json").read_text())
    assert info["contrastive"] is True and info["epochs"] == 1
    clf.save(tmp_path / "m")
    adapter = json.loads((tmp_path / "m" / "config.json").read_text())["embedder"]["adapter"]
    assert adapter["training"]["contrastive"] is True and adapter["training"]["epochs"] == 1
    assert "supervised contrastive" in (tmp_path / "m" / "README.md").read_text()
    again = TagClassifier.load(tmp_path / "m", backend="torch")
    np.testing.assert_allclose(again.predict_proba(texts).to_numpy(), clf.predict_proba(texts).to_numpy(), atol=1e-5)
