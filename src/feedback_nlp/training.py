"""Fine-tuning the embedding model on labelled feedback (the ``head="finetune"`` option of TagClassifier).

Plain classification fine-tuning on CPU: the sentence-transformers body is trained end to end with a cosine
classifier on top (softmax cross-entropy for multi-class, sigmoid for multi-label). It is cheaper than
SetFit's contrastive pairs — one pass per example instead of one per pair — and the logistic-regression
head is then fitted on the fine-tuned embeddings as usual, so calibration, thresholds and abstaining work
the same for both heads.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["finetune_encoder"]

log = logging.getLogger(__name__)


def finetune_encoder(
    location: str | os.PathLike,
    texts: Sequence[str],
    targets: np.ndarray,
    *,
    out_dir: str | os.PathLike,
    multi_label: bool = False,
    epochs: int = 2,
    batch_size: int = 32,
    learning_rate: float = 5e-5,
    max_seq_length: int = 128,
    scale: float = 20.0,
    random_state: int = 0,
    show_progress: bool = False,
) -> Path:
    """Fine-tune the model at ``location`` on (texts, targets) and save it to ``out_dir``.

    ``targets`` are class indices (n,) for multi-class or a 0/1 matrix (n, k) for multi-label.
    Returns ``out_dir``.
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
    steps = epochs * math.ceil(len(texts) / batch_size)
    opt = torch.optim.AdamW([{"params": model.parameters(), "lr": learning_rate, "weight_decay": 0.01},
                             {"params": [weight, bias], "lr": 1e-2, "weight_decay": 0.0}])
    warmup = max(1, int(0.1 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, (steps - s) / max(1, steps - warmup)))
    y = torch.as_tensor(targets, dtype=torch.float32 if multi_label else torch.long)
    model.train()
    tokenize = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 6
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc="fine-tuning", unit="step")
    for epoch in range(epochs):
        order = rng.permutation(len(texts))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
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
    return out
