"""`inline`: every composite op (softmax, mean, cross-entropies, ...) replaced by its primitives.

Each composite's `OpDef.expand` writes its formulation with a builder stamped with the
composite's source location; the expansion is inlined again until only primitives are left
(softmax_cross_entropy_with_logits → log_softmax → max, exp, sum, ...). The value that replaces
a composite's result keeps the user's name, so `%y_` still reads `%y_` after the pass.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import Builder, Error, Function, Op, Value
from ..ir.registry import get


def inline(func: Function) -> Function:
    """A new function with every composite expanded; `func` is left as it was."""
    values: dict[Value, Value] = {}  # a value of `func` → the value that replaces it
    ops: list[Op] = []
    _inline_ops(func.ops, values, ops)
    outputs = tuple(replace(out, value=values.get(out.value, out.value)) for out in func.outputs)
    return func.replace(ops=tuple(ops), outputs=outputs)


def _inline_ops(source: tuple[Op, ...] | list[Op], values: dict[Value, Value],
                ops: list[Op]) -> None:
    for op in source:
        operands = tuple(values.get(v, v) for v in op.operands)
        opdef = get(op.opcode)
        if opdef.kind != "composite":
            ops.append(op if operands == op.operands else replace(op, operands=operands))
            continue
        b = Builder(loc=op.loc)
        result = opdef.expand(b, operands, op.attrs)
        if result.type != op.result.type:
            raise Error(f"internal error: {op.opcode} expands to {result.type}, "
                        f"but its type rule says {op.result.type}", op.loc)
        expansion, result = rename_value(b.ops, result, op.result.name)
        _inline_ops(expansion, values, ops)
        values[op.result] = values.get(result, result)


def rename_value(ops: list[Op], value: Value, name: str | None) -> tuple[list[Op], Value]:
    """`ops` with `value` (defined by one of them) replaced by a value named `name`, and that
    value; unchanged when there is no name to give or `value` is defined elsewhere."""
    producers = [i for i, op in enumerate(ops) if value in op.results]
    if name is None or value.name == name or not producers:
        return ops, value
    named = Value(value.type, name)

    def swap(values: tuple[Value, ...]) -> tuple[Value, ...]:
        return tuple(named if v is value else v for v in values)

    renamed = [replace(op, operands=swap(op.operands), results=swap(op.results))
               if value in op.operands or value in op.results else op for op in ops]
    return renamed, named
