"""Composite ops: softmax, cross-entropies, mean, clip, dropout, ... written in primitives.

Each composite has a type rule (so the frontend checks it where the user wrote it) and an
`expand(builder, operands, attrs) -> Value` that the `inline` pass calls to replace it with
primitives. Expansions are numerically stable: max-subtraction before `exp`, log-sum-exp, and
`log(1 + exp(-|x|))` instead of `log(1 + exp(x))`.
"""

from __future__ import annotations

from ..registry import (OpDef, ShapeError, broadcast_shapes, get, normalize_axes,
                        normalize_axis, register, same_dtype)
from ..types import INT_DTYPES, TensorType


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_float(t: TensorType, what: str) -> None:
    if not t.is_float:
        raise ShapeError(f"{what} must be a float tensor, got {t} (use cast(x, f32) first)")


def _broadcast(types, what: str) -> tuple:
    try:
        return broadcast_shapes(*(t.shape for t in types))
    except ShapeError as e:
        raise ShapeError(f"{what}: {e}") from None


def _axis(x: TensorType, axis) -> int:
    if not _is_int(axis):
        raise ShapeError(f"axis must be one int, got {axis!r}")
    return normalize_axis(axis, x.rank, str(x))


# -- mean ----------------------------------------------------------------------------------------

def infer_mean(types, attrs):
    _check_float(types[0], "x")
    return get("sum").infer(types, attrs)


def expand_mean(b, operands, attrs):
    """sum / count; the count of a symbolic dim is its run-time size (`shape`), cast to x's
    dtype, so one compiled artifact serves every batch size."""
    x, = operands
    total = b.emit("sum", x, axis=attrs["axis"], keepdims=attrs["keepdims"])
    static, counts = 1, []
    for axis in normalize_axes(attrs["axis"], x.type.rank, "mean"):
        if _is_int(x.type.shape[axis]):
            static *= x.type.shape[axis]
        else:
            counts.append(b.cast(b.emit("shape", x, axis=axis), x.type.dtype))
    if static != 1 or not counts:
        counts.insert(0, b.scalar_like(static, x))
    count = counts[0]
    for size in counts[1:]:
        count = b.emit("mul", count, size)
    return b.emit("div", total, count)


# -- elementwise composites ----------------------------------------------------------------------

def infer_float_unary(types, attrs):
    _check_float(types[0], "x")
    return types[0]


def expand_softplus(b, operands, attrs):
    """log(1 + e**x) as relu(x) + log(1 + e**-|x|), never overflowing. The two kinks at 0 are
    written with one `where` on x >= 0 (as TensorFlow does), so they cancel in the gradient:
    softplus'(0) = 0.5, where relu'(0) = 0 and abs'(0) = 0 would give 0."""
    x, = operands
    zero = b.scalar_like(0, x)
    positive = b.emit("ge", x, zero)
    relu_x = b.emit("where", positive, x, zero)
    minus_abs_x = b.emit("where", positive, b.emit("neg", x), x)
    one = b.scalar_like(1, x)
    return b.emit("add", relu_x, b.emit("log", b.emit("add", one, b.emit("exp", minus_abs_x))))


def infer_clip(types, attrs):
    dtype = same_dtype(types, "clip(x, lo, hi)")
    if dtype not in ("f32", "f64", "i32", "i64"):
        raise ShapeError(f"expects number tensors, got {types[0]}")
    return TensorType(dtype, _broadcast(types, "clip(x, lo, hi)"))


def expand_clip(b, operands, attrs):
    """minimum(maximum(x, lo), hi): with ties going to the bound, x gets the gradient only
    strictly inside (lo, hi), like relu at 0."""
    x, lo, hi = operands
    return b.emit("minimum", b.emit("maximum", x, lo), hi)


# -- softmax and friends -------------------------------------------------------------------------

def infer_softmax(types, attrs):
    x, = types
    _check_float(x, "x")
    _axis(x, attrs["axis"])
    return x


