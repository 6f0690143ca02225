"""Dead-node pruning: keep exactly the ops that the function's outputs need.

Walking the ops backwards from the outputs marks every value they use; an op survives when one
of its results is marked. Arguments nobody uses are dropped, and so are the symbolic dims that
only they mentioned, so a compiled entry asks the runtime for exactly the feeds it needs.
"""

from __future__ import annotations

from ..ir.core import Function, Value


def prune(func: Function) -> Function:
    needed: set[Value] = {out.value for out in func.outputs}
    kept = []
    for op in reversed(func.ops):
        if any(result in needed for result in op.results):
            kept.append(op)
            needed.update(op.operands)
    kept.reverse()
    args = tuple(arg for arg in func.args if arg in needed)
    used_symbols = {symbol for value in _values(args, kept) for symbol in value.type.symbols}
    dims = tuple(dim for dim in func.dims if dim in used_symbols)
    return func.replace(args=args, ops=tuple(kept), dims=dims)


def _values(args, ops):
    yield from args
    for op in ops:
        yield from op.results
