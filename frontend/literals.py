"""Literals are weak: they have a kind (bool, int, float) but no dtype until they meet a tensor.

`x * 0.5` multiplies by an f64 constant when x is f64; `1 - y` subtracts from an f32 one when y is
f32. Operators on literals alone are folded here, in wide precision, after the op's own type rule
has checked them (so `1 / 2` is rejected like any integer division). A weak value left alone
becomes `i32`, `f32` or `bool`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import Error, Loc
from ..ir.builder import result_type
from ..ir.registry import ShapeError, get
from ..ir.types import FLOAT_DTYPES, INT_DTYPES, NUMPY_DTYPES, TensorType

WIDE = {"bool": np.bool_, "int": np.int64, "float": np.float64}
DEFAULT_DTYPE = {"bool": "bool", "int": "i32", "float": "f32"}
INT_RANGES = {"i32": (-2**31, 2**31 - 1), "i64": (-2**63, 2**63 - 1)}


@dataclass(frozen=True, eq=False)
class Weak:
    """A literal or a folded constant expression: a NumPy array of bool, int64 or float64."""

    array: np.ndarray

    @property
    def kind(self) -> str:
        return {"b": "bool", "i": "int", "f": "float"}[self.array.dtype.kind]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    def python(self):
        """The value as Python data: a scalar or nested lists."""
        return self.array.tolist()


def weak_number(text: str, loc: Loc) -> Weak:
    if any(c in text for c in ".eE"):
        return Weak(np.asarray(float(text)))
    value = int(text)
    if value > INT_RANGES["i64"][1]:
        raise Error(f"integer literal {text} is too large (the largest is 2**63 - 1)", loc)
    return Weak(np.asarray(value, dtype=np.int64))


def weak_bool(value: bool) -> Weak:
    return Weak(np.asarray(value))


def tensor_literal(items: list[Weak], loc: Loc) -> Weak:
    """`[a, b, ...]` of weak values: rectangular, all bool or all numbers (ints join floats)."""
    if not items:
        raise Error("an empty tensor literal has no shape to give it", loc)
    shapes = {item.shape for item in items}
    if len(shapes) > 1:
        raise Error("a tensor literal must be rectangular: its rows have shapes "
                    + " and ".join(str(list(s)) for s in sorted(shapes)), loc)
    kinds = {item.kind for item in items}
    if "bool" in kinds and len(kinds) > 1:
        raise Error("a tensor literal mixes bools and numbers", loc)
    kind = "float" if "float" in kinds else kinds.pop()
    return Weak(np.stack([item.array.astype(WIDE[kind]) for item in items]))


def dtype_for(weak: Weak, peer: str | None) -> str:
    """The dtype a weak value takes beside a tensor of dtype `peer` (None: no tensor near)."""
    if weak.kind == "int" and peer in INT_DTYPES + FLOAT_DTYPES:
        return peer
    if weak.kind == "float" and peer in FLOAT_DTYPES:
        return peer
    return DEFAULT_DTYPE[weak.kind]


def peer_dtype(weaks: list[Weak]) -> str | None:
    """For literals that meet only each other: floats win over ints (`[1, 2.5]`, `1 + 0.5`)."""
    return "f32" if any(w.kind == "float" for w in weaks) else None


def to_array(weak: Weak, dtype: str, loc: Loc | None, what: str = "literal") -> np.ndarray:
    """The value as an array of `dtype`, refusing what would change it (2.5 as an int)."""
    if dtype == "bool" and weak.kind != "bool":
        raise Error(f"{what} {_show(weak)} is a number, not a bool", loc)
    if dtype != "bool" and weak.kind == "bool":
        raise Error(f"{what} {_show(weak)} is a bool, not a number of type {dtype}", loc)
    if dtype in INT_DTYPES:
        if weak.kind == "float":
            raise Error(f"{what} {_show(weak)} is not an integer, as {dtype} needs "
                        "(cast the tensor to a float type first)", loc)
        low, high = INT_RANGES[dtype]
        if weak.array.size and (weak.array.min() < low or weak.array.max() > high):
            raise Error(f"{what} {_show(weak)} does not fit in {dtype}", loc)
    with np.errstate(all="ignore"):
        return weak.array.astype(NUMPY_DTYPES[dtype])


def fold(opcode: str, operands: list[Weak], loc: Loc | None) -> Weak:
    """`opcode` applied to literals at compile time, checked by the op's own type rule."""
    peer = peer_dtype(operands)
    types = tuple(TensorType(dtype_for(w, peer), w.shape) for w in operands)
    try:
        result_type(opcode, types, {})
    except ShapeError as e:
        raise Error(f"{opcode}: {e}", loc) from None
    wide = [w.array.astype(WIDE["float"]) if t.dtype in FLOAT_DTYPES else w.array
            for w, t in zip(operands, types)]
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(get(opcode).reference(*wide))
    except (ValueError, ArithmeticError) as e:
        raise Error(f"{opcode}: cannot compute it: {e}", loc) from None
    return Weak(result)


def _show(weak: Weak) -> str:
    value = weak.python()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if weak.array.ndim == 0 else "tensor literal"
