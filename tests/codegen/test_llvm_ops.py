"""The LLVM backend on every primitive op against the op's NumPy reference.

Ops are grouped into one function per test (one compile), and each compiled function runs at
batch sizes 1, 7 and 100: one artifact serves every size of the symbolic dim N. Floats agree to
a few ulps (libm versus NumPy's own math, sequential versus pairwise sums); integers, bools and
random bits agree exactly.
"""

import inspect

import codegen_cases as cases
import numpy as np
import pytest
from codegen_cases import elementwise_ops, function, random_array
from tflc.codegen.llvm import compile
from tflc.ir import REGISTRY, Builder, Error, Function, Loc, Output, TensorType, Value
from tflc.ir.types import NUMPY_DTYPES, eval_dim

BATCHES = (1, 7, 100)
RNG = np.random.default_rng(0)
TOLERANCE = {"f32": dict(rtol=2e-6, atol=1e-6), "f64": dict(rtol=1e-13, atol=1e-13)}


def reference(func: Function, sizes: dict, args: list) -> list:
    """The function evaluated op by op with the registry's NumPy references."""
    env = dict(zip(func.args, args))
    for op in func.ops:
        if op.opcode == "const":
            env[op.result] = op.attrs["value"]
            continue
        ref = REGISTRY[op.opcode].reference
        kwargs = dict(op.attrs)
        if "out_shape" in inspect.signature(ref).parameters:
            kwargs["out_shape"] = tuple(eval_dim(d, sizes) for d in op.result.type.shape)
        with np.errstate(all="ignore"):
            result = ref(*(env[v] for v in op.operands), **kwargs)
        env[op.result] = np.asarray(result, NUMPY_DTYPES[op.result.type.dtype])
    return [env[out.value] for out in func.outputs]


def check(func: Function, make_args, batches=BATCHES, tolerance=None, **options):
    """Compiles once; for each batch size, compares every output with the reference."""
    compiled = compile(func, **options)
    for n in batches:
        sizes = {d: n for d in func.dims}
        args = make_args(sizes)
        got = compiled(sizes, args)
        want = reference(func, sizes, args)
        for out, g, w in zip(func.outputs, got, want):
            assert g.dtype == w.dtype and g.shape == w.shape, (out.label, g.dtype, g.shape)
            dtype = out.value.type.dtype
            if dtype in TOLERANCE:
                np.testing.assert_allclose(g, w, **(tolerance or TOLERANCE[dtype]),
                                           equal_nan=True, err_msg=f"{out.label}, N={n}")
            else:
                np.testing.assert_array_equal(g, w, err_msg=f"{out.label}, N={n}")


def shaped(shape, sizes):
    return tuple(eval_dim(d, sizes) for d in shape)


def args_for(func: Function, ranges: dict | None = None):
    """Random arguments for `func` at given sizes; `ranges` maps arg names to (low, high)."""
    def make(sizes):
        return [random_array(RNG, v.type.dtype, shaped(v.type.shape, sizes),
                             *(ranges or {}).get(v.name, (-3, 3))) for v in func.args]
    return make


# -- elementwise ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64", "bool"])
def test_unary_ops(dtype):
    ops = elementwise_ops(1, dtype)
    positive_only = {"log", "sqrt", "rsqrt"}

    def build(b, v):
        return {op: b.emit(op, v["p"] if op in positive_only else v["x"]) for op in ops}

    func = function({"x": (dtype, ("N", 5)), "p": (dtype, ("N", 5))}, build)
    check(func, args_for(func, {"p": (0.01, 20)}))


SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 88.0, -100.0, 1e10])


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_unary_special_values(dtype):
    ops = [name for name in elementwise_ops(1, dtype) if name not in ("sin", "cos")]
    func = function({"x": (dtype, (len(SPECIAL),))},
                    lambda b, v: {op: b.emit(op, v["x"]) for op in ops})
    check(func, lambda sizes: [SPECIAL.astype(NUMPY_DTYPES[dtype])], batches=(0,))


BROADCASTS = [  # operand shapes, N symbolic
    (("N", 3), ("N", 3)),
    (("N", 3), (3,)),
    (("N", 1), (1, 3)),
    ((), ("N", 3)),
    ((2, "N", 3), ("N", 1)),
    (("N", 1, 4), (3, 1)),
]


@pytest.mark.parametrize("a_shape,b_shape", BROADCASTS)
def test_binary_ops_broadcast_f32(a_shape, b_shape):
    ops = elementwise_ops(2, "f32")
    func = function({"a": ("f32", a_shape), "b": ("f32", b_shape)},
                    lambda b, v: {op: b.emit(op, v["a"], v["b"]) for op in ops})
    check(func, args_for(func))


