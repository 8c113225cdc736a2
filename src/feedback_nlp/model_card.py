"""Model cards for saved tag models, filled from the real configuration and measured metrics."""

from __future__ import annotations

import re
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
| abstain (`min_confidence`) | below {min_conf}; any text with no letter (emoji, digits or punctuation only) is flagged for review, and abstains when `min_confidence` > 0 |
| random_state | {random_state} |
| saved | {created_at} with feedback_nlp {library_version} |

{selection}## Training data

{training_data}{weights}

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


# a multi-label model's "accuracy" counts a row right only when every one of its tags is (subset accuracy):
# shown as plain "accuracy" it read as the share of tags right, a figure several times higher on most data
_MULTI_LABEL_NAMES = {"accuracy": "subset accuracy (every tag of a row right)",
                      "accuracy_covered": "subset accuracy on covered rows",
                      "mean_confidence": "mean_confidence (mean probability of a tag)"}


def _metrics_table(metrics: dict[str, Any], multi: bool = False) -> str:
    if not metrics:
        return ("No evaluation was recorded when this model was saved. Train with `fit(X, y, holdout=0.2)` (or "
                "`feedback-nlp train --holdout 0.2`) to have the library measure one on held-out rows.")
    how = metrics.get("evaluation")
    lines = [f"Measured on: {_text(how)}.", ""] if isinstance(how, str) else []
    lines += ["| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        if k == "evaluation" and isinstance(v, str):
            continue
        name = _text(_MULTI_LABEL_NAMES.get(k, k) if multi else k)
        if isinstance(v, bool):
            lines.append(f"| {name} | {v} |")
        elif isinstance(v, (int, float)):
            lines.append(f"| {name} | {v:.4f} |" if isinstance(v, float) else f"| {name} | {v} |")
        elif isinstance(v, str):
            lines.append(f"| {name} | {_text(v)} |")
    return "\n".join(lines)


def _one_cell(v: Any) -> str:
    """A value as one table cell: a ``|`` or a line break inside would end the cell or the row."""
    return " ".join(str(v).split()).replace("|", "\\|")


def _text(v: Any) -> str:
    """A value as one table cell of plain text: ``<`` and ``&`` as entities, so that a metric named
    ``<img src=x onerror=...>`` reads as those characters instead of being HTML where the card is rendered."""
    return _one_cell(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code(tag: Any) -> str:
    """A tag as inline code in a table cell, whatever backticks or pipes it holds: the fence is one backtick
    longer than the longest run inside, so no run closes the span early (a tag ``a``<img ...>`` ended a
    two-backtick span after ``a`` and left the rest as HTML of the card)."""
    text = _one_cell(tag)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {text} {fence}" if longest else f"`{text}`"


def _fine_tuned(embedder: dict[str, Any]) -> str:
    adapter = embedder.get("adapter")
    if adapter:
        base = ", ".join(f"`{f}` SHA-256 `{h}`" for f, h in sorted(adapter.get("base_weights_sha256", {}).items()))
        return (f", fine-tuned as a rank-{adapter.get('rank')} LoRA adapter ({adapter.get('parameters')} parameters, "
                f"`adapter.npz`) over {adapter.get('base_model')}, whose weights must match: {base}")
    return ", fine-tuned, stored in `encoder/`" if embedder.get("fine_tuned") else ""


_HEAD_NAMES = {"finetune": "fine-tuned embedding model + logistic regression",
               "contrastive": "embedding model fine-tuned with a supervised contrastive loss + logistic regression",
               "logreg": "logistic regression on frozen embeddings"}


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    return f"{v:.4f}" if isinstance(v, float) else str(v).replace("|", "/")


def _seconds(v: Any) -> str:
    return "–" if v is None else f"{float(v):.1f}"


def _selection_section(sel: dict[str, Any] | None, multi: bool = False) -> str:
    """The ``head="auto"`` comparison: every candidate's cross-validated score and seconds, or why it was
    skipped."""
    if not sel:
        return ""
    lines = ["## Head selection", "",
             f"`head=\"auto\"` measured the candidate heads by {sel.get('metric', 'cross-validation')} "
             f"({sel.get('folds')} folds) within a time budget of {sel.get('budget_s'):g} s on the machine that "
             f"trained it, and chose **{sel.get('chosen')}**. Selection took {sel.get('selection_s')} s; the whole "
             f"fit {sel.get('total_s')} s ({'within' if sel.get('within_budget') else 'over'} the budget). Seconds "
             "depend on the machine and its load; which heads fit the budget can differ elsewhere.", "",
             f"| head | CV macro-F1 | CV {'subset ' if multi else ''}accuracy | folds | seconds | estimated s | outcome |",
             "|---|---|---|---|---|---|---|"]
    for r in sel.get("candidates", []):
        outcome = r.get("status", "")
        if r.get("reason"):
            outcome += f": {r['reason']}"
        lines.append(f"| {_cell(r.get('head'))} | {_cell(r.get('cv_macro_f1'))} | {_cell(r.get('cv_accuracy'))} | "
                     f"{_cell(r.get('folds'))} | {_seconds(r.get('seconds'))} | {_seconds(r.get('estimated_s'))} | "
                     f"{_cell(outcome)} |")
    return "\n".join(lines) + "\n\n"


def _head_text(config: dict[str, Any], trained: str, zero: bool) -> str:
    rows = config.get("self_trained_rows")
    if zero:
        text = (f"zero-shot, self-trained on {rows} unlabelled backlog rows (pseudo-labels from similarity to tag "
                "descriptions, logistic regression, 4 rounds)" if rows else "zero-shot similarity to tag descriptions")
    else:
        text = _HEAD_NAMES.get(trained, _HEAD_NAMES["logreg"])
        text += f", self-trained on {rows} unlabelled rows (pseudo-labels)" if rows else ""
    if config.get("embedder", {}).get("keep_base"):
        text += "; the head reads the fine-tuned encoder's vectors beside the frozen base model's (`keep_base`)"
    lexical = config.get("lexical")
    if lexical:  # the word channel the fit kept (see TagClassifier's lexical)
        text += (f"; plus a word TF-IDF channel ({lexical['terms']} terms, logistic regression) fused with it on "
                 + ("per-tag out-of-fold Platt scaling" if config["multi_label"] else
                    "out-of-fold logits: {:.3g} × head + {:.3g} × words".format(*lexical["fusion"][:2])))
    elif not zero and config["params"].get("lexical", False):
        text += "; the word TF-IDF channel was fitted and dropped (it did not help out of fold)"
    return ("chosen by `head=\"auto\"` (see Head selection): " if config.get("head_selection") else "") + text


def _calibration_text(config: dict[str, Any], multi: bool) -> str:
    """How the probabilities were calibrated; a fine-tuned model's config says on which scores."""
    how = "Platt scaling per tag" if multi else f"temperature scaling (T = {config['temperature']:.3f})"
    said = config.get("calibration")
    return f"{how}, {said}" if said else f"{how} on out-of-fold {'scores' if multi else 'logits'}"


def _weights_text(summary: Any) -> str:
    """The sentence saying a model was trained with ``fit(..., sample_weight=...)``; empty when it was not."""
    if not isinstance(summary, dict):
        return ""
    zero = summary.get("zero_rows") or 0
    return (f"\n\nTrained with sample weights (`fit(..., sample_weight=...)`): {summary.get('rows')} rows, total "
            f"weight {summary.get('total')}, from {summary.get('min')} to {summary.get('max')}"
            + (f", {zero} rows weighted 0" if zero else "") + ". The weights themselves are not saved.")


def render_model_card(config: dict[str, Any]) -> str:
    """The README.md of a saved tag model."""
    p = config["params"]
    trained = config.get("selected_head") or p.get("head")
    multi = config["multi_label"]
    zero = config["zero_shot"]
    tags = config["classes"]
    return _TEMPLATE.format(
        name=config.get("name") or "feedback_nlp tag model",
        description=config.get("description") or "",
        kind="zero-shot" if zero else ("multi-label" if multi else "multi-class"),
        load_name="path/to/this/folder",
        task="multi-label tagging" if multi else "multi-class tagging",
        head=_head_text(config, str(trained), zero),
        model_id=config["embedder"]["model_id"], dim=config["embedder"]["dim"],
        fine_tuned=_fine_tuned(config["embedder"]),
        n_tags=len(tags), tags=", ".join(_code(t) for t in tags[:40]) + (" …" if len(tags) > 40 else ""),
        calibration=("softmax over the self-trained head's logits per facet" if config.get("self_trained_rows")
                     else "softmax over cosine similarities per facet") if zero else (
            _calibration_text(config, multi)),
        decision=("per-tag thresholds tuned for out-of-fold F1; the most probable tag if none passes" if multi and not zero
                  else "one tag per facet" if zero else "most probable tag"),
        min_conf=p.get("min_confidence", 0.0), random_state=p.get("random_state"),
        created_at=config["created_at"], library_version=config["library_version"],
        training_data=config.get("training_data") or "Not recorded.",
        weights=_weights_text(config.get("sample_weight")),
        metrics=_metrics_table(config.get("metrics") or {}, bool(multi)),
        selection=_selection_section(config.get("head_selection"), bool(multi)),
        encoder_file=(", `adapter.npz` (the LoRA updates of the embedding model, merged over its base on load)"
                      if config["embedder"].get("adapter") else ", `encoder/` (the fine-tuned sentence-transformers model)"
                      if config["embedder"].get("fine_tuned") else ""),
    )
