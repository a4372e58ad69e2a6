"""Ensembles: averaging, vote tie policies, stacking without leakage, balanced resampling; ONE ONNX graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

from training.calibration import fit_calibrator
from training.deep import DeepConfigError, onnx_bytes
from training.ensemble import (
    AbstainError,
    AveragingEnsemble,
    BalancedEnsemble,
    StackingEnsemble,
    VotingEnsemble,
    balanced_chunks,
    ensemble_scores,
    export_ensemble,
    fold_plan,
    out_of_fold_probabilities,
)
from training.errors import TrainingError
from training.graph import onnx_predict

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def fast_members() -> tuple:
    tree = DecisionTreeClassifier(max_depth=3, random_state=0)
    return (LogisticRegression(max_iter=500), GaussianNB(), tree)


@pytest.fixture(scope="module", params=[2, 3], ids=["binary", "multiclass"])
def data(request) -> tuple[np.ndarray, np.ndarray]:
    return make_classification(260, 6, n_informative=4, n_redundant=0, n_classes=request.param,
                               random_state=5)


def parity(ens, X: np.ndarray, y: np.ndarray, method: str) -> float:
    """Max |ONNX - native| of ``ens`` + a calibrator fitted on the first 40 rows, on the rest."""
    cal_rows, rest = slice(0, 40), slice(40, None)
    y_idx = np.searchsorted(ens.classes_, y[cal_rows])
    cal = fit_calibrator(method, ensemble_scores(ens, X[cal_rows]), y_idx, len(ens.classes_), "probability")
    label, proba = onnx_predict(onnx_bytes(export_ensemble(ens, cal)), X[rest])
    native = cal.predict_proba(ensemble_scores(ens, X[rest]))
    assert np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    return float(np.abs(proba - native).max())


@pytest.mark.parametrize("kind", ["averaging", "vote", "stacking", "balanced"])
def test_every_ensemble_exports_one_graph_with_calibrator_and_parity(data, kind: str) -> None:
    X, y = data
    ens = {
        "averaging": AveragingEnsemble(members=fast_members(), weights=(2.0, 1.0, 1.0)),
        "vote": VotingEnsemble(members=fast_members()),
        "stacking": StackingEnsemble(members=fast_members()[:2], k=10, meta_cv=3),
        "balanced": BalancedEnsemble(base=LogisticRegression(max_iter=500), H=3),
    }[kind].fit(X[:160], y[:160])
    for method in ("temperature", "sigmoid", "isotonic", "beta"):
        assert parity(ens, X[160:], y[160:], method) <= 1e-4
    assert ens.card_details()["ensemble"]["kind"] == type(ens).__name__


def test_vote_tie_policies(data) -> None:
    X, y = data
    two = (LogisticRegression(max_iter=500), DecisionTreeClassifier(max_depth=2, random_state=0))
    abstain = VotingEnsemble(members=two, tie_policy="abstain").fit(X[:160], y[:160])
    idx = abstain.predict_or_abstain(X[160:])
    votes = abstain.votes(X[160:])
    tied = (votes == votes.max(axis=1, keepdims=True)).sum(axis=1) > 1
    assert tied.any(), "two disagreeing members must produce ties on this data"
    assert np.all(idx[tied] == -1) and np.all(idx[~tied] >= 0)
    label, _ = onnx_predict(onnx_bytes(export_ensemble(abstain)), X[160:])
    assert np.array_equal(label, idx)  # the graph abstains on exactly the same rows
    with pytest.raises(AbstainError, match="tie_policy='abstain'"):
        abstain.predict(X[160:])
    seeded = [VotingEnsemble(members=two, tie_policy="random", random_state=s).fit(X[:160], y[:160])
              for s in (0, 0, 1)]
    preds = [m.predict(X[160:]) for m in seeded]
    assert np.array_equal(preds[0], preds[1])  # same seed, same answers
    assert all(len(m.predict(X[160:])) == len(X[160:]) for m in seeded)  # random never abstains
    with pytest.raises(DeepConfigError, match="tie_policy"):
        VotingEnsemble(members=two, tie_policy="coin").fit(X, y)


class RecordingLogisticRegression(LogisticRegression):
    """A real logistic regression that refuses to predict any row it was fitted on."""

    log: list[tuple[set[bytes], set[bytes]]] = []

    def fit(self, X, y, sample_weight=None):
        self.seen_ = {np.asarray(r, dtype=np.float32).tobytes() for r in X}
        return super().fit(X, y, sample_weight)

    def predict_proba(self, X):
        rows = {np.asarray(r, dtype=np.float32).tobytes() for r in X}
        RecordingLogisticRegression.log.append((self.seen_, rows))
        return super().predict_proba(X)


def test_stacking_meta_features_are_out_of_fold_by_construction() -> None:
    X, y = make_classification(200, 5, random_state=1)
    plan = fold_plan(y, 10, seed=0)
    assert len(plan) == 10
    predicted = np.concatenate([pred for _, pred in plan])
    assert sorted(predicted.tolist()) == list(range(len(y)))  # each row predicted exactly once
    assert all(np.intersect1d(fit, pred).size == 0 for fit, pred in plan)  # never by a model that saw it
    RecordingLogisticRegression.log = []
    out_of_fold_probabilities(RecordingLogisticRegression(max_iter=500), X, y, 2, plan, seed=0)
    assert len(RecordingLogisticRegression.log) == 10
    assert all(not (seen & rows) for seen, rows in RecordingLogisticRegression.log)
    # behavioural proof: 1-NN memorizes; on random labels in-fold accuracy is 100%, out-of-fold is chance
    noise = np.random.default_rng(0).integers(0, 2, len(y))
    oof = out_of_fold_probabilities(KNeighborsClassifier(1), X, noise, 2, fold_plan(noise, 10, 0), 0)
    assert KNeighborsClassifier(1).fit(X, noise).score(X, noise) == 1.0
    assert np.mean(oof.argmax(axis=1) == noise) < 0.65


def test_stacking_reports_whether_it_beats_every_member() -> None:
    X, y = make_classification(300, 6, n_informative=4, n_redundant=0, random_state=2)
    stack = StackingEnsemble(members=fast_members(), k=10, meta_cv=3).fit(X, y)
    rep = stack.report_
    assert rep["k_blocks"] == 10 and rep["meta_C"] in rep["meta_C_grid"]
    assert set(rep["members_validation"]) == {"LogisticRegression", "GaussianNB", "DecisionTreeClassifier"}
    stack_loss = rep["stack_validation"]["log_loss"]
    expected = all(stack_loss < m["log_loss"] for m in rep["members_validation"].values())
    assert rep["beats_every_member"] is expected
    assert ("beats every member" in rep["verdict"]) is expected
    assert stack.card_details()["ensemble"]["beats_every_member"] is expected


@pytest.mark.parametrize("k", [1, 5])
def test_stacking_refuses_too_few_blocks(k: int) -> None:
    X, y = make_classification(100, 4, random_state=0)
    with pytest.raises(DeepConfigError, match="k="):
        StackingEnsemble(members=fast_members(), k=k).fit(X, y)
    with pytest.raises(DeepConfigError, match="k=1"):
        fold_plan(y, 1, 0)


def test_balanced_ensemble_improves_minority_recall() -> None:
    X, y = make_classification(2000, 8, n_informative=3, n_redundant=2, weights=[0.9], flip_y=0.02,
                               class_sep=0.6, random_state=3)
    Xtr, ytr, Xte, yte = X[:1400], y[:1400], X[1400:], y[1400:]
    plain = LogisticRegression(max_iter=1000).fit(Xtr, ytr)
    # majority:minority is about 9:1, so 9 chunks make each dataset about balanced
    balanced = BalancedEnsemble(base=LogisticRegression(max_iter=1000), H=9).fit(Xtr, ytr)
    recall = [float(np.mean(m.predict(Xte)[yte == 1] == 1)) for m in (plain, balanced)]
    assert recall[1] > recall[0] + 0.2, recall
    chunks = balanced_chunks(ytr, 9, seed=0)
    minority = set(np.flatnonzero(ytr == 1))
    assert all(minority <= set(c) for c in chunks)  # minority copied into every dataset
    majority_parts = [set(c) - minority for c in chunks]
    assert sum(len(p) for p in majority_parts) == int(np.sum(ytr == 0))  # majority chunked, disjoint
    assert len(set().union(*majority_parts)) == int(np.sum(ytr == 0))
    assert balanced.report_["H"] == 9


def test_balanced_ensemble_refuses_impossible_settings() -> None:
    y = np.array([0] * 50 + [1] * 3)
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    with pytest.raises(DeepConfigError, match="H=1"):
        BalancedEnsemble(H=1).fit(X, y)
    with pytest.raises(TrainingError, match="minority class has 3 rows"):
        BalancedEnsemble(H=3).fit(X, y)
    with pytest.raises(DeepConfigError, match="members"):
        AveragingEnsemble(members=("logistic_regression",)).fit(X, y)
    with pytest.raises(DeepConfigError, match="no_such_family"):
        AveragingEnsemble(members=("logistic_regression", "no_such_family")).fit(X, y)