@pytest.mark.parametrize("dtype", ["f64", "i32", "i64", "bool"])
def test_binary_ops_dtypes(dtype):
    ops = elementwise_ops(2, dtype)
    func = function({"a": (dtype, ("N", 1, 4)), "b": (dtype, (3, 1))},
                    lambda b, v: {op: b.emit(op, v["a"], v["b"]) for op in ops})
    # small non-negative exponents: NumPy refuses negative integer powers
    check(func, args_for(func, {"a": (-50, 50), "b": (0, 4)}))


def test_float_comparisons_and_extremes_with_nan():
    special = np.array([np.nan, 1.0, -0.0, np.inf, np.nan], np.float32)
    other = np.array([1.0, np.nan, 0.0, np.inf, np.nan], np.float32)
    ops = ["eq", "ne", "lt", "le", "gt", "ge", "maximum", "minimum"]
    func = function({"a": ("f32", (5,)), "b": ("f32", (5,))},
                    lambda b, v: {op: b.emit(op, v["a"], v["b"]) for op in ops})
    check(func, lambda sizes: [special, other], batches=(0,))


def test_integer_edge_cases():
    """Wrapping arithmetic and the integer minimum, as NumPy."""
    low = np.iinfo(np.int32).min
    a = np.array([low, low, -1, 7, 2, 46341], np.int32)
    b = np.array([-1, 1, 3, 0, 31, 2], np.int32)
    ops = {"neg": ("a",), "abs": ("a",), "sign": ("a",), "square": ("a",), "add": ("a", "b"),
           "sub": ("a", "b"), "mul": ("a", "b"), "maximum": ("a", "b")}
    func = function({"a": ("i32", (6,)), "b": ("i32", (6,))},
                    lambda bld, v: {op: bld.emit(op, *(v[n] for n in names))
                                    for op, names in ops.items()})
    check(func, lambda sizes: [a, b], batches=(0,))


def test_integer_pow_negative_exponent():
    """NumPy refuses; here the truncated real result (documented in scalar.py)."""
    func = function({"a": ("i64", (5,)), "b": ("i64", (5,))},
                    lambda b, v: {"p": b.emit("pow", v["a"], v["b"])})
    got, = compile(func)({}, [np.array([1, -1, -1, 2, 0]), np.array([-3, -3, -2, -1, 5])])
    np.testing.assert_array_equal(got, [1, -1, 1, 0, 0])


def test_where():
    func = function({"c": ("bool", ("N", 1)), "a": ("f32", (3,)), "b": ("f32", ("N", 3))},
                    lambda b, v: {"w": b.emit("where", v["c"], v["a"], v["b"])})
    check(func, args_for(func))


@pytest.mark.parametrize("source", ["f32", "f64", "i32", "i64", "bool"])
def test_casts(source):
    targets = ["f32", "f64", "i32", "i64", "bool"]
    func = function({"x": (source, ("N", 4))},
                    lambda b, v: {t: b.emit("cast", v["x"], dtype=t) for t in targets})
    check(func, args_for(func, {"x": (-1e4, 1e4)}))


def test_cast_special_floats():
    """Float→int: truncation toward zero; NaN and out-of-range values give the integer
    minimum, as NumPy on x86. Float→bool: NaN is true."""
    x = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.9, -2.9, -0.0, 1e19], np.float32)
    func = function({"x": ("f32", (9,))},
                    lambda b, v: {t: b.emit("cast", v["x"], dtype=t) for t in
                                  ("i32", "i64", "bool", "f64")})
    check(func, lambda sizes: [x], batches=(0,))


# -- reductions ----------------------------------------------------------------------------------

AXES = [None, 0, 1, -1, [0, 2], [1, 2]]


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
def test_reductions(dtype):
    ops = ["sum", "prod", "max", "min"]

    def build(b, v):
        outputs = {f"{op}{axis}": b.emit(op, v["x"], axis=axis) for op in ops for axis in AXES}
        for axis in (None, [0, 2]):  # keepdims changes the result's shape, not the loops
            outputs[f"sum{axis}keep"] = b.emit("sum", v["x"], axis=axis, keepdims=True)
        return outputs

    func = function({"x": (dtype, ("N", 3, 4))}, build)
    # values near 1 keep products over 100s of elements finite
    make = args_for(func, {"x": (0.5, 1.5) if dtype in ("f32", "f64") else (-3, 3)})
    check(func, make, tolerance=dict(rtol=1e-5, atol=1e-5) if dtype == "f32" else None)


