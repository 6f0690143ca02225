"""A `fused` op (made by passes/fuse.py) becomes one kernel: its region's ops computed in
registers, element by element, where memory holds only the region's inputs, its yields, and the
results of its reductions and of its matmul.

The kernel loops over the op's space S (`passes.fuse.kernel_space`). Every region value is
evaluated at a *projection* of the current index of S: for each of its dims, the dim of S it
follows (None for a dim of size 1), composed through NumPy broadcasting from the ops that use it.
A reduction's inputs are evaluated at the identity, its result (S with the reduced axes kept as
1 or dropped) at the projection that skips them.

- `elementwise`: one loop nest over S storing every yield.
- `matmul`: the matmul (matmul.py) writes its result to memory first (into a yield's buffer when
  it is not a yield itself: the epilogue then runs in place), then one loop nest over S computes
  the elementwise epilogue (bias, activation) from it.
- `reduction`: phases. A reduction whose input needs the result of another reduction (softmax's
  sum needs its max) runs in a later phase; each phase is one pass over the reduced axes that
  accumulates its reductions, and values are recomputed in each pass that needs them rather than
  stored. The kept dims before the first reduced axis are looped once around all the phases, so
  that with the reduced axes last each row is read by every phase while it is in cache; a phase
  reducing rows accumulates in lanes, in the unfused kernels' order (kernels.py). Reducing a
  leading axis accumulates across rows in memory order instead (vectorised along the kept
  axes). Row-shaped yields are stored after the phase that completes them, full ones at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llvmlite import ir

from ...ir.core import Op, Value
from ...ir.ops.shape import permutation
from ...ir.registry import REGISTRY
from ...ir.types import Dim, dim_product
from ...passes.fuse import Projection, kernel_space, operand_projection, projection
from . import matmul, reductions
from .elementwise import SCALAR
from .kernels import (
    Buffer,
    Kernel,
    Lanes,
    element_nest,
    first_extreme,
    loop_nest,
    reduce_rows,
    reduces_rows,
)
from .layout import Layout, collapse
from .scalar import I64, const

if TYPE_CHECKING:
    from .lower import Lowerer

Key = tuple[Buffer, Projection]  # a buffer read or written at a projection of the index of S


@dataclass
class Loop:
    """One loop nest over the space's dims after the outer ones (`shape`, with the reduced dims
    set to 1 for loops over rows), and the buffer accesses its body makes."""

    shape: tuple
    body: Callable[[LoopContext], None]
    keys: list[Key]
    keep_dims: bool = False  # the body uses the loop indices (argmax)
    accumulates: bool = False  # the body combines into accumulators (a phase's reductions)
    lanes: dict[Key, Lanes] = field(default_factory=dict)  # accumulators reduced in lanes


def lower_fused(lw: Lowerer, op: Op) -> None:
    if op.results:  # a kernel none of whose values is used (dead code not pruned) is skipped
        FusedKernel(lw, op).emit()


class FusedKernel:
    def __init__(self, lw: Lowerer, op: Op):
        self.lw, self.op, self.region = lw, op, op.region
        self.kernel_space = space = kernel_space(op)
        self.kind, self.space = space.kind, space.shape
        self.axes = space.axes if space.kind == "reduction" else ()
        self.outer = min(self.axes) if self.axes else 0
        # the rows looped once around all the phases: the kept dims before the first reduced one
        self.rows = [d for d in self.space[:self.outer] if d != 1]
        self.producer = {r: inner for inner in self.region.ops for r in inner.results}
        self.sources = dict(zip(self.region.args, op.operands))
        self.reductions = [inner for inner in self.region.ops
                           if REGISTRY[inner.opcode].kind == "reduction"]
        self.matmul = next((inner for inner in self.region.ops if inner.opcode == "matmul"), None)
        self._ready: dict[Value, int] = {}

        # memory: yields in the op's results; reductions (and argmax's best values) and the
        # matmul's result in a yield's buffer or in scratch
        self.yields = [(out.value, lw.storage(result))
                       for out, result in zip(self.region.outputs, op.results)]
        self.buffers: dict[Value, Buffer] = {}
        for value, storage in self.yields:
            self.buffers.setdefault(value, storage)
        self.best: dict[Op, Buffer] = {}
        for inner in self.reductions:
            if inner.result not in self.buffers:  # a yielded one has its output's buffer
                self.buffers[inner.result] = lw.temporary(inner.result.type,
                                                          lw.name(inner.result))
            if inner.opcode in ("argmax", "argmin"):
                x = inner.operands[0].type
                self.best[inner] = lw.temporary(inner.result.type.with_dtype(x.dtype),
                                                f"{lw.name(inner.result)}.best")
        self.packed = None
        if self.matmul is not None:
            self.packed = lw.packing_buffer(self.matmul_operand(self.matmul.operands[1]),
                                            lw.name(self.matmul.result))
        if self.matmul is not None and self.matmul.result not in self.buffers:
            # not in a param updated in place: the epilogue still reads the param there
            in_place = next((storage for value, storage in self.yields
                             if value.type == self.matmul.result.type
                             and not lw.is_argument(storage)), None)
            self.buffers[self.matmul.result] = in_place or lw.temporary(
                self.matmul.result.type, lw.name(self.matmul.result))

    # -- where values come from ----------------------------------------------------------------

    def source(self, value: Value) -> Buffer | None:
        """The buffer a value is read from, or None if it is computed in registers."""
        if value in self.sources:
            return self.lw.buffer(self.sources[value])
        if value not in self.producer:  # a value of the enclosing function
            return self.lw.buffer(value)
        inner = self.producer[value]
        if inner is self.matmul or inner in self.reductions:
            return self.buffers[value]
        return None

    def ready(self, value: Value) -> int:
        """The phase after which `value` can be computed (0: before any)."""
        if value not in self._ready:
            inner = self.producer.get(value)
            if inner is None or inner is self.matmul:
                self._ready[value] = 0
            elif inner in self.reductions:
                self._ready[value] = self.ready(inner.operands[0]) + 1
            else:
                self._ready[value] = max((self.ready(u) for u in inner.operands), default=0)
        return self._ready[value]

    def projection(self, shape: tuple) -> Projection:
        return projection(self.kernel_space, shape)

    def reads(self, value: Value, projection: Projection, keys: dict[Key, None]) -> None:
        """Collects the buffer reads that computing `value` at `projection` makes."""
        buffer = self.source(value)
        if buffer is not None:
            keys.setdefault((buffer, projection))
            return
        inner = self.producer[value]
        for operand in inner.operands:
            self.reads(operand, operand_projection(inner, operand, projection), keys)

    def evaluate(self, value: Value, projection: Projection, loop: LoopContext) -> ir.Value:
        key = (value, projection)
        if key in loop.memo:
            return loop.memo[key]
        buffer = self.source(value)
        if buffer is not None:
            result = loop.load((buffer, projection))
        else:
            inner = self.producer[value]
            operands = [self.evaluate(u, operand_projection(inner, u, projection), loop)
                        for u in inner.operands]
            loop.k.at(inner.loc)
            if inner.opcode == "const":
                result = const(value.type.dtype, inner.attrs["value"].item())
            elif inner.opcode in ("broadcast_to", "reshape"):
                result = operands[0]
            else:
                dtypes = tuple(u.type.dtype for u in inner.operands)
                result = SCALAR[inner.opcode](loop.k.s, operands, dtypes, inner.attrs,
                                              self.lw.name(value))
        loop.memo[key] = result
        return result

    # -- the kernel ------------------------------------------------------------------------------

    def emit(self) -> None:
        lw = self.lw
        name = lw.name(self.op.results[0])
        inputs = [lw.buffer(v) for v in (*self.op.operands, *self.outer_values())]
        k = lw.kernel(name, [*inputs, *(storage for _, storage in self.yields),
                             *self.buffers.values(), *self.best.values(),
                             *([self.packed] if self.packed else [])], work=self.work())
        if self.matmul is not None:
            a, b = (self.matmul_operand(u) for u in self.matmul.operands)
            matmul.emit(k, self.buffers[self.matmul.result], a, b, lw.options.vector_bytes,
                        self.packed)
            k.barrier()  # the epilogue's rows need not be the rows this thread multiplied
        loops = self.loops()
        keys = list(dict.fromkeys(key for loop in loops for key in loop.keys))
        layouts = {key: self.layout(*key) for key in keys}
        outer_shape = self.space[:self.outer]
        outer_layouts = [Layout(outer_shape, layout.strides[:self.outer], layout.offset)
                         for layout in layouts.values()]
        outer_shape, outer_layouts = collapse(outer_shape, outer_layouts)
        outer_operands = [k.operand(buffer, layout)
                          for (buffer, _), layout in zip(keys, outer_layouts)]
        # threads divide the rows when there are any, else the one loop of an elementwise or
        # matmul kernel (reductions over a leading axis stay on one thread: see `work`)
        by_rows = bool(self.rows)
        with loop_nest(k, outer_shape, outer_operands, prefix="row", inner_loops=True,
                       shared=by_rows) as (starts, _):
            start_of = dict(zip(keys, starts))
            for loop in loops:
                inner_layouts = [Layout(loop.shape, layouts[key].strides[self.outer:])
                                 for key in loop.keys]
                starts = [start_of[key] for key in loop.keys]

                def visit(pointers, index, loop=loop):
                    loop.body(LoopContext(k, dict(zip(loop.keys, pointers)), index))

                accumulator = next(iter(loop.lanes), None)
                if accumulator and reduces_rows(k, inner_layouts[loop.keys.index(accumulator)]):
                    operands = [k.operand(buffer, layout)
                                for (buffer, _), layout in zip(loop.keys, inner_layouts)]
                    # argmax keeps its best value and index in order (and needs the indices)
                    reduce_rows(k, loop.shape, operands,
                                [loop.lanes.get(key) for key in loop.keys], visit,
                                starts=starts, shared=not by_rows, keep_dims=loop.keep_dims,
                                in_order=loop.keep_dims)
                    continue
                shape = loop.shape
                if not loop.keep_dims:
                    shape, inner_layouts = collapse(shape, inner_layouts)
                operands = [k.operand(buffer, layout)
                            for (buffer, _), layout in zip(loop.keys, inner_layouts)]
                with element_nest(k, shape, operands, starts=starts, shared=not by_rows,
                                  reduction=loop.accumulates) as (pointers, index):
                    visit(pointers, index)
        lw.launch(k)

    def work(self) -> Dim | None:
        """The kernel's element operations, or None where its loops cannot be divided among
        threads: a reduction over a leading axis accumulates every row into the same results."""
        if self.kind == "reduction" and not self.rows:
            return None
        if self.matmul is not None:
            return matmul.work(self.matmul.result.type, self.matmul.operands[0].type)
        return dim_product(self.space)

    def outer_values(self) -> list[Value]:
        """Values of the enclosing function that region ops use directly."""
        defined = set(self.producer) | set(self.sources)
        return list(dict.fromkeys(u for inner in self.region.ops for u in inner.operands
                                  if u not in defined))

    def matmul_operand(self, value: Value) -> Buffer:
        """A matmul operand: a region input, or a transpose of one (read through strides)."""
        inner = self.producer.get(value)
        if inner is not None and inner.opcode == "transpose":
            buffer = self.source(inner.operands[0])
            perm = permutation(inner.operands[0].type, inner.attrs["perm"])
            return buffer.view(buffer.layout.transpose(perm))
        return self.source(value)

    def layout(self, buffer: Buffer, projection: Projection) -> Layout:
        """The buffer seen over S: each of its dims moves with the dim of S it follows."""
        strides = [0] * len(self.space)
        for stride, d in zip(buffer.layout.strides, projection):
            if d is not None:
                strides[d] = stride
        return Layout(self.space, tuple(strides), buffer.layout.offset)

    def loops(self) -> list[Loop]:
        phase_shape = self.space[self.outer:]
        row_shape = tuple(1 if d + self.outer in self.axes else size
                          for d, size in enumerate(phase_shape))
        phases = max((self.ready(r.result) for r in self.reductions), default=0)
        stored = [(value, storage) for value, storage in self.yields
                  if not self.computed_in(value, storage)]
        loops = []
        for phase in range(phases + 1):
            if phase > 0:
                members = [r for r in self.reductions if self.ready(r.result) == phase]
                loops += [self.init_loop(members, row_shape),
                          self.accumulate_loop(members, phase_shape)]
            rows = [(v, s) for v, s in stored
                    if v.type.shape != self.space and self.ready(v) == phase]
            loops.append(self.store_loop(rows, row_shape))
        full = [(v, s) for v, s in stored if v.type.shape == self.space]
        loops.append(self.store_loop(full, phase_shape))
        return [loop for loop in loops if loop.keys]

    def computed_in(self, value: Value, storage: Buffer) -> bool:
        """Whether a yield is written where it is computed (a reduction's accumulator, the
        matmul's result), so that it needs no store of its own."""
        inner = self.producer.get(value)
        return (inner is self.matmul or inner in self.reductions) and \
            self.buffers[value] is storage

    def store_loop(self, stores: list[tuple[Value, Buffer]], shape: tuple) -> Loop:
        keys: dict[Key, None] = {}
        for value, storage in stores:
            projection = self.projection(value.type.shape)
            self.reads(value, projection, keys)
            keys.setdefault((storage, projection))

        def body(loop: LoopContext):
            # everything is computed before anything is stored: an epilogue may run in place,
            # over the matmul result it reads
            projections = [self.projection(value.type.shape) for value, _ in stores]
            results = [self.evaluate(value, projection, loop)
                       for (value, _), projection in zip(stores, projections)]
            for (value, storage), projection, result in zip(stores, projections, results):
                loop.store((storage, projection), result, value.type.dtype)

        return Loop(shape, body, list(keys))

    def init_loop(self, members: list[Op], shape: tuple) -> Loop:
        """Accumulators start at the identity; argmax's index at 0, its answer for an empty
        axis (its best value needs no start: the first element is always taken)."""
        keys = [self.accumulator(r) for r in members]

        def body(loop: LoopContext):
            for r, key in zip(members, keys):
                start = ir.Constant(I64, 0) if r in self.best else \
                    reductions.identity(r.opcode, r.result.type.dtype)
                loop.store(key, start, r.result.type.dtype)

        return Loop(shape, body, keys)

    def accumulator(self, r: Op) -> Key:
        return self.buffers[r.result], self.projection(r.result.type.shape)

    def accumulate_loop(self, members: list[Op], shape: tuple) -> Loop:
        identity = tuple(range(len(self.space)))
        keys: dict[Key, None] = {}
        for r in members:
            self.reads(r.operands[0], identity, keys)
            keys.setdefault(self.accumulator(r))
            if r in self.best:
                keys.setdefault((self.best[r], self.accumulator(r)[1]))
        fast_math = self.lw.options.fast_math

        def lanes(r: Op) -> Lanes:
            dtype, name = r.operands[0].type.dtype, self.lw.name(r.result)
            return Lanes(reductions.identity(r.opcode, dtype),
                         lambda s, acc, x: reductions.combine(s, r.opcode, acc, x, dtype,
                                                              fast_math, name))

        def body(loop: LoopContext):
            for r in members:
                x = self.evaluate(r.operands[0], identity, loop)
                dtype, name = r.operands[0].type.dtype, self.lw.name(r.result)
                if r not in self.best:
                    acc = loop.load(self.accumulator(r))
                    loop.store(self.accumulator(r),
                               reductions.combine(loop.k.s, r.opcode, acc, x, dtype, fast_math,
                                                  name), dtype)
                    continue
                # argmax/argmin: the first element of a row is taken, then the first better one
                best_key = (self.best[r], self.accumulator(r)[1])
                position = loop.index.loops[r.attrs["axis"] % len(self.space) - self.outer]
                b = loop.k.b
                best = loop.load(best_key)
                better = first_extreme(">" if r.opcode == "argmax" else "<")
                take = b.or_(b.icmp_unsigned("==", position, ir.Constant(I64, 0)),
                             better(loop.k.s, x, best, dtype))
                loop.store(best_key, b.select(take, x, best), dtype)
                index = loop.load(self.accumulator(r))
                loop.store(self.accumulator(r), b.select(take, position, index, name=name), "i64")

        return Loop(shape, body, list(keys), keep_dims=any(r in self.best for r in members),
                    accumulates=True, lanes={self.accumulator(r): lanes(r) for r in members
                                             if r not in self.best})


class LoopContext:
    """The innermost body of one loop nest: where each buffer access points, and the values
    computed there so far."""

    def __init__(self, k: Kernel, pointers: dict[Key, ir.Value], index):
        self.k, self.pointers, self.index = k, pointers, index
        self.memo: dict = {}

    def load(self, key: Key) -> ir.Value:
        return self.k.s.load(self.pointers[key], key[0].dtype, key[0].name)

    def store(self, key: Key, result: ir.Value, dtype: str) -> None:
        self.k.s.store(result, self.pointers[key], dtype)

