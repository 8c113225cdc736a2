"""Model cards for saved tag models, filled from the real configuration and measured metrics."""

from __future__ import annotations

from typing import Any

__all__ = ["render_model_card"]

_TEMPLATE = """# {name}

{description}

A feedback_nlp `TagClassifier` ({kind}). Load it with:

```python
from feedback_nlp.tagging import TagClassifier
clf = TagClassifier.load("{load_name}")
clf.tag(["The export to Excel fails every time"])
```

## Model

| | |
|---|---|
| task | {task} |
| head | {head} |
| embedding model | `{model_id}` ({dim} dimensions{fine_tuned}) |
| tags ({n_tags}) | {tags} |
| probability calibration | {calibration} |
| decision rule | {decision} |
| abstain (`min_confidence`) | {min_conf} |
| random_state | {random_state} |
| saved | {created_at} with feedback_nlp {library_version} |

## Training data

{training_data}

## Evaluation

{metrics}

## Intended use and limits

Tags customer feedback against the taxonomy above. Scores were measured on the data named here; feedback
from another product or channel mix can score differently — evaluate on a labelled sample of your own
(`feedback-nlp eval --model DIR --data FILE`) before relying on it. Texts are cleaned (HTML, quoted replies,
PII redaction) before embedding; the model stores no training text.

## Files

`config.json` (parameters, classes), `manifest.json` (SHA-256 of every file), `weights.npz` (plain arrays, loaded without pickle){encoder_file}.
"""


def _metrics_table(metrics: dict[str, Any]) -> str:
    if not metrics:
        return ("No evaluation was recorded when this model was saved. Train with `fit(X, y, holdout=0.2)` (or "
                "`feedback-nlp train --holdout 0.2`) to have the library measure one on held-out rows.")
    how = metrics.get("evaluation")
    lines = [f"Measured on: {how}.", ""] if isinstance(how, str) else []
    lines += ["| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        if k == "evaluation" and isinstance(v, str):
            continue
        if isinstance(v, bool):
            lines.append(f"| {k} | {v} |")
        elif isinstance(v, (int, float)):
            lines.append(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |")
        elif isinstance(v, str):
            lines.append(f"| {k} | {v} |")
    return "\n".join(lines)


def _fine_tuned(embedder: dict[str, Any]) -> str:
    adapter = embedder.get("adapter")
    if adapter:
        base = ", ".join(f"`{f}` SHA-256 `{h}`" for f, h in sorted(adapter.get("base_weights_sha256", {}).items()))
        return (f", fine-tuned as a rank-{adapter.get('rank')} LoRA adapter ({adapter.get('parameters')} parameters, "
                f"`adapter.npz`) over {adapter.get('base_model')}, whose weights must match: {base}")
    return ", fine-tuned, stored in `encoder/`" if embedder.get("fine_tuned") else ""


def render_model_card(config: dict[str, Any]) -> str:
    """The README.md of a saved tag model."""
    p = config["params"]
    multi = config["multi_label"]
    zero = config["zero_shot"]
    tags = config["classes"]
    return _TEMPLATE.format(
        name=config.get("name") or "feedback_nlp tag model",
        description=config.get("description") or "",
        kind="zero-shot" if zero else ("multi-label" if multi else "multi-class"),
        load_name="path/to/this/folder",
        task="multi-label tagging" if multi else "multi-class tagging",
        head=(f"zero-shot, self-trained on {config.get('self_trained_rows')} unlabelled backlog rows "
              "(pseudo-labels from similarity to tag descriptions, logistic regression, 4 rounds)")
        if zero and config.get("self_trained_rows") else "zero-shot similarity to tag descriptions" if zero else (
            "fine-tuned embedding model + logistic regression" if p.get("head") == "finetune" else
            "embedding model fine-tuned with a supervised contrastive loss + logistic regression"
            if p.get("head") == "contrastive" else "logistic regression on frozen embeddings")
        + (f", self-trained on {config.get('self_trained_rows')} unlabelled rows (pseudo-labels)"
           if not zero and config.get("self_trained_rows") else ""),
        model_id=config["embedder"]["model_id"], dim=config["embedder"]["dim"],
        fine_tuned=_fine_tuned(config["embedder"]),
        n_tags=len(tags), tags=", ".join(f"`{t}`" for t in tags[:40]) + (" …" if len(tags) > 40 else ""),
        calibration=("softmax over the self-trained head's logits per facet" if config.get("self_trained_rows")
                     else "softmax over cosine similarities per facet") if zero else (
            "Platt scaling per tag on out-of-fold scores" if multi else f"temperature scaling on out-of-fold logits (T = {config['temperature']:.3f})"),
        decision=("per-tag thresholds tuned for out-of-fold F1; the most probable tag if none passes" if multi and not zero
                  else "one tag per facet" if zero else "most probable tag"),
        min_conf=p.get("min_confidence", 0.0), random_state=p.get("random_state"),
        created_at=config["created_at"], library_version=config["library_version"],
        training_data=config.get("training_data") or "Not recorded.",
        metrics=_metrics_table(config.get("metrics") or {}),
        encoder_file=(", `adapter.npz` (the LoRA updates of the embedding model, merged over its base on load)"
                      if config["embedder"].get("adapter") else ", `encoder/` (the fine-tuned sentence-transformers model)"
                      if config["embedder"].get("fine_tuned") else ""),
    )
