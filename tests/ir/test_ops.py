"""Every op against NumPy computed directly: type rules (dtypes, symbolic dims, errors), the NumPy
references, and the VJP rules evaluated on small cases with known answers. (Finite-difference
gradient checks of every op live with the autodiff tests.)"""

import inspect

import numpy as np
import pytest

from tflc.ir import REGISTRY, Builder, Error, Loc, TensorType, Value
from tflc.ir.types import NUMPY_DTYPES, dtype_of_numpy, eval_dim

RNG = np.random.default_rng(0)


def value(dtype, *shape):
    return Value(TensorType(dtype, tuple(shape)))


def array_value(array):
    return value(dtype_of_numpy(array.dtype), *array.shape)


def call_reference(op, arrays, sizes=None):
    """Runs op's reference the way the numpy backend does: attrs as keywords, and `out_shape`
    (the result shape with symbols bound) for references that ask for it."""
    reference = REGISTRY[op.opcode].reference
    kwargs = dict(op.attrs)
    if "out_shape" in inspect.signature(reference).parameters:
        kwargs["out_shape"] = tuple(eval_dim(d, sizes or {}) for d in op.result.type.shape)
    return reference(*arrays, **kwargs)


def check_result(result, result_type, sizes=None):
    """The reference's output has exactly the type the type rule promised."""
    assert isinstance(result, np.ndarray), type(result)
    assert result.dtype == NUMPY_DTYPES[result_type.dtype]
    assert result.shape == tuple(eval_dim(d, sizes or {}) for d in result_type.shape)


def run(opcode, *arrays, **attrs):
    """Builds `opcode` on values typed like `arrays`, runs its reference, checks the result type."""
    b = Builder()
    result = b.emit(opcode, *(array_value(a) for a in arrays), **attrs)
    out = call_reference(b.ops[-1], arrays)
    check_result(out, result.type)
    return out


def infer(opcode, *operand_types, **attrs):
    return Builder().emit(opcode, *(value(*t) for t in operand_types), **attrs).type


def type_error(opcode, *operand_types, **attrs):
    """The message of the located error that building the op raises."""
    with pytest.raises(Error) as info:
        Builder(loc=Loc("m.tfl", 3, 7)).emit(opcode, *(value(*t) for t in operand_types),
                                              **attrs)
    assert info.value.loc == Loc("m.tfl", 3, 7)
    return info.value.message


def floats(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def evaluate(ops, env, sizes=None):
    """Runs a list of ops with the references; `env` maps the values defined outside them."""
    env = dict(env)
    for op in ops:
        if op.opcode == "const":
            out = op.attrs["value"]
        else:
            out = call_reference(op, [env[v] for v in op.operands], sizes)
        check_result(np.asarray(out), op.result.type, sizes)
        env[op.result] = out
    return env


def vjp(opcode, arrays, g, **attrs):
    """The VJP of `opcode` at `arrays` for cotangent `g`, evaluated: one array (or None) per
    operand. Also checks that every op the rule emits carries the builder's location."""
    forward = Builder()
    forward.emit(opcode, *(array_value(a) for a in arrays), **attrs)
    op = forward.ops[-1]
    g_value = array_value(np.asarray(g))
    backward = Builder(loc=Loc("m.tfl", 9, 1))
    cotangents = REGISTRY[opcode].vjp(backward, op, g_value)
    assert len(cotangents) == len(arrays)
    assert all(o.loc == Loc("m.tfl", 9, 1) for o in backward.ops)
    env = {**dict(zip(op.operands, arrays)), op.result: call_reference(op, arrays),
           g_value: np.asarray(g)}
    env = evaluate(backward.ops, env)
    results = [None if c is None else env[c] for c in cotangents]
    for array, cotangent in zip(arrays, results):  # the operand broadcasts to its cotangent
        assert np.broadcast_shapes(np.shape(array), cotangent.shape) == cotangent.shape
    return results


def unbroadcast(cotangent, shape):
    """What the autodiff driver does with a cotangent larger than its operand."""
    extra = cotangent.ndim - len(shape)
    cotangent = cotangent.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and cotangent.shape[i] != 1)
    return cotangent.sum(axis=axes, keepdims=True)