def _shifted(b, x, axis):
    """x - max(x) along axis: every exponent is <= 0, so exp never overflows."""
    return b.emit("sub", x, b.emit("max", x, axis=axis, keepdims=True))


def expand_softmax(b, operands, attrs):
    x, = operands
    e = b.emit("exp", _shifted(b, x, attrs["axis"]))
    return b.emit("div", e, b.emit("sum", e, axis=attrs["axis"], keepdims=True))


def expand_log_softmax(b, operands, attrs):
    x, = operands
    z = _shifted(b, x, attrs["axis"])
    log_sum = b.emit("log", b.emit("sum", b.emit("exp", z), axis=attrs["axis"], keepdims=True))
    return b.emit("sub", z, log_sum)


def infer_softmax_xent(types, attrs):
    labels, logits = types
    _check_float(logits, "logits")
    same_dtype(types, "labels and logits")
    shape = _broadcast(types, f"labels {labels} and logits {logits}")
    if not shape:
        raise ShapeError(f"logits need a class axis, got {logits}")
    return TensorType(logits.dtype, shape[:-1])


def expand_softmax_xent(b, operands, attrs):
    """-sum(labels * log_softmax(logits)) over the last axis, one loss per row."""
    labels, logits = operands
    log_p = b.emit("log_softmax", logits, axis=-1)
    return b.emit("neg", b.emit("sum", b.emit("mul", labels, log_p), axis=-1))


def infer_sparse_softmax_xent(types, attrs):
    labels, logits = types
    _check_float(logits, "logits")
    if labels.dtype not in INT_DTYPES:
        raise ShapeError(f"labels must be class indices (integers), got {labels}")
    if logits.rank == 0 or labels.shape != logits.shape[:-1]:
        raise ShapeError(f"labels {labels} must have the shape of logits {logits} "
                         "without its last (class) axis")
    if not _is_int(logits.shape[-1]):
        raise ShapeError(f"logits {logits} need a known number of classes")
    return TensorType(logits.dtype, labels.shape)


def expand_sparse_softmax_xent(b, operands, attrs):
    """The dense loss with one-hot labels (an index outside the classes gives a zero row)."""
    labels, logits = operands
    one_hot = b.cast(b.emit("one_hot", labels, depth=logits.type.shape[-1]), logits.type.dtype)
    return b.emit("softmax_cross_entropy_with_logits", one_hot, logits)


def infer_sigmoid_xent(types, attrs):
    _check_float(types[1], "logits")
    dtype = same_dtype(types, "labels and logits")
    return TensorType(dtype, _broadcast(types, f"labels {types[0]} and logits {types[1]}"))


def expand_sigmoid_xent(b, operands, attrs):
    """softplus(x) - x * z, TensorFlow's stable form of -z log(s(x)) - (1 - z) log(1 - s(x))."""
    labels, logits = operands
    return b.emit("sub", b.emit("softplus", logits), b.emit("mul", logits, labels))


def infer_mse(types, attrs):
    _check_float(types[0], "a")
    dtype = same_dtype(types, "a and b")
    _broadcast(types, f"{types[0]} and {types[1]}")
    return TensorType(dtype, ())


def expand_mse(b, operands, attrs):
    a, other = operands
    return b.emit("mean", b.emit("square", b.emit("sub", a, other)))


# -- shape composites ----------------------------------------------------------------------------

def infer_expand_dims(types, attrs):
    x, = types
    if attrs["axis"] is None:
        raise ShapeError("needs an axis, e.g. axis=0")
    if not _is_int(attrs["axis"]):
        raise ShapeError(f"axis must be one int, got {attrs['axis']!r}")
    axis = normalize_axis(attrs["axis"], x.rank + 1, str(x))
    return x.with_shape(x.shape[:axis] + (1,) + x.shape[axis:])


