"""Small .tfl models from source to numbers, checked against NumPy computed directly."""

from pathlib import Path

import numpy as np
import pytest

import tflc

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_hello():
    model = tflc.load(EXAMPLES / "hello.tfl")
    assert model.run("a") == 9.0 and model.run(["d", "e"]) == [3.0, 3.0]


def test_state_updated_by_a_step():
    model = tflc.load(EXAMPLES / "counter.tfl")
    for number in (5, 7):
        model.run("c_update", number=number)
    assert model.state["c"] == 62 and model.state["c"].dtype == np.int32


def test_least_squares_against_numpy():
    model = tflc.load(EXAMPLES / "linear_regression.tfl")
    x = np.array([1, 2, 3, 4, 5], np.float32)
    y = np.array([3.1, 4.9, 7.2, 8.8, 11.1], np.float32)
    slope, intercept, error = model.run(["slope", "intercept", "error"], x=x, y=y)
    expected_slope, expected_intercept = np.polyfit(x, y, 1)
    np.testing.assert_allclose([slope, intercept], [expected_slope, expected_intercept],
                               rtol=1e-5)
    np.testing.assert_allclose(error, np.mean((slope * x + intercept - y) ** 2), rtol=1e-5)


SOFTMAX_REGRESSION = """\
input x: f32[N, 4]
input y: f32[N, 3]
param W: f32[4, 3] = normal(stddev=0.1)
param b: f32[3] = zeros()
logits = x @ W + b
loss = mean(softmax_cross_entropy_with_logits(labels=y, logits=logits))
train fit = sgd(loss, lr=0.5)
"""


def numpy_loss_and_grads(x, y, W, b):
    logits = x @ W + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.sum(y * np.log(p), axis=1))
    d_logits = (p - y) / len(x)
    return loss, x.T @ d_logits, d_logits.sum(axis=0)


def test_a_training_step_is_gradient_descent():
    model = tflc.loads(SOFTMAX_REGRESSION, "softmax.tfl", seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 8)]
    W, b = model.params["W"].astype(np.float64), model.params["b"].astype(np.float64)
    expected_loss, dW, db = numpy_loss_and_grads(x, y, W, b)
    loss = model.run("fit", fetch="loss", x=x, y=y)
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)
    np.testing.assert_allclose(model.params["W"], W - 0.5 * dW, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(model.params["b"], b - 0.5 * db, rtol=1e-4, atol=1e-6)
    losses = [float(model.run("fit", fetch="loss", x=x, y=y)) for _ in range(20)]
    assert losses[-1] < losses[0] < expected_loss


def test_training_then_checkpoint_round_trip(tmp_path):
    model = tflc.loads(SOFTMAX_REGRESSION, "softmax.tfl")
    x = np.ones((2, 4), np.float32)
    y = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    model.run("fit", x=x, y=y)
    model.save(tmp_path / "m.npz")
    fresh = tflc.loads(SOFTMAX_REGRESSION, "softmax.tfl", seed=9)
    fresh.restore(tmp_path / "m.npz")
    np.testing.assert_array_equal(fresh.run("logits", x=x), model.run("logits", x=x))


DROPOUT = """\
input x: f32[N, 1000]
input keep: f32[]
h = dropout(x, keep)
"""


def test_dropout_is_reproducible_per_seed_and_differs_run_to_run():
    x = np.ones((2, 1000), np.float32)
    first, second = (tflc.loads(DROPOUT, "d.tfl", seed=0) for _ in range(2))
    masks = [first.run("h", x=x, keep=0.5) for _ in range(2)]
    assert not (masks[0] == masks[1]).all()  # a fresh mask each run
    np.testing.assert_array_equal(second.run("h", x=x, keep=0.5), masks[0])
    other_seed = tflc.loads(DROPOUT, "d.tfl", seed=1).run("h", x=x, keep=0.5)
    assert not (other_seed == masks[0]).all()
    assert set(np.unique(masks[0])) == {0.0, 2.0} and abs((masks[0] > 0).mean() - 0.5) < 0.05


def test_source_errors_are_located():
    with pytest.raises(tflc.Error) as e:
        tflc.loads("input x: f32[N, 3]\ny = x @ x\n", "bad.tfl")
    assert str(e.value).startswith("bad.tfl:2:")
