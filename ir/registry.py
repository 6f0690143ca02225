"""The op registry: one `OpDef` per op, holding every rule of that op side by side.

Type rules raise `ShapeError` with a message; the builder adds the source location, so every rule
stays a small pure function of operand types and attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .types import Dim, TensorType

KINDS = ("elementwise", "reduction", "matmul", "shape", "source", "composite", "special")


class ShapeError(Exception):
    """A type rule's complaint; the builder turns it into a located `tflc.Error`."""


@dataclass(frozen=True)
class OpDef:
    """Everything about one op.

    - `infer(types, attrs) -> TensorType`: the type rule (raises `ShapeError`).
    - `reference(*arrays, **attrs) -> ndarray`: the NumPy meaning (primitives only). It must be a
      plain top-level function using only `np`: the numpy backend copies its source into the
      standalone module it generates.
    - `vjp(builder, op, cotangent) -> tuple[Value | None, ...]`: one cotangent per operand, written
      with the builder as IR ops. Broadcasting is undone by the autodiff driver, not here.
    - `expand(builder, operands, attrs) -> Value`: composites only, their primitive formulation.
    - `lowering`: how codegen emits it (set by the codegen issues).
    """

    name: str
    kind: str
    doc: str
    infer: Callable[[tuple[TensorType, ...], dict], TensorType]
    reference: Callable[..., Any] | None = None
    vjp: Callable | None = None
    expand: Callable | None = None
    lowering: Any = None
    arity: int | None = None  # None: variadic
    attrs: dict[str, Any] = field(default_factory=dict)  # attribute names and their defaults
    differentiable: bool = True

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    assert opdef.name not in REGISTRY, f"op {opdef.name} registered twice"
    REGISTRY[opdef.name] = opdef
    return opdef


def get(name: str) -> OpDef:
    return REGISTRY[name]


# -- helpers shared by type rules --------------------------------------------------------------

def broadcast_shapes(*shapes: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """NumPy broadcasting over dims that may be symbolic: equal dims match, 1 stretches."""
    rank = max((len(s) for s in shapes), default=0)
    result = []
    for i in range(rank):
        dims = [s[len(s) - rank + i] for s in shapes if len(s) - rank + i >= 0]
        chosen: Dim = 1
        for d in dims:
            if d == 1 or d == chosen:
                continue
            if chosen != 1:
                raise ShapeError(f"dims {chosen} and {d} do not broadcast")
            chosen = d
        result.append(chosen)
    return tuple(result)


def same_dtype(types: tuple[TensorType, ...], what: str) -> str:
    dtypes = list(dict.fromkeys(t.dtype for t in types))
    if len(dtypes) > 1:
        raise ShapeError(f"{what}: operands have different dtypes {' and '.join(dtypes)} "
                         "(use cast(x, DTYPE) to convert)")
    return dtypes[0]


def normalize_axis(axis: int, rank: int, what: str) -> int:
    if not -rank <= axis < rank:
        raise ShapeError(f"{what}: axis {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(axis, rank: int, what: str) -> tuple[int, ...]:
    """`axis` as given (None, an int or a sequence) → sorted non-negative axes, no repeats."""
    if axis is None:
        return tuple(range(rank))
    axes = [axis] if isinstance(axis, int) else list(axis)
    normalized = [normalize_axis(a, rank, what) for a in axes]
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"{what}: repeated axis in {list(axes)}")
    return tuple(sorted(normalized))