# -- elementwise ----------------------------------------------------------------------------------

UNARY = {"neg": np.negative, "abs": np.abs, "sign": np.sign, "exp": np.exp, "log": np.log,
         "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "square": np.square, "sin": np.sin,
         "cos": np.cos, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
         "relu": lambda x: np.maximum(x, 0)}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "eq": np.equal,
          "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
          "ge": np.greater_equal}


@pytest.mark.parametrize("opcode", sorted(UNARY))
def test_unary(opcode):
    x = np.abs(floats(3, 4)) + 0.5
    np.testing.assert_allclose(run(opcode, x), UNARY[opcode](x), rtol=1e-6)


@pytest.mark.parametrize("opcode", sorted(BINARY))
def test_binary_broadcasts(opcode):
    a, b = np.abs(floats(2, 1, 4)) + 0.5, np.abs(floats(3, 1)) + 0.5
    np.testing.assert_allclose(run(opcode, a, b), BINARY[opcode](a, b), rtol=1e-6)


def test_logical_ops():
    a, b = np.array([True, True, False, False]), np.array([True, False, True, False])
    np.testing.assert_array_equal(run("and", a, b), a & b)
    np.testing.assert_array_equal(run("or", a, b), a | b)
    np.testing.assert_array_equal(run("not", a), ~a)


def test_where_and_cast():
    cond = np.array([[True], [False]])
    a, b = floats(2, 3), floats(3)
    np.testing.assert_array_equal(run("where", cond, a, b), np.where(cond, a, b))
    x = np.array([1.7, -2.2, 0.0], np.float32)
    np.testing.assert_array_equal(run("cast", x, dtype="i32"), x.astype(np.int32))
    np.testing.assert_array_equal(run("cast", np.array([1, 0]), dtype="bool"), [True, False])


def test_elementwise_type_errors():
    assert "different dtypes f32 and i32" in type_error("add", ("f32", 2), ("i32", 2))
    assert "dims 3 and 4 do not broadcast" in type_error("mul", ("f32", 3), ("f32", 4))
    assert "expects a float tensor" in type_error("exp", ("i32", 2))
    assert infer("add", ("f32", "N", 1), ("f32", 10)) == TensorType("f32", ("N", 10))


# -- reductions -----------------------------------------------------------------------------------

REDUCTIONS = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}
AXES = [None, 0, -1, [0, 2], (-1, 0), []]


