"""What traced Python means: operators, indexing, .shape, weak scalars, constants, pytrees,
static arguments."""

from collections import namedtuple

import numpy as np
import pytest

import tflc

Error = tflc.Error

rng = np.random.default_rng(1)
X = rng.normal(size=(5, 4)).astype(np.float32)
Y = rng.normal(size=(5, 4)).astype(np.float32)
W = rng.normal(size=(4, 3)).astype(np.float32)


def check(fn, *args, expected):
    got = tflc.jit(fn)(*args)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn", [
    lambda x, y: x + y, lambda x, y: x - y, lambda x, y: x * y, lambda x, y: x / (y + 3),
    lambda x, y: np.abs(x) ** y, lambda x, y: -x, lambda x, y: abs(x), lambda x, y: +x,
    lambda x, y: 1 - x, lambda x, y: 2 / (x * x + 1), lambda x, y: 2 ** x,
    lambda x, y: x.T @ y, lambda x, y: (x > y) & (x < 0.5), lambda x, y: (x >= y) | ~(x <= 0),
    lambda x, y: x == y, lambda x, y: x != y,
], ids=lambda fn: None)
def test_operators_mean_what_they_mean_in_numpy(fn):
    check(fn, X, Y, expected=fn(X, Y))


def test_ndarray_on_the_left_and_numpy_ufuncs():
    bias = np.arange(4, dtype=np.float32)
    check(lambda x: bias + x, X, expected=bias + X)
    check(lambda x: np.exp(x) - np.maximum(x, bias), X, expected=np.exp(X) - np.maximum(X, bias))


@pytest.mark.parametrize("index", [
    np.s_[:, 1:3], np.s_[..., 0], np.s_[None], np.s_[:, None, :2], np.s_[:, -1], np.s_[:, 1:],
    np.s_[:, ::1], np.s_[:, 2:1], np.s_[1], np.s_[-1, 2], np.s_[1:3, ...], np.s_[:, :, None],
])
def test_indexing(index):
    check(lambda x: x[index], X, expected=X[index])


def test_indexing_the_batch_dim_makes_it_static():
    first = tflc.jit(lambda x: x[0])
    np.testing.assert_array_equal(first(X), X[0])
    np.testing.assert_array_equal(first(X[:3]), X[0])
    assert first.stats()["compiles"] == 2
    assert first.stats()["reasons"][1] == "x: dim 0 5 → 3 (made static when traced)"


def test_shape_dtype_ndim_and_methods():
    def f(x):
        assert x.ndim == 2 and x.dtype == np.float32 and x.shape[1] == 4
        rows = x.reshape(x.shape[0] * 2, 2)
        return (x.sum() / x.shape[0], rows, x.T.max(0), x.astype(np.float64).mean(axis=1),
                x.transpose(1, 0).argmax(0), x.prod(1, keepdims=True), x.min(), x.argmin(axis=0))

    got = tflc.jit(f)(X)
    expected = (X.sum() / 5, X.reshape(10, 2), X.T.max(0), X.astype(np.float64).mean(axis=1),
                X.T.argmax(0), X.prod(1, keepdims=True), X.min(), X.argmin(0))
    for g, e in zip(got, expected):
        assert g.dtype == e.dtype
        np.testing.assert_allclose(g, e, rtol=1e-5)


def test_symbolic_shape_is_a_traced_size_and_static_dims_are_ints():
    seen = []
    tflc.jit(lambda x: seen.append(x.shape) or x)(X)
    size, width = seen[0]
    assert width == 4 and isinstance(width, int)
    assert "i64[]" in repr(size)


