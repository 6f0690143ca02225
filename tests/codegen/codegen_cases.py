"""What the codegen tests of both backends build their cases from: test functions, random
arguments, and whether the CUDA toolkit is there. `conftest.py` makes it importable."""

import shutil

import numpy as np
import pytest
from tflc.codegen.ptx import target
from tflc.ir import REGISTRY, Builder, Error, Function, Output, TensorType, Value
from tflc.ir.types import NUMPY_DTYPES


def function(args: dict, build, name: str = "f") -> Function:
    """`build(builder, values)` returns {label: value}; args are {name: (dtype, shape)}."""
    values = {arg: Value(TensorType(dtype, tuple(shape)), arg)
              for arg, (dtype, shape) in args.items()}
    b = Builder()
    outputs = build(b, values)
    dims = tuple(dict.fromkeys(s for v in values.values() for s in v.type.symbols))
    return Function(name, dims, tuple(values.values()), tuple(b.ops),
                    tuple(Output(label, value) for label, value in outputs.items()))


def elementwise_ops(arity: int, dtype: str) -> list[str]:
    """The registry's elementwise ops of that arity whose type rule accepts `dtype` operands."""
    names = []
    for name, opdef in REGISTRY.items():
        if opdef.kind != "elementwise" or opdef.arity != arity or name in ("cast", "where"):
            continue
        try:
            Builder().emit(name, *[Value(TensorType(dtype, ()))] * arity)
        except Error:
            continue
        names.append(name)
    return names


def random_array(rng: np.random.Generator, dtype: str, shape, low=-3.0, high=3.0) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in ("i32", "i64"):
        return rng.integers(int(low), int(high) + 1, shape).astype(NUMPY_DTYPES[dtype])
    return rng.uniform(low, high, shape).astype(NUMPY_DTYPES[dtype])


VIEWS_ARGS = {"x": ("f32", ("N", 3, 4)), "r": ("f32", ("N", 1))}


def views(b, v):
    """Every view op, views of views, copies of views (reshape of a transpose, concat, pad,
    relu), shape, and an argument as an output."""
    x = v["x"]
    t = b.emit("transpose", x, perm=[1, 0, 2])
    return {
        "reshape": b.emit("reshape", x, shape=[-1, 4]),
        "reshape_transposed": b.emit("reshape", t, shape=[3, -1]),
        "transpose": t,
        "transpose_reversed": b.emit("transpose", x),
        "broadcast_to": b.emit("broadcast_to", v["r"], shape=[2, "N", 4]),
        "slice": b.emit("slice", x, begin=[0, 1, 1], size=[-1, 2, -1]),
        "slice_negative": b.emit("slice", x, begin=[0, -2, 0], size=[-1, 1, 3]),
        "slice_of_transpose": b.emit("slice", t, begin=[1, 0, 2], size=[2, -1, 2]),
        "relu_of_slice": b.emit("relu", b.emit("slice", t, begin=[2, 0, 0], size=[1, -1, 4])),
        "concat": b.emit("concat", x, x, axis=1),
        "concat_views": b.emit("concat", t, b.emit("slice", t, begin=[0, 0, 1], size=[3, -1, 2]),
                               axis=2),
        "pad": b.emit("pad", x, before=[0, 1, 2], after=[0, 2, 0]),
        "shape": b.emit("shape", x, axis=0),
        "x_again": x,
    }


BOOL_DATA_ARGS = {"m": ("bool", ("N", 3))}


def bool_data(b, v):
    """Bytes moved: a transpose, a concat, a pad."""
    m = v["m"]
    return {"t": b.emit("transpose", m), "c": b.emit("concat", m, m, axis=1),
            "p": b.emit("pad", m, before=[0, 1], after=[0, 1])}


def one_hot_args(dtype: str) -> dict:
    return {"i": (dtype, ("N",)), "j": (dtype, ("N", 2)), "s": (dtype, ())}


ONE_HOT_RANGES = {"i": (-1, 6), "j": (-1, 3), "s": (0, 3)}  # indices out of range included


def one_hot(b, v):
    return {"h": b.emit("one_hot", v["i"], depth=5), "h2": b.emit("one_hot", v["j"], depth=3),
            "h0": b.emit("one_hot", v["s"], depth=4), "one": b.emit("one_hot", v["i"], depth=1)}


def rng_args(dtype: str) -> dict:
    return {"like": (dtype, ("N", 3, 5)), "counter": ("i64", ())}


def rng(b, v):
    """The smallest and the largest seed and stream."""
    return {"u": b.emit("rng_uniform", v["like"], v["counter"], seed=7, stream=3),
            "u_big_seed": b.emit("rng_uniform", v["like"], v["counter"], seed=2 ** 64 - 1,
                                 stream=2 ** 63)}


CONSTANTS_ARGS = {"x": ("f64", ("N", 3, 4)), "m": ("bool", ("N", 4))}


def constants(b, v):
    """Constants of every kind: scalars folded into code, an array, one as an output."""
    table = b.const(np.arange(12).reshape(3, 4) * 0.5, "f64")
    return {"scaled": b.emit("mul", v["x"], b.const(2.5, "f64")),
            "plus_table": b.emit("add", v["x"], table),
            "table": table,
            "mask": b.emit("and", v["m"], b.const([True, False, True, True], "bool")),
            "count": b.const(3, "i32")}


def dense(activation: str = "tanh", argmax: bool = True) -> Function:
    """activation(x @ W + b), its row sums (and argmax), for any batch size N."""
    x = Value(TensorType("f32", ("N", 20)), "x")
    w = Value(TensorType("f32", (20, 30)), "W")
    bias = Value(TensorType("f32", (30,)), "b")
    b = Builder()
    hidden = b.emit(activation, b.emit("add", b.emit("matmul", x, w), bias), name="hidden")
    outputs = [Output("hidden", hidden), Output("total", b.emit("sum", hidden, axis=1,
                                                                name="total"))]
    if argmax:
        outputs.append(Output("best", b.emit("argmax", hidden, axis=1, name="best")))
    return Function("dense", ("N",), (x, w, bias), tuple(b.ops), tuple(outputs))


def toolkit_missing() -> str | None:
    """Why ptxas cannot check PTX here (the CUDA toolkit's ptxas and libdevice), or None."""
    if shutil.which("ptxas") is None:
        return "ptxas (CUDA toolkit) is not on PATH"
    try:
        target.libdevice_path()
    except Error as e:
        return e.message
    return None


needs_toolkit = pytest.mark.skipif(toolkit_missing() is not None, reason=str(toolkit_missing()))
