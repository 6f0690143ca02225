"""The numpy backend on hand-built functions, against NumPy computed directly."""

import warnings

import numpy as np
import pytest

from tflc.codegen import numpy_backend
from tflc.ir import Builder, Function, Loc, Op, Output, TensorType, Value

RNG = np.random.default_rng(0)


def arg(name, dtype, *shape):
    return Value(TensorType(dtype, shape), name)


def mlp():
    """h = relu(x @ W + fc1.b); total = sum(h) over rows."""
    x, W, b = arg("x", "f32", "N", 4), arg("W", "f32", 4, 3), arg("fc1.b", "f32", 3)
    bld = Builder(Loc("mlp.tfl", 7, 5))
    h = bld.emit("relu", bld.emit("add", bld.emit("matmul", x, W), b), name="h")
    total = bld.emit("sum", h, name="total", axis=[1])
    outputs = (Output("h", h), Output("total", total), Output("W", bld.emit("neg", W), "step"))
    return Function("model", ("N",), (x, W, b), tuple(bld.ops), outputs)


def random_args(func, sizes):
    from tflc.ir.types import NUMPY_DTYPES, eval_dim

    return [RNG.standard_normal([eval_dim(d, sizes) for d in a.type.shape])
            .astype(NUMPY_DTYPES[a.type.dtype]) for a in func.args]


def test_results_match_numpy_for_several_sizes_of_a_symbolic_dim():
    compiled = numpy_backend.compile(mlp())
    for n in (1, 5):
        x, W, b = random_args(mlp(), {"N": n})
        h, total, new_W = compiled({"N": n}, [x, W, b])
        np.testing.assert_allclose(h, np.maximum(x @ W + b, 0), rtol=1e-6)
        np.testing.assert_allclose(total, h.sum(axis=1), rtol=1e-6)
        np.testing.assert_array_equal(new_W, -W)
        assert h.dtype == total.dtype == np.float32 and total.shape == (n,)


def test_module_is_readable_and_standalone():
    source = numpy_backend.emit(mlp())
    assert source.count("import ") == 1 and "import numpy as np" in source
    assert "def op_matmul(a, b):" in source and "def op_sum(" in source
    assert "    x, W, fc1_b = args\n" in source and '    N = sizes["N"]\n' in source
    assert 'with np.errstate(all="ignore"):' in source
    assert "h = np.asarray(op_relu(v1), np.float32)  # mlp.tfl:7:5" in source
    assert "total = np.asarray(op_sum(h, axis=[1], keepdims=False), np.float32)" in source
    assert source.rstrip().endswith("return [h, total, v2]")
    namespace = {}
    exec(source, namespace)  # nothing but the module's own text
    x, W, b = random_args(mlp(), {"N": 2})
    np.testing.assert_allclose(namespace["run"]({"N": 2}, [x, W, b])[0],
                               np.maximum(x @ W + b, 0), rtol=1e-6)


def test_product_dims_are_evaluated_for_out_shape():
    x = arg("x", "f32", "N", "M", 2)
    bld = Builder()
    flat = bld.emit("reshape", x, shape=["2*M*N"], name="flat")
    back = bld.emit("reshape", flat, shape=["N", -1], name="back")
    func = Function("model", ("N", "M"), (x,), tuple(bld.ops),
                    (Output("flat", flat), Output("back", back)))
    assert flat.type.shape == ("2*M*N",) and back.type.shape == ("N", "2*M")
    source = numpy_backend.emit(func)
    assert "out_shape=(2*M*N,)" in source and "out_shape=(N, 2*M)" in source
    data = np.arange(24, dtype=np.float32).reshape(3, 4, 2)
    got_flat, got_back = numpy_backend.compile(func)({"N": 3, "M": 4}, [data])
    np.testing.assert_array_equal(got_flat, data.ravel())
    np.testing.assert_array_equal(got_back, data.reshape(3, 8))


