"""`matmul`: `[..., M, K] @ [..., K, N]` with NumPy's rules.

Batch dims broadcast; a 1-D left operand is a row vector and a 1-D right operand a column vector,
and the dim they add is dropped from the result.
"""

from __future__ import annotations

import numpy as np

from ..registry import OpDef, ShapeError, broadcast_shapes, register, same_dtype

NUMERIC = ("f32", "f64", "i32", "i64")


def infer_matmul(types, attrs):
    a, b = types
    what = f"{a} @ {b}"
    dtype = same_dtype(types, what)
    if dtype not in NUMERIC:
        raise ShapeError(f"{what}: expects number tensors")
    if a.rank == 0 or b.rank == 0:
        raise ShapeError(f"{what}: operands need at least one dim (use * to scale by a scalar)")
    inner_a = a.shape[-1]
    inner_b = b.shape[-2] if b.rank > 1 else b.shape[0]
    if inner_a != inner_b:
        raise ShapeError(f"{what}: inner dimensions {inner_a} and {inner_b} differ")
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ShapeError as e:
        raise ShapeError(f"{what}: batch dims: {e}") from None
    rows = a.shape[-2:-1]  # empty for a 1-D left operand
    cols = b.shape[-1:] if b.rank > 1 else ()
    return a.with_shape(batch + rows + cols)


def op_matmul(a, b):
    return np.asarray(np.matmul(a, b))


def _swap_last(b, x):
    perm = list(range(x.type.rank - 2)) + [x.type.rank - 1, x.type.rank - 2]
    return b.emit("transpose", x, perm=perm)


def vjp_matmul(b, op, g):
    """da = g @ b^T, db = a^T @ g, on 1-D operands promoted to matrices ([K] → [1,K] on the left,
    [K,1] on the right). Batch dims the operands lack are summed by the autodiff driver."""
    x, y = op.operands
    if x.type.rank == 1:
        x = b.emit("reshape", x, shape=[1, x.type.shape[0]])
    if y.type.rank == 1:
        y = b.emit("reshape", y, shape=[y.type.shape[0], 1])
    promoted = infer_matmul((x.type, y.type), {})
    g = b.emit("reshape", g, shape=list(promoted.shape)) if g.type != promoted else g
    dx = b.emit("matmul", g, _swap_last(b, y))
    dy = b.emit("matmul", _swap_last(b, x), g)
    if op.operands[0].type.rank == 1:  # [..., 1, K] → [..., K]
        dx = b.emit("reshape", dx, shape=list(dx.type.shape[:-2] + dx.type.shape[-1:]))
    if op.operands[1].type.rank == 1:  # [..., K, 1] → [..., K]
        dy = b.emit("reshape", dy, shape=list(dy.type.shape[:-1]))
    return dx, dy


register(OpDef("matmul", "matmul",
               "Forward: a @ b, batch dims broadcast / Backward: g @ b^T and a^T @ g",
               infer_matmul, reference=op_matmul, vjp=vjp_matmul, arity=2))
