"""Composite ops against closed forms computed with NumPy: values (after `inline`, run by the
numpy backend), gradients where a closed form is known, numerical stability, type rules and
their located errors. (Finite-difference checks of every composite live in test_autodiff.)"""

import numpy as np
import pytest

from tflc.codegen import numpy_backend
from tflc.ir import REGISTRY, Builder, Error, Function, Loc, Output, TensorType, Value
from tflc.ir.types import dtype_of_numpy
from tflc.passes.autodiff import autodiff
from tflc.passes.inline import inline

RNG = np.random.default_rng(2)
LOC = Loc("m.tfl", 6, 5)


def value(dtype, *shape, name=None):
    return Value(TensorType(dtype, tuple(shape)), name)


def run(opcode, *arrays, shapes=None, grad_of=(), **attrs):
    """opcode(arrays) after inline, run by the numpy backend; then d sum(result) / d arrays[i]
    for each i in grad_of. `shapes` gives IR shapes naming symbolic dims."""
    shapes = shapes or [np.shape(a) for a in arrays]
    args = [value(dtype_of_numpy(np.asarray(a).dtype), *s, name=f"a{i}")
            for i, (a, s) in enumerate(zip(arrays, shapes))]
    sizes = {d: n for s, a in zip(shapes, arrays) for d, n in zip(s, np.shape(a))
             if isinstance(d, str)}
    b = Builder(LOC)
    result = b.emit(opcode, *args, **attrs)
    outputs = [Output("r", result)]
    if grad_of:
        y = b.emit("sum", result)
        outputs += [Output(f"g{i}", b.emit("grad", y, args[i])) for i in grad_of]
    dims = tuple(dict.fromkeys(s for a in args for s in a.type.symbols))
    func = autodiff(inline(Function("model", dims, tuple(args), tuple(b.ops), tuple(outputs))))
    out = numpy_backend.compile(func)(sizes, [np.asarray(a) for a in arrays])
    return out if grad_of else out[0]


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def one_hot(labels, depth):
    return np.eye(depth)[labels]


# -- values against closed forms -----------------------------------------------------------------

@pytest.mark.parametrize("axis, keepdims", [(None, False), (1, False), ([0, 2], True), (-1, True)])
def test_mean(axis, keepdims):
    x = RNG.standard_normal((2, 3, 4))
    axes = tuple(np.atleast_1d(axis)) if axis is not None else None
    np.testing.assert_allclose(run("mean", x, axis=axis, keepdims=keepdims),
                               x.mean(axis=axes, keepdims=keepdims))


def test_mean_over_a_symbolic_dim_divides_by_the_size_fed():
    for n in (1, 3, 7):
        x = RNG.standard_normal((n, 4))
        np.testing.assert_allclose(run("mean", x, shapes=[("N", 4)], axis=0), x.mean(0))
        np.testing.assert_allclose(run("mean", x, shapes=[("N", 4)]), x.mean())


def test_mean_keeps_f32():
    x = RNG.standard_normal((5, 3)).astype(np.float32)
    out = run("mean", x, shapes=[("N", 3)], axis=0)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x.mean(0), rtol=1e-6)


def test_softplus_is_stable_and_its_slope_is_the_sigmoid():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 1.0, 30.0, 800.0])
    out, g = run("softplus", x, grad_of=[0])
    # log(1 + tiny) has an absolute error of an ulp of 1: there is no log1p primitive
    np.testing.assert_allclose(out, np.logaddexp(0, x), atol=1e-15)
    np.testing.assert_allclose(g, np.exp(-np.logaddexp(0, -x)))  # the sigmoid, overflow-free
    assert g[3] == 0.5


def test_clip():
    x = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(run("clip", x, np.float64(-0.5), np.float64(0.5)),
                                  np.clip(x, -0.5, 0.5))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(axis):
    x = RNG.standard_normal((3, 4)) * 3
    np.testing.assert_allclose(run("softmax", x, axis=axis), softmax(x, axis))
    np.testing.assert_allclose(run("log_softmax", x, axis=axis), np.log(softmax(x, axis)))


