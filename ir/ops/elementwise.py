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


# -- VJPs: cotangents as IR ops, shaped like the result (the autodiff driver unbroadcasts) -------

def _zero(b, like):
    return b.scalar_like(0, like)


def unless_zero(b, g, value):
    """`value`, but 0 where the cotangent `g` is 0: for rules whose local derivative is infinite
    at finite inputs (log, sqrt, rsqrt at 0; div by 0; pow), so that a zero cotangent, such as
    the one `where` sends to its untaken branch, stays 0 instead of becoming 0 * inf = NaN."""
    zero = _zero(b, g)
    return b.emit("where", b.emit("eq", g, zero), zero, value)


def _mul(b, *factors):
    product = factors[0]
    for factor in factors[1:]:
        product = b.emit("mul", product, factor)
    return product


def vjp_abs(b, op, g):
    return (_mul(b, g, b.emit("sign", op.operands[0])),)  # abs'(0) = sign(0) = 0


def vjp_log(b, op, g):
    return (unless_zero(b, g, b.emit("div", g, op.operands[0])),)


def vjp_sqrt(b, op, g):
    return (unless_zero(b, g, b.emit("div", g, _mul(b, b.scalar_like(2, g), op.result))),)


def vjp_rsqrt(b, op, g):
    x, r = op.operands[0], op.result  # d x**-0.5 = -0.5 * r / x
    return (unless_zero(b, g, b.emit("div", _mul(b, g, b.scalar_like(-0.5, g), r), x)),)


def vjp_square(b, op, g):
    return (_mul(b, g, b.scalar_like(2, g), op.operands[0]),)


def vjp_cos(b, op, g):
    return (b.emit("neg", _mul(b, g, b.emit("sin", op.operands[0]))),)


def vjp_tanh(b, op, g):
    r = op.result
    return (_mul(b, g, b.emit("sub", b.scalar_like(1, g), b.emit("square", r))),)


def vjp_sigmoid(b, op, g):
    r = op.result
    return (_mul(b, g, r, b.emit("sub", b.scalar_like(1, g), r)),)


def vjp_relu(b, op, g):
    x = op.operands[0]  # relu'(0) = 0
    return (b.emit("where", b.emit("gt", x, _zero(b, x)), g, _zero(b, g)),)


def vjp_mul(b, op, g):
    return _mul(b, g, op.operands[1]), _mul(b, g, op.operands[0])


def vjp_div(b, op, g):
    a_over, r = b.emit("div", g, op.operands[1]), op.result  # d a/b: g/b and -g/b * a/b
    return (unless_zero(b, g, a_over), unless_zero(b, g, b.emit("neg", _mul(b, a_over, r))))


def vjp_pow(b, op, g):
    """d a**b / da = b * a**(b-1), taken as 0 where b = 0 (a**0 is constant, even at a = 0);
    d a**b / db = a**b * log(a), taken as 0 where a <= 0, as TensorFlow does (0**b is constant
    for b > 0, and a negative base has no real derivative in b)."""
    a, e, r = op.operands[0], op.operands[1], op.result
    zero, one = _zero(b, a), b.scalar_like(1, a)
    slope = _mul(b, e, b.emit("pow", a, b.emit("sub", e, one)))
    da = b.emit("where", b.emit("eq", e, zero), zero, slope)
    log_a = b.emit("log", b.emit("where", b.emit("gt", a, zero), a, one))
    return unless_zero(b, g, _mul(b, g, da)), unless_zero(b, g, _mul(b, g, r, log_a))


def _select_vjp(compare):
    """maximum / minimum: the gradient goes to `a` where `compare(a, b)` holds strictly, else to
    `b`: ties go to the second operand, so maximum(x, 0) at x = 0 gives x nothing, like relu."""
    def vjp(b, op, g):
        wins = b.emit(compare, *op.operands)
        zero = _zero(b, g)
        return b.emit("where", wins, g, zero), b.emit("where", wins, zero, g)
    return vjp


def vjp_where(b, op, g):
    """No gradient to the condition; the branch not taken gets exactly 0 (a select, never a
    multiplication by a mask, so an inf or NaN in g's other branch cannot leak into it)."""
    cond, zero = op.operands[0], _zero(b, g)
    return None, b.emit("where", cond, g, zero), b.emit("where", cond, zero, g)


def vjp_cast(b, op, g):
    """Between floats the cotangent is cast back; to or from integers and bools nothing flows."""
    x = op.operands[0]
    if x.type.is_float and op.result.type.is_float:
        return (b.cast(g, x.type.dtype),)
    return (None,)


