"""Builds ops through the registry: every op made here has been type-checked by its rule."""

from __future__ import annotations

import numpy as np

from . import registry
from .core import Op, Value
from .errors import Error, Loc
from .types import NUMPY_DTYPES, TensorType


class Builder:
    """Appends type-checked ops to `self.ops`; `loc` is stamped on ops that give none."""

    def __init__(self, loc: Loc | None = None):
        self.ops: list[Op] = []
        self.loc = loc

    def emit(self, opcode: str, *operands: Value, name: str | None = None,
             loc: Loc | None = None, **attrs) -> Value:
        opdef = registry.get(opcode)
        if opdef.arity is not None and len(operands) != opdef.arity:
            raise Error(f"{opcode} takes {opdef.arity} operands, got {len(operands)}",
                        loc or self.loc)
        unknown = sorted(set(attrs) - set(opdef.attrs))
        if unknown:
            raise Error(f"{opcode} has no argument '{unknown[0]}'", loc or self.loc)
        attrs = {**opdef.attrs, **attrs}
        types = tuple(v.type for v in operands)
        try:
            result_type = opdef.infer(types, attrs)
        except registry.ShapeError as e:
            raise Error(f"{opcode}: {e}", loc or self.loc) from None
        result = Value(result_type, name)
        self.ops.append(Op(opcode, tuple(operands), (result,), attrs, loc or self.loc))
        return result

    def const(self, value, dtype: str, name: str | None = None, loc: Loc | None = None) -> Value:
        array = np.asarray(value, dtype=NUMPY_DTYPES[dtype])
        return self.emit("const", name=name, loc=loc, value=array)

    def scalar_like(self, value, like: Value) -> Value:
        """A scalar constant of `like`'s dtype (broadcasts against it)."""
        return self.const(value, like.type.dtype)

    def cast(self, value: Value, dtype: str) -> Value:
        if value.type.dtype == dtype:
            return value
        return self.emit("cast", value, dtype=dtype)


def result_type(opcode: str, types: tuple[TensorType, ...], attrs: dict) -> TensorType:
    """The type rule of `opcode` applied to operand types (used by the verifier and parser)."""
    opdef = registry.get(opcode)
    return opdef.infer(types, {**opdef.attrs, **attrs})
