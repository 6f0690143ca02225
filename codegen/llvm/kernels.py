"""Kernels: one internal LLVM function per op (or fused group), and the loop-nest templates.

A kernel takes the base pointer of every buffer it touches (`noalias`: the lowering never hands
a kernel a buffer it writes through another pointer) and the run-time sizes of the function's
symbolic dims; it evaluates the shapes, strides and offsets of its operands (`Layout`s) from
those sizes. O3 inlines each kernel into the entry function, where `noalias` becomes alias
metadata that keeps loops vectorisable.

Templates:
- `elementwise`: one loop nest over the result, any number of inputs (broadcast via stride 0)
  and outputs; with `accumulate`, the outputs are read back and combined (reductions);
- `argreduce`: index of the first maximum/minimum along one axis.
The matmul kernel has its own module (matmul.py).

Reductions along the last dim (rows) combine in a fixed order of their own, written out in the
IR so that it vectorises without reassociating anything (`reduce_rows`): each row is accumulated
in `LANES` lanes, lane l taking the row's elements l, l + LANES, l + 2 LANES, ... in turn from
the identity, and the lanes are then combined as a tree (lane i with lane i + LANES/2, then
i + LANES/4, ... down to lane 0), whose result is combined into the accumulator. The order
depends neither on the vector width (AVX2 and AVX-512 give the same bits) nor on where the row
sits (the batch size, the thread count).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace

from llvmlite import ir

from ...ir.errors import Loc
from ...ir.types import Dim
from .debug import DebugInfo
from .layout import Layout, collapse
from .scalar import I1, I32, I64, Scalar, is_float, llvm_type, memory_type

PTR = ir.PointerType()
LANES = 32  # a row's lanes (see above): 4 AVX2 or 2 AVX-512 registers of f32 partial results
LANE_ALIGN = 64  # bytes: a cache line, and the widest vector


@dataclass(frozen=True)
class Buffer:
    """A tensor in the entry function: a base pointer (a parameter, a scratch slot or a constant
    global), its dtype, and where its elements are. `name` is the IR value's name."""

    base: ir.Value
    dtype: str
    layout: Layout
    name: str

    def view(self, layout: Layout, name: str | None = None) -> Buffer:
        return Buffer(self.base, self.dtype, layout, name or self.name)


@dataclass(frozen=True)
class Operand:
    """A buffer inside a kernel: the kernel's pointer to its base."""

    ptr: ir.Value
    dtype: str
    layout: Layout
    name: str


@dataclass(frozen=True)
class Index:
    """Where the innermost loop body is: one index per loop, and the loops' sizes."""

    loops: tuple[ir.Value, ...]
    sizes: tuple[ir.Value, ...]

    def flat(self, b: ir.IRBuilder) -> ir.Value:
        """The row-major position of the element among all the loops' elements."""
        flat = ir.Constant(I64, 0)
        for i, size in zip(self.loops, self.sizes):
            flat = b.add(b.mul(flat, size, flags=("nuw", "nsw")), i, flags=("nuw", "nsw"))
        return flat


@dataclass(frozen=True)
class Threads:
    """Kernels may run on several threads: `count` is the module's global holding how many
    (the caller sets it), and a kernel whose work (element operations) is below `threshold`
    stays on one. The runtime is OpenMP's (libgomp, see threads.py)."""

    count: ir.GlobalVariable
    threshold: int


