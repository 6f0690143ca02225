"""Ops that are neither math nor shape: constants and the `grad` marker that autodiff expands."""

from __future__ import annotations

from ..registry import OpDef, ShapeError, register
from ..types import TensorType, dtype_of_numpy


def infer_const(types, attrs):
    value = attrs["value"]
    dtype = dtype_of_numpy(value.dtype)
    if dtype is None:
        raise ShapeError(f"unsupported constant dtype {value.dtype}")
    return TensorType(dtype, value.shape)


def infer_grad(types, attrs):
    y, x = types
    if y.shape != ():
        raise ShapeError(f"grad needs a scalar to differentiate, got {y} "
                         "(reduce it first, e.g. with sum or mean)")
    if not y.is_float or not x.is_float:
        raise ShapeError(f"grad is defined for float values only, got d {y} / d {x}")
    return x


register(OpDef("const", "source", "a constant tensor (attribute `value`, a NumPy array)",
               infer_const, arity=0, attrs={"value": None}, differentiable=False))
register(OpDef("grad", "special", "d y / d x for scalar y: replaced by the autodiff pass",
               infer_grad, arity=2, differentiable=False))
