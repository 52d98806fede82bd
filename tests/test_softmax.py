"""The softmax core: stable log-softmax, the loss and its gradient (notmnist.learning.softmax)."""

import numpy as np
import pytest
import scipy.optimize
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from notmnist.learning import softmax
from tests.references import loss_and_grad_plain

finite_logits = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(2, 12)),
    elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
)


@given(finite_logits)
def test_probabilities_are_finite_and_rows_sum_to_one_for_any_finite_logits(s):
    logp = softmax.log_softmax(s)
    p = np.exp(logp.astype(np.float64))
    assert np.isfinite(p).all()
    assert np.all(logp <= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def problem(seed, n=20, d=6, k=4, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    W = (scale * rng.normal(size=(d, k))).astype(dtype)
    b = rng.normal(size=k).astype(dtype)
    return X, rng.integers(0, k, n), W, b


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0, 10), st.floats(0, 1))
def test_loss_is_non_negative_and_at_least_the_penalty(seed, scale, l2):
    X, y, W, b = problem(seed, scale=scale)
    loss, _, _ = softmax.loss_and_grad(X, y, W, b, l2)
    assert loss >= 0.5 * l2 * np.sum(W * W) - 1e-12


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31), st.floats(0, 1))
def test_gradient_matches_finite_differences(seed, l2):
    X, y, W, b = problem(seed)
    k = W.shape[1]

    def unpack(theta):
        return theta[:-k].reshape(W.shape), theta[-k:]

    def loss(theta):
        return softmax.loss_and_grad(X, y, *unpack(theta), l2)[0]

    def grad(theta):
        _, dW, db = softmax.loss_and_grad(X, y, *unpack(theta), l2)
        return np.concatenate([dW.ravel(), db])

    theta = np.concatenate([W.ravel(), b])
    error = scipy.optimize.check_grad(loss, grad, theta)
    assert error < 1e-5 * max(1.0, np.linalg.norm(grad(theta)))


def test_loss_and_gradient_stay_finite_for_logits_of_1e4():
    X = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    W = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    b = np.zeros(3, dtype=np.float32)
    y = np.array([1, 1])  # the first row puts its wrong class 2e4 ahead: loss about 1e4, not inf
    loss, dW, db = softmax.loss_and_grad(X, y, W, b, 0.0)
    assert np.isfinite(loss) and 4e3 < loss < 2e4
    assert np.isfinite(dW).all() and np.isfinite(db).all()
    assert np.isfinite(softmax.log_softmax(X @ W)).all()


def test_gradient_is_float32_for_float32_inputs():
    X, y, W, b = problem(0, dtype=np.float32)
    _, dW, db = softmax.loss_and_grad(X, y, W, b, 0.1)
    assert dW.dtype == np.float32 and db.dtype == np.float32


def test_objective_in_chunks_equals_the_whole_batch_loss_and_gradient():
    X, y, W, b = problem(1, n=53, dtype=np.float32)
    whole = softmax.loss_and_grad(X, y, W, b, 0.3)
    chunked = softmax.objective(X, y, W, b, 0.3, chunk=7)
    assert chunked[0] == pytest.approx(whole[0], rel=1e-6)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(chunked[2], whole[2], rtol=1e-4, atol=1e-6)


def test_loss_and_accuracy_are_the_mean_cross_entropy_and_the_share_right():
    X, y, W, b = problem(2, n=31, dtype=np.float32)
    loss, accuracy = softmax.loss_and_accuracy(X, y, W, b, chunk=8)
    assert loss == pytest.approx(softmax.loss_and_grad(X, y, W, b, 0.0)[0], rel=1e-5)
    assert accuracy == pytest.approx(np.mean((X @ W + b).argmax(axis=1) == y))


def test_predict_proba_matches_scipy_softmax():
    X, _, W, b = problem(3)
    np.testing.assert_allclose(softmax.predict_proba(X, W, b), scipy.special.softmax(X @ W + b, axis=1), rtol=1e-10)


@given(finite_logits)
def test_log_softmax_matches_scipy(s):
    expected = scipy.special.log_softmax(s.astype(np.float64), axis=1)
    np.testing.assert_allclose(softmax.log_softmax(s), expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31), st.floats(0, 10), st.floats(0, 1), st.sampled_from([np.float32, np.float64]))
def test_the_fast_loss_and_gradient_equal_the_formulas_written_plainly(seed, scale, l2, dtype):
    X, y, W, b = problem(seed, scale=scale, dtype=dtype)
    fast = softmax.loss_and_grad(X, y, W, b, l2)
    plain = loss_and_grad_plain(X, y, W, b, l2)
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    assert fast[0] == pytest.approx(plain[0], rel=tolerance, abs=tolerance)
    for got, expected in zip(fast[1:], plain[1:]):
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance)