@pytest.mark.parametrize("opcode", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(opcode, axis, keepdims):
    x = floats(2, 3, 4)
    np_axis = None if axis is None else tuple(axis) if isinstance(axis, (list, tuple)) else axis
    expected = REDUCTIONS[opcode](x, axis=np_axis, keepdims=keepdims)
    np.testing.assert_allclose(run(opcode, x, axis=axis, keepdims=keepdims), expected,
                               rtol=1e-5)


@pytest.mark.parametrize("opcode", sorted(REDUCTIONS))
def test_reductions_keep_integer_dtypes(opcode):
    x = np.arange(1, 7, dtype=np.int32).reshape(2, 3)
    out = run(opcode, x, axis=1)
    np.testing.assert_array_equal(out, REDUCTIONS[opcode](x, axis=1))
    assert run(opcode, x).dtype == np.int32  # also for the 0-d result of reducing everything


def test_reduction_types_with_symbolic_dims():
    assert infer("sum", ("f32", "N", 784), axis=1) == TensorType("f32", ("N",))
    assert infer("max", ("f64", "N", 784), axis=-1, keepdims=True) == TensorType("f64", ("N", 1))
    assert infer("sum", ("f32", "N", 784)) == TensorType("f32", ())
    assert infer("min", ("i64", "N", "M", 3), axis=[0, 1]) == TensorType("i64", (3,))


def test_reduction_type_errors():
    assert type_error("sum", ("f32", 2, 3), axis=2) == \
        "sum: f32[2,3]: axis 2 is out of range for rank 2"
    assert "repeated axis" in type_error("sum", ("f32", 2, 3), axis=[1, -1])
    assert "axis must be an int or a list of ints" in type_error("max", ("f32", 2), axis=1.5)
    assert "keepdims must be true or false" in type_error("sum", ("f32", 2), keepdims=1)
    assert "expects a number tensor, got bool[2]" in type_error("prod", ("bool", 2))


@pytest.mark.parametrize("opcode, np_fn", [("argmax", np.argmax), ("argmin", np.argmin)])
def test_arg_reductions(opcode, np_fn):
    x = floats(3, 4, 5)
    for axis in (0, 1, -1):
        np.testing.assert_array_equal(run(opcode, x, axis=axis), np_fn(x, axis=axis))
    ties = np.array([[1, 5, 5], [2, 2, 0]], np.int32)
    np.testing.assert_array_equal(run(opcode, ties, axis=1), np_fn(ties, axis=1))
    assert run(opcode, np.array([3.0, 9.0, 1.0]), axis=0).dtype == np.int64
    assert infer(opcode, ("f32", "N", 10), axis=1) == TensorType("i64", ("N",))


def test_arg_reduction_type_errors():
    assert type_error("argmax", ("f32", "N", 10)) == "argmax: needs an axis, e.g. axis=1"
    assert "axis must be one int" in type_error("argmin", ("f32", 2, 3), axis=[1])
    assert "out of range" in type_error("argmax", ("f32", 2, 3), axis=-3)


def test_sum_vjp_broadcasts_g_back():
    x = floats(2, 3, 4)
    g = floats(2, 4)
    dx, = vjp("sum", [x], g, axis=-2)
    np.testing.assert_array_equal(dx, np.broadcast_to(g[:, None, :], x.shape))
    g = floats(2, 1, 4)
    dx, = vjp("sum", [x], g, axis=[1], keepdims=True)
    np.testing.assert_array_equal(dx, np.broadcast_to(g, x.shape))
    dx, = vjp("sum", [x], np.float32(2.5))
    np.testing.assert_array_equal(dx, np.full(x.shape, 2.5, np.float32))


@pytest.mark.parametrize("opcode", ["max", "min"])
def test_max_min_vjp_splits_ties(opcode):
    sign = 1 if opcode == "max" else -1
    x = sign * np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 1.0]])
    dx, = vjp(opcode, [x], np.array([4.0, 6.0]), axis=1)
    np.testing.assert_array_equal(dx, [[0, 2, 2], [6, 0, 0]])
    dx, = vjp(opcode, [x], np.array(3.0))
    np.testing.assert_array_equal(dx, [[0, 1.5, 1.5], [0, 0, 0]])


def test_prod_vjp_handles_zeros():
    x = np.array([[2.0, 3.0, 4.0], [0.0, 5.0, 6.0], [0.0, 0.0, 7.0]])
    dx, = vjp("prod", [x], np.array([1.0, 2.0, 3.0]), axis=-1)
    np.testing.assert_allclose(dx, [[12, 8, 6], [60, 0, 0], [0, 0, 0]])
    x = floats(3, 2, dtype=np.float64)
    dx, = vjp("prod", [x], np.ones((1, 2)), axis=0, keepdims=True)
    np.testing.assert_allclose(dx, x.prod(axis=0) / x)


# -- matmul ---------------------------------------------------------------------------------------

MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 6)), ((4,), (4, 5)), ((3, 4), (4,)),
                 ((4,), (4,)), ((2, 3, 4), (4,)), ((4,), (2, 4, 5))]


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES)
def test_matmul(a_shape, b_shape):
    a, b = floats(*a_shape, dtype=np.float64), floats(*b_shape, dtype=np.float64)
    np.testing.assert_allclose(run("matmul", a, b), np.matmul(a, b))