class Kernel:
    """An LLVM function under construction: `(ptr base..., i64 dim...)`, internal linkage.

    With `threads`, the code goes into `NAME.body(ptr base..., i64 dim..., i32 thread,
    i32 threads)`: each loop nest that divides its outermost loop among the threads
    (`chunk`) does its part of it, and nests that read what others wrote are separated by
    `barrier`. `NAME` itself then runs the body on one thread, or on all of them through
    GOMP_parallel when the kernel's `work` is large enough.

    Another target (codegen/ptx) gives its own `pointer` type for the base pointers, its own
    `scalar` class (how math functions are reached), and `entry_point`: the function is one
    the host launches (the `ptx_kernel` calling convention), not an internal one; and it
    reduces rows in order, without lanes (`rows_in_lanes`: a GPU thread has no vectors to
    fill)."""

    rows_in_lanes = True  # reductions along rows combine in lanes (`reduce_rows`)

    def __init__(self, module: ir.Module, name: str, buffers: list[Buffer], dims: tuple[str, ...],
                 fma: bool = False, threads: Threads | None = None, work: Dim = 0,
                 debug: DebugInfo | None = None, loc: Loc | None = None,
                 masked_tails: bool = False, pointer: ir.PointerType = PTR,
                 entry_point: bool = False, scalar: type[Scalar] = Scalar):
        # Globals (constants) are used directly, so LLVM sees their values; every other
        # distinct base pointer becomes one parameter.
        self.bases: list[ir.Value] = []
        for buffer in buffers:
            if not isinstance(buffer.base, ir.GlobalVariable) and \
                    all(buffer.base is not base for base in self.bases):
                self.bases.append(buffer.base)
        self.threads, self.work = threads, work
        self.masked_tails = masked_tails  # for the innermost loops of nests (`for_range`)
        params = [pointer] * len(self.bases) + [I64] * len(dims)
        self.name = module.get_unique_name(name)
        body_name = self.name if threads is None else f"{self.name}.body"
        fnty = ir.FunctionType(ir.VoidType(), params + ([I32] * 2 if threads else []))
        self.function = ir.Function(module, fnty, body_name)
        if entry_point:
            self.function.calling_convention = "ptx_kernel"
        else:
            self.function.linkage = "internal"
        params = self.function.args
        for param, base in zip(params, self.bases):
            param.name = base.name
            param.add_attribute("noalias")
        self.sizes = dict(zip(dims, params[len(self.bases):]))
        for dim, param in self.sizes.items():
            param.name = dim
        if threads is not None:
            self.thread, self.team = params[-2:]
            self.thread.name, self.team.name = "thread", "threads"
        self.pointers = {id(base): param for base, param in zip(self.bases, params)}
        self.dims = dims
        setup = self.function.append_basic_block("setup")
        self.setup = ir.IRBuilder(setup)
        self.b = ir.IRBuilder(self.function.append_basic_block("body"))
        self.s = scalar(self.b, fma)
        self._dims: dict[Dim, ir.Value] = {}
        self.debug, self.loc = debug, loc
        if debug is not None:
            self.scope = debug.place([self.setup, self.b], self.function, loc)

    def at(self, loc: Loc | None) -> None:
        """The source location of the instructions emitted from now on (a region's op)."""
        if self.debug is not None:
            self.b.debug_metadata = self.debug.location(self.scope, loc)

    def operand(self, buffer: Buffer, layout: Layout | None = None) -> Operand:
        ptr = buffer.base if isinstance(buffer.base, ir.GlobalVariable) \
            else self.pointers[id(buffer.base)]
        return Operand(ptr, buffer.dtype, layout or buffer.layout, buffer.name)

    def dim(self, d: Dim) -> ir.Value:
        """The run-time value of a dim, computed once in the setup block (dominates all loops)."""
        if isinstance(d, int):
            return ir.Constant(I64, d)
        if d not in self._dims:
            self._dims[d] = evaluate_dim(self.setup, d, self.sizes)
        return self._dims[d]

    def offset(self, layout: Layout) -> ir.Value:
        total = ir.Constant(I64, 0)
        for term in layout.offset:
            total = add(self.setup, total, self.dim(term))
        return total

    def chunk(self, total: ir.Value, grain: int = 1) -> tuple[ir.Value, ir.Value]:
        """This thread's part [start, end) of range(total): equal parts, multiples of `grain`."""
        if self.threads is None:
            return ir.Constant(I64, 0), total
        b = self.b
        team = b.sext(self.team, I64)
        share = b.udiv(b.add(total, b.sub(team, ir.Constant(I64, 1))), team)
        share = b.mul(b.udiv(b.add(share, ir.Constant(I64, grain - 1)), ir.Constant(I64, grain)),
                      ir.Constant(I64, grain))
        start = smaller(b, b.mul(b.sext(self.thread, I64), share), total)
        return start, smaller(b, b.add(start, share), total)

    def barrier(self) -> None:
        """Every thread waits here until all have arrived (nothing on one thread)."""
        if self.threads is not None:
            self.b.call(self.s.function("GOMP_barrier", ir.VoidType(), []), [])

    def finish(self) -> ir.Function:
        self.setup.branch(self.function.basic_blocks[1])
        self.b.ret_void()
        return self.function if self.threads is None else self.dispatcher()

    def call(self, entry: ir.IRBuilder, sizes: dict[str, ir.Value]) -> None:
        entry.call(self.finish(), list(self.bases) + [sizes[d] for d in self.dims])

    def dispatcher(self) -> ir.Function:
        """`NAME(ptr base..., i64 dim...)`: the body on this thread alone, or, for enough work
        with more than one thread allowed, on a team started by GOMP_parallel, each thread
        reading the arguments from a struct on this stack frame."""
        module = self.function.module
        params = list(self.function.function_type.args[:-2])
        struct = ir.LiteralStructType(params)
        dispatcher = ir.Function(module, ir.FunctionType(ir.VoidType(), params), self.name)
        dispatcher.linkage = "internal"
        args = list(dispatcher.args)
        for arg, param in zip(args, self.function.args):
            arg.name = param.name

        worker = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR]), f"{self.name}.thread")
        worker.linkage = "internal"
        b = ir.IRBuilder(worker.append_basic_block("entry"))
        if self.debug is not None:
            self.debug.place([b], worker, self.loc)
        fields = [b.load(b.gep(worker.args[0], [ir.Constant(I32, 0), ir.Constant(I32, i)],
                               source_etype=struct), typ=ty, name=arg.name)
                  for i, (arg, ty) in enumerate(zip(args, params))]
        scalar = Scalar(b)
        thread = b.call(scalar.function("omp_get_thread_num", I32, []), [], name="thread")
        team = b.call(scalar.function("omp_get_num_threads", I32, []), [], name="threads")
        b.call(self.function, fields + [thread, team])
        b.ret_void()

        b = ir.IRBuilder(dispatcher.append_basic_block("entry"))
        if self.debug is not None:
            self.debug.place([b], dispatcher, self.loc)
        count = b.load(self.threads.count, typ=I32, name="threads")
        work = evaluate_dim(b, self.work, dict(zip(self.dims, args[len(self.bases):])))
        parallel = b.and_(b.icmp_signed(">", count, ir.Constant(I32, 1)),
                          b.icmp_signed(">=", work, ir.Constant(I64, self.threads.threshold)))
        with b.if_else(parallel) as (team_of_threads, alone):
            with team_of_threads:
                data = b.alloca(struct, name="arguments")
                for i, arg in enumerate(args):
                    b.store(arg, b.gep(data, [ir.Constant(I32, 0), ir.Constant(I32, i)]))
                start = Scalar(b).function("GOMP_parallel", ir.VoidType(), [PTR, PTR, I32, I32])
                b.call(start, [worker, data, count, ir.Constant(I32, 0)])
            with alone:
                b.call(self.function, args + [ir.Constant(I32, 0), ir.Constant(I32, 1)])
        b.ret_void()
        return dispatcher


