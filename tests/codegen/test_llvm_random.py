"""Random graphs (hypothesis) through the LLVM backend: fused and unfused give the same bits,
and both agree with the NumPy backend. The graphs mix broadcasting elementwise ops, views
(transpose, slice, broadcast_to, reshape), reductions with and without keepdims, argmax,
matmuls with transposed operands, and casts, over a symbolic batch dim."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tflc.codegen import numpy_backend
from tflc.codegen.llvm import compile
from tflc.ir import Builder, Error, Function, Output, TensorType, Value
from tflc.passes.fuse import fuse

ARGS = (("x", ("N", 4)), ("y", (4,)), ("W", (4, 4)), ("s", ()), ("c", ("N", 1)))


@st.composite
def graphs(draw):
    args = tuple(Value(TensorType("f32", shape), name) for name, shape in ARGS)
    b = Builder()
    pool = list(args)

    def emit(*operands, **attrs):  # an op the type rules refuse is simply not added
        try:
            pool.append(b.emit(*operands, **attrs))
        except Error:
            pass

    for _ in range(draw(st.integers(1, 12))):
        x = draw(st.sampled_from(pool))
        kind = draw(st.sampled_from(["unary", "binary", "binary", "where", "reduce", "argmax",
                                     "matmul", "view", "cast"]))
        if kind == "unary":
            emit(draw(st.sampled_from(["neg", "exp", "tanh", "relu", "abs", "sigmoid"])), x)
        elif kind == "binary":
            y = draw(st.sampled_from(pool + [b.const(draw(st.sampled_from([0.5, -2.0])), "f32")]))
            emit(draw(st.sampled_from(["add", "mul", "sub", "maximum", "minimum"])), x, y)
        elif kind == "where":
            y = draw(st.sampled_from(pool))
            emit("where", b.emit("gt", x, b.const(0.0, "f32")), x, y) if x.type.rank else None
        elif kind == "reduce" and x.type.rank:
            emit(draw(st.sampled_from(["sum", "max", "min"])), x,
                 axis=draw(st.integers(0, x.type.rank - 1)), keepdims=draw(st.booleans()))
        elif kind == "argmax" and x.type.rank:
            emit("cast", b.emit("argmax", x, axis=x.type.rank - 1), dtype="f32")
        elif kind == "matmul" and x.type.rank == 2 and x.type.shape[-1] == 4:
            w = args[2] if draw(st.booleans()) else b.emit("transpose", args[2])
            emit("matmul", x, w)
        elif kind == "view" and x.type.rank == 2:
            view = draw(st.sampled_from(["transpose", "slice", "broadcast"]))
            if view == "transpose":
                emit("transpose", x)
            elif view == "slice" and x.type.shape[-1] == 4:
                emit("slice", x, begin=[0, 1], size=[-1, 2])
            elif x.type.shape[-1] == 1:
                emit("broadcast_to", x, shape=[x.type.shape[0], 4])
        elif kind == "cast":
            emit("cast", b.emit("cast", x, dtype="f64"), dtype="f32")
    made = [r for op in b.ops for r in op.results if r.type.dtype == "f32"]
    outputs = tuple(Output(f"o{n}", v) for n, v in enumerate(made[-draw(st.integers(1, 3)):]))
    return Function("random", ("N",), args, tuple(b.ops), outputs)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(graphs())
def test_random_graphs(func):
    if not func.outputs:
        return
    plain, fused = compile(func), compile(fuse(func))
    reference = numpy_backend.compile(func)
    rng = np.random.default_rng(0)
    for n in (1, 7):
        sizes = {"N": n}
        args = [rng.standard_normal(tuple(sizes.get(d, d) for d in v.type.shape))
                .astype(np.float32) for v in func.args]
        want = reference(sizes, args)
        for out, unfused, joined, w in zip(func.outputs, plain(sizes, args), fused(sizes, args),
                                           want):
            np.testing.assert_array_equal(joined, unfused, err_msg=out.label)
            np.testing.assert_allclose(unfused, w, rtol=2e-5, atol=2e-5, equal_nan=True,
                                       err_msg=out.label)