@pytest.mark.parametrize("a_shape, b_shape", MATMUL_SHAPES)
def test_matmul_vjp(a_shape, b_shape):
    a, b = floats(*a_shape, dtype=np.float64), floats(*b_shape, dtype=np.float64)
    g = floats(*np.matmul(a, b).shape, dtype=np.float64)
    da, db = vjp("matmul", [a, b], g)
    a2, b2 = a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b
    g2 = g.reshape(np.matmul(a2, b2).shape)
    expected_a = np.matmul(g2, np.swapaxes(b2, -1, -2))
    expected_b = np.matmul(np.swapaxes(a2, -1, -2), g2)
    for cotangent, operand, promoted, expected in [(da, a, a2, expected_a),
                                                   (db, b, b2, expected_b)]:
        np.testing.assert_allclose(unbroadcast(cotangent, operand.shape),
                                   unbroadcast(expected, promoted.shape).reshape(operand.shape))


def test_matmul_types():
    assert infer("matmul", ("f32", "N", 784), ("f32", 784, 300)) == TensorType("f32", ("N", 300))
    assert infer("matmul", ("f64", "B", 1, 3, 4), ("f64", 5, 4, 6)) == \
        TensorType("f64", ("B", 5, 3, 6))
    assert infer("matmul", ("i32", 4), ("i32", 4)) == TensorType("i32", ())
    assert run("matmul", np.ones((2, 3), np.int32), np.ones((3, 2), np.int32)).dtype == np.int32


def test_matmul_type_errors():
    assert type_error("matmul", ("f32", "N", 784), ("f32", 300, 10)) == \
        "matmul: f32[N,784] @ f32[300,10]: inner dimensions 784 and 300 differ"
    assert "inner dimensions N and M differ" in type_error("matmul", ("f32", 2, "N"),
                                                           ("f32", "M"))
    assert "batch dims: dims 2 and 5 do not broadcast" in \
        type_error("matmul", ("f32", 2, 3, 4), ("f32", 5, 4, 6))
    assert "different dtypes f32 and f64" in type_error("matmul", ("f32", 2, 3), ("f64", 3, 2))
    assert "at least one dim" in type_error("matmul", ("f32",), ("f32", 3))
    assert "expects number tensors" in type_error("matmul", ("bool", 2, 2), ("bool", 2, 2))


# -- reshape, transpose, broadcast_to -------------------------------------------------------------

def test_reshape():
    x = floats(2, 12)
    for shape in ([4, 6], [-1, 3, 4], [3, -1], [24], [2, 1, 12]):
        np.testing.assert_array_equal(run("reshape", x, shape=shape), x.reshape(shape))
    np.testing.assert_array_equal(run("reshape", np.float64(3.0).reshape(1, 1), shape=[]), 3.0)


def test_reshape_symbolic_types():
    assert infer("reshape", ("f32", "N", 784), shape=[-1, 28, 28]) == \
        TensorType("f32", ("N", 28, 28))
    assert infer("reshape", ("f32", "N", 784), shape=[-1]) == TensorType("f32", ("784*N",))
    assert infer("reshape", ("f32", "784*N",), shape=["N", 784]) == \
        TensorType("f32", ("N", 784))
    assert infer("reshape", ("f32", "N", "M", 2), shape=[-1, "M"]) == \
        TensorType("f32", ("2*N", "M"))


def test_reshape_with_symbols_runs():
    b = Builder()
    x = value("f32", "N", 12)
    y = b.emit("reshape", x, shape=[-1, 3, 4])
    data = floats(5, 12)
    env = evaluate(b.ops, {x: data}, sizes={"N": 5})
    np.testing.assert_array_equal(env[y], data.reshape(5, 3, 4))


def test_reshape_type_errors():
    assert type_error("reshape", ("f32", 2, 12), shape=[5, 5]) == \
        "reshape: cannot reshape f32[2,12] (24 elements) to [5, 5] (25 elements)"
    assert "not a multiple of 5" in type_error("reshape", ("f32", 2, 12), shape=[-1, 5])
    assert "not a multiple of M" in type_error("reshape", ("f32", "N", 3), shape=[-1, "M"])
    assert "at most one -1" in type_error("reshape", ("f32", 4), shape=[-1, -1])
    assert "must be a list of sizes" in type_error("reshape", ("f32", 4), shape=None)


