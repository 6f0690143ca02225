"""Every tflc.* function under @tflc.jit, against NumPy computed directly."""

import numpy as np
import pytest

import tflc
from tflc import ir
from tflc.jit import __all__ as JIT_NAMES

rng = np.random.default_rng(0)
X = rng.normal(size=(6, 4)).astype(np.float32)  # the leading 6 is a symbolic dim under jit
Y = rng.normal(size=(6, 4)).astype(np.float32)
POS = np.abs(X) + 0.5
W = rng.normal(size=(4, 3)).astype(np.float32)
MASK = X > 0
LABELS = rng.integers(0, 4, size=6)
ONE_HOT = np.eye(4, dtype=np.float32)[LABELS]


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# name, the jitted function of the inputs, NumPy's answer, inputs
CASES = [
    ("neg", lambda x: tflc.neg(x), lambda x: -x, [X]),
    ("abs", lambda x: tflc.abs(x), np.abs, [X]),
    ("sign", lambda x: tflc.sign(x), np.sign, [X]),
    ("exp", lambda x: tflc.exp(x), np.exp, [X]),
    ("log", lambda x: tflc.log(x), np.log, [POS]),
    ("sqrt", lambda x: tflc.sqrt(x), np.sqrt, [POS]),
    ("rsqrt", lambda x: tflc.rsqrt(x), lambda x: 1 / np.sqrt(x), [POS]),
    ("square", lambda x: tflc.square(x), np.square, [X]),
    ("sin", lambda x: tflc.sin(x), np.sin, [X]),
    ("cos", lambda x: tflc.cos(x), np.cos, [X]),
    ("tanh", lambda x: tflc.tanh(x), np.tanh, [X]),
    ("sigmoid", lambda x: tflc.sigmoid(x), lambda x: 1 / (1 + np.exp(-x)), [X]),
    ("relu", lambda x: tflc.relu(x), lambda x: np.maximum(x, 0), [X]),
    ("softplus", lambda x: tflc.softplus(x), lambda x: np.log1p(np.exp(x)), [X]),
    ("logical_not", lambda m: tflc.logical_not(m), np.logical_not, [MASK]),
    ("pow", lambda a, b: tflc.pow(a, b), np.power, [POS, Y]),
    ("maximum", lambda a, b: tflc.maximum(a, b), np.maximum, [X, Y]),
    ("minimum", lambda a, b: tflc.minimum(a, b), np.minimum, [X, Y]),
    ("logical_and", lambda a, b: tflc.logical_and(a, b), np.logical_and, [MASK, Y > 0]),
    ("logical_or", lambda a, b: tflc.logical_or(a, b), np.logical_or, [MASK, Y > 0]),
    ("matmul", lambda a, b: tflc.matmul(a, b), np.matmul, [X, W]),
    ("clip", lambda x: tflc.clip(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5), [X]),
    ("where", lambda m, a: tflc.where(m, a, 0.0), lambda m, a: np.where(m, a, np.float32(0)),
     [MASK, Y]),
    ("cast", lambda x: tflc.cast(x, np.int32), lambda x: x.astype(np.int32), [X * 4]),
    ("sum", lambda x: tflc.sum(x, axis=1), lambda x: x.sum(axis=1), [X]),
    ("mean", lambda x: tflc.mean(x, axis=0, keepdims=True), lambda x: x.mean(0, keepdims=True),
     [X]),
    ("max", lambda x: tflc.max(x), np.max, [X]),
    ("min", lambda x: tflc.min(x, axis=[0, 1]), np.min, [X]),
    ("prod", lambda x: tflc.prod(x, axis=-1), lambda x: x.prod(axis=-1), [X]),
    ("reduce_sum", lambda x: tflc.reduce_sum(x), np.sum, [X]),
    ("reduce_mean", lambda x: tflc.reduce_mean(x, 1), lambda x: x.mean(1), [X]),
    ("reduce_max", lambda x: tflc.reduce_max(x, 0), lambda x: x.max(0), [X]),
    ("argmax", lambda x: tflc.argmax(x, axis=1), lambda x: x.argmax(1), [X]),
    ("argmin", lambda x: tflc.argmin(x, axis=0), lambda x: x.argmin(0), [X]),
    ("reshape", lambda x: tflc.reshape(x, [-1, 2]), lambda x: x.reshape(-1, 2), [X]),
    ("transpose", lambda x: tflc.transpose(x), np.transpose, [X]),
    ("expand_dims", lambda x: tflc.expand_dims(x, 1), lambda x: np.expand_dims(x, 1), [X]),
    ("squeeze", lambda x: tflc.squeeze(x, axis=1), lambda x: x.squeeze(1), [X[:, :1]]),
    ("broadcast_to", lambda x: tflc.broadcast_to(x, [2, 6, 4]),
     lambda x: np.broadcast_to(x, (2, 6, 4)), [X]),
    ("concat", lambda a, b: tflc.concat([a, b], axis=1), lambda a, b: np.concatenate([a, b], 1),
     [X, Y]),
    ("slice", lambda x: tflc.slice(x, [0, 1], [-1, 2]), lambda x: x[:, 1:3], [X]),
    ("one_hot", lambda i: tflc.one_hot(i, 4), lambda i: np.eye(4, dtype=np.float32)[i],
     [LABELS]),
    ("shape", lambda x: tflc.shape(x, 0), lambda x: np.int64(x.shape[0]), [X]),
    ("softmax", lambda x: tflc.softmax(x), softmax, [X]),
    ("log_softmax", lambda x: tflc.log_softmax(x), log_softmax, [X]),
    ("softmax_cross_entropy_with_logits",
     lambda y, x: tflc.softmax_cross_entropy_with_logits(labels=y, logits=x),
     lambda y, x: -(y * log_softmax(x)).sum(-1), [ONE_HOT, X]),
    ("sparse_softmax_cross_entropy_with_logits",
     lambda i, x: tflc.sparse_softmax_cross_entropy_with_logits(labels=i, logits=x),
     lambda i, x: -log_softmax(x)[np.arange(6), i], [LABELS, X]),
    ("sigmoid_cross_entropy_with_logits",
     lambda z, x: tflc.sigmoid_cross_entropy_with_logits(labels=z, logits=x),
     lambda z, x: np.log1p(np.exp(x)) - x * z, [ONE_HOT, X]),
    ("mse", lambda a, b: tflc.mse(a, b), lambda a, b: np.mean(np.square(a - b)), [X, Y]),
]


