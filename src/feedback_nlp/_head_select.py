"""``TagClassifier(head="auto")``: pick the head by cross-validated measurement within a wall-clock budget.

Candidates, cheapest first: zero-shot (with a taxonomy and multi-class labels), ``logreg`` on frozen
embeddings, then the fine-tuned heads (``finetune``, ``contrastive``; multi-class only for the latter); with
an unlabelled backlog (``self_train=True``, ``fit(X, y, unlabelled=...)``) each also with self-training.
All are scored by macro-F1 on the same stratified folds (at most 3), so every tag counts.

The budget covers the whole ``fit``: the measurements *and* the final training of the winner. Before a
candidate runs, its cost is estimated on this machine — frozen heads from a timed logistic-regression pilot
on a slice, fine-tuned heads from two timed fine-tuning pilots (1 and 3 epochs on 32 rows) and the epochs and
tokens the real training would take — and it runs only when its folds and the final training of whichever
head would then win still fit in what is left. Otherwise it is skipped and the reason recorded; estimates are
scaled up by :data:`SAFETY`, so a misjudged candidate is skipped rather than the budget broken. The
comparison ends up in ``TagClassifier.head_selection_`` and in the model card.

Which candidates run depends on the machine's speed; among those that ran, the choice is deterministic
(``random_state`` fixes the folds and every head's training).

``keep_base`` is not a candidate of its own: the fine-tuned candidates use the estimator's setting (set
``keep_base=True`` and they are measured, and the winner trained, with it). Measured on the full protocols
(docs/benchmarks.md), it moved macro-F1 by -0.1 (nlbse24, seed 0: contrastive 0.7935 with it vs 0.7942
without; finetune at 256 tokens 0.7727 vs 0.7734) to +0.4 points (banking77 8-shot, 5 draws: 0.8672 ->
0.8714): less than one seed moves the same recipe (nlbse24 contrastive, seeds 0-2: 0.7935-0.8041), so a
selection between the two would follow noise, while every prediction embeds each text twice, a cost the
training-time budget does not see.

Example:
    >>> [c.name for c in candidates(multi_label=False, texts=True, taxonomy=True, backlog=False)]
    ['logreg', 'zero-shot', 'finetune', 'contrastive']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from .errors import FeedbackNLPError, InvalidInputError

if TYPE_CHECKING:
    from .tagging import TagClassifier, _Targets

__all__ = ["Candidate", "Selection", "candidates", "select_head"]

SAFETY = 1.3  # estimates are scaled up: overestimating skips a candidate, underestimating breaks the promise
MAX_FOLDS = 3
PILOT_ROWS = 32  # one batch of the default fine-tuning batch size
MODEL_IO_S = 3.0  # assumed load + save time of an encoder, for the pilot's own estimate only
SCALE_POWER = 1.2  # frozen head cost ~ rows ** 1.2
IO_ROWS = 1000  # an encoder's load + save costs about as much as embedding this many rows
STEP_FORWARDS = 3.0  # a training step costs about three forward passes (forward, backward, update)


@dataclass(frozen=True)
class Candidate:
    """One head configuration ``head="auto"`` can choose."""

    name: str
    head: str = "logreg"
    self_train: bool = False
    zero_shot: bool = False

    @property
    def fine_tuned(self) -> bool:
        return self.head in ("finetune", "contrastive") and not self.zero_shot


def candidates(*, multi_label: bool, texts: bool, taxonomy: bool, backlog: bool) -> list[Candidate]:
    """The heads worth measuring for this task, the frozen baseline first. ``texts``: the rows are texts and the embedder
    can be fine-tuned; ``taxonomy``: one with a single facet (zero-shot gives one tag per facet)."""
    out = [Candidate("logreg")]  # the floor: measured first, trained when nothing else fits
    if taxonomy and not multi_label:
        out.append(Candidate("zero-shot", zero_shot=True))
        if backlog:
            out.append(Candidate("zero-shot+self-train", zero_shot=True, self_train=True))
    if backlog and not multi_label:
        out.append(Candidate("logreg+self-train", self_train=True))
    if texts:
        tuned = ["finetune"] if multi_label else ["finetune", "contrastive"]
        out += [Candidate(h, head=h) for h in tuned]
        if backlog and not multi_label:
            out += [Candidate(f"{h}+self-train", head=h, self_train=True) for h in tuned]
    return out


@dataclass
class _Trial:
    candidate: Candidate
    macro_f1: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0
    estimate_s: float | None = None
    final_estimate_s: float = 0.0
    status: str = "skipped"
    reason: str = ""

    def row(self, chosen: bool) -> dict[str, Any]:
        return {"head": self.candidate.name, "cv_macro_f1": _mean(self.macro_f1), "cv_accuracy": _mean(self.accuracy),
                "folds": len(self.macro_f1), "seconds": round(self.seconds, 2),
                "estimated_s": None if self.estimate_s is None else round(self.estimate_s, 1),
                "status": "chosen" if chosen else self.status, "reason": self.reason}


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


@dataclass
class Selection:
    """What :func:`select_head` decided: the candidate, the comparison rows, and the frozen embeddings it
    computed (reused by the final training of a frozen head)."""

    chosen: Candidate
    rows: list[dict[str, Any]]
    budget_s: float
    seconds: float
    folds: int
    embeddings: np.ndarray
    backlog: np.ndarray | None
    final_estimate_s: float
    embedder: Any

    def summary(self) -> dict[str, Any]:
        return {"chosen": self.chosen.name, "budget_s": self.budget_s, "selection_s": round(self.seconds, 1),
                "folds": self.folds, "metric": "macro-F1, mean over stratified folds",
                "final_training_estimate_s": round(self.final_estimate_s, 1), "candidates": self.rows}


class _Clock:
    def __init__(self, budget: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + budget

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


class _Selector:
    """The state of one selection: data, folds, measured rates and the clock."""

    def __init__(self, clf: TagClassifier, X: Any, targets: _Targets, unlabelled: Any, holdout: float | None,
                 budget: float) -> None:
        from .tagging import _numeric_rows, _texts

        self.clf, self.X, self.targets, self.unlabelled, self.holdout = clf, X, targets, unlabelled, holdout
        self.budget = float(budget)
        self.clock = _Clock(self.budget)
        self.embedder = clf._default_embedder()
        self.texts = None if _numeric_rows(X) is not None else _texts(X)
        self.n = len(targets.rows)
        self.y = [r if targets.multi_label else r[0] for r in targets.rows]
        self.rng = np.random.default_rng(int(clf.random_state))
        self.embed_per_row = 0.0
        self.backlog: np.ndarray | None = None
        self.logreg_fold: tuple[float, int] | None = None  # the frozen baseline: seconds of a fold, its rows
        self.ft_rate: tuple[float, float] | None = None  # fine-tuning: (fixed seconds, seconds per token)
        self.lengths: np.ndarray | None = None

    # --- measuring rates ---------------------------------------------------------------------------
    def embed_training_rows(self) -> np.ndarray:
        """Frozen embeddings of X, after a timed pilot proves that even this fits the budget."""
        from .tagging import _take

        if self.texts is None:
            return self.clf._embed(self.X, self.embedder)
        self.clf._embed(_take(self.X, np.arange(1)), self.embedder)  # loads the model: not a per-row cost
        pilot = np.sort(self.rng.choice(self.n, size=min(self.n, PILOT_ROWS), replace=False))
        _, seconds = _timed(lambda: self.clf._embed(_take(self.X, pilot), self.embedder))
        estimate = seconds / len(pilot) * self.n * SAFETY
        if self.clock.left() <= 0:
            raise InvalidInputError(
                f"time_budget={self.budget:g} s is too short: loading the embedding model alone took "
                f"{self.clock.elapsed():.1f} s on this machine; give a larger budget or pick a head (head='logreg')")
        if estimate > self.clock.left():
            about = f"{estimate:.0f}" if estimate >= 1 else f"{estimate:.2g}"  # 0.78 s was "about 1 s"
            raise InvalidInputError(
                f"time_budget={self.budget:g} s is too short: embedding the {self.n} training rows alone takes about "
                f"{about} s on this machine; give a larger budget or pick a head (head='logreg')")
        emb, seconds = _timed(lambda: self.clf._embed(self.X, self.embedder))
        self.embed_per_row = max(seconds / self.n, 1e-6)
        return emb

    def embed_backlog(self) -> np.ndarray:
        if self.backlog is None:
            self.backlog = self.clf._embed(self.unlabelled, self.embedder)
        return self.backlog

    def backlog_rows(self) -> int:
        from .tagging import _numeric_rows, _texts

        if self.unlabelled is None:
            return 0
        numeric = _numeric_rows(self.unlabelled)
        return len(numeric) if numeric is not None else len(_texts(self.unlabelled))

    def logreg_cost(self, emb: np.ndarray, rows: int) -> float:
        """Seconds of one frozen head fit on ``rows`` rows, scaled from the baseline's measured folds (it runs
        first). Slightly superlinear: lbfgs takes more iterations on more rows (a straight line from a small
        pilot missed the cost of self-training on a 10k-row backlog by 2x on banking77)."""
        if self.logreg_fold is None:
            raise InvalidInputError("the frozen head was not measured")
        seconds, fold_rows = self.logreg_fold
        return seconds * (rows / fold_rows) ** SCALE_POWER

    def token_lengths(self) -> np.ndarray:
        if self.lengths is None:
            assert self.texts is not None
            cap = int(self.clf.finetune_max_seq_length)
            tok = getattr(self.embedder, "tokenizer", None)
            prepared = self.embedder.prepare(self.texts) if hasattr(self.embedder, "prepare") else self.texts
            if tok is not None:
                counts = [len(e.ids) + 2 for e in tok.encode_batch(list(prepared))]
            else:  # no tokenizer to ask: about one token per 4 characters
                counts = [len(t) // 4 + 2 for t in prepared]
            self.lengths = np.minimum(np.asarray(counts), cap)
        return self.lengths

    def measure_finetuning(self) -> tuple[float, float]:
        """(fixed seconds, seconds per token) of a fine-tuning, from two timed pilots on 32 rows."""
        if self.ft_rate is None:
            rows = self._pilot_rows()
            texts = [self.texts[i] for i in rows]  # type: ignore[index]
            labels = [str(self.targets.rows[i][0]) for i in rows]

            def fit(epochs: int) -> float:
                inner = self._inner(Candidate("finetune", head="finetune")).set_params(
                    finetune_epochs=epochs, multi_label=False, cv=2)
                _, seconds = _timed(lambda: inner.fit(texts, labels))
                return seconds

            t1, t3 = fit(1), fit(3)
            tokens = len(rows) * int(self.token_lengths()[rows].max())  # one padded batch per epoch
            per_epoch = max((t3 - t1) / 2, 0.5 * t1 / 3)  # timing noise must not make epochs free
            self.ft_rate = (max(t1 - per_epoch, 0.0), per_epoch / tokens)
        return self.ft_rate

    def _pilot_rows(self) -> np.ndarray:
        """Up to 32 rows, two per tag (a fit needs two examples of each tag it sees)."""
        per_tag: dict[int, list[int]] = {}
        for i in self.rng.permutation(self.n):
            per_tag.setdefault(int(self.targets.primary[i]), []).append(int(i))
        pairs = [idx[:2] for idx in per_tag.values() if len(idx) >= 2]
        return np.sort([i for p in pairs[:PILOT_ROWS // 2] for i in p])

    def pilot_estimate(self) -> float:
        """What the two fine-tuning pilots should cost, from the embedding rate (4 batches in all). Each loads
        and saves an encoder: at least MODEL_IO_S, more on a slow or busy machine (about the time of embedding
        1,000 rows: 1.5 s where 600 rows/s embed, 26 s was seen under a load average of 12 on 2 cores)."""
        io = max(MODEL_IO_S, IO_ROWS * self.embed_per_row)
        return SAFETY * (2 * io + 4 * PILOT_ROWS * STEP_FORWARDS * self.embed_per_row)

    # --- cost model --------------------------------------------------------------------------------
    def fit_cost(self, c: Candidate, rows: np.ndarray, emb: np.ndarray) -> float:
        """Estimated seconds to train candidate ``c`` on ``rows`` (positions into X)."""
        m, b = len(rows), self.backlog_rows() if c.self_train else 0
        if c.zero_shot:
            n_tags = len(self.clf.taxonomy.leaves()) if self.clf.taxonomy is not None else 0
            cost = 5 * n_tags * self.embed_per_row + (self.logreg_cost(emb, b) if c.self_train else 0.0)
            return SAFETY * cost
        head = self.logreg_cost(emb, m)
        if c.self_train:  # pseudo-labelling rounds and the head, on the labelled rows plus the backlog
            head = 2 * self.logreg_cost(emb, m + b)
            if self.backlog is None or c.fine_tuned:
                head += self.embed_per_row * b
        if not c.fine_tuned:
            return SAFETY * head
        from .training import default_epochs

        fixed, per_token = self.measure_finetuning()
        tokens = int(self.token_lengths()[rows].sum() * 1.1)  # batches bucketed by length pad little
        epochs = self.clf.finetune_epochs or default_epochs(m, tokens)
        return SAFETY * (fixed + per_token * epochs * tokens + self.embed_per_row * m + head)

    def calibration_cost(self, c: Candidate, emb: np.ndarray) -> float:
        """``finetune_calibration="crossfit"``: two more fine-tunings, each on half of the rows (not for a
        self-trained candidate, which is calibrated in sample)."""
        if not c.fine_tuned or c.self_train or self.clf.finetune_calibration != "crossfit":
            return 0.0
        half = np.arange(self.n // 2)
        return 2 * (self.fit_cost(c, half, emb) + self.eval_cost(c, self.n - len(half)))

    def eval_cost(self, c: Candidate, m: int) -> float:
        return SAFETY * self.embed_per_row * m if c.fine_tuned else 0.0

    def final_cost(self, c: Candidate, emb: np.ndarray) -> float:
        every = np.arange(self.n)
        cost = self.fit_cost(c, every, emb) + self.calibration_cost(c, emb)
        if self.holdout and not c.zero_shot:  # fit(holdout=...) first trains a copy on the rest
            rest = every[: int(round(self.n * (1 - self.holdout)))]
            cost += self.fit_cost(c, rest, emb) + self.eval_cost(c, self.n - len(rest))
        return cost

    def measured_final(self, c: Candidate, seconds: float, done: int, k: int) -> float:
        """The final training's cost from ``done`` measured folds that took ``seconds`` in all: a fold trains on
        (k-1)/k of the labelled rows (plus the whole backlog), the final fit on all of them, twice with a
        holdout. A zero-shot model was fit once, then only scored."""
        if c.zero_shot:
            return SAFETY * seconds
        b = self.backlog_rows() if c.self_train else 0
        fold_rows = self.n * (k - 1) / k + b
        scale = (self.n + b) / fold_rows
        if self.holdout:
            scale += (self.n * (1 - self.holdout) + b) / fold_rows
        if c.fine_tuned and not c.self_train and self.clf.finetune_calibration == "crossfit":  # 2 fits on halves
            scale *= 1 + self.n / (self.n + b)
        return SAFETY * seconds / done * scale

    # --- running -----------------------------------------------------------------------------------
    def _inner(self, c: Candidate) -> TagClassifier:
        return clone(self.clf).set_params(embedder=self.embedder, head=c.head, self_train=c.self_train,
                                          zero_shot=c.zero_shot, multi_label=self.targets.multi_label)

    def run_fold(self, c: Candidate, train: np.ndarray, test: np.ndarray, emb: np.ndarray,
                 zero_shot_model: TagClassifier | None) -> tuple[float, float]:
        from .tagging import _take

        if c.zero_shot:
            model = zero_shot_model
        else:
            inner = self._inner(c)
            if c.fine_tuned:  # a fold is scored on its accuracy: the held-out calibration would double its cost
                model = inner.set_params(finetune_calibration="in_sample").fit(_take(self.X, train), [self.y[i] for i in train],
                                  unlabelled=self.unlabelled if c.self_train else None)
            else:  # with the texts beside the vectors, as the final frozen model is trained: without them a frozen
                # head was measured without its word channel (lexical), which the fine-tuned candidates had
                model = inner.fit(emb[train], [self.y[i] for i in train],
                                  unlabelled=self.embed_backlog() if c.self_train else None,
                                  texts=None if self.texts is None else [self.texts[i] for i in train])
        assert model is not None
        x_test = _take(self.X, test) if c.fine_tuned else emb[test]
        # a frozen head scored on vectors gets the texts beside them: a text with no letter abstains in the final
        # model, and did in a fine-tuned candidate's folds (which read texts) but not in a frozen one's
        words = None if c.fine_tuned or self.texts is None else [self.texts[i] for i in test]
        # not evaluate(): its warning about test rows that copy training rows is for the user's own evaluation
        report = model._evaluate(x_test, [self.y[i] for i in test], None, words, stacklevel=2)
        return float(report.macro_f1), float(report.accuracy)

    def zero_shot_model(self, c: Candidate) -> TagClassifier:
        inner = self._inner(c).set_params(multi_label=None)
        model = inner.fit(self.embed_backlog() if c.self_train else None)
        if model.multi_label_:
            raise InvalidInputError("the taxonomy has several facets: zero-shot tags one per facet (multi-label)")
        unknown = set(map(str, {r[0] for r in self.targets.rows})) - set(map(str, model.classes_))
        if unknown:
            raise InvalidInputError(f"labels {sorted(unknown)[:5]} are not leaves of the taxonomy")
        return model


def _folds(primary: np.ndarray, cv: int, random_state: int,
           groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds in which every tag keeps two training rows; none when the smallest tag is too small.

    Rows of one ``groups`` value (copies of one text) share a fold, as in the calibration's folds: a copy on the
    training side answers its twin, and a head that memorises (fine-tuning) then wins the comparison unfairly.
    """
    counts = np.bincount(primary)
    smallest = int(counts[counts > 0].min())
    k = min(MAX_FOLDS, cv)
    if smallest < 3 or (k == 2 and smallest < 4):  # a fold's training part needs 2 rows of every tag
        return []
    X = np.zeros(len(primary))
    if groups is not None:
        from sklearn.model_selection import StratifiedGroupKFold

        present = np.flatnonzero(counts)
        if min(len(np.unique(groups[primary == c])) for c in present) >= k:
            splits = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=random_state)
                          .split(X, primary, groups))
            if all(np.bincount(primary[tr], minlength=len(counts))[present].min() >= 2 for tr, _ in splits):
                return splits
        # too few distinct texts in some tag to keep copies together: the plain split, as the calibration does
    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=random_state).split(X, primary))