def test_results_have_the_ir_dtype_and_zero_d_results_are_arrays():
    x = arg("x", "i32", 3)
    bld = Builder()
    total = bld.emit("sum", x, name="total")
    positive = bld.emit("gt", total, bld.const(0, "i32"), name="positive")
    func = Function("model", (), (x,), tuple(bld.ops),
                    (Output("total", total), Output("positive", positive)))
    total, positive = numpy_backend.compile(func)({}, [np.array([1, 2, 3], np.int32)])
    assert type(total) is np.ndarray and total.dtype == np.int32 and total.shape == ()
    assert type(positive) is np.ndarray and positive.dtype == np.bool_ and positive[()]


def test_ieee_results_without_warnings():
    x = arg("x", "f32", 3)
    bld = Builder()
    y = bld.emit("div", bld.emit("log", x), x, name="y")
    func = Function("model", (), (x,), tuple(bld.ops), (Output("y", y),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, = numpy_backend.compile(func)({}, [np.array([0, -1, 1], np.float32)])
    assert np.isneginf(y[0]) or np.isnan(y[0])
    assert np.isnan(y[1]) and y[2] == 0


def test_constants_read_back_exactly():
    values = [np.array([0.1, np.nan, np.inf, -np.inf, 1e-10, 3.4028235e38], np.float32),
              np.array([[1, -2], [3, 4]], np.int64), np.array(True), np.zeros((0, 2), np.float64),
              np.array(0.1, np.float64)]
    bld = Builder()
    consts = [bld.const(v, {"float32": "f32", "int64": "i64", "bool": "bool",
                            "float64": "f64"}[v.dtype.name]) for v in values]
    func = Function("model", (), (), tuple(bld.ops), tuple(Output(f"c{i}", c)
                                                           for i, c in enumerate(consts)))
    source = numpy_backend.emit(func)
    assert "np.array([0.1, np.nan, np.inf, -np.inf, 1e-10, 3.4028235e+38], np.float32)" in source
    for expected, got in zip(values, numpy_backend.compile(func)({}, [])):
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_names_are_valid_python_and_unique():
    names = ["np", "lambda", "v0", "fc1.W", "fc1_W", "2x", "run"]
    args = tuple(arg(n, "f32", "?1") for n in names)
    bld = Builder()
    unnamed = bld.emit("neg", args[0])
    func = Function("model", ("?1",), args, tuple(bld.ops),
                    tuple(Output(a.name, a) for a in args) + (Output("neg", unnamed),))
    source = numpy_backend.emit(func)
    assert '    dim1 = sizes["?1"]\n' in source
    assert "    np_2, lambda_2, v0, fc1_W, fc1_W_2, v2x, run_2 = args\n" in source
    assert "v1 = np.asarray(op_neg(np_2), np.float32)" in source
    data = [np.full(2, i, np.float32) for i in range(len(names))]
    results = numpy_backend.compile(func)({"?1": 2}, data)
    assert all(r is d for r, d in zip(results, data))
    np.testing.assert_array_equal(results[-1], -data[0])


def test_fused_ops_run_their_region_inline():
    x, b = arg("x", "f32", "N", 3), arg("b", "f32", 3)
    p, q = arg(None, "f32", "N", 3), arg(None, "f32", 3)
    inner = Builder(Loc("m.tfl", 2, 3))
    r = inner.emit("relu", inner.emit("add", p, q))
    region = Function("fused", ("N",), (p, q), tuple(inner.ops), (Output("r", r),))
    result = Value(r.type, "h")
    fused = Op("fused", (x, b), (result,), {}, Loc("m.tfl", 2, 1), region)
    outer = Builder()
    doubled = outer.emit("add", result, result, name="doubled")
    func = Function("model", ("N",), (x, b), (fused, *outer.ops), (Output("doubled", doubled),))
    source = numpy_backend.emit(func)
    assert "# fused (m.tfl:2:1)" in source and "op_add(x, b)" in source
    assert "h = np.asarray(op_relu(v0), np.float32)  # m.tfl:2:3" in source  # the result's name
    data = [np.array([[-1, 0, 1]], np.float32), np.array([0.5, 0.5, 0.5], np.float32)]
    doubled, = numpy_backend.compile(func)({"N": 1}, data)
    np.testing.assert_array_equal(doubled, 2 * np.maximum(data[0] + data[1], 0))

