"""The parameter-constraints shim: declared once per estimator, checked in fit, clear errors."""

import math

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from feedback_nlp import InvalidInputError
from feedback_nlp._params import HasMethods, Interval, Options, ParamsMixin, validate_params


class _Toy(ParamsMixin, BaseEstimator):
    _parameter_constraints = {
        "alpha": [Interval(float, 0, None, closed="neither")],
        "k": [Interval(int, 1, 10, closed="both"), None],
        "kind": [Options({"mean", "median"})],
        "flag": ["boolean"],
        "embedder": [HasMethods("encode"), None],
    }

    def __init__(self, alpha=1.0, k=None, kind="mean", flag=False, embedder=None):
        self.alpha, self.k, self.kind, self.flag, self.embedder = alpha, k, kind, flag, embedder


class _Enc:
    def encode(self, texts):
        return texts


@pytest.mark.parametrize("params", [
    {}, {"alpha": 3}, {"alpha": np.float32(0.5)}, {"alpha": math.inf}, {"k": 1}, {"k": np.int64(10)},
    {"kind": "median"}, {"flag": True}, {"flag": np.bool_(False)}, {"embedder": _Enc()},
])
def test_accepted_values(params):
    _Toy(**params)._validate_params()


@pytest.mark.parametrize("params, fragment", [
    ({"alpha": 0}, "alpha must be a float in (0, inf), got 0"),
    ({"alpha": -1.5}, "alpha must be a float in (0, inf)"),
    ({"alpha": math.nan}, "got nan"),
    ({"alpha": "1"}, "got '1'"),
    ({"alpha": True}, "got True"),  # a bool is not a number here
    ({"k": 0}, "k must be an int in [1, 10] or None, got 0"),
    ({"k": 11}, "got 11"),
    ({"k": 2.0}, "got 2.0"),  # an integral float is not an int
    ({"k": False}, "got False"),
    ({"kind": "avg"}, "kind must be one of {'mean', 'median'}, got 'avg'"),
    ({"kind": ["mean"]}, "got ['mean']"),  # unhashable values are rejected, not a TypeError
    ({"flag": 1}, "flag must be a bool, got 1"),
    ({"embedder": 42}, "embedder must be an object with encode() or None, got 42"),
])
def test_rejected_values_name_parameter_and_value(params, fragment):
    with pytest.raises(InvalidInputError) as err:
        _Toy(**params)._validate_params()
    assert fragment in str(err.value) and str(err.value).startswith("_Toy: ")


def test_options_do_not_confuse_bools_and_numbers():
    assert not Options({1, 2}).accepts(True)
    assert not Options({True}).accepts(1)
    assert Options({True, "auto"}).accepts(True)


def test_set_params_is_checked_at_the_next_validation():
    toy = _Toy().set_params(alpha=-1)  # like sklearn: set_params stores, fit validates
    with pytest.raises(InvalidInputError, match="alpha"):
        toy._validate_params()


def test_a_parameter_without_constraint_is_a_bug_of_the_class():
    class Forgot(_Toy):
        def __init__(self, alpha=1.0, k=None, kind="mean", flag=False, embedder=None, extra=1):
            super().__init__(alpha, k, kind, flag, embedder)
            self.extra = extra

    with pytest.raises(TypeError, match=r"no constraint for parameter\(s\) \['extra'\]"):
        Forgot()._validate_params()


def test_validate_params_function_and_bad_constraint():
    validate_params({"a": [int]}, {"a": 3}, "X")
    with pytest.raises(InvalidInputError, match="X: a must be an int, got 3.5"):
        validate_params({"a": [int]}, {"a": 3.5}, "X")
    with pytest.raises(TypeError, match="unknown parameter constraint"):
        validate_params({"a": [object()]}, {"a": 3}, "X")
    with pytest.raises(TypeError):
        Interval(str, 0, 1)