def test_reductions_with_nan_and_fast_math():
    x = np.array([[1.0, np.nan, 2.0], [3.0, -np.inf, 0.5]], np.float32)
    ops = ["sum", "prod", "max", "min"]
    func = function({"x": ("f32", (2, 3))},
                    lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                                  for op in ops for axis in (0, 1)})
    check(func, lambda sizes: [x], batches=(0,))
    check(func, lambda sizes: [x], batches=(0,), fast_math=True)


def test_fast_math_sum_of_many():
    func = function({"x": ("f32", ("N", 1000))},
                    lambda b, v: {"rows": b.emit("sum", v["x"], axis=1),
                                  "all": b.emit("sum", v["x"])})
    check(func, args_for(func, {"x": (0, 1)}), tolerance=dict(rtol=1e-5), fast_math=True)


@pytest.mark.parametrize("dtype", ["f32", "i32"])
def test_argmax_argmin(dtype):
    def build(b, v):
        return {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                for op in ("argmax", "argmin") for axis in (0, 1, -1)}

    func = function({"x": (dtype, ("N", 3, 4))}, build)
    check(func, args_for(func, {"x": (-2, 2)}))  # integers in [-2, 2]: many ties


def test_argmax_first_nan_and_ties():
    x = np.array([[1, 3, 3, 0], [np.nan, 2, np.nan, 5], [4, np.nan, 4, 9], [2, 2, 2, 2]],
                 np.float64)
    func = function({"x": ("f64", (4, 4))},
                    lambda b, v: {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                                  for op in ("argmax", "argmin") for axis in (0, 1)})
    check(func, lambda sizes: [x], batches=(0,))


# -- matmul --------------------------------------------------------------------------------------

MATMULS = [
    (("N", 5), (5, 3)),
    ((5,), (5, 3)),
    (("N", 5), (5,)),
    ((5,), (5,)),
    ((2, "N", 5), (5, 3)),
    (("N", 4, 5), ("N", 5, 3)),
    ((2, 1, 3, 5), ("N", 5, 4)),
]


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
def test_matmul(dtype):
    def build(b, v):
        return {f"m{i}": b.emit("matmul", v[f"a{i}"], v[f"b{i}"]) for i in range(len(MATMULS))}

    args = {}
    for i, (a, b) in enumerate(MATMULS):
        args[f"a{i}"], args[f"b{i}"] = (dtype, a), (dtype, b)
    func = function(args, build)
    check(func, args_for(func), tolerance=dict(rtol=1e-5, atol=1e-5) if dtype == "f32" else None)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_matmul_tiles_edges_and_blocks(dtype):
    """Sizes that leave row and column edges beside the register tiles, and more k steps than
    one cache block. A transposed B is copied dense and tiled too; a vector B takes the simple
    path, which must give the same bits as the tiles."""
    def build(b, v):
        return {"tiled": b.emit("matmul", v["a"], v["b"]),
                "vector": b.emit("matmul", v["a"], v["b0"]),
                "transposed": b.emit("matmul", v["a"], b.emit("transpose", v["bt"])),
                "batched": b.emit("matmul", v["c"], v["d"]),
                "narrow": b.emit("matmul", v["a"], v["e"])}

    func = function({"a": (dtype, ("N", 300)), "b": (dtype, (300, 70)), "b0": (dtype, (300,)),
                     "bt": (dtype, (70, 300)), "c": (dtype, (2, "N", 37)),
                     "d": (dtype, (37, 40)), "e": (dtype, (300, 10))}, build)
    compiled = compile(func)
    for n in BATCHES:
        args = args_for(func)({"N": n})
        args[2] = np.ascontiguousarray(args[1][:, 0])
        args[3] = np.ascontiguousarray(args[1].T)
        got = compiled({"N": n}, args)
        np.testing.assert_array_equal(got[0][:, 0], got[1])
        np.testing.assert_array_equal(got[0], got[2])
        for g, want in zip(got, reference(func, {"N": n}, args)):
            np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("columns", [1, 9, 10, 16, 17, 31, 33, 50])
