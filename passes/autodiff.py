"""`autodiff`: reverse mode. Every `grad %y, %x` op becomes the adjoint ops that compute dy/dx.

For each scalar `y` that some `grad` asks about, one backward sweep runs from `y` over the ops
between the requested `x`s and `y`, in reverse order, calling each op's VJP rule
(`OpDef.vjp(builder, op, g)`). The sweep, placed where the first `grad` of that `y` stood, serves
every `grad` of `y`. The rules stay local; the driver does the bookkeeping, in one place each:

- cotangents of a value used several times are added up;
- a cotangent shaped like a broadcast result is summed over the broadcast axes and reshaped to
  its operand's shape (`unbroadcast`), so no rule handles broadcasting;
- only float values carry cotangents: a rule's cotangent for an integer or bool operand is
  dropped, and ops that are not differentiable (comparisons, argmax, rng_uniform, ...) pass none;
- an `x` that `y` does not depend on gets zeros.

Generated ops carry the location of the forward op they differentiate; an error while building
them reads "in the gradient of `op` at file:line:col: ...", with a note at the `grad`.
The pass runs after `inline`: it expects primitives only.
"""

from __future__ import annotations

from dataclasses import replace

from ..ir import Builder, Error, Function, Op, Value
from ..ir.registry import get
from ..ir.types import TensorType
from .inline import rename_value


def autodiff(func: Function) -> Function:
    """A new function with every `grad` op replaced by its adjoint computation."""
    for op in func.ops:
        if get(op.opcode).kind == "composite":
            raise Error(f"autodiff: composite op `{op.opcode}` was not expanded "
                        "(run the inline pass first)", op.loc)
    values: dict[Value, Value] = {}  # a value of `func` → the value that replaces it
    ops: list[Op] = []
    for index, op in enumerate(func.ops):
        operands = tuple(values.get(v, v) for v in op.operands)
        if op.opcode != "grad":
            ops.append(op if operands == op.operands else replace(op, operands=operands))
        elif op.result not in values:
            # the first grad of this y: one sweep for it and every later grad of the same y
            requests = [later for later in func.ops[index:]
                        if later.opcode == "grad" and later.operands[0] is op.operands[0]]
            xs = [values.get(r.operands[1], r.operands[1]) for r in requests]
            backward, gradients = _backward(ops, operands[0], xs, requests)
            ops += backward
            for request, gradient in zip(requests, gradients):
                values[request.result] = gradient
    outputs = tuple(replace(out, value=values.get(out.value, out.value)) for out in func.outputs)
    return func.replace(ops=tuple(ops), outputs=outputs)


def _check_request(request: Op) -> None:
    y, x = request.operands
    if y.type.shape != ():
        raise Error(f"grad needs a scalar to differentiate, got {y.type} "
                    "(reduce it first, e.g. with sum or mean)", request.loc)
    if not y.type.is_float or not x.type.is_float:
        raise Error(f"grad is defined for float values only, got d {y.type} / d {x.type}",
                    request.loc)


def _backward(forward: list[Op], y: Value, xs: list[Value],
              requests: list[Op]) -> tuple[list[Op], list[Value]]:
    """The ops computing dy/dx for each x in `xs` from the ops in `forward`, and those values."""
    for request in requests:
        _check_request(request)
    first = requests[0]
    ops: list[Op] = []
    seed = Builder(loc=first.loc)
    cotangents: dict[Value, Value] = {y: seed.const(1, y.type.dtype)}
    ops += seed.ops
    for op in reversed(_between(forward, xs, y)):
        g = cotangents.get(op.result)
        opdef = get(op.opcode)
        if g is None or not opdef.differentiable:
            continue
        b = Builder(loc=op.loc)
        try:
            if opdef.vjp is None:
                raise Error(f"no gradient rule for `{op.opcode}`", op.loc)
            for operand, cotangent in zip(op.operands, opdef.vjp(b, op, g)):
                if cotangent is not None and operand.type.is_float:
                    _accumulate(b, cotangents, operand, unbroadcast(b, cotangent, operand.type))
        except Error as e:
            raise Error(f"in the gradient of `{op.opcode}` at {op.loc}: {e.message}",
                        e.loc or op.loc, hint=e.hint,
                        notes=e.notes + (("gradient requested here", first.loc),)) from None
        ops += b.ops
    gradients = []
    for request, x in zip(requests, xs):
        if x not in cotangents:
            zeros = Builder(loc=request.loc)
            cotangents[x] = zeros.emit("broadcast_to", zeros.const(0, x.type.dtype),
                                       shape=list(x.type.shape))
            ops += zeros.ops
        gradients.append(cotangents[x])
    named: dict[Value, Value] = {}  # each gradient takes the name of the first grad giving it
    for request, gradient in zip(requests, gradients):
        if gradient not in named:
            ops, named[gradient] = rename_value(ops, gradient, request.result.name)
    return ops, [named[gradient] for gradient in gradients]


def _between(forward: list[Op], xs: list[Value], y: Value) -> list[Op]:
    """The ops of `forward`, in order, through which a gradient flows from y to some x: they
    depend on an x through differentiable ops and float values, and y depends on them."""
    depends_on_x = set(xs)
    for op in forward:
        if get(op.opcode).differentiable and any(v in depends_on_x for v in op.operands):
            depends_on_x.update(r for r in op.results if r.type.is_float)
    needed, chosen = {y}, []
    for op in reversed(forward):
        if any(r in needed for r in op.results) and any(r in depends_on_x for r in op.results):
            needed.update(op.operands)
            chosen.append(op)
    return chosen[::-1]


def _accumulate(b: Builder, cotangents: dict[Value, Value], value: Value,
                cotangent: Value) -> None:
    if value in cotangents:
        cotangent = b.emit("add", cotangents[value], cotangent)
    cotangents[value] = cotangent


def unbroadcast(b: Builder, cotangent: Value, target: TensorType) -> Value:
    """`cotangent`, shaped like a broadcast of a `target`-typed operand, summed back to `target`:
    over the leading axes the operand lacks and the axes where it has size 1."""
    shape, lead = cotangent.type.shape, cotangent.type.rank - target.rank
    if lead >= 0:
        axes = list(range(lead)) + [lead + i for i, d in enumerate(target.shape)
                                    if d == 1 and shape[lead + i] != 1]
        if axes:
            cotangent = b.emit("sum", cotangent, axis=axes)
        if cotangent.type.shape != target.shape:
            cotangent = b.emit("reshape", cotangent, shape=list(target.shape))
    if cotangent.type != target:
        raise Error(f"internal error: a cotangent of type {cotangent.type} "
                    f"for a value of type {target}")
    return cotangent
