"""`plan_memory`: the kernel order a function runs in, and the buffer plan backends allocate by.

The pass orders the kernels (a stable topological order that moves each step's parameter update
after the last read of that parameter where it can, so the update can overwrite the parameter in
place); `memory_plan(func)` is the plan for that order, a pure function of it that backends call:

- every value has a lifetime: from the op defining it to the last op using it (the end of the
  function for outputs); arguments belong to the caller and constants are data, neither gets a
  buffer;
- a `reshape` is a view: it shares its operand's buffer, which then lives as long as either;
- a value whose producer runs after a dead buffer of the same byte size was last used takes that
  buffer over (the most recently freed one), so temporaries are recycled;
- a step's new value of a param is written into the param's own buffer (in place) when nothing
  reads the old value after the op writing the new one, and that op reads the old value only at
  the index it writes, once: an elementwise op, or a kernel's elementwise ops computed once per
  index (all of an elementwise kernel, a matmul's epilogue, a row kernel's reduced values).

`memory_report(func, sizes)` prints the plan with bytes for given sizes of the symbolic dims.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from ..ir import Function, Op, Value
from ..ir.registry import get
from ..ir.types import NUMPY_DTYPES, Dim, dim_product, eval_dim
from .fuse import kernel_space

VIEWS = ("reshape",)


@dataclass(frozen=True)
class Buffer:
    """One allocation: `nbytes` may be symbolic (`1200*N`); `values` are stored in it in turn
    (views of them share it too, and are not listed)."""

    index: int
    nbytes: Dim
    values: tuple[Value, ...]


@dataclass(frozen=True)
class MemoryPlan:
    function: Function
    buffers: tuple[Buffer, ...]
    buffer_of: dict[Value, int]  # every value stored in a buffer (views included) → its index
    lifetimes: dict[Value, tuple[int, int]]  # op results → (defining op, last op using it)
    in_place: dict[Value, Value]  # a step's new value → the param argument it overwrites
    views: dict[Value, Value]  # a view → the value whose storage it reads


def plan_memory(func: Function) -> Function:
    """`func` with each param update moved after the last read of the param, where that is a
    legal order, so `memory_plan` can write it in place."""
    ops = list(func.ops)
    for out in func.outputs:
        if out.step is None:
            continue
        param = _argument(func, out.label)
        index = _defining_index(ops, out.value)
        if param is None or index is None:
            continue
        last_read = max(_reads(ops, func.outputs, param), default=-1)
        users = _uses(ops, *ops[index].results)
        if last_read > index and all(u > last_read for u in users):
            op = ops.pop(index)
            ops.insert(last_read, op)  # after the last read, which moved up by one
    return func.replace(ops=tuple(ops))


def _argument(func: Function, name: str) -> Value | None:
    return next((a for a in func.args if a.name == name), None)


def _defining_index(ops: list[Op], value: Value) -> int | None:
    return next((i for i, op in enumerate(ops) if value in op.results), None)


def _uses(ops, *values: Value) -> list[int]:
    wanted = set(values)
    return [i for i, op in enumerate(ops) if any(v in wanted for v in op.operands)]


def _reads(ops, outputs, param: Value) -> list[int]:
    """The ops reading `param`, directly or through views of it, and the end of the function
    (`len(ops)`) if a view of it is an output: it is read by the caller then."""
    views = {param}
    for op in ops:
        if op.opcode in VIEWS and op.operands[0] in views:
            views.add(op.result)
    reads = _uses(ops, *views)
    if any(out.value in views for out in outputs):
        reads.append(len(ops))
    return reads


# -- the plan ------------------------------------------------------------------------------------

def memory_plan(func: Function) -> MemoryPlan:
    """The buffer plan of `func` in its op order (see the module docstring)."""
    ops = func.ops
    end = len(ops)
    outputs = {out.value for out in func.outputs}
    views: dict[Value, Value] = {}
    for op in ops:
        if op.opcode in VIEWS:
            source = op.operands[0]
            views[op.result] = views.get(source, source)
    lifetimes: dict[Value, tuple[int, int]] = {}
    for i, op in enumerate(ops):
        for r in op.results:
            lifetimes[r] = (i, end if r in outputs else i)
        for v in op.operands:
            if v in lifetimes:
                start, last = lifetimes[v]
                lifetimes[v] = (start, max(last, i))
    storage_end: dict[Value, int] = {}  # the last use of a storage or of any view of it
    for value, (start, last) in lifetimes.items():
        root = views.get(value, value)
        storage_end[root] = max(storage_end.get(root, last), last)
    in_place = _in_place_updates(func, lifetimes, views)

    constants = {op.result for op in ops if op.opcode == "const"}
    buffers: list[list] = []  # [nbytes, values]
    buffer_of: dict[Value, int] = {}
    free: list[int] = []
    releases: dict[int, list[Value]] = {}
    for i, op in enumerate(ops):
        for r in op.results:
            if r in views or r in in_place or r in constants:
                continue
            nbytes = _nbytes(r)
            reusable = [b for b in free if buffers[b][0] == nbytes]
            if reusable:
                b = reusable[-1]
                free.remove(b)
                buffers[b][1].append(r)
            else:
                b = len(buffers)
                buffers.append([nbytes, [r]])
            buffer_of[r] = b
            releases.setdefault(storage_end[r], []).append(r)
        for r in releases.pop(i, []):
            if storage_end[r] < end:
                free.append(buffer_of[r])
    for view, root in views.items():
        if root in buffer_of:
            buffer_of[view] = buffer_of[root]
    return MemoryPlan(func, tuple(Buffer(i, n, tuple(v)) for i, (n, v) in enumerate(buffers)),
                      buffer_of, lifetimes, in_place, views)


def _nbytes(value: Value) -> Dim:
    itemsize = np.dtype(NUMPY_DTYPES[value.type.dtype]).itemsize
    return dim_product((itemsize, *value.type.shape))


def _in_place_updates(func: Function, lifetimes, views) -> dict[Value, Value]:
    """Step values that may overwrite their param: see the module docstring."""
    ops = func.ops
    labels = [out.value for out in func.outputs]
    result = {}
    for out in func.outputs:
        param = _argument(func, out.label) if out.step is not None else None
        value = out.value
        if param is None or value not in lifetimes or value in views \
                or labels.count(value) > 1 or param in labels or value in result:
            continue
        index = lifetimes[value][0]
        if ops[index].opcode == "const":
            continue  # no kernel writes a constant: the runtime stores it
        reads = _reads(ops, func.outputs, param)
        if all(i < index for i in reads) or \
                all(i <= index for i in reads) and _reads_in_step(ops[index], param, value):
            result[value] = param
    return result


def _reads_in_step(op: Op, param: Value, value: Value) -> bool:
    """Whether `op` reads `param` only at the index where it writes `value`."""
    if param.type.shape != value.type.shape:
        return False
    if op.region is None:
        return get(op.opcode).kind == "elementwise" and param in op.operands
    space = kernel_space(op)
    if space.kind == "reduction" and param.type.shape == space.shape:
        return False  # a row kernel may read its full-shape values in several passes
    inner = {arg for arg, operand in zip(op.region.args, op.operands) if operand is param}
    return all(get(user.opcode).kind == "elementwise" and user.result.type == param.type
               for user in op.region.ops if inner & set(user.operands))


# -- the report ----------------------------------------------------------------------------------

def memory_report(func: Function, sizes: dict[str, int]) -> str:
    """The plan of `func` in bytes, with the symbolic dims bound to `sizes` (e.g. {"N": 100})."""
    plan = memory_plan(func)

    def size(value: Value) -> int:
        return eval_dim(_nbytes(value), sizes)

    ops = func.ops
    live = [0] * max(len(ops), 1)
    for value, (start, last) in plan.lifetimes.items():
        if value in plan.buffer_of and value not in plan.views:
            for i in range(start, min(last, len(ops) - 1) + 1):
                live[i] += size(value)
    peak_at = max(range(len(live)), key=live.__getitem__)
    stored = [v for b in plan.buffers for v in b.values]
    arena = sum(eval_dim(b.nbytes, sizes) for b in plan.buffers)
    bound = ", ".join(f"{k}={v}" for k, v in sizes.items())
    lines = [f"memory plan of @{func.name}" + (f" ({bound})" if bound else "") + ":",
             f"  arguments    {sum(size(a) for a in func.args):>14,} bytes "
             f"({len(func.args)} values, owned by the caller)",
             f"  buffers      {arena:>14,} bytes ({len(plan.buffers)} buffers for "
             f"{len(stored)} values; {sum(size(v) for v in stored):,} bytes without reuse)",
             f"  peak live    {live[peak_at]:>14,} bytes (at op {peak_at}: {ops[peak_at].opcode})"
             if ops else "  peak live                 0 bytes"]
    updates = ", ".join(param.name for param in plan.in_place.values()) or "none"
    lines += textwrap.wrap(updates, 100, initial_indent="  in place     ",
                           subsequent_indent=" " * 15, break_on_hyphens=False)
    return "\n".join(lines) + "\n"
