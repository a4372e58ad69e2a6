"""Naive Bayes's log-odds response (what isotonic reads): native = ONNX, same order as predict_proba."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_wine
from sklearn.naive_bayes import GaussianNB

from training.exporters import export_naive_bayes
from training.graph import run_output
from training.response import response


@pytest.mark.parametrize(("binary", "p_rounds"), [(True, False), (False, True)],
                         ids=["wine-binary", "digits"])
def test_graph_log_odds_match_native_and_keep_probability_order(binary: bool, p_rounds: bool) -> None:
    X, y = load_digits(return_X_y=True) if not binary else load_wine(return_X_y=True)
    if binary:
        y = (y == 1).astype(int)
    X = X.astype(np.float32).astype(np.float64)
    est = GaussianNB().fit(X, y)
    want = response(est, X, monotone=True)
    P = response(est, X)
    assert want.shape == P.shape
    moderate = (P > 1e-6) & (P < 1 - 1e-6)  # where log(p) - log(1 - p) of predict_proba is exact enough
    assert moderate.any()
    p = P[moderate]
    np.testing.assert_allclose(want[moderate], np.log(p) - np.log1p(-p), rtol=1e-6, atol=1e-6)
    order = np.argsort(want, axis=0, kind="stable")  # predict_proba's order, up to its own rounding
    assert np.all(np.diff(np.take_along_axis(P, order, axis=0), axis=0) >= -1e-12)
    # finer where p rounds (digits: to 1), the same elsewhere
    assert (len(np.unique(want)) > len(np.unique(P))) == p_rounds
    base = export_naive_bayes(est, X.shape[1], len(est.classes_), "monotone_response")
    got = run_output(base, X).reshape(want.shape)
    assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) < 1e-12
