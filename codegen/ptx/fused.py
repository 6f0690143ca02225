"""A `fused` op (made by passes/fuse.py) becomes one GPU kernel: its region computed in
registers, where memory holds only the region's inputs and its yields.

The region is read as the CPU backend reads it: `DeviceFused` extends the CPU's `FusedKernel`
(codegen/llvm/fused.py), whose `evaluate` computes a region value at a projection of the index
of the op's space S with the unfused kernels' scalar code, and whose store bodies write the
yields. The GPU's own part is who computes which element, and that the results of reductions
and of the matmul stay in registers rather than going through memory:

- `elementwise` and `reduction` kernels: S is cut into kept dims (a row per index of them) and
  reduced dims (the row's columns; none in an elementwise kernel, whose rows are elements). Rows
  are handed out as by the unfused reductions (`kernels.Rows`): a warp per row when the last axis
  is reduced (a block for long or symbolic rows), else a thread per row. In each phase (a chain
  of dependent reductions, as on the CPU: softmax's sum needs its max) the group's members
  accumulate the phase's reductions over their own columns; the states are merged across the
  group and handed to every member, which computes the next phases' inputs with them. Then the
  first member stores the row-shaped yields, and every member the S-shaped ones at its columns
  (recomputed from the inputs, as on the CPU, not kept from an earlier phase).
- `matmul` kernels: the tiled matmul (`kernels.matmul`), where each element of C computes its
  elementwise epilogue (bias, activation, an SGD update) in registers instead of being stored.

Each element and each reduction is computed with the unfused kernels' instructions, in their
order (the same members take the same columns, the same trees merge them), so the results are
the unfused GPU kernels' bits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir

from ...ir.core import Op, Value
from ...ir.types import dim_product
from ..llvm import reductions
from ..llvm.fused import FusedKernel, Key, LoopContext
from ..llvm.kernels import element, first_extreme
from ..llvm.layout import Layout, collapse
from ..llvm.matmul import matmul_layouts
from ..llvm.scalar import I64, llvm_type
from . import kernels
from .kernels import NO_INDEX, Reducer, Rows, offset_at, unravel

if TYPE_CHECKING:
    from .lower import Lowerer


def lower_fused(lw: Lowerer, op: Op) -> None:
    if op.results:  # a kernel none of whose values is used (dead code not pruned) is skipped
        DeviceFused(lw, op).emit()


class DeviceFused(FusedKernel):
    def __init__(self, lw: Lowerer, op: Op):
        super().__init__(lw, op)
        # the results of reductions (the row's) and of the matmul (the element's) in registers,
        # once computed
        self.in_registers = {r.result for r in self.reductions}
        if self.matmul is not None:
            self.in_registers.add(self.matmul.result)
        self.registers: dict[Value, ir.Value] = {}
        # yields written from the registers they are computed in, and those the store bodies
        # compute
        self.own = [(value, (storage, self.projection(value.type.shape)))
                    for value, storage in self.yields if self.computed_in(value, storage)]
        self.stored = [(value, storage) for value, storage in self.yields
                       if not self.computed_in(value, storage)]

    def reads(self, value, projection, keys) -> None:
        """The CPU's reads, less those of the values this kernel keeps in registers."""
        if value not in self.in_registers:
            super().reads(value, projection, keys)

    def evaluate(self, value, projection, loop) -> ir.Value:
        if value in self.in_registers:  # read where it was computed (passes/fuse.py checks)
            return self.registers[value]
        return super().evaluate(value, projection, loop)

    def emit(self) -> None:
        if self.matmul is None:
            self.emit_rows()
        else:
            self.emit_matmul()

    # -- elementwise and reduction kernels -------------------------------------------------

    def emit_rows(self) -> None:
        lw, space = self.lw, self.space
        identity = tuple(range(len(space)))
        phases = self.phases()
        phase_reads = []
        for members in phases:
            reads: dict[Key, None] = {}
            for r in members:
                self.reads(r.operands[0], identity, reads)
            phase_reads.append(list(reads))
        row_store = self.store_loop([(v, s) for v, s in self.stored if v.type.shape != space], ())
        full_store = self.store_loop([(v, s) for v, s in self.stored if v.type.shape == space],
                                     ())
        keys = list(dict.fromkeys([*(key for reads in phase_reads for key in reads),
                                   *(key for _, key in self.own), *row_store.keys,
                                   *full_store.keys]))

        # each buffer over the kept dims (from its offset) and over the reduced ones
        kept = [d for d in identity if d not in self.axes]
        layouts = [self.layout(*key) for key in keys]
        row_shape, row_layouts = collapse(
            tuple(space[d] for d in kept),
            [Layout(tuple(space[d] for d in kept), tuple(layout.strides[d] for d in kept),
                    layout.offset) for layout in layouts])
        columns = dim_product(tuple(space[d] for d in self.axes))
        column_shape, column_layouts = collapse(
            tuple(space[d] for d in self.axes),
            [Layout(tuple(space[d] for d in self.axes),
                    tuple(layout.strides[d] for d in self.axes)) for layout in layouts])

        k = lw.kernel(lw.name(self.op.results[0]), [buffer for buffer, _ in keys])
        b = k.b
        per = kernels.row_group(columns) if len(space) - 1 in self.axes else "thread"
        rows = Rows(k, per, columns)
        row_sizes = tuple(k.dim(size) for size in row_shape)
        column_sizes = tuple(k.dim(size) for size in column_shape)
        with rows.each_row(dim_product(row_shape)) as row:
            row_index = unravel(b, row, row_sizes)
            starts = {key: offset_at(k, layout, row_index)
                      for key, layout in zip(keys, row_layouts)}
            column_of = dict(zip(keys, column_layouts))

            def at(loop_keys: list[Key], column: ir.Value | None = None) -> LoopContext:
                """The loop body at a column of the row (None: the row-shaped values' place)."""
                index = () if column is None else unravel(b, column, column_sizes)
                offsets = {key: offset_at(k, column_of[key], index, starts[key])
                           for key in loop_keys}
                return LoopContext(k, {key: element(k, k.operand(key[0]), offset)
                                       for key, offset in offsets.items()}, None)

            for members, reads in zip(phases, phase_reads):
                self.accumulate(rows, members, reads, at)
            with b.if_then(rows.first):
                loop = at([*(key for _, key in self.own), *row_store.keys])
                for value, key in self.own:
                    loop.store(key, self.registers[value], value.type.dtype)
                row_store.body(loop)
            with rows.each_column() as column:
                full_store.body(at(full_store.keys, column))
        lw.launch(k, rows.grid(dim_product(row_shape)))

    def phases(self) -> list[list[Op]]:
        """The reductions in phases: each phase's inputs need only earlier phases' results."""
        count = max((self.ready(r.result) for r in self.reductions), default=0)
        return [[r for r in self.reductions if self.ready(r.result) == phase]
                for phase in range(1, count + 1)]

    def accumulate(self, rows: Rows, members: list[Op], reads: list[Key], at) -> None:
        """One phase of a row: each member merges its columns into its states (in registers),
        then the group's states are merged into each reduction's result for the row."""
        k, b = rows.k, rows.k.b
        identity = tuple(range(len(self.space)))
        reducers = [self.reducer(r) for r in members]
        states = [[k.setup.alloca(llvm_type(dtype)) for dtype in reducer.dtypes]
                  for reducer in reducers]
        for reducer, state in zip(reducers, states):
            for start, slot in zip(reducer.start, state):
                b.store(start, slot)
        with rows.each_column() as column:
            loop = at(reads, column)
            for r, reducer, state in zip(members, reducers, states):
                x = self.evaluate(r.operands[0], identity, loop)
                one = (x,) if len(state) == 1 else (x, column)  # argmax: its index too
                merged = reducer.merge(k.s, tuple(b.load(slot) for slot in state), one)
                for value, slot in zip(merged, state):
                    b.store(value, slot)
        for r, reducer, state in zip(members, reducers, states):
            total = rows.total(tuple(b.load(slot) for slot in state), reducer)
            if len(total) == 2:  # no elements: index 0
                total = (b.select(b.icmp_unsigned("==", total[1], NO_INDEX),
                                  ir.Constant(I64, 0), total[1]),)
            self.registers[r.result] = total[0]

    def reducer(self, r: Op) -> Reducer:
        dtype = r.operands[0].type.dtype
        if r.opcode in ("argmax", "argmin"):
            # the search starts at a value no element is better than
            largest = r.opcode == "argmax"
            worst = reductions.identity("max" if largest else "min", dtype)
            return kernels.first_best(first_extreme(">" if largest else "<"), worst, dtype)
        name = self.lw.name(r.result)

        def combine(s, acc, x):
            return reductions.combine(s, r.opcode, acc, x, dtype, False, name)

        return kernels.combining(combine, reductions.identity(r.opcode, dtype), dtype)

    # -- matmul kernels --------------------------------------------------------------------

    def emit_matmul(self) -> None:
        lw, product = self.lw, self.matmul
        a, b = (self.matmul_operand(u) for u in product.operands)
        c = self.buffers[product.result]
        epilogue = self.store_loop(self.stored, ())
        keys = list(dict.fromkeys([*(key for _, key in self.own), *epilogue.keys]))
        _, a_layout, b_layout = matmul_layouts(c, a, b)
        # each buffer seen over C as the matmul has it (a 1-D operand adds a dim of 1)
        layouts = [matmul_layouts(c.view(self.layout(*key)), a, b)[0] for key in keys]
        k = lw.kernel(lw.name(self.op.results[0]), [a, b, *(buffer for buffer, _ in keys)])

        def store(value: ir.Value, pointers: list[ir.Value]) -> None:
            loop = LoopContext(k, dict(zip(keys, pointers)), None)
            self.registers[product.result] = value
            for result, key in self.own:
                loop.store(key, value, result.type.dtype)
            epilogue.body(loop)

        grid = kernels.matmul(k, k.operand(a, a_layout), k.operand(b, b_layout),
                              [k.operand(buffer, layout)
                               for (buffer, _), layout in zip(keys, layouts)],
                              store, lw.name(product.result))
        lw.launch(k, grid)