def infer_squeeze(types, attrs):
    x, = types
    if attrs["axis"] is None:
        return x.with_shape(d for d in x.shape if d != 1)
    if not (_is_int(attrs["axis"]) or isinstance(attrs["axis"], (list, tuple))
            and all(_is_int(a) for a in attrs["axis"])):
        raise ShapeError(f"axis must be an int or a list of ints, got {attrs['axis']!r}")
    axes = normalize_axes(attrs["axis"], x.rank, str(x))
    for axis in axes:
        if x.shape[axis] != 1:
            raise ShapeError(f"cannot squeeze axis {axis} of {x}: its size is "
                             f"{x.shape[axis]}, not 1")
    return x.with_shape(d for i, d in enumerate(x.shape) if i not in axes)


def expand_reshape_to_type(infer):
    """expand_dims and squeeze only move size-1 dims: a reshape to the inferred shape."""
    def expand(b, operands, attrs):
        x, = operands
        return b.emit("reshape", x, shape=list(infer((x.type,), attrs).shape))
    return expand


# -- dropout -------------------------------------------------------------------------------------

def infer_dropout(types, attrs):
    x, keep_prob, counter = types
    _check_float(x, "x")
    if keep_prob.dtype != x.dtype or keep_prob.shape != ():
        raise ShapeError(f"keep_prob must be a {x.dtype}[] scalar, got {keep_prob}")
    return get("rng_uniform").infer((x, counter), attrs)


def expand_dropout(b, operands, attrs):
    """Keep each element with probability keep_prob, scaled by 1/keep_prob; the mask comes from
    the counter-based generator, so every backend drops the same elements."""
    x, keep_prob, counter = operands
    u = b.emit("rng_uniform", x, counter, seed=attrs["seed"], stream=attrs["stream"])
    kept = b.emit("lt", u, keep_prob)
    return b.emit("where", kept, b.emit("div", x, keep_prob), b.scalar_like(0, x))


COMPOSITES = [  # name, arity, attrs, type rule, expansion, doc
    ("mean", 1, {"axis": None, "keepdims": False}, infer_mean, expand_mean,
     "mean over axes: sum / count"),
    ("softplus", 1, {}, infer_float_unary, expand_softplus, "log(1 + exp(x)), stable"),
    ("clip", 3, {}, infer_clip, expand_clip, "minimum(maximum(x, lo), hi)"),
    ("softmax", 1, {"axis": -1}, infer_softmax, expand_softmax,
     "exp(x - max(x)) / sum(exp(x - max(x))) along axis"),
    ("log_softmax", 1, {"axis": -1}, infer_softmax, expand_log_softmax,
     "x - max(x) - log(sum(exp(x - max(x)))) along axis"),
    ("softmax_cross_entropy_with_logits", 2, {}, infer_softmax_xent, expand_softmax_xent,
     "-sum(labels * log_softmax(logits)) over the last axis"),
    ("sparse_softmax_cross_entropy_with_logits", 2, {}, infer_sparse_softmax_xent,
     expand_sparse_softmax_xent, "softmax cross-entropy with class-index labels"),
    ("sigmoid_cross_entropy_with_logits", 2, {}, infer_sigmoid_xent, expand_sigmoid_xent,
     "softplus(logits) - logits * labels, elementwise"),
    ("mse", 2, {}, infer_mse, expand_mse, "mean(square(a - b)), a scalar"),
    ("expand_dims", 1, {"axis": None}, infer_expand_dims,
     expand_reshape_to_type(infer_expand_dims), "insert a size-1 axis"),
    ("squeeze", 1, {"axis": None}, infer_squeeze, expand_reshape_to_type(infer_squeeze),
     "remove size-1 axes (all of them when no axis is given)"),
    ("dropout", 3, {"seed": 0, "stream": 0}, infer_dropout, expand_dropout,
     "where(rng_uniform < keep_prob, x / keep_prob, 0)"),
]

for _name, _arity, _attrs, _infer, _expand, _doc in COMPOSITES:
    register(OpDef(_name, "composite", _doc, _infer, expand=_expand, arity=_arity, attrs=_attrs))
