"""Elementwise primitives: unary, binary (NumPy broadcasting), `where` and `cast`."""

from __future__ import annotations

import numpy as np

from ..registry import OpDef, ShapeError, broadcast_shapes, register, same_dtype
from ..types import DTYPES, FLOAT_DTYPES, TensorType

NUMERIC = ("f32", "f64", "i32", "i64")


def _check_dtype(t: TensorType, allowed, what: str) -> None:
    if t.dtype not in allowed:
        kinds = {FLOAT_DTYPES: "a float", NUMERIC: "a number", ("bool",): "a bool"}
        raise ShapeError(f"expects {kinds.get(tuple(allowed), ' or '.join(allowed))} tensor, "
                         f"got {t}" + (" (use cast(x, f32) first)" if what == "float" else ""))


def unary_rule(allowed, what=""):
    def infer(types, attrs):
        _check_dtype(types[0], allowed, what)
        return types[0]
    return infer


def binary_rule(allowed, result_dtype=None, what=""):
    def infer(types, attrs):
        dtype = same_dtype(types, f"{types[0]} and {types[1]}")
        _check_dtype(types[0], allowed, what)
        try:
            shape = broadcast_shapes(types[0].shape, types[1].shape)
        except ShapeError as e:
            raise ShapeError(f"{types[0]} and {types[1]}: {e}") from None
        return TensorType(result_dtype or dtype, shape)
    return infer


def infer_where(types, attrs):
    cond, a, b = types
    if cond.dtype != "bool":
        raise ShapeError(f"condition must be bool, got {cond}")
    dtype = same_dtype((a, b), f"{a} and {b}")
    try:
        shape = broadcast_shapes(cond.shape, a.shape, b.shape)
    except ShapeError as e:
        raise ShapeError(f"{cond}, {a} and {b}: {e}") from None
    return TensorType(dtype, shape)


def infer_cast(types, attrs):
    if attrs["dtype"] not in DTYPES:
        raise ShapeError(f"unknown dtype {attrs['dtype']!r}")
    return types[0].with_dtype(attrs["dtype"])


# -- NumPy references: top-level, self-contained (copied into generated modules) ---------------

def op_neg(x):
    return np.negative(x)


def op_abs(x):
    return np.abs(x)


def op_sign(x):
    return np.sign(x)


def op_exp(x):
    return np.exp(x)


def op_log(x):
    return np.log(x)


def op_sqrt(x):
    return np.sqrt(x)


def op_rsqrt(x):
    return 1 / np.sqrt(x)


def op_square(x):
    return np.square(x)


def op_sin(x):
    return np.sin(x)


def op_cos(x):
    return np.cos(x)


def op_tanh(x):
    return np.tanh(x)


def op_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def op_relu(x):
    return np.maximum(x, 0)


def op_not(x):
    return np.logical_not(x)


def op_add(a, b):
    return np.add(a, b)


def op_sub(a, b):
    return np.subtract(a, b)


def op_mul(a, b):
    return np.multiply(a, b)


def op_div(a, b):
    return np.divide(a, b)


def op_pow(a, b):
    return np.power(a, b)


def op_maximum(a, b):
    return np.maximum(a, b)


def op_minimum(a, b):
    return np.minimum(a, b)


def op_eq(a, b):
    return np.equal(a, b)


def op_ne(a, b):
    return np.not_equal(a, b)


def op_lt(a, b):
    return np.less(a, b)


def op_le(a, b):
    return np.less_equal(a, b)


def op_gt(a, b):
    return np.greater(a, b)


def op_ge(a, b):
    return np.greater_equal(a, b)


def op_and(a, b):
    return np.logical_and(a, b)


def op_or(a, b):
    return np.logical_or(a, b)


def op_where(cond, a, b):
    return np.where(cond, a, b)


def op_cast(x, *, dtype):
    names = {"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64,
             "bool": np.bool_}
    return np.asarray(x).astype(names[dtype])


UNARY = [  # name, allowed dtypes, reference, doc
    ("neg", NUMERIC, op_neg, "-x"),
    ("abs", NUMERIC, op_abs, "|x|"),
    ("sign", NUMERIC, op_sign, "-1, 0 or 1 (0 for 0)"),
    ("exp", FLOAT_DTYPES, op_exp, "e**x"),
    ("log", FLOAT_DTYPES, op_log, "natural logarithm"),
    ("sqrt", FLOAT_DTYPES, op_sqrt, "square root"),
    ("rsqrt", FLOAT_DTYPES, op_rsqrt, "1 / sqrt(x)"),
    ("square", NUMERIC, op_square, "x * x"),
    ("sin", FLOAT_DTYPES, op_sin, "sine"),
    ("cos", FLOAT_DTYPES, op_cos, "cosine"),
    ("tanh", FLOAT_DTYPES, op_tanh, "hyperbolic tangent"),
    ("sigmoid", FLOAT_DTYPES, op_sigmoid, "1 / (1 + exp(-x))"),
    ("relu", NUMERIC, op_relu, "max(x, 0)"),
    ("not", ("bool",), op_not, "logical not"),
]

BINARY = [  # name, allowed dtypes, result dtype (None: the operands'), reference, doc
    ("add", NUMERIC, None, op_add, "a + b"),
    ("sub", NUMERIC, None, op_sub, "a - b"),
    ("mul", NUMERIC, None, op_mul, "a * b"),
    ("div", FLOAT_DTYPES, None, op_div, "a / b (floats only: cast integers first)"),
    ("pow", NUMERIC, None, op_pow, "a ** b"),
    ("maximum", NUMERIC, None, op_maximum, "elementwise max (NaN propagates)"),
    ("minimum", NUMERIC, None, op_minimum, "elementwise min (NaN propagates)"),
    ("eq", DTYPES, "bool", op_eq, "a == b"),
    ("ne", DTYPES, "bool", op_ne, "a != b"),
    ("lt", NUMERIC, "bool", op_lt, "a < b"),
    ("le", NUMERIC, "bool", op_le, "a <= b"),
    ("gt", NUMERIC, "bool", op_gt, "a > b"),
    ("ge", NUMERIC, "bool", op_ge, "a >= b"),
    ("and", ("bool",), "bool", op_and, "logical and"),
    ("or", ("bool",), "bool", op_or, "logical or"),
]

for _name, _allowed, _ref, _doc in UNARY:
    register(OpDef(_name, "elementwise", _doc,
                   unary_rule(_allowed, "float" if _allowed == FLOAT_DTYPES else ""),
                   reference=_ref, arity=1))

for _name, _allowed, _result, _ref, _doc in BINARY:
    register(OpDef(_name, "elementwise", _doc,
                   binary_rule(_allowed, _result, "float" if _allowed == FLOAT_DTYPES else ""),
                   reference=_ref, arity=2))

register(OpDef("where", "elementwise", "cond ? a : b, broadcast", infer_where,
               reference=op_where, arity=3))
register(OpDef("cast", "elementwise", "convert to dtype", infer_cast, reference=op_cast,
               arity=1, attrs={"dtype": "f32"}))