def test_softmax_is_stable_for_huge_logits():
    x = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]], np.float32)
    np.testing.assert_allclose(run("softmax", x), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    log_p = run("log_softmax", x)
    assert np.isfinite(log_p).all()
    np.testing.assert_allclose(log_p[0], [0.0, -1e4, -2e4])


def test_softmax_cross_entropy_and_its_gradient_softmax_minus_labels():
    labels = RNG.dirichlet(np.ones(5), 4)
    logits = RNG.standard_normal((4, 5)) * 2
    loss, g_labels, g_logits = run("softmax_cross_entropy_with_logits", labels, logits,
                                   shapes=[("N", 5), ("N", 5)], grad_of=[0, 1])
    np.testing.assert_allclose(loss, -(labels * np.log(softmax(logits))).sum(-1))
    np.testing.assert_allclose(g_logits, softmax(logits) - labels, atol=1e-15)
    np.testing.assert_allclose(g_labels, -np.log(softmax(logits)))


def test_cross_entropies_are_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-3e4, 3e4, 0.0]], np.float32)
    labels = np.array([1, 0])
    loss, grad = run("softmax_cross_entropy_with_logits", one_hot(labels, 3).astype(np.float32),
                     logits, grad_of=[1])
    np.testing.assert_allclose(loss, [2e4, 6e4])
    np.testing.assert_allclose(grad, softmax(logits.astype(np.float64)) - one_hot(labels, 3),
                               atol=1e-6)
    loss, grad = run("sigmoid_cross_entropy_with_logits", np.float32([[0, 1, 1]]),
                     np.float32([[1e4, -1e4, 0.0]]), grad_of=[1])
    np.testing.assert_allclose(loss, [[1e4, 1e4, np.log(2)]], rtol=1e-6)
    np.testing.assert_allclose(grad, [[1, -1, -0.5]])


def test_sparse_softmax_cross_entropy_equals_the_dense_one():
    labels = np.array([3, 0, 2, 2], np.int32)
    logits = RNG.standard_normal((4, 5))
    loss, g = run("sparse_softmax_cross_entropy_with_logits", labels, logits,
                  shapes=[("N",), ("N", 5)], grad_of=[1])
    np.testing.assert_allclose(loss, -np.log(softmax(logits))[np.arange(4), labels])
    np.testing.assert_allclose(g, softmax(logits) - one_hot(labels, 5), atol=1e-15)


def test_sigmoid_cross_entropy_and_its_gradient():
    labels = RNG.random((3, 4))
    logits = RNG.standard_normal((3, 4)) * 4
    loss, g = run("sigmoid_cross_entropy_with_logits", labels, logits, grad_of=[1])
    s = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(loss, -labels * np.log(s) - (1 - labels) * np.log(1 - s))
    np.testing.assert_allclose(g, s - labels)


def test_mse():
    a, b = RNG.standard_normal((5, 3)), RNG.standard_normal(3)
    out, ga = run("mse", a, b, shapes=[("N", 3), (3,)], grad_of=[0])
    np.testing.assert_allclose(out, ((a - b) ** 2).mean())
    np.testing.assert_allclose(ga, 2 * (a - b) / a.size)


def test_expand_dims_and_squeeze():
    x = RNG.standard_normal((2, 3))
    assert run("expand_dims", x, axis=0).shape == (1, 2, 3)
    assert run("expand_dims", x, axis=-1).shape == (2, 3, 1)
    y = RNG.standard_normal((1, 3, 1, 2))
    np.testing.assert_array_equal(run("squeeze", y), y.reshape(3, 2))
    np.testing.assert_array_equal(run("squeeze", y, axis=[0, -2]), y.reshape(3, 2))
    assert run("squeeze", y, axis=2).shape == (1, 3, 2)


def test_dropout_keeps_about_keep_prob_and_scales_by_its_inverse():
    x = np.ones((100, 100), np.float32)
    out = run("dropout", x, np.float32(0.3), np.int64(7), seed=1)
    kept = out != 0
    assert abs(kept.mean() - 0.3) < 0.02
    np.testing.assert_allclose(out[kept], 1 / np.float32(0.3))
    np.testing.assert_array_equal(run("dropout", x, np.float32(0.3), np.int64(7), seed=1), out)
    assert (run("dropout", x, np.float32(0.3), np.int64(8), seed=1) != out).any()
    assert (run("dropout", x, np.float32(0.3), np.int64(7), seed=1, stream=1) != out).any()
    np.testing.assert_array_equal(run("dropout", x, np.float32(1.0), np.int64(7)), x)


# -- types ---------------------------------------------------------------------------------------

def infer(opcode, *types, **attrs):
    return Builder(LOC).emit(opcode, *(value(*t) for t in types), **attrs).type


