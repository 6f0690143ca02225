"""Shape ops: data movement without arithmetic.

`reshape`, `transpose`, `broadcast_to`, `concat`, `slice` and its adjoint `pad`, plus `one_hot` and
`shape`. Shapes in attributes may name symbolic dims (`N`, `784*N`); references that need the
concrete result shape take the keyword `out_shape`, which the backend evaluates.
"""

from __future__ import annotations

import numpy as np

from ..registry import OpDef, ShapeError, normalize_axis, register, same_dtype
from ..types import INT_DTYPES, Dim, TensorType, dim_divide, dim_product


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def int_list(value, name: str, length: int | None = None) -> list[int]:
    """Attribute `name` checked to be a list of ints (of `length` items when given)."""
    if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
        raise ShapeError(f"{name} must be a list of ints, got {value!r}")
    if length is not None and len(value) != length:
        raise ShapeError(f"{name} has {len(value)} entries, expected one per dim ({length})")
    return list(value)


def dim_list(value, name: str) -> list[Dim]:
    """Attribute `name` checked to be a list of dims: ints and symbolic names (`N`, `784*N`)."""
    if not isinstance(value, (list, tuple)) or not all(
            _is_int(d) or isinstance(d, str) and d for d in value):
        raise ShapeError(f"{name} must be a list of sizes, got {value!r}")
    return [d if _is_int(d) else dim_product([d]) for d in value]


# -- reshape -------------------------------------------------------------------------------------

def infer_reshape(types, attrs):
    x, = types
    shape = dim_list(attrs["shape"], "shape")
    if any(_is_int(d) and d < -1 for d in shape) or shape.count(-1) > 1:
        raise ShapeError(f"shape {_shape_text(shape)}: sizes must be >= 0, with at most one -1")
    total = dim_product(x.shape)
    if -1 in shape:
        known = dim_product(d for d in shape if d != -1)
        inferred = dim_divide(total, known)
        if inferred is None:
            raise ShapeError(f"cannot reshape {x} to {_shape_text(shape)}: its {total} elements "
                             f"are not a multiple of {known}")
        shape[shape.index(-1)] = inferred
    elif dim_product(shape) != total:
        raise ShapeError(f"cannot reshape {x} ({total} elements) to {_shape_text(shape)} "
                         f"({dim_product(shape)} elements)")
    return x.with_shape(shape)


def op_reshape(x, *, shape, out_shape):
    return np.reshape(x, out_shape)


def vjp_reshape(b, op, g):
    return (b.emit("reshape", g, shape=list(op.operands[0].type.shape)),)


# -- transpose -----------------------------------------------------------------------------------

def permutation(x: TensorType, perm) -> list[int]:
    if perm is None:
        return list(reversed(range(x.rank)))
    perm = int_list(perm, "perm")
    if sorted(perm) != list(range(x.rank)):
        raise ShapeError(f"perm {perm} is not a permutation of the {x.rank} axes of {x}")
    return perm


def infer_transpose(types, attrs):
    x, = types
    return x.with_shape(x.shape[i] for i in permutation(x, attrs["perm"]))


def op_transpose(x, *, perm):
    return np.transpose(x, perm)


def vjp_transpose(b, op, g):
    perm = permutation(op.operands[0].type, op.attrs["perm"])
    return (b.emit("transpose", g, perm=[perm.index(i) for i in range(len(perm))]),)


# -- broadcast_to --------------------------------------------------------------------------------

def infer_broadcast_to(types, attrs):
    x, = types
    shape = tuple(dim_list(attrs["shape"], "shape"))
    fits = len(shape) >= x.rank and all(
        d in (1, target) for d, target in zip(x.shape, shape[len(shape) - x.rank:]))
    if not fits:
        raise ShapeError(f"cannot broadcast {x} to {_shape_text(shape)}")
    return x.with_shape(shape)


def op_broadcast_to(x, *, shape, out_shape):
    return np.array(np.broadcast_to(x, out_shape))  # a copy: the view is read-only