def test_transpose():
    x = floats(2, 3, 4)
    np.testing.assert_array_equal(run("transpose", x), x.T)
    np.testing.assert_array_equal(run("transpose", x, perm=[1, 2, 0]), x.transpose(1, 2, 0))
    assert infer("transpose", ("f32", "N", 784)) == TensorType("f32", (784, "N"))
    assert "not a permutation" in type_error("transpose", ("f32", 2, 3), perm=[0, 0])
    assert "not a permutation" in type_error("transpose", ("f32", 2, 3), perm=[1, 2, 0])


def test_broadcast_to():
    x = floats(3, 1)
    np.testing.assert_array_equal(run("broadcast_to", x, shape=[2, 3, 4]),
                                  np.broadcast_to(x, (2, 3, 4)))
    assert infer("broadcast_to", ("f32", 300), shape=["N", 300]) == TensorType("f32", ("N", 300))
    assert infer("broadcast_to", ("f32", "N", 1), shape=["N", 5]) == TensorType("f32", ("N", 5))
    assert type_error("broadcast_to", ("f32", 3, 2), shape=[3, 4]) == \
        "broadcast_to: cannot broadcast f32[3,2] to [3, 4]"
    assert "cannot broadcast" in type_error("broadcast_to", ("f32", "N"), shape=["M"])
    assert "cannot broadcast" in type_error("broadcast_to", ("f32", 2, 3), shape=[3])


def test_shape_op_vjps():
    x = floats(2, 3, 4)
    g = floats(6, 4)
    dx, = vjp("reshape", [x], g, shape=[-1, 4])
    np.testing.assert_array_equal(dx, g.reshape(x.shape))
    g = floats(3, 4, 2)
    dx, = vjp("transpose", [x], g, perm=[1, 2, 0])
    np.testing.assert_array_equal(dx, g.transpose(2, 0, 1))
    g = floats(4, 3, 2)
    dx, = vjp("transpose", [x], g)
    np.testing.assert_array_equal(dx, g.T)
    x, g = floats(3, 1), floats(2, 3, 4)
    dx, = vjp("broadcast_to", [x], g, shape=[2, 3, 4])
    np.testing.assert_allclose(unbroadcast(dx, x.shape), g.sum(axis=(0, 2))[:, None], rtol=1e-6)


# -- concat, slice, pad ---------------------------------------------------------------------------

def test_concat():
    a, b, c = floats(2, 3), floats(2, 1), floats(2, 4)
    np.testing.assert_array_equal(run("concat", a, b, c, axis=-1), np.concatenate([a, b, c], 1))
    np.testing.assert_array_equal(run("concat", a, a), np.concatenate([a, a]))
    assert infer("concat", ("f32", "N", 3), ("f32", "N", 5), axis=1) == \
        TensorType("f32", ("N", 8))


def test_concat_type_errors():
    assert "needs 2 or more tensors, got 1" in type_error("concat", ("f32", 2))
    assert "shapes differ outside axis 0" in type_error("concat", ("f32", 2, 3), ("f32", 2, 4))
    assert "shapes differ" in type_error("concat", ("f32", 2, 3), ("f32", 2))
    assert "different dtypes" in type_error("concat", ("f32", 2), ("i32", 2))
    assert "must be known numbers, got N" in type_error("concat", ("f32", "N"), ("f32", "N"))
    assert "out of range" in type_error("concat", ("f32", 2), ("f32", 2), axis=1)


def test_concat_vjp():
    a, b = floats(2, 3), floats(2, 1)
    g = floats(2, 4)
    da, db = vjp("concat", [a, b], g, axis=-1)
    np.testing.assert_array_equal(da, g[:, :3])
    np.testing.assert_array_equal(db, g[:, 3:])


SLICES = [([0, 1], [-1, 2]), ([1, -3], [1, -1]), ([-2, 0], [2, 0]), ([0, 0], [3, 4])]