@pytest.mark.parametrize("opcode, types, attrs, expected", [
    ("mean", [("f32", "N", 3)], {}, ("f32",)),
    ("mean", [("f32", "N", 3)], {"axis": 1, "keepdims": True}, ("f32", "N", 1)),
    ("softplus", [("f64", 2)], {}, ("f64", 2)),
    ("clip", [("f32", "N", 3), ("f32",), ("f32",)], {}, ("f32", "N", 3)),
    ("softmax", [("f32", "N", 10)], {}, ("f32", "N", 10)),
    ("log_softmax", [("f32", "N", 10)], {"axis": 0}, ("f32", "N", 10)),
    ("softmax_cross_entropy_with_logits", [("f32", "N", 10), ("f32", "N", 10)], {},
     ("f32", "N")),
    ("sparse_softmax_cross_entropy_with_logits", [("i64", "N"), ("f32", "N", 10)], {},
     ("f32", "N")),
    ("sigmoid_cross_entropy_with_logits", [("f32", "N", 1), ("f32", "N", 1)], {},
     ("f32", "N", 1)),
    ("mse", [("f32", "N", 3), ("f32", "N", 3)], {}, ("f32",)),
    ("expand_dims", [("f32", "N", 3)], {"axis": 1}, ("f32", "N", 1, 3)),
    ("squeeze", [("f32", "N", 1, 3, 1)], {}, ("f32", "N", 3)),
    ("dropout", [("f32", "N", 3), ("f32",), ("i64",)], {"stream": 2}, ("f32", "N", 3)),
])
def test_types_with_symbolic_dims_match_the_expansion(opcode, types, attrs, expected):
    """The type rule gives the expected type, and the expansion's result has that type."""
    assert infer(opcode, *types, **attrs) == TensorType(expected[0], expected[1:])
    args = tuple(value(*t) for t in types)
    result = REGISTRY[opcode].expand(Builder(LOC), args, {**REGISTRY[opcode].attrs, **attrs})
    assert result.type == TensorType(expected[0], expected[1:])


@pytest.mark.parametrize("opcode, types, attrs, message", [
    ("mean", [("i32", 3)], {}, "mean: x must be a float tensor, got i32[3]"),
    ("mean", [("f32", 3)], {"axis": 1}, "out of range"),
    ("softmax", [("f32", 3)], {"axis": 2}, "out of range"),
    ("softmax", [("f32",)], {}, "out of range for rank 0"),
    ("clip", [("f32", 3), ("f64",), ("f32",)], {}, "different dtypes"),
    ("clip", [("f32", 3), ("f32", 2), ("f32",)], {}, "do not broadcast"),
    ("softmax_cross_entropy_with_logits", [("f32", 3, 4), ("f32", 3, 5)], {},
     "do not broadcast"),
    ("softmax_cross_entropy_with_logits", [("f32",), ("f32",)], {}, "class axis"),
    ("sparse_softmax_cross_entropy_with_logits", [("f32", 3), ("f32", 3, 5)], {},
     "class indices"),
    ("sparse_softmax_cross_entropy_with_logits", [("i64", 4), ("f32", 3, 5)], {},
     "without its last (class) axis"),
    ("sparse_softmax_cross_entropy_with_logits", [("i64", 3), ("f32", 3, "C")], {},
     "known number of classes"),
    ("sigmoid_cross_entropy_with_logits", [("f32", 3), ("i32", 3)], {}, "logits must be a float"),
    ("mse", [("f32", 3), ("f32", 4)], {}, "do not broadcast"),
    ("expand_dims", [("f32", 3)], {}, "needs an axis"),
    ("expand_dims", [("f32", 3)], {"axis": 2}, "out of range"),
    ("squeeze", [("f32", "N", 3)], {"axis": 1}, "cannot squeeze axis 1 of f32[N,3]"),
    ("squeeze", [("f32", "N", 1)], {"axis": 0}, "its size is N, not 1"),
    ("dropout", [("f32", 3), ("f32", 1), ("i64",)], {}, "keep_prob must be a f32[] scalar"),
    ("dropout", [("f32", 3), ("f32",), ("i32",)], {}, "counter must be an i64[] scalar"),
])
def test_type_errors_are_located(opcode, types, attrs, message):
    with pytest.raises(Error) as info:
        infer(opcode, *types, **attrs)
    assert info.value.loc == LOC
    assert message in info.value.message
    assert info.value.message.startswith(f"{opcode}: ")
