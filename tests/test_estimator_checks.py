"""scikit-learn's own estimator checks on TagClassifier, with a pass-through embedder.

The checks feed numeric arrays; the pass-through embedder (a test double with no fixed dimension) lets
TagClassifier take them as already-embedded input, which is the path every real embedder also ends in.
Every check sklearn generates runs, except those in NOT_APPLICABLE, each with the reason it does not apply
to a text estimator; a test fails if that list names a check sklearn no longer has, so it stays honest.
"""

import warnings

import numpy as np
import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from feedback_nlp import InvalidInputError
from feedback_nlp.embedding import BaseEmbedder
from feedback_nlp.tagging import TagClassifier


class PassThroughEmbedder(BaseEmbedder):
    """Takes numeric rows as their own embeddings; refuses text. ``dim=None``: any width is accepted."""

    model_id = "pass-through@1"
    dim = None  # type: ignore[assignment]

    def encode(self, texts):
        if isinstance(texts, str) or any(isinstance(t, str) for t in texts):
            raise InvalidInputError("the pass-through embedder takes numeric rows only")
        return np.asarray(texts, dtype=np.float32)


NOT_APPLICABLE = {
    "check_dtype_object": "a 2-D object array is not embeddings here; object values are texts (1-D), and the "
                          "check wants scikit-learn's float-conversion message for a dict in a cell",
    "check_array_api_input": "embeddings are NumPy float32 arrays; array-API namespaces are not supported",
    "check_sample_weight_equivalence_on_dense_data": "sets cv to a list of explicit splits; cv is a number of folds "
                                                     "here (the folds keep a text's copies together). Weights equal "
                                                     "to repeated rows are checked in test_hostile_inputs_round13d",
}


def _estimator():
    return TagClassifier(PassThroughEmbedder(), cv=2)


def _checks():
    for est, check in estimator_checks_generator(_estimator(), legacy=True, mark="skip"):
        yield getattr(check, "func", check).__name__, est, check


CHECKS = list(_checks())


@pytest.mark.parametrize("name, estimator, check", [c for c in CHECKS if c[0] not in NOT_APPLICABLE],
                         ids=[c[0] for c in CHECKS if c[0] not in NOT_APPLICABLE])
def test_sklearn_check(name, estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check(estimator)


def test_not_applicable_list_is_current():
    import sklearn.utils.estimator_checks as checks

    names = {c[0] for c in CHECKS}
    # a name no scikit-learn check has is stale; one this version does not generate (check_array_api_input
    # before 1.9, for an estimator without array-API support) is not
    stale = {n for n in NOT_APPLICABLE if n not in names and not callable(getattr(checks, n, None))}
    assert not stale, stale
    # the core behaviour checks are among those that run
    assert {"check_classifiers_train", "check_classifiers_classes", "check_fit2d_predict1d",
            "check_estimators_nan_inf", "check_estimators_unfitted", "check_pipeline_consistency",
            "check_classifiers_one_label", "check_fit_idempotent", "check_decision_proba_consistency"} <= names - set(NOT_APPLICABLE)


def test_pass_through_embedder_refuses_text():
    clf = TagClassifier(PassThroughEmbedder(), cv=2).fit(np.eye(4)[[0, 0, 1, 1, 2, 2, 3, 3]] + 0.1, list("aabbccdd"))
    with pytest.raises(InvalidInputError, match="numeric rows only"):
        clf.predict(["some text"])