@pytest.mark.parametrize("begin, size", SLICES)
def test_slice(begin, size):
    x = floats(3, 4)
    index = tuple(slice(b % d, d if s == -1 else b % d + s)
                  for b, s, d in zip(begin, size, x.shape))
    np.testing.assert_array_equal(run("slice", x, begin=begin, size=size), x[index])


def test_slice_of_a_scalar():
    assert run("slice", np.float32(5.0).reshape(()), begin=[], size=[]) == 5.0


@pytest.mark.parametrize("begin, size", SLICES)
def test_slice_vjp_pads(begin, size):
    x = floats(3, 4)
    out = run("slice", x, begin=begin, size=size)
    g = floats(*out.shape)
    dx, = vjp("slice", [x], g, begin=begin, size=size)
    expected = np.zeros_like(x)
    index = tuple(slice(b % d, b % d + n) for b, d, n in zip(begin, x.shape, out.shape))
    expected[index] = g
    np.testing.assert_array_equal(dx, expected)


def test_slice_symbolic_and_errors():
    assert infer("slice", ("f32", "N", 10), begin=[0, -3], size=[-1, 2]) == \
        TensorType("f32", ("N", 2))
    assert type_error("slice", ("f32", "N", 10), begin=[1, 0], size=[-1, 2]) == \
        ("slice: f32[N,10]: axis 0 has symbolic size N, so only all of it can be taken "
         "(begin 0, size -1)")
    assert "begin 2, size 3 is out of bounds for axis 0 of size 4" in \
        type_error("slice", ("f32", 4), begin=[2], size=[3])
    assert "out of bounds" in type_error("slice", ("f32", 4), begin=[-5], size=[1])
    assert "out of bounds" in type_error("slice", ("f32", 4), begin=[0], size=[-2])
    assert "begin has 1 entries, expected one per dim (2)" in \
        type_error("slice", ("f32", 4, 4), begin=[0], size=[1, 1])
    assert "size must be a list of ints" in type_error("slice", ("f32", 4), begin=[0])


def test_pad():
    x = floats(2, 3)
    np.testing.assert_array_equal(run("pad", x, before=[1, 0], after=[2, 3]),
                                  np.pad(x, [(1, 2), (0, 3)]))
    np.testing.assert_array_equal(run("pad", np.array([True]), before=[1], after=[1]),
                                  [False, True, False])
    assert run("pad", np.float64(2.0).reshape(()), before=[], after=[]) == 2.0
    assert infer("pad", ("f32", "N", 3), before=[0, 1], after=[0, 1]) == \
        TensorType("f32", ("N", 5))
    assert "cannot be padded" in type_error("pad", ("f32", "N"), before=[1], after=[0])
    assert "must be >= 0" in type_error("pad", ("f32", 3), before=[-1], after=[0])
    assert "needs before and after" in type_error("pad", ("f32", 3), before=[1])


def test_pad_vjp_slices():
    x, g = floats(2, 3), floats(5, 6)
    dx, = vjp("pad", [x], g, before=[1, 0], after=[2, 3])
    np.testing.assert_array_equal(dx, g[1:3, 0:3])


def test_slice_and_pad_vjps_along_symbolic_dims():
    b = Builder()
    x = value("f32", "N", 10)
    y = b.emit("slice", x, begin=[0, 2], size=[-1, 5])
    dx, = REGISTRY["slice"].vjp(b, b.ops[-1], value("f32", "N", 5))
    assert dx.type == x.type
    dy, = REGISTRY["pad"].vjp(b, b.ops[-1], dx)
    assert dy.type == y.type


# -- one_hot, shape -------------------------------------------------------------------------------

def test_one_hot():
    indices = np.array([[0, 2], [3, -1]], np.int32)  # 3 and -1 are out of range: zero rows
    expected = np.zeros((2, 2, 3), np.float32)
    expected[0, 0, 0] = expected[0, 1, 2] = 1
    np.testing.assert_array_equal(run("one_hot", indices, depth=3), expected)
    assert infer("one_hot", ("i64", "N"), depth=10) == TensorType("f32", ("N", 10))
    assert "indices must be integers, got f32[3]" in type_error("one_hot", ("f32", 3), depth=2)
    assert "needs a depth" in type_error("one_hot", ("i64", 3))
    assert "depth must be a positive int" in type_error("one_hot", ("i64", 3), depth=0)