def _better(a: _Trial, b: _Trial) -> bool:
    """Whether ``a`` beats ``b`` on the folds both ran (ties go to ``b``, the cheaper)."""
    k = min(len(a.macro_f1), len(b.macro_f1))
    return float(np.mean(a.macro_f1[:k])) > float(np.mean(b.macro_f1[:k])) + 1e-9


def select_head(clf: TagClassifier, X: Any, targets: _Targets, *, unlabelled: Any = None,
                holdout: float | None = None, budget: float = 600.0) -> Selection:
    """Measure the candidates for ``clf`` on (X, targets) within ``budget`` seconds and pick one.

    The estimator itself is not changed; the caller trains the chosen head (see ``TagClassifier.fit``).
    Raises InvalidInputError when the budget cannot even cover embedding the training rows once.
    """
    s = _Selector(clf, X, targets, unlabelled, holdout, budget)
    emb = s.embed_training_rows()
    from .embedding import Embedder

    # zero-shot answers one tag per facet: a candidate only where that is one tag per row
    one_facet = clf.taxonomy is not None and len(clf.taxonomy.facets()) <= 1
    cands = candidates(multi_label=targets.multi_label, texts=s.texts is not None and isinstance(s.embedder, Embedder),
                       taxonomy=one_facet, backlog=unlabelled is not None)
    trials = [_Trial(c) for c in cands]
    from .tagging import _repeat_groups

    folds = _folds(targets.primary, int(clf.cv), int(clf.random_state), _repeat_groups(X, s.texts))
    best: _Trial | None = None
    baseline = next(t for t in trials if t.candidate.name == "logreg")
    if not folds:
        smallest = int(np.bincount(targets.primary)[np.bincount(targets.primary) > 0].min())
        for t in trials:
            t.reason = (f"not measured: the smallest tag has {smallest} labelled rows; cross-validation needs at "
                        "least 3 per tag, so the cheapest head was taken")
        best = baseline
    pilot_failed = ""
    for t in trials if folds else []:
        c = t.candidate
        try:
            if c.fine_tuned and s.ft_rate is None:
                if pilot_failed:
                    t.reason = pilot_failed
                    continue
                need = s.pilot_estimate()
                if need > s.clock.left():
                    t.reason = pilot_failed = (f"timing a fine-tuning pilot needs about {need:.0f} s, "
                                               f"{max(s.clock.left(), 0):.0f} s were left")
                    continue
            if c.self_train and not c.fine_tuned and s.backlog is None:
                need = SAFETY * s.embed_per_row * s.backlog_rows()
                if need > s.clock.left():
                    t.reason = f"embedding the backlog needs about {need:.0f} s, {s.clock.left():.0f} s were left"
                    continue
            if t is baseline:  # the floor: measured, not estimated; its folds stop early if the budget runs out
                fold_cost, t.final_estimate_s = 0.0, 0.0
            else:
                fold_cost = s.fit_cost(c, folds[0][0], emb) + s.eval_cost(c, len(folds[0][1]))
                if c.zero_shot:
                    fold_cost = s.fit_cost(c, folds[0][0], emb)  # one model, scored on every fold
                t.final_estimate_s = s.final_cost(c, emb)
        except FeedbackNLPError as exc:
            t.status, t.reason = "failed", f"could not be estimated: {exc}"
            continue
        reserve = max(t.final_estimate_s, best.final_estimate_s if best else 0.0)
        planned = next((f for f in range(len(folds), 0, -1)
                        if (0 if c.zero_shot else f - 1) * fold_cost + fold_cost + reserve <= s.clock.left()), 0)
        # the floor is not priced (its fold_cost of 0 is "not estimated"): the card showed "estimated s 0.0"
        t.estimate_s = None if t is baseline else fold_cost * (1 if c.zero_shot else len(folds))
        if planned == 0:
            t.reason = (f"skipped for the budget: about {fold_cost:.0f} s per fold and {t.final_estimate_s:.0f} s to "
                        f"train it on every row; {max(s.clock.left(), 0):.0f} s were left")
            continue
        start = time.perf_counter()
        try:
            zero = s.zero_shot_model(c) if c.zero_shot else None
            for i, (train, test) in enumerate(folds[:planned]):
                spent = time.perf_counter() - start
                if t is baseline and i:  # its own final training is the reserve: it is the fallback
                    reserve = s.measured_final(c, spent, i, len(folds))
                if i and spent / i + reserve > s.clock.left():
                    t.reason = f"stopped after {i} of {len(folds)} folds for the budget"
                    break
                f1, acc = s.run_fold(c, train, test, emb, zero)
                t.macro_f1.append(f1)
                t.accuracy.append(acc)
        except FeedbackNLPError as exc:
            t.status, t.reason = "failed", str(exc)
            t.macro_f1, t.accuracy = [], []
        t.seconds = time.perf_counter() - start
        if t.macro_f1:
            t.status = "measured"
            if planned < len(folds) and not t.reason:
                t.reason = f"{planned} of {len(folds)} folds fit the budget"
            # the folds measured this head's real speed here: that, not the pilots' model, prices its final
            # training (on banking77 the pilots' straight line missed the slower convergence on 10k backlog rows)
            t.final_estimate_s = s.measured_final(c, t.seconds, len(t.macro_f1), len(folds))
            if t is baseline:
                s.logreg_fold = (t.seconds / len(t.macro_f1), len(folds[0][0]))
            if best is None or _better(t, best):
                best = t
    if best is None:
        best = baseline
    if best.final_estimate_s > s.clock.left() and best is not baseline:
        best.reason = (f"scored best, but training it on every row needs about {best.final_estimate_s:.0f} s and "
                       f"{s.clock.left():.0f} s were left")
        best = baseline
    if best is baseline and not baseline.macro_f1:
        baseline.reason = "the floor: trained without a measurement, " + (baseline.reason or "no head could be measured")
    for t in trials:
        if t is best and not t.reason and t.macro_f1:
            t.reason = "best cross-validated macro-F1" if len([x for x in trials if x.macro_f1]) > 1 else \
                "the only head measured within the budget"
    return Selection(chosen=best.candidate, rows=[t.row(t is best) for t in trials], budget_s=s.budget,
                     seconds=s.clock.elapsed(), folds=len(folds), embeddings=emb,
                     backlog=s.backlog, final_estimate_s=best.final_estimate_s, embedder=s.embedder)