def vjp_broadcast_to(b, op, g):
    return (g,)  # the autodiff driver sums g over the broadcast axes


# -- concat --------------------------------------------------------------------------------------

def infer_concat(types, attrs):
    if len(types) < 2:
        raise ShapeError(f"needs 2 or more tensors, got {len(types)}")
    what = ", ".join(str(t) for t in types)
    dtype = same_dtype(types, what)
    first = types[0]
    if not _is_int(attrs["axis"]):
        raise ShapeError(f"axis must be an int, got {attrs['axis']!r}")
    axis = normalize_axis(attrs["axis"], first.rank, what)
    joined = 0
    for t in types:
        others = [d for i, d in enumerate(t.shape) if i != axis]
        if t.rank != first.rank or others != [d for i, d in enumerate(first.shape) if i != axis]:
            raise ShapeError(f"{what}: shapes differ outside axis {axis}")
        if not _is_int(t.shape[axis]):
            raise ShapeError(f"{what}: sizes along axis {axis} must be known numbers, "
                             f"got {t.shape[axis]}")
        joined += t.shape[axis]
    return TensorType(dtype, first.shape[:axis] + (joined,) + first.shape[axis + 1:])


def op_concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


def vjp_concat(b, op, g):
    axis = normalize_axis(op.attrs["axis"], g.type.rank, "concat")
    cotangents, start = [], 0
    for x in op.operands:
        begin, size = [0] * g.type.rank, [-1] * g.type.rank
        begin[axis], size[axis] = start, x.type.shape[axis]
        cotangents.append(b.emit("slice", g, begin=begin, size=size))
        start += x.type.shape[axis]
    return tuple(cotangents)


# -- slice and pad -------------------------------------------------------------------------------

def slice_bounds(x: TensorType, attrs) -> list[tuple[int, Dim]]:
    """(start, length) per axis, with negative begins and -1 sizes resolved."""
    begin = int_list(attrs["begin"], "begin", x.rank)
    size = int_list(attrs["size"], "size", x.rank)
    bounds = []
    for axis, (dim, start, length) in enumerate(zip(x.shape, begin, size)):
        if not _is_int(dim):
            if (start, length) != (0, -1):
                raise ShapeError(f"{x}: axis {axis} has symbolic size {dim}, so only all of it "
                                 "can be taken (begin 0, size -1)")
            bounds.append((0, dim))
            continue
        first = start + dim if start < 0 else start
        length = dim - first if length == -1 else length
        if not (0 <= first <= dim and 0 <= length <= dim - first):
            raise ShapeError(f"{x}: begin {start}, size {size[axis]} is out of bounds "
                             f"for axis {axis} of size {dim}")
        bounds.append((first, length))
    return bounds


def infer_slice(types, attrs):
    x, = types
    return x.with_shape(length for _, length in slice_bounds(x, attrs))


def op_slice(x, *, begin, size, out_shape):
    starts = [b + d if b < 0 else b for b, d in zip(begin, x.shape)]
    # asarray: indexing a 0-d array with () gives a NumPy scalar
    return np.asarray(x[tuple(slice(s, s + n) for s, n in zip(starts, out_shape))])


def vjp_slice(b, op, g):
    x = op.operands[0].type
    bounds = slice_bounds(x, op.attrs)
    before = [start for start, _ in bounds]
    after = [dim - start - length if _is_int(dim) else 0
             for dim, (start, length) in zip(x.shape, bounds)]
    return (b.emit("pad", g, before=before, after=after),)