def test_python_scalars_are_weak():
    check(lambda x: x * 2 + 1.5, X, expected=X * 2 + np.float32(1.5))
    check(lambda x: x * 2, X.astype(np.float64), expected=X.astype(np.float64) * 2)
    check(lambda x: x + 1, np.arange(3, dtype=np.int32), expected=np.arange(1, 4, dtype=np.int32))
    check(lambda x, lr: x * lr, X, 0.5, expected=X * np.float32(0.5))  # a Python float argument
    check(lambda x: x / np.sqrt(2.0), X, expected=X / np.float32(np.sqrt(2.0)))  # NumPy scalars
    check(lambda: tflc.where(True, 1.0, 2.0), expected=np.float64(1.0))  # only weak: NumPy's


def test_a_python_float_does_not_silently_truncate_into_an_integer_tensor():
    with pytest.raises(Error, match="float 0.5 cannot take the dtype i32"):
        tflc.jit(lambda n: n * 0.5)(np.arange(3, dtype=np.int32))


def test_closure_arrays_are_constants_of_their_own_dtype():
    table = rng.normal(size=(4, 3)).astype(np.float32)
    check(lambda x: x @ table, X, expected=X @ table)
    wide = table.astype(np.float64)
    with pytest.raises(Error, match="different dtypes f32 and f64"):
        tflc.jit(lambda x: x @ wide)(X)


def test_pytrees_in_and_out():
    Pair = namedtuple("Pair", "first second")

    def f(params, xs, pair):
        h = xs[0] @ params["W"] + params["b"]
        return {"h": h, "parts": [h.sum(), None, (xs[1],)]}, Pair(pair.second, pair.first)

    params = {"W": W, "b": np.ones(3, np.float32)}
    out, swapped = tflc.jit(f)(params, [X, Y], Pair(1.0, np.float32(2)))
    h = X @ W + 1
    np.testing.assert_allclose(out["h"], h, rtol=1e-5)
    np.testing.assert_allclose(out["parts"][0], h.sum(), rtol=1e-5)
    assert out["parts"][1] is None and isinstance(out["parts"][2], tuple)
    np.testing.assert_array_equal(out["parts"][2][0], Y)
    assert isinstance(swapped, Pair) and swapped.first == 2 and swapped.second == 1


def test_static_arguments_are_python_values():
    def f(x, activation, scale=1.0):
        if activation == "relu":  # Python control flow on a static value is unrolled
            x = tflc.relu(x)
        return x * scale

    g = tflc.jit(f, static_argnames="activation")
    np.testing.assert_allclose(g(X, "relu"), np.maximum(X, 0))
    np.testing.assert_allclose(g(X, "none", 2.0), X * 2)
    np.testing.assert_allclose(g(X, "none", 3.0), X * 3)
    assert g.stats()["compiles"] == 2  # scale is a weak run-time scalar
    assert g.stats()["reasons"][1] == "static argument activation: 'relu' → 'none'"

    @tflc.jit(static_argnums=1)
    def powers(x, n):
        return [x ** i for i in range(n)]

    assert len(powers(X, 3)) == 3


def test_loops_over_static_sizes_unroll():
    def total(x):
        acc = 0.0
        for row in x:
            acc = acc + row
        return acc

    g = tflc.jit(total, symbolic_dims={"x": ()})
    np.testing.assert_allclose(g(X), X.sum(0), rtol=1e-5)


def test_results_never_alias_the_arguments():
    x = X.copy()
    same, row, turned = tflc.jit(lambda x: (x, x[1:], x.T))(x)
    for result in (same, row, turned):
        result += 1
    np.testing.assert_array_equal(x, X)


def test_jit_inside_jit_is_traced_inline():
    inner = tflc.jit(lambda x: x * 2)
    outer = tflc.jit(lambda x: inner(x) + 1)
    np.testing.assert_allclose(outer(X), X * 2 + 1)
    assert inner.stats()["compiles"] == 0


def test_the_traced_ir_names_arguments_and_keeps_the_batch_symbolic():
    text = tflc.dump(lambda x, W: tflc.relu(x @ W), X, W)
    assert text.splitlines()[0] == "func @lambda<N>(%x: f32[N,4], %W: f32[4,3]) -> (f32[N,3]) {"
    assert "matmul %x, %W" in text and "test_tracing.py" in text