def smaller(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    return b.select(b.icmp_unsigned("<", x, y), x, y)


def evaluate_dim(b: ir.IRBuilder, d: Dim, sizes: dict[str, ir.Value]) -> ir.Value:
    """`784*N` → 784 * %N (products of integers and symbolic sizes)."""
    if isinstance(d, int):
        return ir.Constant(I64, d)
    value = None
    for part in d.split("*"):
        factor = ir.Constant(I64, int(part)) if part.isdigit() else sizes[part]
        value = factor if value is None else b.mul(value, factor, flags=("nuw", "nsw"))
    return value


# -- loops ---------------------------------------------------------------------------------------

@contextmanager
def for_range(b: ir.IRBuilder, stop: ir.Value, name: str, as_written: bool = False,
              start: ir.Value | None = None, masked: bool = False,
              step: ir.Value | None = None) -> Iterator[ir.Value]:
    """`for name in range(start, stop)` (start 0 by default): the body is emitted inside the
    `with`; on exit the builder is after the loop. A run-time `step` (the GPU's grid-stride
    loops) may take the index past `stop`: its addition makes no promise of staying in range.

    Loop nests are built so that the innermost loop is the one to vectorise; outer loops, and
    loops that are vectorised by hand, are kept `as_written`: LLVM neither vectorises nor
    unrolls them. Otherwise, once LLVM fully unrolls a short inner loop (a dim of 3), it
    vectorises the outer loop across rows, with gathers and scatters: slow to compile (seconds
    for byte-sized elements) and rarely faster; and it copies a matmul's tile code for every
    tile of a known width (seconds of compile time for nothing).

    A `masked` loop is vectorised with its last, partial vector done under a mask instead of a
    scalar remainder loop (AVX-512 has mask registers): a row of 10 is one masked step, not 10
    scalar ones (softmax's row kernel ran 4x faster)."""
    function = b.block.function
    before = b.block
    header = function.append_basic_block(f"{name}.loop")
    body = function.append_basic_block(f"{name}.body")
    after = function.append_basic_block(f"{name}.end")
    b.branch(header)
    b.position_at_end(header)
    index = b.phi(I64, name)
    index.add_incoming(start if start is not None else ir.Constant(I64, 0), before)
    b.cbranch(b.icmp_signed("<", index, stop), body, after)
    b.position_at_end(body)
    yield index
    if step is None:
        following = b.add(index, ir.Constant(I64, 1), name=f"{name}.next", flags=("nuw", "nsw"))
    else:
        following = b.add(index, step, name=f"{name}.next")
    index.add_incoming(following, b.block)
    back_edge = b.branch(header)
    if as_written:
        back_edge.set_metadata("llvm.loop", loop_metadata(
            b.module, f"{function.name} {name}", [("llvm.loop.vectorize.enable", False),
                                                  ("llvm.loop.unroll.disable",)]))
    elif masked:
        back_edge.set_metadata("llvm.loop", loop_metadata(
            b.module, f"{function.name} {name}", [("llvm.loop.vectorize.enable", True),
                                                  ("llvm.loop.vectorize.predicate.enable",
                                                   True)]))
    b.position_at_end(after)


def loop_metadata(module: ir.Module, name: str, properties: list[tuple]) -> ir.MDValue:
    """A loop ID `!0 = !{!0, !{!"tflc.loop", !"NAME #N"}, !{!"PROPERTY", i1 VALUE}, ...}`. LLVM
    wants each loop's ID to refer to itself, and every other operand to be a node (a bare string
    there aborts LLVM); the name, numbered, keeps each loop's ID its own (llvmlite reuses equal
    nodes)."""
    def node(*operands):
        return module.add_metadata([
            ir.MetaDataString(module, o) if isinstance(o, str) else
            ir.Constant(I1, int(o)) if isinstance(o, bool) else o for o in operands])

    loop_id = node(node("tflc.loop", f"{name} #{len(module.metadata)}"),
                   *(node(*p) for p in properties))
    loop_id.operands = (loop_id, *loop_id.operands)
    return loop_id


@contextmanager
def loop_nest(k: Kernel, shape: tuple[Dim, ...], operands: list[Operand], prefix: str = "i",
              inner_loops: bool = False, starts: list[ir.Value] | None = None,
              shared: bool = False, reduction: bool = False
              ) -> Iterator[tuple[list[ir.Value], Index]]:
    """Loops over `shape` (row-major); yields each operand's element offset and the index.
    Offsets are built up one loop level at a time, so outer terms stay out of inner loops; they
    begin at the operands' layout offsets, or at `starts` (offsets from enclosing loops).
    Only the innermost loop may vectorise, none with `inner_loops` (the body has its own).
    A `shared` nest divides its outermost loop among the kernel's threads. The innermost loop
    of a `reduction` nest carries a sum: it is left to LLVM's own judgement rather than given
    masked tails (vectorising a strict float sum is impossible, and LLVM says so on stderr
    when it was asked to)."""
    b = k.b
    offsets = starts if starts is not None else [k.offset(op.layout) for op in operands]
    sizes = tuple(k.dim(size) for size in shape)
    loops = []
    with ExitStack() as stack:
        for d, size in enumerate(sizes):
            innermost = d == len(sizes) - 1 and not inner_loops
            first, stop = k.chunk(size) if shared and d == 0 else (None, size)
            i = stack.enter_context(for_range(b, stop, f"{prefix}{d}", as_written=not innermost,
                                              start=first,
                                              masked=k.masked_tails and not reduction))
            loops.append(i)
            offsets = [add_scaled(k, offset, i, op.layout.strides[d])
                       for offset, op in zip(offsets, operands)]
        yield offsets, Index(tuple(loops), sizes)


def add_scaled(k: Kernel, offset: ir.Value, index: ir.Value, stride: Dim) -> ir.Value:
    if stride == 0:
        return offset
    scaled = index if stride == 1 else k.b.mul(index, k.dim(stride), flags=("nsw",))
    return add(k.b, offset, scaled)


def add(b: ir.IRBuilder, x: ir.Value, y: ir.Value) -> ir.Value:
    """x + y for non-negative i64 offsets, leaving out a constant 0 (readable IR)."""
    if isinstance(x, ir.Constant) and x.constant == 0:
        return y
    return b.add(x, y, flags=("nuw", "nsw"))


def element(k: Kernel, op: Operand, offset: ir.Value) -> ir.Value:
    return k.b.gep(op.ptr, [offset], inbounds=True, source_etype=memory_type(op.dtype))


@contextmanager
def element_nest(k: Kernel, shape: tuple[Dim, ...], operands: list[Operand], **options
                 ) -> Iterator[tuple[list[ir.Value], Index]]:
    """`loop_nest` yielding each operand's element pointer instead of its offset."""
    with loop_nest(k, shape, operands, **options) as (offsets, index):
        yield [element(k, op, offset) for op, offset in zip(operands, offsets)], index


# -- reductions along rows -----------------------------------------------------------------------

Combine = Callable[[Scalar, ir.Value, ir.Value], ir.Value]


@dataclass(frozen=True)
class Lanes:
    """An accumulator that `reduce_rows` reduces in lanes: where every lane starts (the reduction's
    identity) and the combining step `acc ⊕ x`, on scalars and on vectors of them."""

    start: ir.Constant
    combine: Combine


def reduces_rows(k: Kernel, accumulator: Layout) -> bool:
    """Whether accumulating into this layout (stride 0 along the reduced dims) reduces rows: the
    last dim, of more than one element (a row of one is the same in any order)."""
    return k.rows_in_lanes and accumulator.rank > 0 and accumulator.strides[-1] == 0 and \
        accumulator.shape[-1] != 1


Visit = Callable[[list[ir.Value], Index], None]


def reduce_rows(k: Kernel, shape: tuple[Dim, ...], operands: list[Operand],
                lanes: list[Lanes | None], visit: Visit, *, starts: list[ir.Value] | None = None,
                shared: bool = False, keep_dims: bool = False, in_order: bool = False) -> None:
    """The loop nest of a reduction along rows (the last dim, never merged with others):
    `visit(pointers, index)` emits the body for one element, given each operand's element
    pointer, where the accumulators that have `lanes` point at their lane of the row instead. A
    row's lanes start at the identity, the body combines each element into its lane, and after
    the row the lanes are combined as a tree and the result into the accumulator (the order in
    this module's doc).

    The row's whole chunks of LANES elements are each one loop over the lanes, which LLVM
    vectorises (no lane depends on another) into straight vector code; the elements after them
    are one more loop over the lanes, masked on AVX-512 (the body is emitted for both), unless
    the body also accumulates `in_order` (argmax: LLVM would warn that it cannot vectorise it as
    asked). The outer dims are merged unless `keep_dims`; `starts` and `shared` are
    `loop_nest`'s."""
    b = k.b
    outer_shape = shape[:-1]
    outer = [replace(op, layout=Layout(outer_shape, op.layout.strides[:-1], op.layout.offset))
             for op in operands]
    if not keep_dims:
        outer_shape, layouts = collapse(outer_shape, [op.layout for op in outer])
        outer = [replace(op, layout=layout) for op, layout in zip(outer, layouts)]
    size = k.dim(shape[-1])
    slots = {i: lane_slots(k, op) for i, (op, lane) in enumerate(zip(operands, lanes))
             if lane is not None}
    with loop_nest(k, outer_shape, outer, inner_loops=True, starts=starts, shared=shared) as \
            (row_starts, index):
        def chunk(first: ir.Value, count: ir.Value, masked: bool) -> None:
            """Elements first ... first + count - 1 of the row, each into its lane."""
            with for_range(b, count, "lane", masked=masked) as lane:
                position = add(b, first, lane)
                visit([b.gep(slots[i], [ir.Constant(I64, 0), lane], inbounds=True)
                       if i in slots else
                       element(k, op, add_scaled(k, start, position, op.layout.strides[-1]))
                       for i, (op, start) in enumerate(zip(operands, row_starts))],
                      Index(index.loops + (position,), index.sizes + (size,)))

        for i, slot in slots.items():
            b.store(ir.Constant(slot.allocated_type, [lanes[i].start] * LANES), slot)
        lane_count = ir.Constant(I64, LANES)
        whole = b.udiv(size, lane_count)
        with for_range(b, whole, "chunk", as_written=True) as c:
            chunk(b.mul(c, lane_count, flags=("nuw", "nsw")), lane_count, masked=False)
        rest_start = b.mul(whole, lane_count, flags=("nuw", "nsw"))
        chunk(rest_start, b.sub(size, rest_start), masked=k.masked_tails and not in_order)
        for i, slot in slots.items():
            op, combine = operands[i], lanes[i].combine
            vector = ir.VectorType(llvm_type(op.dtype), LANES)
            row = combine_lanes(k.s, b.load(slot, typ=vector, align=LANE_ALIGN), combine)
            accumulator = element(k, op, row_starts[i])
            k.s.store(combine(k.s, k.s.load(accumulator, op.dtype, op.name), row), accumulator,
                      op.dtype)


def lane_slots(k: Kernel, accumulator: Operand) -> ir.AllocaInstr:
    """The lanes of an accumulator's row, on the stack, aligned for the vector loads of them."""
    slots = k.setup.alloca(ir.ArrayType(llvm_type(accumulator.dtype), LANES),
                           name=f"{accumulator.name}.lanes")
    slots.align = LANE_ALIGN
    return slots


def combine_lanes(s: Scalar, lanes: ir.Value, combine: Combine) -> ir.Value:
    """Lane i with lane i + n/2 for the n lanes, then with i + n/4, ... down to lane 0."""
    b = s.b
    width = lanes.type.count
    while width > 2:
        width //= 2
        halves = [b.shuffle_vector(lanes, ir.Constant(lanes.type, ir.Undefined),
                                   ir.Constant(ir.VectorType(I32, width),
                                               list(range(start, start + width))))
                  for start in (0, width)]
        lanes = combine(s, *halves)
    return combine(s, *(b.extract_element(lanes, ir.Constant(I32, lane)) for lane in (0, 1)))


# -- templates -----------------------------------------------------------------------------------

Body = Callable[[Scalar, list[ir.Value], Index], list[ir.Value]]


def elementwise_loops(outs: list[Operand], ins: list[Operand], keep_dims: bool
                      ) -> tuple[tuple[Dim, ...], list[Operand]]:
    """The shape an elementwise template loops over, and its operands (outs, then ins) laid
    out for it: dims merged by `collapse` unless `keep_dims`."""
    operands = outs + ins
    shape = outs[0].layout.shape
    if keep_dims:
        return shape, operands
    shape, layouts = collapse(shape, [op.layout for op in operands])
    return shape, [Operand(op.ptr, op.dtype, layout, op.name)
                   for op, layout in zip(operands, layouts)]


def elementwise(k: Kernel, outs: list[Operand], ins: list[Operand], body: Body, *,
                accumulate: ir.Value | None = None, keep_dims: bool = False,
                shared: bool = False) -> None:
    """`outs[...] = body(ins[...])` over the shape of `outs` (inputs already broadcast to it).

    With `accumulate` (the identity the accumulator was `fill`ed with in this kernel), a
    reduction: one output, the accumulator (its layout has stride 0 along the reduced dims), one
    input, and the
    combining step for a body: `body(s, [acc, x], index)` is `[acc ⊕ x]`, for scalars and for
    vectors of them, whatever the index. Rows are reduced in lanes (`reduce_rows`), other dims in
    memory order. `keep_dims` keeps one loop per dim, for bodies that use the loop indices;
    otherwise the loops are collapsed. `shared`: divided among the kernel's threads (each
    element is written once, so the parts are independent)."""
    rows = accumulate is not None and reduces_rows(k, outs[0].layout)
    shape, operands = (outs[0].layout.shape, outs + ins) if rows else \
        elementwise_loops(outs, ins, keep_dims)
    read = operands if accumulate is not None else operands[len(outs):]

    def visit(pointers: list[ir.Value], index: Index) -> None:
        values = [k.s.load(ptr, op.dtype, op.name)
                  for ptr, op in zip(pointers[len(operands) - len(read):], read)]
        results = body(k.s, values, index)
        for result, ptr, op in zip(results, pointers, operands):
            k.s.store(result, ptr, op.dtype)

    if rows:
        lanes = Lanes(accumulate, lambda s, acc, x: body(s, [acc, x], None)[0])
        reduce_rows(k, shape, operands, [lanes, None], visit, shared=shared)
        return
    # accumulating along the innermost loop (stride 0 there) is a reduction loop
    reduction = accumulate is not None and bool(shape) and any(
        op.layout.strides[-1] == 0 for op in operands[:len(outs)])
    with element_nest(k, shape, operands, shared=shared, reduction=reduction) as \
            (pointers, index):
        visit(pointers, index)


def fill(k: Kernel, out: Operand, value: ir.Value, *, shared: bool = False) -> None:
    """`out[...] = value` (a constant, or a value computed in the setup block): where an
    accumulation into `out` starts (`elementwise` with `accumulate=value`)."""
    elementwise(k, [out], [], lambda s, values, index: [value], shared=shared)


Better = Callable[[Scalar, ir.Value, ir.Value, str], ir.Value]


def argreduce(k: Kernel, out: Operand, x: Operand, axis_size: Dim, axis_stride: Dim,
              better: Better) -> None:
    """`out[...] = index of the first best x[..., j]` along one axis (`x`'s layout without it).
    Element j is taken when j == 0 or `better(value, best)`; an empty axis gives 0."""
    b = k.b
    best = k.setup.alloca(llvm_type(x.dtype), name="best")
    best_index = k.setup.alloca(I64, name="best_index")
    with loop_nest(k, out.layout.shape, [out, x], inner_loops=True) as ((out_offset, x_offset),
                                                                        _):
        b.store(ir.Constant(I64, 0), best_index)
        with for_range(b, k.dim(axis_size), "j") as j:
            value = k.s.load(element(k, x, add_scaled(k, x_offset, j, axis_stride)), x.dtype,
                             x.name)
            current = b.load(best, typ=llvm_type(x.dtype))
            take = b.or_(b.icmp_signed("==", j, ir.Constant(I64, 0)),
                         better(k.s, value, current, x.dtype))
            b.store(b.select(take, value, current), best)
            b.store(b.select(take, j, b.load(best_index, typ=I64)), best_index)
        k.s.store(b.load(best_index, typ=I64, name=out.name), element(k, out, out_offset), "i64")


def first_extreme(compare: str) -> Better:
    """argmax (`>`) / argmin (`<`) as NumPy: the first NaN wins, then the first extreme."""
    def better(s: Scalar, value: ir.Value, best: ir.Value, dtype: str) -> ir.Value:
        if dtype == "bool":
            return s.b.icmp_unsigned(compare, value, best)
        if not is_float(dtype):
            return s.b.icmp_signed(compare, value, best)
        strictly = s.b.fcmp_ordered(compare, value, best)
        first_nan = s.b.and_(s.b.fcmp_unordered("uno", value, value),
                             s.b.fcmp_ordered("ord", best, best))
        return s.b.or_(strictly, first_nan)
    return better