UNARY = [  # name, allowed dtypes, reference, vjp, doc
    ("neg", NUMERIC, op_neg, lambda b, op, g: (b.emit("neg", g),),
     "Forward: -x / Backward: -g"),
    ("abs", NUMERIC, op_abs, vjp_abs, "Forward: |x| / Backward: g * sign(x)"),
    ("sign", NUMERIC, op_sign, lambda b, op, g: (None,),
     "Forward: -1, 0 or 1 (0 for 0) / Backward: 0"),
    ("exp", FLOAT_DTYPES, op_exp, lambda b, op, g: (_mul(b, g, op.result),),
     "Forward: e**x / Backward: g * e**x"),
    ("log", FLOAT_DTYPES, op_log, vjp_log, "Forward: natural logarithm / Backward: g / x"),
    ("sqrt", FLOAT_DTYPES, op_sqrt, vjp_sqrt,
     "Forward: square root / Backward: g / (2 sqrt(x))"),
    ("rsqrt", FLOAT_DTYPES, op_rsqrt, vjp_rsqrt,
     "Forward: 1 / sqrt(x) / Backward: -g / (2 x sqrt(x))"),
    ("square", NUMERIC, op_square, vjp_square, "Forward: x * x / Backward: 2 x g"),
    ("sin", FLOAT_DTYPES, op_sin, lambda b, op, g: (_mul(b, g, b.emit("cos", op.operands[0])),),
     "Forward: sine / Backward: g cos(x)"),
    ("cos", FLOAT_DTYPES, op_cos, vjp_cos, "Forward: cosine / Backward: -g sin(x)"),
    ("tanh", FLOAT_DTYPES, op_tanh, vjp_tanh,
     "Forward: hyperbolic tangent / Backward: g (1 - tanh(x)**2)"),
    ("sigmoid", FLOAT_DTYPES, op_sigmoid, vjp_sigmoid,
     "Forward: 1 / (1 + exp(-x)) / Backward: g s (1 - s)"),
    ("relu", NUMERIC, op_relu, vjp_relu, "Forward: max(x, 0) / Backward: g where x > 0, else 0"),
]

BINARY = [  # name, allowed dtypes, reference, vjp, doc
    ("add", NUMERIC, op_add, lambda b, op, g: (g, g), "Forward: a + b / Backward: g, g"),
    ("sub", NUMERIC, op_sub, lambda b, op, g: (g, b.emit("neg", g)),
     "Forward: a - b / Backward: g, -g"),
    ("mul", NUMERIC, op_mul, vjp_mul, "Forward: a * b / Backward: g b, g a"),
    ("div", FLOAT_DTYPES, op_div, vjp_div,
     "Forward: a / b (floats only: cast integers first) / Backward: g / b, -g a / b**2"),
    ("pow", NUMERIC, op_pow, vjp_pow,
     "Forward: a ** b / Backward: g b a**(b-1), g a**b log(a)"),
    ("maximum", NUMERIC, op_maximum, _select_vjp("gt"),
     "Forward: elementwise max (NaN propagates) / Backward: g to a where a > b, else to b"),
    ("minimum", NUMERIC, op_minimum, _select_vjp("lt"),
     "Forward: elementwise min (NaN propagates) / Backward: g to a where a < b, else to b"),
]

LOGICAL = [  # name, allowed dtypes, reference, doc: bool results, so no gradient flows
    ("eq", DTYPES, op_eq, "a == b"),
    ("ne", DTYPES, op_ne, "a != b"),
    ("lt", NUMERIC, op_lt, "a < b"),
    ("le", NUMERIC, op_le, "a <= b"),
    ("gt", NUMERIC, op_gt, "a > b"),
    ("ge", NUMERIC, op_ge, "a >= b"),
    ("and", ("bool",), op_and, "logical and"),
    ("or", ("bool",), op_or, "logical or"),
]


def _float_hint(allowed) -> str:
    return "float" if allowed == FLOAT_DTYPES else ""


for _name, _allowed, _ref, _vjp, _doc in UNARY:
    register(OpDef(_name, "elementwise", _doc, unary_rule(_allowed, _float_hint(_allowed)),
                   reference=_ref, vjp=_vjp, arity=1))

register(OpDef("not", "elementwise", "logical not", unary_rule(("bool",)), reference=op_not,
               arity=1, differentiable=False))

for _name, _allowed, _ref, _vjp, _doc in BINARY:
    register(OpDef(_name, "elementwise", _doc, binary_rule(_allowed, None, _float_hint(_allowed)),
                   reference=_ref, vjp=_vjp, arity=2))

for _name, _allowed, _ref, _doc in LOGICAL:
    register(OpDef(_name, "elementwise", _doc, binary_rule(_allowed, "bool"), reference=_ref,
                   arity=2, differentiable=False))

register(OpDef("where", "elementwise",
               "Forward: cond ? a : b, broadcast / Backward: none to cond, g to the branch taken",
               infer_where, reference=op_where, vjp=vjp_where, arity=3))
register(OpDef("cast", "elementwise",
               "Forward: convert to dtype / Backward: g cast back (between floats only)",
               infer_cast, reference=op_cast, vjp=vjp_cast, arity=1, attrs={"dtype": "f32"}))
