"""GPU kernels: one `ptx_kernel` function per op, and the templates that spread an op's work over
threads.

A kernel takes one `ptr addrspace(1)` (global memory) per buffer it touches, `noalias` as on the
CPU, then the run-time size of every symbolic dim as an i64. Operands are indexed through their
`Layout`s exactly as by the CPU kernels (codegen/llvm/kernels.py), whose helpers are used here:
what changes is who runs which element.

Templates (`elementwise`, `fill` and `argreduce` are called by the shared lowerings through
`Lowerer.templates`, as the CPU's are). A kernel is launched one thread per element of its first
buffer (what it writes: `DeviceKernel.elements`) unless its template returns another `Grid`:
- `elementwise` (and `fill`): a grid-stride loop over the flat index of the result, unravelled
  into one index per dim (dims merged by `collapse` first, so a dense operand costs no
  division);
- `each_output`: one thread per output element, running sequential CPU code for it (column
  reductions; `argreduce`), coalesced when neighbouring outputs are neighbours in memory;
- `Rows`: rows handed out to a warp, a block of `BLOCK` threads, or a thread each; a group's
  members take every 32nd (256th) element of the row, then their states are merged by warp
  shuffles and, across a block's warps, shared memory (`Reducer`: sums and the like, argmax's
  value and index). `reduce_rows` (returns its Grid) reduces along the last axis with them, as
  do fused kernels (fused.py);
- `matmul` (returns its Grid): `TILE` x `TILE` blocks, each computing a tile of C from tiles of
  A and B staged through shared memory; every C element is summed in k order with fused
  multiply-adds, the same order and rounding as the CPU backend, then handed to a `Store` (a
  store, or a fused epilogue).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir

from ...ir.types import Dim, dim_product
from ..llvm.kernels import (
    Better,
    Buffer,
    Index,
    Kernel,
    Operand,
    add_scaled,
    element,
    elementwise_loops,
    for_range,
)
from ..llvm.kernels import argreduce as cpu_argreduce
from ..llvm.layout import Layout, collapse
from ..llvm.matmul import multiply_add
from ..llvm.scalar import Scalar, const, is_float, llvm_type
from .device import (
    GLOBAL_PTR,
    I64,
    WARP,
    DeviceScalar,
    barrier,
    shared_array,
    shared_element,
    shuffle,
    special_register,
)
from .plan import Grid

BLOCK = 256  # threads per block (one dimension)
WARPS = BLOCK // WARP
TILE = 16  # matmul tiles are TILE x TILE elements, one per thread


class DeviceKernel(Kernel):
    """A kernel under construction: `(ptr addrspace(1) base..., i64 dim...)`, `ptx_kernel`.

    The CPU's `Kernel` with global pointers, math through libdevice and fused multiply-adds
    (every supported GPU has them); no CPU threads: the CPU code used inside a kernel runs on
    its GPU thread."""

    rows_in_lanes = False  # a thread reducing a column combines in order (no vectors to fill)

    def __init__(self, module: ir.Module, name: str, buffers: list[Buffer],
                 dims: tuple[str, ...]):
        super().__init__(module, name, buffers, dims, fma=True, pointer=GLOBAL_PTR,
                         entry_point=True, scalar=DeviceScalar)
        # the elements of what it writes (its first buffer): the default launch's threads
        self.elements = dim_product(buffers[0].layout.shape)

    def register(self, name: str) -> ir.Value:
        """A special register (`tid.x` ...), read once in the setup block."""
        return special_register(self.setup, name)


# -- loops and indices -------------------------------------------------------------------------

def grid_stride(k: DeviceKernel) -> tuple[ir.Value, ir.Value]:
    """This thread's first item and the stride: the grid's global thread index and size."""
    first = k.setup.add(k.setup.mul(k.register("ctaid.x"), k.register("ntid.x")),
                        k.register("tid.x"), name="thread")
    count = k.setup.mul(k.register("nctaid.x"), k.register("ntid.x"), name="threads")
    return first, count


def unravel(b: ir.IRBuilder, flat: ir.Value, sizes: tuple[ir.Value, ...]) -> tuple[ir.Value, ...]:
    """The row-major indices of position `flat` among `sizes` elements."""
    indices = []
    for size in reversed(sizes[1:]):
        indices.append(b.urem(flat, size))
        flat = b.udiv(flat, size)
    if sizes:
        indices.append(flat)
    return tuple(reversed(indices))


def offset_at(k: DeviceKernel, layout: Layout, indices: tuple[ir.Value, ...],
              start: ir.Value | None = None) -> ir.Value:
    """The element offset of `indices` in `layout`, from `start` (default: the layout's own)."""
    offset = k.offset(layout) if start is None else start
    for index, stride in zip(indices, layout.strides):
        offset = add_scaled(k, offset, index, stride)
    return offset


def at(k: DeviceKernel, op: Operand, offset: ir.Value, layout: Layout) -> Operand:
    """`op` seen from one of its elements: the pointer moved there, indexed by `layout`."""
    return Operand(element(k, op, offset), op.dtype, layout, op.name)


def one_per_thread(count: Dim) -> Grid:
    return Grid(((count, 1),), BLOCK, (BLOCK, 1, 1))


# -- templates ---------------------------------------------------------------------------------------

Body = Callable[[Scalar, list[ir.Value], Index], list[ir.Value]]


def elementwise(k: DeviceKernel, outs: list[Operand], ins: list[Operand], body: Body, *,
                keep_dims: bool = False, shared: bool = True) -> None:
    """`outs[...] = body(ins[...])` over the shape of `outs` (inputs already broadcast to it);
    `keep_dims` keeps one index per dim of the shape, for bodies that use them. Every loop is
    shared among the kernel's threads (`shared` is for the CPU's template, whose loops may
    not be)."""
    shape, operands = elementwise_loops(outs, ins, keep_dims)
    sizes = tuple(k.dim(size) for size in shape)
    total = dim_product(shape)
    first, step = grid_stride(k)
    with for_range(k.b, k.dim(total), "i", start=first, step=step) as flat:
        index = Index(unravel(k.b, flat, sizes), sizes)
        pointers = [element(k, op, offset_at(k, op.layout, index.loops)) for op in operands]
        values = [k.s.load(ptr, op.dtype, op.name)
                  for ptr, op in zip(pointers[len(outs):], operands[len(outs):])]
        for result, ptr, op in zip(body(k.s, values, index), pointers, operands):
            k.s.store(result, ptr, op.dtype)


def fill(k: DeviceKernel, out: Operand, value: ir.Value, *, shared: bool = True) -> None:
    """`out[...] = value` (a constant, or a value computed in the setup block)."""
    elementwise(k, [out], [], lambda s, values, index: [value])


@contextmanager
def each_output(k: DeviceKernel, out: Operand, x: Operand) -> Iterator[tuple[Operand, Operand]]:
    """One thread per element of `out` (grid-stride): yields that element and the element of x
    at the same index (x's layout has out's shape), both as operands of shape (). The code
    emitted inside is the sequential code for one output; the Grid is `each_output.grid`."""
    shape, (out_layout, x_layout) = collapse(out.layout.shape, [out.layout, x.layout])
    sizes = tuple(k.dim(size) for size in shape)
    first, step = grid_stride(k)
    with for_range(k.b, k.dim(dim_product(shape)), "o", start=first, step=step) as flat:
        indices = unravel(k.b, flat, sizes)
        scalar = Layout((), ())
        yield (at(k, out, offset_at(k, out_layout, indices), scalar),
               at(k, x, offset_at(k, x_layout, indices), scalar))


def argreduce(k: DeviceKernel, out: Operand, x: Operand, axis_size: Dim, axis_stride: Dim,
              better: Better) -> None:
    """The CPU's `argreduce`, a thread per output running its loop along the axis."""
    with each_output(k, out, x) as (result, start):
        cpu_argreduce(k, result, start, axis_size, axis_stride, better)


Combine = Callable[[Scalar, ir.Value, ir.Value], ir.Value]
State = tuple[ir.Value, ...]


@dataclass(frozen=True)
class Reducer:
    """How a row's elements combine: each thread's state (one value per dtype) starts at `start`
    and `merge`s its elements in turn; then the threads' states are merged as a tree."""

    dtypes: tuple[str, ...]
    start: tuple[ir.Constant, ...]
    merge: Callable[[Scalar, State, State], State]


def combining(combine: Combine, init: ir.Constant, dtype: str) -> Reducer:
    """A sum, product, max or min: one value, `combine`d with each element."""
    return Reducer((dtype,), (init,), lambda s, acc, x: (combine(s, acc[0], x[0]),))


NO_INDEX = ir.Constant(I64, -1)  # the state of argmax over no elements: after every index


def first_best(better: Better, worst: ir.Constant, dtype: str) -> Reducer:
    """argmax/argmin: the state is the best value so far and its index, and an element is a
    state too (its value, its index). The better value wins, of equal ones the lower index, so
    the result is the first best whatever the grouping: the sequential loop's."""
    def merge(s: Scalar, best: State, other: State) -> State:
        b = s.b
        ahead = b.icmp_unsigned("<", other[1], best[1])
        take = b.or_(better(s, other[0], best[0], dtype),
                     b.and_(b.not_(better(s, best[0], other[0], dtype)), ahead))
        return b.select(take, other[0], best[0]), b.select(take, other[1], best[1])
    return Reducer((dtype, "i64"), (worst, NO_INDEX), merge)


def warp_merge(s: Scalar, state: State, reducer: Reducer) -> State:
    """Lane 0 ends with all 32 lanes' states merged (a tree: 16 apart, 8, 4, 2, 1)."""
    delta = WARP // 2
    while delta:
        other = tuple(shuffle(s, value, dtype, "down", delta)
                      for value, dtype in zip(state, reducer.dtypes))
        state = reducer.merge(s, state, other)
        delta //= 2
    return state


WARP_ROW_LIMIT = 1024  # a row reduced along the last axis longer than this takes a whole block


def row_group(length: Dim) -> str:
    """Who reduces a row along the last axis: a warp, or a block for long or symbolic rows."""
    return "block" if not isinstance(length, int) or length > WARP_ROW_LIMIT else "warp"


class Rows:
    """Rows handed out to groups of threads (grid-stride): a `block`, a `warp` or a `thread` per
    row. The members of a group share a row's `columns` elements, each taking every
    `members`-th from its own; which member takes which is fixed by the code, not the grid, so a
    result does not depend on the launch."""

    def __init__(self, k: DeviceKernel, per: str, columns: Dim):
        self.k, self.per, self.columns = k, per, columns
        setup = k.setup
        thread = k.register("tid.x")
        self.lane = setup.urem(thread, ir.Constant(I64, WARP), name="lane")
        self.warp = setup.udiv(thread, ir.Constant(I64, WARP), name="warp")
        if per == "block":
            self.member, self.members = thread, ir.Constant(I64, BLOCK)
            self.group, self.groups = k.register("ctaid.x"), k.register("nctaid.x")
        elif per == "warp":
            self.member, self.members = self.lane, ir.Constant(I64, WARP)
            warps = ir.Constant(I64, WARPS)
            self.group = setup.add(setup.mul(k.register("ctaid.x"), warps), self.warp,
                                   name="group")
            self.groups = setup.mul(k.register("nctaid.x"), warps, name="groups")
        else:
            self.member, self.members = ir.Constant(I64, 0), ir.Constant(I64, 1)
            self.group, self.groups = grid_stride(k)
        self.first = setup.icmp_unsigned("==", self.member, ir.Constant(I64, 0), name="first")

    def grid(self, rows: Dim) -> Grid:
        return Grid(((rows, 1),), {"block": 1, "warp": WARPS, "thread": BLOCK}[self.per],
                    (BLOCK, 1, 1))

    def each_row(self, count: Dim):
        return for_range(self.k.b, self.k.dim(count), "row", start=self.group, step=self.groups)

    def each_column(self):
        """This member's columns of the row, in order."""
        return for_range(self.k.b, self.k.dim(self.columns), "col", start=self.member,
                         step=self.members)

    def total(self, state: State, reducer: Reducer) -> State:
        """The members' states merged, handed to every member. A block's warps merge their own
        first, and warp 0 merges their 8 results, through shared memory."""
        if self.per == "thread":
            return state
        k, b, s = self.k, self.k.b, self.k.s
        state = warp_merge(s, state, reducer)
        if self.per == "warp":
            return tuple(shuffle(s, value, dtype, "idx", 0)
                         for value, dtype in zip(state, reducer.dtypes))
        module, name = k.function.module, k.function.name
        partials = [shared_array(module, f"{name}.partials", dtype, WARPS)
                    for dtype in reducer.dtypes]
        totals = [shared_array(module, f"{name}.total", dtype, 1) for dtype in reducer.dtypes]
        first_lane = b.icmp_unsigned("==", self.lane, ir.Constant(I64, 0))
        with b.if_then(first_lane):
            for value, array, dtype in zip(state, partials, reducer.dtypes):
                s.store(value, shared_element(b, array, self.warp), dtype)
        barrier(b)
        with b.if_then(b.icmp_unsigned("==", self.warp, ir.Constant(I64, 0))):
            has_one = b.icmp_unsigned("<", self.lane, ir.Constant(I64, WARPS))
            slot = b.select(has_one, self.lane, ir.Constant(I64, 0))
            mine = tuple(b.select(has_one, s.load(shared_element(b, array, slot), dtype), start)
                         for array, dtype, start in zip(partials, reducer.dtypes, reducer.start))
            merged = warp_merge(s, mine, reducer)
            with b.if_then(first_lane):
                for value, array, dtype in zip(merged, totals, reducer.dtypes):
                    s.store(value, shared_element(b, array, ir.Constant(I64, 0)), dtype)
        barrier(b)  # partials are read, and the total written, before anyone goes on
        return tuple(s.load(shared_element(b, array, ir.Constant(I64, 0)), dtype)
                     for array, dtype in zip(totals, reducer.dtypes))


def reduce_rows(k: DeviceKernel, out: Operand, x: Operand, kept: int, combine: Combine,
                init: ir.Constant, per: str) -> Grid:
    """out[r] = x[r, 0] ∘ x[r, 1] ∘ ... : x's first `kept` dims index the output (out has that
    shape), the others are combined, by a `per` ("warp" or "block") for each row (`Rows`)."""
    b, s, dtype = k.b, k.s, x.dtype
    layout = x.layout
    outer = Layout(layout.shape[:kept], layout.strides[:kept], layout.offset)
    row_shape, (out_layout, x_outer) = collapse(outer.shape, [out.layout, outer])
    col_shape, (x_inner,) = collapse(layout.shape[kept:],
                                     [Layout(layout.shape[kept:], layout.strides[kept:])])
    row_sizes = tuple(k.dim(size) for size in row_shape)
    col_sizes = tuple(k.dim(size) for size in col_shape)
    rows = Rows(k, per, dim_product(col_shape))
    acc = k.setup.alloca(llvm_type(dtype), name="acc")
    with rows.each_row(dim_product(row_shape)) as row:
        indices = unravel(b, row, row_sizes)
        x_row = offset_at(k, x_outer, indices)
        b.store(init, acc)
        with rows.each_column() as col:
            x_ptr = element(k, x, offset_at(k, x_inner, unravel(b, col, col_sizes), x_row))
            b.store(combine(s, b.load(acc), s.load(x_ptr, dtype, x.name)), acc)
        (total,) = rows.total((b.load(acc),), combining(combine, init, dtype))
        with b.if_then(rows.first):
            s.store(total, element(k, out, offset_at(k, out_layout, indices)), dtype)
    return rows.grid(dim_product(row_shape))


Store = Callable[[ir.Value, list[ir.Value]], None]


def matmul(k: DeviceKernel, a: Operand, b_: Operand, outs: list[Operand], store: Store,
           name: str) -> Grid:
    """C[..., i, j] = sum_k a[..., i, k] * b[..., k, j], batch dims already broadcast; each
    element of C is handed to `store` in registers, with the pointer of each of `outs` (layouts
    of C's shape) at it: the epilogue.

    Blocks take tiles of C (grid-stride over batch x row tiles x column tiles); thread (tx, ty)
    of a block owns C[i = row0 + ty, j = col0 + tx]. Per step of TILE along k, the block stages
    A[i, k0 + tx] and B[k0 + ty, j] (zero outside the matrices) in shared memory, then each
    thread adds its TILE products in k order."""
    b, s, dtype = k.b, k.s, a.dtype
    *batch, m, n = outs[0].layout.shape
    inner = a.layout.shape[-1]
    batch_shape, batch_layouts = collapse(
        tuple(batch), [Layout(tuple(batch), op.layout.strides[:-2], op.layout.offset)
                       for op in (a, b_, *outs)])
    batch_sizes = tuple(k.dim(size) for size in batch_shape)
    (a_si, a_sk), (b_sk, b_sj) = (op.layout.strides[-2:] for op in (a, b_))

    def tiles(d: Dim) -> ir.Value:
        return k.setup.udiv(k.setup.add(k.dim(d), ir.Constant(I64, TILE - 1)),
                            ir.Constant(I64, TILE))

    tiles_m, tiles_n = tiles(m), tiles(n)
    count = k.setup.mul(k.setup.mul(k.dim(dim_product(batch_shape)), tiles_m), tiles_n)
    tx, ty = k.register("tid.x"), k.register("tid.y")
    a_tile = shared_array(k.function.module, f"{k.function.name}.a", dtype, TILE * TILE)
    b_tile = shared_array(k.function.module, f"{k.function.name}.b", dtype, TILE * TILE)
    acc = k.setup.alloca(llvm_type(dtype), name="acc")
    zero = const(dtype, -0.0 if is_float(dtype) else 0)  # the CPU's start: -0.0 + x is x
    size_t = ir.Constant(I64, TILE)
    m_size, n_size, k_size = k.dim(m), k.dim(n), k.dim(inner)

    def stage(tile, slot, inside: ir.Value, operand: Operand, offset) -> None:
        """tile[slot] = operand[offset()] where `inside`, else 0 (no load out of bounds)."""
        ptr = shared_element(b, tile, slot)
        with b.if_else(inside) as (then, otherwise):
            with then:
                s.store(s.load(element(k, operand, offset()), dtype, operand.name), ptr, dtype)
            with otherwise:
                s.store(const(dtype, 0), ptr, dtype)

    with for_range(b, count, "tile", start=k.register("ctaid.x"),
                   step=k.register("nctaid.x")) as tile:
        column_tile = b.urem(tile, tiles_n)
        rest = b.udiv(tile, tiles_n)
        row_tile = b.urem(rest, tiles_m)
        indices = unravel(b, b.udiv(rest, tiles_m), batch_sizes)
        a0, b0, *out_starts = (offset_at(k, layout, indices) for layout in batch_layouts)
        i = b.add(b.mul(row_tile, size_t), ty, name="i")
        j = b.add(b.mul(column_tile, size_t), tx, name="j")
        row_in = b.icmp_signed("<", i, m_size)
        column_in = b.icmp_signed("<", j, n_size)
        a_row = add_scaled(k, a0, i, a_si)
        slot = b.add(b.mul(ty, size_t), tx)
        b.store(zero, acc)
        with for_range(b, k_size, "k0", step=size_t) as k0:
            a_k, b_k = b.add(k0, tx), b.add(k0, ty)
            stage(a_tile, slot, b.and_(row_in, b.icmp_signed("<", a_k, k_size)), a,
                  lambda: add_scaled(k, a_row, a_k, a_sk))
            stage(b_tile, slot, b.and_(b.icmp_signed("<", b_k, k_size), column_in), b_,
                  lambda: add_scaled(k, add_scaled(k, b0, b_k, b_sk), j, b_sj))
            barrier(b)
            left = b.sub(k_size, k0)
            steps = b.select(b.icmp_signed("<", left, size_t), left, size_t)
            with for_range(b, steps, "kk") as kk:
                a_ik = s.load(shared_element(b, a_tile, b.add(b.mul(ty, size_t), kk)), dtype)
                b_kj = s.load(shared_element(b, b_tile, b.add(b.mul(kk, size_t), tx)), dtype)
                b.store(multiply_add(s, a_ik, b_kj, b.load(acc), dtype, name), acc)
            barrier(b)  # the tiles are read before the next step overwrites them
        with b.if_then(b.and_(row_in, column_in)):
            pointers = []
            for op, start in zip(outs, out_starts):
                c_si, c_sj = op.layout.strides[-2:]
                pointers.append(element(k, op, add_scaled(k, add_scaled(k, start, i, c_si), j,
                                                          c_sj)))
            store(b.load(acc), pointers)
    return Grid(((dim_product(batch_shape), 1), (m, TILE), (n, TILE)), 1, (TILE, TILE, 1))
