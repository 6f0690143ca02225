"""tflc.grad and tflc.value_and_grad: against finite differences, composed with jit both ways."""

import numpy as np
import pytest

import tflc

Error = tflc.Error

rng = np.random.default_rng(2)
X = rng.normal(size=(5, 4))
Y = rng.normal(size=(5, 4))
W = rng.normal(size=(4, 3))
B = rng.normal(size=3)
ONE_HOT = np.eye(3)[rng.integers(0, 3, size=5)]


def numerical_grad(f, args, argnum, eps=1e-6):
    """Central differences of the scalar f with respect to args[argnum], element by element."""
    x = np.array(args[argnum], dtype=np.float64)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        shifted = []
        for step in (eps, -eps):
            moved = x.copy()
            moved[i] += step
            shifted.append(float(f(*args[:argnum], moved, *args[argnum + 1:])))
        grad[i] = (shifted[0] - shifted[1]) / (2 * eps)
    return grad


def mlp_loss(W, b, x, y):
    logits = tflc.relu(x) @ W + b
    return tflc.mean(tflc.softmax_cross_entropy_with_logits(labels=y, logits=logits))


FUNCTIONS = [  # name, f, args (float64: the differences are exact enough to compare)
    ("mlp", mlp_loss, (W, B, X, ONE_HOT)),
    ("elementwise", lambda x, y: tflc.sum(tflc.sin(x) * y + tflc.exp(x / 4) - x ** 2), (X, Y)),
    ("where", lambda x, y: tflc.sum(tflc.where(x > 0, x * y, tflc.tanh(y) * x)), (X, Y)),
    ("indexing", lambda x, y: tflc.sum(x[:, 1:3] * y[:, :2]) + (x[2] @ y[3]), (X, Y)),
    ("shapes", lambda x, y: tflc.sum(x.T.reshape(2, 10) ** 3) + tflc.mse(x, y), (X, Y)),
    ("reductions", lambda x, y: tflc.sum(tflc.max(x + y, axis=1) * tflc.mean(x, axis=1)), (X, Y)),
    ("log_softmax", lambda x, y: tflc.sum(tflc.log_softmax(x, axis=0) * y), (X, Y)),
    ("sigmoid_xent",
     lambda x, y: tflc.mean(tflc.sigmoid_cross_entropy_with_logits(labels=tflc.sigmoid(y),
                                                                   logits=x)), (X, Y)),
    ("concat", lambda x, y: tflc.sum(tflc.softplus(tflc.concat([x, y * x], axis=1))), (X, Y)),
]


@pytest.mark.parametrize("name, f, args", FUNCTIONS, ids=[c[0] for c in FUNCTIONS])
def test_grad_matches_finite_differences(name, f, args):
    value_f = tflc.jit(f)
    for argnum in range(2):
        got = tflc.jit(tflc.grad(f, argnums=argnum))(*args)
        expected = numerical_grad(value_f, args, argnum)
        assert got.shape == np.shape(args[argnum]) and got.dtype == np.float64
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_argnums_tuple_value_and_grad_and_every_composition_agree():
    expected_value = tflc.jit(mlp_loss)(W, B, X, ONE_HOT)
    expected = [numerical_grad(tflc.jit(mlp_loss), (W, B, X, ONE_HOT), n) for n in (0, 1)]
    value, grads = tflc.jit(tflc.value_and_grad(mlp_loss, argnums=(0, 1)))(W, B, X, ONE_HOT)
    np.testing.assert_allclose(value, expected_value)
    for composed in (tflc.jit(tflc.grad(mlp_loss, (0, 1))), tflc.grad(tflc.jit(mlp_loss), (0, 1)),
                     tflc.grad(mlp_loss, (0, 1))):
        for got, want in zip(composed(W, B, X, ONE_HOT), expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_a_grad_called_on_arrays_compiles_once_per_signature():
    g = tflc.grad(mlp_loss)
    g(W, B, X, ONE_HOT)
    g(W, B, X[:2], ONE_HOT[:2])
    assert g._jitted.stats()["compiles"] == 1


def test_gradients_of_pytrees_have_their_structure():
    def loss(params, x):
        h = tflc.tanh(x @ params["layers"][0]["W"] + params["layers"][0]["b"])
        return tflc.sum(h ** 2) * params["scale"]

    params = {"layers": [{"W": W, "b": B}], "scale": np.float64(0.5)}
    grads = tflc.jit(tflc.grad(loss))(params, X)
    assert set(grads) == {"layers", "scale"} and set(grads["layers"][0]) == {"W", "b"}
    h = np.tanh(X @ W + B)
    np.testing.assert_allclose(grads["scale"], np.sum(h ** 2))
    np.testing.assert_allclose(grads["layers"][0]["b"], (0.5 * 2 * h * (1 - h ** 2)).sum(0))


def test_a_training_step_inside_jit():
    @tflc.jit
    def step(W, b, x, y, lr):
        loss, (gW, gb) = tflc.value_and_grad(mlp_loss, argnums=(0, 1))(W, b, x, y)
        return loss, W - lr * gW, b - lr * gb

    losses, w, b = [], W, B
    for _ in range(20):
        loss, w, b = step(w, b, X, ONE_HOT, 0.5)
        losses.append(float(loss))
    assert losses[-1] < losses[0] / 2 and step.stats()["compiles"] == 1


def test_second_derivative():
    def cube_sum(x):
        return tflc.sum(x ** 3)

    second = tflc.grad(lambda x: tflc.sum(tflc.grad(cube_sum)(x)))
    np.testing.assert_allclose(second(X), 6 * X)


def test_gradient_of_a_float32_function_is_float32():
    g = tflc.grad(mlp_loss)(W.astype(np.float32), B.astype(np.float32), X.astype(np.float32),
                            ONE_HOT.astype(np.float32))
    assert g.dtype == np.float32


def test_grad_needs_a_float_scalar():
    with pytest.raises(Error, match=r"grad of <lambda>: it returned a f64\[N,4\] value, not a "
                                    "scalar") as info:
        tflc.grad(lambda x: x * 2)(X)
    assert "tflc.sum" in info.value.hint
    with pytest.raises(Error, match="returned a tuple, not a scalar"):
        tflc.grad(lambda x: (x.sum(), x))(X)
    with pytest.raises(Error, match="gradients need a float result"):
        tflc.grad(lambda x, n: tflc.sum(n))(X, np.arange(3))
    with pytest.raises(Error, match="argument 1 is i64"):
        tflc.grad(lambda x, n: tflc.sum(x), argnums=1)(X, np.arange(3))
    with pytest.raises(Error, match="argnums=2, but it was called with 2 positional"):
        tflc.grad(lambda x, y: tflc.sum(x), argnums=2)(X, Y)
    with pytest.raises(Error, match="argnums must be an int or a tuple of ints"):
        tflc.grad(mlp_loss, argnums=[0, 1])