def infer_pad(types, attrs):
    x, = types
    if attrs["before"] is None or attrs["after"] is None:
        raise ShapeError("needs before and after (one count of zeros per dim)")
    before = int_list(attrs["before"], "before", x.rank)
    after = int_list(attrs["after"], "after", x.rank)
    shape = []
    for axis, (dim, low, high) in enumerate(zip(x.shape, before, after)):
        if low < 0 or high < 0:
            raise ShapeError(f"padding must be >= 0, got before {before}, after {after}")
        if not _is_int(dim) and (low, high) != (0, 0):
            raise ShapeError(f"{x}: axis {axis} has symbolic size {dim} and cannot be padded")
        shape.append(dim + low + high if _is_int(dim) else dim)
    return x.with_shape(shape)


def op_pad(x, *, before, after):
    out = np.zeros([lo + d + hi for lo, d, hi in zip(before, x.shape, after)], dtype=x.dtype)
    out[tuple(slice(lo, lo + d) for lo, d in zip(before, x.shape))] = x
    return out


def vjp_pad(b, op, g):
    x = op.operands[0].type
    size = [d if _is_int(d) else -1 for d in x.shape]
    return (b.emit("slice", g, begin=list(op.attrs["before"]), size=size),)


# -- one_hot and shape ---------------------------------------------------------------------------

def infer_one_hot(types, attrs):
    indices, = types
    if indices.dtype not in INT_DTYPES:
        raise ShapeError(f"indices must be integers, got {indices} (use cast(x, i64) first)")
    depth = attrs["depth"]
    if depth is None:
        raise ShapeError("needs a depth (the number of classes), e.g. depth=10")
    if not _is_int(depth) or depth < 1:
        raise ShapeError(f"depth must be a positive int, got {depth!r}")
    return TensorType("f32", indices.shape + (depth,))


def op_one_hot(indices, *, depth):
    # indices outside [0, depth) give a row of zeros, as in TensorFlow
    return (np.expand_dims(indices, -1) == np.arange(depth)).astype(np.float32)


def infer_shape(types, attrs):
    x, = types
    if attrs["axis"] is None:
        raise ShapeError("needs an axis, e.g. axis=0")
    if not _is_int(attrs["axis"]):
        raise ShapeError(f"axis must be one int, got {attrs['axis']!r}")
    normalize_axis(attrs["axis"], x.rank, str(x))
    return TensorType("i64", ())


def op_shape(x, *, axis):
    return np.asarray(np.shape(x)[axis], dtype=np.int64)


register(OpDef("reshape", "shape", "Forward: same elements, new shape / Backward: reshape back",
               infer_reshape, reference=op_reshape, vjp=vjp_reshape, arity=1,
               attrs={"shape": None}))
register(OpDef("transpose", "shape",
               "Forward: permute axes (default reverses) / Backward: the inverse permutation",
               infer_transpose, reference=op_transpose, vjp=vjp_transpose, arity=1,
               attrs={"perm": None}))
register(OpDef("broadcast_to", "shape",
               "Forward: broadcast to shape / Backward: g summed over the broadcast axes",
               infer_broadcast_to, reference=op_broadcast_to, vjp=vjp_broadcast_to, arity=1,
               attrs={"shape": None}))
register(OpDef("concat", "shape", "Forward: join along axis / Backward: slices of g",
               infer_concat, reference=op_concat, vjp=vjp_concat, arity=None,
               attrs={"axis": 0}))
register(OpDef("slice", "shape",
               "Forward: x[begin:begin+size] per axis (size -1: to the end) / Backward: pad g",
               infer_slice, reference=op_slice, vjp=vjp_slice, arity=1,
               attrs={"begin": None, "size": None}))
register(OpDef("pad", "shape",
               "Forward: zeros before and after each axis / Backward: slice g back",
               infer_pad, reference=op_pad, vjp=vjp_pad, arity=1,
               attrs={"before": None, "after": None}))
register(OpDef("one_hot", "shape", "f32 rows with a 1 at each index (zeros if out of range)",
               infer_one_hot, reference=op_one_hot, arity=1, attrs={"depth": None},
               differentiable=False))
register(OpDef("shape", "shape", "the run-time size (i64) of one axis",
               infer_shape, reference=op_shape, arity=1, attrs={"axis": None},
               differentiable=False))