def test_shape():
    x = floats(5, 7)
    out = run("shape", x, axis=-1)
    assert out == 7 and out.shape == () and out.dtype == np.int64
    assert infer("shape", ("f32", "N", 784), axis=0) == TensorType("i64", ())
    assert "needs an axis" in type_error("shape", ("f32", 3))
    assert "out of range" in type_error("shape", ("f32", 3), axis=1)


# -- rng_uniform ----------------------------------------------------------------------------------

def draw(shape, counter, dtype=np.float32, seed=0, stream=0):
    return run("rng_uniform", np.zeros(shape, dtype), np.array(counter, np.int64),
               seed=seed, stream=stream)


def spec_uniform(n, counter, seed, stream):
    """docs/ops.md's formula in plain Python integers, independent of the NumPy reference."""
    mask = 2 ** 64 - 1

    def mix(z):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    key = mix(mix(mix(seed) ^ stream) ^ (counter & mask))
    return [(mix((key + (i + 1) * 0x9E3779B97F4A7C15) & mask) >> 40) * 2.0 ** -24
            for i in range(n)]


@pytest.mark.parametrize("counter, seed, stream", [(0, 0, 0), (7, 42, 3), (-1, 2 ** 64 - 1, 0)])
def test_rng_uniform_follows_the_spec(counter, seed, stream):
    u = draw((4, 5), counter, np.float64, seed, stream)
    np.testing.assert_array_equal(u.ravel(), spec_uniform(20, counter, seed, stream))


def test_rng_uniform_known_values():
    # computed once with the reference, as exact multiples of 2**-24: a change to the
    # generator's bits is caught here
    np.testing.assert_array_equal(
        draw((2, 3), 0) * 2 ** 24, [[14819496, 7239838, 443485], [16288696, 1784201, 5491615]])
    np.testing.assert_array_equal(draw((4,), 3, np.float64, seed=1) * 2 ** 24,
                                  [264060, 13796927, 8106854, 12428013])


def test_rng_uniform_is_reproducible_and_keyed():
    first = draw((100,), 5, seed=1)
    np.testing.assert_array_equal(first, draw((100,), 5, seed=1))
    for other in (draw((100,), 6, seed=1), draw((100,), 5, seed=1, stream=1),
                  draw((100,), 5, seed=2)):
        assert (other != first).mean() > 0.95
    # the element index, not the shape, picks the number
    np.testing.assert_array_equal(draw((10, 10), 5, seed=1).ravel(), first)


def test_rng_uniform_range_and_types():
    u = draw((1000,), 11)
    assert u.min() >= 0 and u.max() < 1 and 0.45 < u.mean() < 0.55
    np.testing.assert_array_equal(draw((1000,), 11, np.float64), u.astype(np.float64))
    assert draw((), 0).shape == ()
    assert infer("rng_uniform", ("f64", "N", 3), ("i64",)) == TensorType("f64", ("N", 3))
    assert "like must be a float tensor" in type_error("rng_uniform", ("i32", 3), ("i64",))
    assert "counter must be an i64[] scalar" in type_error("rng_uniform", ("f32", 3), ("i32",))
    assert "seed must be an int in [0, 2**64)" in \
        type_error("rng_uniform", ("f32", 3), ("i64",), seed=-1)


# -- const, grad ----------------------------------------------------------------------------------

def test_const_and_grad_types():
    b = Builder()
    c = b.const([[1, 2, 3]], "i32")
    assert c.type == TensorType("i32", (1, 3))
    assert infer("grad", ("f32",), ("f32", "N", 3)) == TensorType("f32", ("N", 3))
    assert "needs a scalar" in type_error("grad", ("f32", 2), ("f32", 3))
    assert "float values only" in type_error("grad", ("f32",), ("i32", 3))