@pytest.mark.parametrize("name, fn, reference, inputs", CASES, ids=[c[0] for c in CASES])
def test_builtin_under_jit_matches_numpy(name, fn, reference, inputs):
    got = tflc.jit(fn)(*inputs)
    expected = np.asarray(reference(*inputs))
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, fn, reference, inputs", CASES, ids=[c[0] for c in CASES])
def test_traced_ir_verifies_and_reads_back(name, fn, reference, inputs):
    text = tflc.dump(fn, *inputs).rstrip("\n")
    function = ir.parse_function(text)
    ir.verify(function)
    assert ir.print_function(function) == text


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["llvm"])
@pytest.mark.parametrize("name, fn, reference, inputs", CASES, ids=[c[0] for c in CASES])
def test_builtin_on_native_backends_matches_the_numpy_backend(backend, name, fn, reference,
                                                              inputs):
    got = tflc.jit(fn, backend=backend)(*inputs)
    expected = tflc.jit(fn, backend="numpy")(*inputs)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_every_builtin_is_tested():
    functions = [name for name in JIT_NAMES
                 if name not in ("jit", "grad", "value_and_grad", "dump", "Jitted")]
    assert sorted(functions) == sorted(case[0] for case in CASES + [("dropout",)])


def test_dropout_keeps_and_scales_and_depends_on_the_counter():
    x = np.ones((200, 50), np.float32)
    dropped = tflc.jit(lambda x, step: tflc.dropout(x, 0.5, step))
    a, again, other = dropped(x, 1), dropped(x, 1), dropped(x, 2)
    assert set(np.unique(a)) == {0.0, 2.0}
    assert 0.45 < np.mean(a == 2.0) < 0.55
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, other)
    assert dropped.stats()["compiles"] == 1  # the counter is a run-time value


def test_two_dropouts_in_one_function_draw_different_masks():
    x = np.ones((100, 10), np.float32)
    a, b = tflc.jit(lambda x: (tflc.dropout(x, 0.5, 0), tflc.dropout(x, 0.5, 0)))(x)
    assert not np.array_equal(a, b)


def test_builtins_run_on_numpy_arrays_outside_jit():
    np.testing.assert_allclose(tflc.softmax(X), softmax(X), rtol=1e-6)
    np.testing.assert_array_equal(tflc.argmax(X, axis=1), X.argmax(1))
    assert tflc.maximum(np.arange(3), 1).tolist() == [1, 1, 2]