def test_matmul_every_tile_shape_gives_the_same_bits(columns):
    """C's width decides the tiles (one masked vector across up to a vector's width, two
    vectors above it, a masked tile at the right edge) and the rows left below the full tiles
    take smaller tiles, then single rows: every element is still summed in k order, so each row
    of C has the bits it has when it is computed alone."""
    def build(b, v):
        return {"c": b.emit("matmul", v["a"], v["b"]),
                "ct": b.emit("matmul", b.emit("transpose", v["at"]), v["b"])}

    func = function({"a": ("f32", ("N", 300)), "at": ("f32", (300, "N")),
                     "b": ("f32", (300, columns))}, build)
    compiled = compile(func)
    rng = np.random.default_rng(columns)
    b = rng.standard_normal((300, columns), dtype=np.float32)
    a = rng.standard_normal((25, 300), dtype=np.float32)
    alone = np.concatenate([compiled({"N": 1}, [a[i:i + 1], np.ascontiguousarray(a[i:i + 1].T),
                                                 b])[0] for i in range(len(a))])
    for rows in (2, 3, 5, 7, 12, 13, 19, 25):
        c, ct = compiled({"N": rows}, [a[:rows], np.ascontiguousarray(a[:rows].T), b])
        np.testing.assert_array_equal(c, alone[:rows])
        np.testing.assert_array_equal(ct, alone[:rows])
    np.testing.assert_allclose(alone, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def test_matmul_of_transposed_views():
    """Transposed operands, and N as the inner dim (a weight gradient): N = 0 gives zeros."""
    def build(b, v):
        at = b.emit("transpose", v["a"])
        return {"atw": b.emit("matmul", at, v["w"]),
                "atct": b.emit("matmul", at, b.emit("transpose", v["c"])),
                "ata": b.emit("matmul", v["a"], at),
                "xtg": b.emit("matmul", b.emit("transpose", v["x"]), v["g"])}

    func = function({"a": ("f32", (6, "N")), "w": ("f32", (6, 4)), "c": ("f32", (4, 6)),
                     "x": ("f32", ("N", 40)), "g": ("f32", ("N", 70))}, build)
    check(func, args_for(func), batches=(0,) + BATCHES, tolerance=dict(rtol=1e-5, atol=1e-5))


# -- shape ops -----------------------------------------------------------------------------------

def test_views_and_copies():
    func = function(cases.VIEWS_ARGS, cases.views)
    check(func, args_for(func))


@pytest.mark.parametrize("dtype", ["i32", "i64"])
def test_one_hot(dtype):
    func = function(cases.one_hot_args(dtype), cases.one_hot)
    check(func, args_for(func, cases.ONE_HOT_RANGES))


def test_bool_data_movement():
    func = function(cases.BOOL_DATA_ARGS, cases.bool_data)
    check(func, args_for(func))


# -- sources -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_rng_uniform_same_bits(dtype):
    func = function(cases.rng_args(dtype), cases.rng)
    compiled = compile(func)
    for n, counter in zip(BATCHES, (0, 12345, -1)):
        sizes = {"N": n}
        args = [np.zeros((n, 3, 5), NUMPY_DTYPES[dtype]), np.array(counter, np.int64)]
        for got, want in zip(compiled(sizes, args), reference(func, sizes, args)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_constants():
    func = function(cases.CONSTANTS_ARGS, cases.constants)
    check(func, args_for(func))


def test_registry_primitives_all_lowered():
    """Every primitive op in the registry has a lowering (grad is expanded by autodiff)."""
    from tflc.codegen.llvm.elementwise import SCALAR
    from tflc.codegen.llvm.lower import LOWERINGS

    for name, opdef in REGISTRY.items():
        if opdef.kind == "elementwise":
            assert name in SCALAR, name
        elif opdef.kind not in ("composite", "special"):
            assert name in LOWERINGS, name


def test_unexpanded_op_is_a_located_error():
    x = Value(TensorType("f32", ("N",)), "x")
    b = Builder(loc=Loc("m.tfl", 4, 9))
    s = b.emit("sum", x)
    g = b.emit("grad", s, x)
    func = Function("f", ("N",), (x,), tuple(b.ops), (Output("g", g),))
    with pytest.raises(Error) as info:
        compile(func)
    assert info.value.loc == Loc("m.tfl", 4, 9)
    assert "grad" in info.value.message


@pytest.mark.parametrize("dtype", ["f32", "f64", "i32", "i64"])
@pytest.mark.parametrize("shape", [("N", 37), ("N", 2, 70), (2, "N")])
def test_reductions_along_rows_of_any_length(dtype, shape):
    """Rows (the last axis) are reduced in lanes: rows that are not whole numbers of lanes or
    vectors, and a row as long as the batch."""
    def build(b, v):
        return {f"{op}{axis}": b.emit(op, v["x"], axis=axis)
                for op in ("sum", "prod", "max", "min") for axis in (-1, None)}

    func = function({"x": (dtype, shape)}, build)
    make = args_for(func, {"x": (0.9, 1.1) if dtype in ("f32", "f64") else (-3, 3)})
    check(func, make, tolerance=dict(rtol=1e-5, atol=1e-5) if dtype == "f32" else None)
