"""Fine-tuning the embedding model on labelled feedback (the ``head="finetune"`` option of TagClassifier).

Plain classification fine-tuning on CPU: the sentence-transformers body is trained end to end with a cosine
classifier on top (softmax cross-entropy for multi-class, sigmoid for multi-label). It is cheaper than
SetFit's contrastive pairs — one pass per example instead of one per pair — and the logistic-regression
head is then fitted on the fine-tuned embeddings as usual, so calibration, thresholds and abstaining work
the same for both heads.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["bucketed_batches", "default_epochs", "finetune_encoder", "remove_with", "scratch_dir", "sweep_scratch_dirs"]

log = logging.getLogger(__name__)

ROW_BUDGET = 30_000  # training passes over rows: 3 epochs at 10k rows, 10 for a few hundred
TOKEN_BUDGET = 600_000  # padded tokens: keeps long-text sets (reviews, tickets) within minutes on 2 cores
_BUCKET_BATCHES = 50  # batches per length bucket: similar lengths pad little, order stays random
SCRATCH_PREFIX = "feedback_nlp_ft_"  # + "<pid>_": the owning process, so leftovers of dead ones can be swept


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def sweep_scratch_dirs(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove fine-tuning scratch folders whose process is gone (killed before it could clean up).

    Only folders named ``feedback_nlp_ft_<pid>_*`` with a dead ``<pid>`` are removed; a live process's
    folder, or anything else in the temp directory, is never touched. Returns the removed folders.

    Example:
        >>> sweep_scratch_dirs("/nonexistent")
        []
    """
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    for d in base.glob(SCRATCH_PREFIX + "*_*") if base.is_dir() else []:
        pid = d.name[len(SCRATCH_PREFIX):].split("_", 1)[0]
        if d.is_dir() and not d.is_symlink() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def scratch_dir() -> Path:
    """A fresh temp folder for a fine-tuned encoder, named after this process (see :func:`sweep_scratch_dirs`).

    Tie it to the object that uses it with :func:`remove_with`; stale folders of dead processes are swept
    first, so even a process killed with SIGKILL leaves its ~90 MB behind only until the next fine-tuning.
    """
    sweep_scratch_dirs()
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}_"))


def remove_with(owner: object, path: str | os.PathLike) -> None:
    """Delete ``path`` when ``owner`` is garbage-collected or, at the latest, when the interpreter exits.

    Example:
        >>> import gc, tempfile; from pathlib import Path
        >>> class Owner: pass
        >>> o, d = Owner(), Path(tempfile.mkdtemp())
        >>> remove_with(o, d); del o; _ = gc.collect(); d.exists()
        False
    """
    weakref.finalize(owner, shutil.rmtree, str(path), True)


def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of batches: shuffle, sort within buckets of ~50 batches by length, shuffle the batches.

    Random batches pad every row to the longest of 32 random texts; on app reviews (median 17, p95 78
    tokens) that is ~4x the real tokens. Bucketing keeps the randomness of which rows meet while cutting the
    padding, which is most of the cost of fine-tuning on long-tailed feedback.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    span = batch_size * _BUCKET_BATCHES
    batches = []
    for start in range(0, len(order), span):
        bucket = order[start:start + span]
        bucket = bucket[np.argsort(lengths[bucket], kind="stable")]
        batches += [bucket[i:i + batch_size] for i in range(0, len(bucket), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padded_tokens(batches: Sequence[np.ndarray], lengths: Sequence[int]) -> int:
    """Tokens one epoch of these batches computes, padding included."""
    lengths = np.asarray(lengths)
    return int(sum(len(b) * lengths[b].max() for b in batches))


def default_epochs(n_rows: int, tokens_per_epoch: int) -> int:
    """Epochs within both budgets (rows and padded tokens), clipped to 1-10."""
    by_rows = ROW_BUDGET / max(1, n_rows)
    by_tokens = TOKEN_BUDGET / max(1, tokens_per_epoch)
    return int(np.clip(round(min(by_rows, by_tokens)), 1, 10))


def finetune_encoder(
    location: str | os.PathLike,
    texts: Sequence[str],
    targets: np.ndarray,
    *,
    out_dir: str | os.PathLike,
    multi_label: bool = False,
    epochs: int | None = None,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    max_seq_length: int = 128,
    scale: float = 20.0,
    random_state: int = 0,
    show_progress: bool = False,
) -> Path:
    """Fine-tune the model at ``location`` on (texts, targets) and save it to ``out_dir``.

    ``targets`` are class indices (n,) for multi-class or a 0/1 matrix (n, k) for multi-label.
    ``epochs=None`` picks :func:`default_epochs` from the row count and the padded tokens of an epoch.
    Returns ``out_dir``; the epochs used are logged and written to ``out_dir/training.json``.
    """
    import torch
    import torch.nn.functional as F
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(random_state)
    rng = np.random.default_rng(random_state)
    model = SentenceTransformer(str(location), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = int(get_dim())
    k = targets.shape[1] if multi_label else int(targets.max()) + 1
    weight = torch.nn.Parameter(torch.randn(k, dim, generator=torch.Generator().manual_seed(random_state)) * 0.01)
    bias = torch.nn.Parameter(torch.zeros(k))
    tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
    lengths = [len(ids) for ids in model.tokenizer(list(texts), truncation=True, max_length=max_seq_length)["input_ids"]]
    epoch_batches = [bucketed_batches(lengths, batch_size, rng)]
    tokens_per_epoch = padded_tokens(epoch_batches[0], lengths)
    if epochs is None:
        epochs = default_epochs(len(texts), tokens_per_epoch)
    log.info("fine-tuning %d rows for %d epochs (%d padded tokens per epoch)", len(texts), epochs, tokens_per_epoch)
    steps = epochs * len(epoch_batches[0])
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": learning_rate, "weight_decay": 0.01},
                             {"params": [weight, bias], "lr": 1e-2, "weight_decay": 0.0}])
    warmup = max(1, int(0.1 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup)))
    y = torch.as_tensor(targets, dtype=torch.float32 if multi_label else torch.long)
    model.train()
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="fine-tuning", unit="step")
    for epoch in range(epochs):
        batches = epoch_batches[0] if epoch == 0 else bucketed_batches(lengths, batch_size, rng)
        total = 0.0
        for idx in batches:
            features = tokenize([texts[i] for i in idx])
            emb = model(features)["sentence_embedding"]
            logits = scale * F.normalize(emb, dim=-1) @ F.normalize(weight, dim=-1).T + bias
            target = y[idx]
            loss = (F.binary_cross_entropy_with_logits(logits, target) if multi_label
                    else F.cross_entropy(logits, target))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            if bar is not None:
                bar.update(1)
        log.info("fine-tuning epoch %d/%d: loss %.4f", epoch + 1, epochs, total / len(texts))
    if bar is not None:
        bar.close()
    model.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    (out / "training.json").write_text(json.dumps({"rows": len(texts), "epochs": epochs, "batch_size": batch_size,
                                                   "padded_tokens_per_epoch": tokens_per_epoch,
                                                   "learning_rate": learning_rate, "random_state": random_state}))
    return out
