"""Reductions: `sum max min prod` over some axes, and `argmax argmin` along one.

The `axis` attribute is stored as the user wrote it (None, an int or a list, negatives allowed);
the type rules, the references and the VJPs each normalise it (`registry.normalize_axes`), so the
printed IR shows the user's own axes.
"""

from __future__ import annotations

import numpy as np

from ..registry import OpDef, ShapeError, normalize_axes, normalize_axis, register
from ..types import TensorType

NUMERIC = ("f32", "f64", "i32", "i64")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_numeric(x: TensorType) -> None:
    if x.dtype not in NUMERIC:
        raise ShapeError(f"expects a number tensor, got {x}")


def reduced_axes(x: TensorType, axis) -> tuple[int, ...]:
    """The sorted non-negative axes that `axis` (None, an int or a list of ints) names."""
    if not (axis is None or _is_int(axis)
            or isinstance(axis, (list, tuple)) and all(_is_int(a) for a in axis)):
        raise ShapeError(f"axis must be an int or a list of ints, got {axis!r}")
    return normalize_axes(axis, x.rank, str(x))


def kept_shape(x: TensorType, axes: tuple[int, ...]) -> tuple:
    """x's shape with the reduced axes kept as 1: the shape of a `keepdims=true` result."""
    return tuple(1 if i in axes else d for i, d in enumerate(x.shape))


def infer_reduce(types, attrs):
    x, = types
    _check_numeric(x)
    axes = reduced_axes(x, attrs["axis"])
    if not isinstance(attrs["keepdims"], bool):
        raise ShapeError(f"keepdims must be true or false, got {attrs['keepdims']!r}")
    if attrs["keepdims"]:
        return x.with_shape(kept_shape(x, axes))
    return x.with_shape(d for i, d in enumerate(x.shape) if i not in axes)


def infer_arg_reduce(types, attrs):
    x, = types
    _check_numeric(x)
    axis = attrs["axis"]
    if axis is None:
        raise ShapeError("needs an axis, e.g. axis=1")
    if not _is_int(axis):
        raise ShapeError(f"axis must be one int, got {axis!r}")
    axis = normalize_axis(axis, x.rank, str(x))
    return TensorType("i64", x.shape[:axis] + x.shape[axis + 1:])


# -- NumPy references: top-level, self-contained (copied into generated modules) ---------------

def op_sum(x, *, axis, keepdims):
    axes = None if axis is None else tuple(np.atleast_1d(axis).tolist())
    return np.asarray(np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def op_prod(x, *, axis, keepdims):
    axes = None if axis is None else tuple(np.atleast_1d(axis).tolist())
    return np.asarray(np.prod(x, axis=axes, keepdims=keepdims, dtype=x.dtype))


def op_max(x, *, axis, keepdims):
    axes = None if axis is None else tuple(np.atleast_1d(axis).tolist())
    return np.asarray(np.max(x, axis=axes, keepdims=keepdims))


def op_min(x, *, axis, keepdims):
    axes = None if axis is None else tuple(np.atleast_1d(axis).tolist())
    return np.asarray(np.min(x, axis=axes, keepdims=keepdims))


def op_argmax(x, *, axis):
    return np.asarray(np.argmax(x, axis=axis)).astype(np.int64)


def op_argmin(x, *, axis):
    return np.asarray(np.argmin(x, axis=axis)).astype(np.int64)


# -- VJPs ----------------------------------------------------------------------------------------

def _keep_dims(b, op, value):
    """`value` (shaped like op's result) reshaped to the keepdims shape, so it broadcasts to x."""
    x = op.operands[0].type
    shape = kept_shape(x, reduced_axes(x, op.attrs["axis"]))
    if value.type.shape == shape:
        return value
    return b.emit("reshape", value, shape=list(shape))


def vjp_sum(b, op, g):
    x = op.operands[0].type
    return (b.emit("broadcast_to", _keep_dims(b, op, g), shape=list(x.shape)),)


def vjp_max_min(b, op, g):
    """The gradient goes to the elements equal to the result, split equally among ties."""
    x = op.operands[0]
    axes = list(reduced_axes(x.type, op.attrs["axis"]))
    hits = b.cast(b.emit("eq", x, _keep_dims(b, op, op.result)), x.type.dtype)
    ties = b.emit("sum", hits, axis=axes, keepdims=True)
    return (b.emit("mul", b.emit("div", hits, ties), _keep_dims(b, op, g)),)


def vjp_prod(b, op, g):
    """d prod / d x_i is the product of the other elements, computed without dividing by zero:
    with no zero it is prod / x_i; with one zero, the product of the rest at that zero and 0
    elsewhere; with more, 0 everywhere."""
    x = op.operands[0]
    axes = list(reduced_axes(x.type, op.attrs["axis"]))
    zero, one = b.scalar_like(0, x), b.scalar_like(1, x)
    is_zero = b.emit("eq", x, zero)
    zeros = b.emit("sum", b.cast(is_zero, x.type.dtype), axis=axes, keepdims=True)
    nonzero_x = b.emit("where", is_zero, one, x)
    nonzero_prod = b.emit("prod", nonzero_x, axis=axes, keepdims=True)
    lone_zero = b.emit("and", is_zero, b.emit("eq", zeros, one))
    others = b.emit("where", b.emit("eq", zeros, zero),
                    b.emit("div", nonzero_prod, nonzero_x),
                    b.emit("where", lone_zero, nonzero_prod, zero))
    return (b.emit("mul", others, _keep_dims(b, op, g)),)


REDUCE_ATTRS = {"axis": None, "keepdims": False}

register(OpDef("sum", "reduction", "Forward: sum over axes / Backward: g broadcast back to x",
               infer_reduce, reference=op_sum, vjp=vjp_sum, arity=1, attrs=REDUCE_ATTRS))
register(OpDef("prod", "reduction",
               "Forward: product over axes / Backward: g times the product of the others",
               infer_reduce, reference=op_prod, vjp=vjp_prod, arity=1, attrs=REDUCE_ATTRS))
register(OpDef("max", "reduction",
               "Forward: max over axes (NaN propagates) / Backward: g split among the maxima",
               infer_reduce, reference=op_max, vjp=vjp_max_min, arity=1, attrs=REDUCE_ATTRS))
register(OpDef("min", "reduction",
               "Forward: min over axes (NaN propagates) / Backward: g split among the minima",
               infer_reduce, reference=op_min, vjp=vjp_max_min, arity=1, attrs=REDUCE_ATTRS))
register(OpDef("argmax", "reduction", "index (i64) of the first maximum along axis",
               infer_arg_reduce, reference=op_argmax, arity=1, attrs={"axis": None},
               differentiable=False))
register(OpDef("argmin", "reduction", "index (i64) of the first minimum along axis",
               infer_arg_reduce, reference=op_argmin, arity=1, attrs={"axis": None},
               differentiable=False))
