"""The matmul kernel: C = A @ B over broadcast batch dims, register-tiled for the host's vectors.

Every element of C is summed in k order from -0.0, one fused multiply-add per step where the
CPU has FMA, as BLAS does; both paths below compute exactly that, so the result of an element
does not depend on which path computed it, nor on the batch size.

- The tiled path (floats): C is cut into tiles of `rows` x `vectors * width` elements kept in
  vector registers while k runs over a block of `depth` steps: each step broadcasts one element
  of A per row and loads `vectors` vectors of B's row. Blocks of k are the outermost loop, then
  the column panels of B, then the row tiles, so the panel's slice of the block (about half of
  L1) stays in cache while every row tile uses it; each tile's partial sums go back to C between
  blocks. The columns past the last full panel take one tile under lane masks (masked loads and
  stores: never touching memory past C's or B's rows); the rows past the last full tile take
  tiles of four accumulators (2 or 4 rows), then single rows. A C at most one vector wide (a
  10-class output) gets tiles of 12 rows by one masked vector. A B whose rows are not
  contiguous is copied dense first (`packed_type`). The tiles are a routine of the module,
  one per tiling and dtype, that every matmul kernel calls (`tiled_routine`).
- The simple path (integers, a 1-D B): i-k-j loops, the innermost along rows of B and C, which
  LLVM vectorises where they are contiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from llvmlite import ir

from ...ir.types import Dim, TensorType, dim_product
from .kernels import (PTR, Buffer, Kernel, Operand, add_scaled, element, elementwise, for_range,
                      loop_nest, smaller)
from .layout import Layout, collapse
from .scalar import BYTES, I32, I64, Scalar, is_float, llvm_type, memory_type


@dataclass(frozen=True)
class Tiling:
    width: int  # elements in one vector register
    rows: int = 6  # rows of a tile: rows * vectors accumulators + vectors + 1 registers
    vectors: int = 2  # vectors across a tile's columns
    depth_bytes: int = 16384  # a tile's slice of B, depth x columns, about half of L1
    block_bytes: int = 524288  # a block of rows of A and C, kept in L2 (half of it) meanwhile

    @property
    def columns(self) -> int:
        return self.vectors * self.width

    def depth(self, dtype: str) -> int:
        return max(self.depth_bytes // (self.columns * BYTES[dtype]), 1)



def work(out: TensorType, a: TensorType) -> Dim:
    """Multiply-adds: the result's elements times the inner dim."""
    return dim_product((*out.shape, a.shape[-1]))


def packed_type(b: Buffer) -> TensorType | None:
    """The type of the dense copy of B that the tiled path needs when B's rows are not
    contiguous (a transposed weight: dx = g @ W^T), or None. The caller provides the buffer."""
    if is_float(b.dtype) and b.layout.rank >= 2 and b.layout.strides[-1] != 1:
        return TensorType(b.dtype, b.layout.shape)
    return None


def emit(k: Kernel, out: Buffer, a: Buffer, b: Buffer, vector_bytes: int,
         packed: Buffer | None = None) -> None:
    """out = a @ b in kernel k, for buffers of the op's operand and result types (and B's dense
    copy, see `packed_type`), laid out by `matmul_layouts`. Copying B costs K x N moves; the
    tiled path it allows is many times faster than the strided one for every row of A."""
    if packed is not None:
        elementwise(k, [k.operand(packed)], [k.operand(b)], lambda s, values, index: values,
                    shared=True)
        k.barrier()  # every thread reads all of the copy
        b = packed
    out_layout, a_layout, b_layout = matmul_layouts(out, a, b)
    matmul(k, k.operand(out, out_layout), k.operand(a, a_layout), k.operand(b, b_layout),
           vector_bytes)


def matmul_layouts(out: Buffer, a: Buffer, b: Buffer) -> tuple[Layout, Layout, Layout]:
    """The layouts of out, a and b for a matmul kernel: 1-D operands become a row ([1, K], left)
    or a column ([K, 1], right) with stride 0 along the added dim, the result gets the same dim
    back, and a's and b's batch dims are broadcast to the result's."""
    a_layout, b_layout = a.layout, b.layout
    out_layout = out.layout
    if a_layout.rank == 1:
        a_layout = Layout((1,) + a_layout.shape, (0,) + a_layout.strides, a_layout.offset)
        out_layout = insert_unit_dim(out_layout, out_layout.rank - (b_layout.rank > 1))
    if b_layout.rank == 1:
        b_layout = Layout(b_layout.shape + (1,), b_layout.strides + (0,), b_layout.offset)
        out_layout = insert_unit_dim(out_layout, out_layout.rank)
    batch = out_layout.shape[:-2]
    return (out_layout, a_layout.broadcast_to(batch + a_layout.shape[-2:]),
            b_layout.broadcast_to(batch + b_layout.shape[-2:]))


def insert_unit_dim(layout: Layout, position: int) -> Layout:
    return Layout(layout.shape[:position] + (1,) + layout.shape[position:],
                  layout.strides[:position] + (0,) + layout.strides[position:], layout.offset)


def choose_tiling(width: int, columns: Dim) -> Tiling:
    """Two vectors across and six rows; where C is known to be at most one vector wide (a
    10-class output), one masked vector across and twelve rows, each step's vector of B
    serving twice as many rows."""
    if isinstance(columns, int) and columns <= width:
        return Tiling(width=width, rows=12, vectors=1)
    return Tiling(width=width)


def matmul(k: Kernel, out: Operand, a: Operand, b: Operand, vector_bytes: int) -> None:
    """out[..., i, j] = sum_k a[..., i, k] * b[..., k, j], batch dims already broadcast. The rows
    of each product are divided among the kernel's threads (whole tiles each)."""
    *batch, m, n = out.layout.shape
    depth = a.layout.shape[-1]
    width = vector_bytes // BYTES[out.dtype]
    if transposes(out, a, b, width):
        out, a, b = transposed(out), transposed(b), transposed(a)
        m, n = n, m
    batch_layouts = [Layout(tuple(batch), op.layout.strides[:-2], op.layout.offset)
                     for op in (out, a, b)]
    batch_shape, batch_layouts = collapse(tuple(batch), batch_layouts)
    batch_ops = [Operand(op.ptr, op.dtype, layout, op.name)
                 for op, layout in zip((out, a, b), batch_layouts)]
    tiled = is_float(out.dtype) and b.layout.strides[-1] == 1
    main = choose_tiling(width, n)
    with loop_nest(k, batch_shape, batch_ops, prefix="batch", inner_loops=True) as \
            (starts, _):
        gemm = Gemm(k, out, a, b, starts, k.dim(m), k.dim(n), k.dim(depth))
        first, last = k.chunk(gemm.m, main.rows)  # this thread's rows
        if not tiled:
            gemm.simple(first, last, ir.Constant(I64, 0), gemm.n)
            return
        gemm.call_tiled(main, first, last)


def transposes(out: Operand, a: Operand, b: Operand, width: int) -> bool:
    """Whether to compute C^T = B^T A^T instead: where C is narrower than a vector, so its
    tiles would leave lanes idle, and A is read down its columns (a transposed activation, as
    in the last layer's weight gradient h^T @ dz), so that A^T's rows make the vectors, as wide
    as C is tall. C's tiles are then written down its columns (scatters), once per k block."""
    m, n = out.layout.shape[-2:]
    return (is_float(out.dtype) and isinstance(n, int) and n < width
            and not (isinstance(m, int) and m <= n)
            and a.layout.strides[-2] == 1 and a.layout.strides[-1] != 1)


def transposed(op: Operand) -> Operand:
    """The operand with its last two dims swapped (a view: strides only)."""
    shape, strides = op.layout.shape, op.layout.strides
    layout = Layout(shape[:-2] + shape[:-3:-1], strides[:-2] + strides[:-3:-1], op.layout.offset)
    return Operand(op.ptr, op.dtype, layout, op.name)


def tiled_routine(module: ir.Module, tiling: Tiling, dtype: str, scattered: bool,
                  fma: bool) -> ir.Function:
    """`void NAME(ptr c, ptr a, ptr b, i64 n, i64 depth, i64 c_si[, i64 c_sj], i64 a_si,
    i64 a_sk, i64 b_sk, i64 first, i64 last)`: rows first ... last - 1 of C = A @ B (rows of B
    and, unless `scattered`, of C contiguous) by the tiled path, made once per module for each
    tiling and dtype and called by every matmul that uses them. Each of its copies would be a
    tenth of a model's code or more, which LLVM takes seconds to optimise; with every size
    and stride a run-time value, the code runs as fast (the loops are the same)."""
    name = (f"tflc.matmul.{dtype}.{tiling.rows}x{tiling.vectors}x{tiling.width}"
            + (".scattered" if scattered else ""))
    if name in module.globals:
        return module.globals[name]
    strides = ["c_si", *(["c_sj"] if scattered else []), "a_si", "a_sk", "b_sk"]
    params = ["c", "a", "b", "n", "depth", *strides, "first", "last"]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), [PTR] * 3 + [I64] * (
        len(params) - 3)), name)
    function.linkage = "internal"
    function.attributes.add("noinline")
    values = dict(zip(params, function.args))
    for param_name, param in values.items():
        param.name = param_name
    for pointer in function.args[:3]:
        pointer.add_attribute("noalias")
    routine = Routine(function, fma)
    stride = {name: values[name] for name in strides} | ({} if scattered else {"c_sj": 1})
    zero = ir.Constant(I64, 0)
    operands = [Operand(values[op], dtype, Layout((None, None), strides_of), op)
                for op, strides_of in (("c", (stride["c_si"], stride["c_sj"])),
                                       ("a", (stride["a_si"], stride["a_sk"])),
                                       ("b", (stride["b_sk"], 1)))]
    gemm = Gemm(routine, *operands, (zero, zero, zero), None, values["n"], values["depth"])
    first, last = values["first"], values["last"]
    # the rows left below the full tiles: tiles of four accumulators (a one-row tile would
    # wait on its accumulators' FMA latency every step), then single rows
    for rows in (tiling.rows, max(4 // tiling.vectors, 1), 1):
        end = routine.b.add(first, gemm.round_down(routine.b.sub(last, first), rows))
        gemm.tiled((first, end), replace(tiling, rows=rows))
        first = end
    routine.finish()
    return function


class Routine:
    """What Gemm emits into when its code is a function of its own (`tiled_routine`): the
    builders of a Kernel, whose dims are run-time values already."""

    def __init__(self, function: ir.Function, fma: bool):
        self.function = function
        self.setup = ir.IRBuilder(function.append_basic_block("setup"))
        self.b = ir.IRBuilder(function.append_basic_block("body"))
        self.s = Scalar(self.b, fma)

    def dim(self, d: Dim | ir.Value) -> ir.Value:
        return d if isinstance(d, ir.Value) else ir.Constant(I64, d)

    def finish(self) -> None:
        self.setup.branch(self.function.basic_blocks[1])
        self.b.ret_void()


class Gemm:
    """One matrix product of the batch: its operands' starts and strides as run-time values."""

    def __init__(self, k: Kernel, c: Operand, a: Operand, b: Operand, starts, m, n, depth):
        self.k, self.b, self.s = k, k.b, k.s
        self.c, self.a, self.b_ = c, a, b
        self.dtype = c.dtype
        self.c0, self.a0, self.b0 = starts
        self.m, self.n, self.depth = m, n, depth
        (self.c_si, self.c_sj), (self.a_si, self.a_sk), (self.b_sk, self.b_sj) = \
            (op.layout.strides[-2:] for op in (c, a, b))

    def call_tiled(self, tiling: Tiling, first: ir.Value, last: ir.Value) -> None:
        """C's rows first ... last - 1 by the tiled path: a call of the module's routine for
        this tiling (`tiled_routine`), with this product's pointers, sizes and strides."""
        k, b = self.k, self.b
        scattered = self.c_sj != 1
        routine = tiled_routine(b.function.module, tiling, self.dtype, scattered, k.s.fma)
        pointers = [element(k, op, start) for op, start in
                    ((self.c, self.c0), (self.a, self.a0), (self.b_, self.b0))]
        strides = [self.c_si, *([self.c_sj] if scattered else []), self.a_si, self.a_sk,
                   self.b_sk]
        b.call(routine, [*pointers, self.n, self.depth, *[k.dim(d) for d in strides],
                         first, last])

    def round_down(self, size: ir.Value, multiple: int) -> ir.Value:
        return self.b.sub(size, self.b.urem(size, ir.Constant(I64, multiple)))

    def offset(self, start, i, i_stride, j, j_stride) -> ir.Value:
        return add_scaled(self.k, add_scaled(self.k, start, i, i_stride), j, j_stride)

    def simple(self, row_start, row_end, col_start, col_end) -> None:
        """C[rows, cols] with i-k-j loops; the j loops vectorise where B and C rows are dense."""
        b, s, dtype = self.b, self.s, self.dtype
        rows, cols = b.sub(row_end, row_start), b.sub(col_end, col_start)
        with for_range(b, rows, "i", as_written=True) as i_local:
            i = b.add(i_local, row_start)
            with for_range(b, cols, "j") as j_local:
                j = b.add(j_local, col_start)
                c_ptr = element(self.k, self.c, self.offset(self.c0, i, self.c_si, j, self.c_sj))
                s.store(ir.Constant(llvm_type(dtype), -0.0 if is_float(dtype) else 0), c_ptr,
                        dtype)
            with for_range(b, self.depth, "k", as_written=True) as kk:
                a_ik = s.load(element(self.k, self.a, self.offset(self.a0, i, self.a_si, kk,
                                                                  self.a_sk)), dtype, self.a.name)
                with for_range(b, cols, "j") as j_local:
                    j = b.add(j_local, col_start)
                    c_ptr = element(self.k, self.c,
                                    self.offset(self.c0, i, self.c_si, j, self.c_sj))
                    b_kj = s.load(element(self.k, self.b_, self.offset(self.b0, kk, self.b_sk, j,
                                                                       self.b_sj)),
                                  dtype, self.b_.name)
                    step = multiply_add(s, a_ik, b_kj, s.load(c_ptr, dtype), dtype, self.c.name)
                    s.store(step, c_ptr, dtype)

    def tiled(self, rows: tuple, tiling: Tiling) -> None:
        """C[rows, :] (a range whose size is a multiple of the tile's rows) by tiles: blocks of
        rows (outermost: their rows of C, and of A for a block of k, stay in L2 while k runs),
        then k in blocks of `depth`, then the columns of B a tile covers (their slice of the k
        block stays in L1 while every row tile of the block uses it), then the row tiles. The
        tiles of the last columns, when C's width is not a whole number of tiles, load and
        store under lane masks."""
        b, k, dtype = self.b, self.k, self.dtype
        vector = ir.VectorType(llvm_type(dtype), tiling.width)
        accumulators = [[k.setup.alloca(vector, name=f"acc{r}.{v}")
                         for v in range(tiling.vectors)] for r in range(tiling.rows)]
        block = ir.Constant(I64, tiling.depth(dtype))
        blocks = b.udiv(b.add(self.depth, ir.Constant(I64, tiling.depth(dtype) - 1)), block)
        # at least one block, which starts the tiles at -0.0: with no k at all, C is zeros
        blocks = b.select(b.icmp_unsigned("==", blocks, ir.Constant(I64, 0)),
                          ir.Constant(I64, 1), blocks)
        row_tiles = b.udiv(b.sub(rows[1], rows[0]), ir.Constant(I64, tiling.rows))
        columns = ir.Constant(I64, tiling.columns)
        full_tiles = b.udiv(self.n, columns)
        edge_start = b.mul(full_tiles, columns)
        edge = b.sub(self.n, edge_start)  # columns left after the full tiles

        # row tiles per block: rows * (depth + n) elements of A and C in `block_bytes`
        row_bytes = b.mul(b.add(self.n, block), ir.Constant(I64, tiling.rows * BYTES[dtype]))
        block_tiles = b.udiv(ir.Constant(I64, tiling.block_bytes), row_bytes)
        block_tiles = b.select(b.icmp_unsigned("==", block_tiles, ir.Constant(I64, 0)),
                               ir.Constant(I64, 1), block_tiles)
        row_blocks = b.udiv(b.add(row_tiles, b.sub(block_tiles, ir.Constant(I64, 1))),
                            block_tiles)

        def tile_rows(j, masks):
            with for_range(b, tiles_here, "ib", as_written=True) as ib:
                i = b.add(rows[0], b.mul(b.add(first_tile, ib), ir.Constant(I64, tiling.rows)))
                self.tile(i, j, kb, k_start, k_count, accumulators, tiling, masks)

        with for_range(b, row_blocks, "rb", as_written=True) as rb:
            first_tile = b.mul(rb, block_tiles)
            tiles_here = smaller(b, b.sub(row_tiles, first_tile), block_tiles)
            with for_range(b, blocks, "kb", as_written=True) as kb:
                k_start = b.mul(kb, block)
                k_count = smaller(b, b.sub(self.depth, k_start), block)
                # (a C of known width gets only the tiles it needs: each is much code to compile)
                width = self.n.constant if isinstance(self.n, ir.Constant) else None
                if width is None or width >= tiling.columns:
                    with for_range(b, full_tiles, "jb", as_written=True) as jb:
                        tile_rows(b.mul(jb, columns), None)
                if width is None or width % tiling.columns:
                    with b.if_then(b.icmp_unsigned("!=", edge, ir.Constant(I64, 0))):
                        tile_rows(edge_start, lane_masks(b, edge, tiling))

    def tile(self, i, j, kb, k_start, k_count, accumulators, tiling, masks) -> None:
        """One tile: start from C (or -0.0 in the first block), k_count FMA steps, store. With
        `masks` (one per vector), only the lanes they set are read or written."""
        b, k, s = self.b, self.k, self.s
        width = tiling.width
        vector = ir.VectorType(llvm_type(self.dtype), width)
        masks = masks or [None] * tiling.vectors

        # where each vector of the tile is in C: a pointer, or a vector of them (strided rows)
        steps = None if self.c_sj == 1 else self.lane_steps(width)
        places = [[self.place(element(k, self.c, self.offset(
                       self.c0, b.add(i, ir.Constant(I64, r)), self.c_si,
                       b.add(j, ir.Constant(I64, v * width)), self.c_sj)), steps)
                   for v in range(tiling.vectors)] for r in range(tiling.rows)]
        with b.if_else(b.icmp_unsigned("==", kb, ir.Constant(I64, 0))) as (first, later):
            with first:
                for row in accumulators:
                    for acc in row:
                        b.store(ir.Constant(vector, [-0.0] * width), acc)
            with later:
                for r, row in enumerate(accumulators):
                    for v, acc in enumerate(row):
                        b.store(self.load_c(places[r][v], width, masks[v]), acc)
        # where the block starts in B's rows and in each row of A: the k loop only adds k
        # times a stride (less for LLVM to simplify: a tile is most of a model's code)
        b_start = element(k, self.b_, self.offset(self.b0, k_start, self.b_sk, j, self.b_sj))
        a_starts = [element(k, self.a, self.offset(self.a0, b.add(i, ir.Constant(I64, r)),
                                                   self.a_si, k_start, self.a_sk))
                    for r in range(tiling.rows)]
        etype = memory_type(self.dtype)
        with for_range(b, k_count, "k", as_written=True) as k_local:
            b_row = add_scaled(k, ir.Constant(I64, 0), k_local, self.b_sk)
            b_vectors = [load_vector(s, b.gep(b_start, [b.add(b_row, ir.Constant(I64, v * width))],
                                              inbounds=True, source_etype=etype),
                                     self.dtype, width, mask, self.b_.name)
                         for v, mask in enumerate(masks)]
            a_step = add_scaled(k, ir.Constant(I64, 0), k_local, self.a_sk)
            for r, row in enumerate(accumulators):
                a_ptr = b.gep(a_starts[r], [a_step], inbounds=True, source_etype=etype)
                a_value = splat(b, s.load(a_ptr, self.dtype, self.a.name), vector)
                for acc, b_vector in zip(row, b_vectors):
                    step = vector_fma(s, a_value, b_vector, b.load(acc, typ=vector), self.dtype,
                                      width)
                    b.store(step, acc)
        for r, row in enumerate(accumulators):
            for v, acc in enumerate(row):
                self.store_c(b.load(acc, typ=vector, name=self.c.name), places[r][v],
                             masks[v])

    def lane_steps(self, width: int) -> ir.Value:
        """The byte offsets of `width` elements along a row of C whose elements are strided."""
        b, lanes = self.b, ir.VectorType(I64, width)
        stride = b.mul(self.k.dim(self.c_sj), ir.Constant(I64, BYTES[self.dtype]))
        return b.mul(splat(b, stride, lanes), ir.Constant(lanes, list(range(width))))

    def place(self, first: ir.Value, steps: ir.Value | None) -> ir.Value:
        """Where a vector of C from `first` on is: `first`, or with `steps` (a transposed
        product's C, read down its columns) each lane's address."""
        if steps is None:
            return first
        b, lanes = self.b, steps.type
        addresses = b.add(splat(b, b.ptrtoint(first, I64), lanes), steps)
        return b.inttoptr(addresses, ir.VectorType(PTR, lanes.count))

    def load_c(self, place: ir.Value, width: int, mask: ir.Value | None) -> ir.Value:
        """A vector of C from its `place` (gathered where that is a vector of addresses)."""
        if self.c_sj == 1:
            return load_vector(self.s, place, self.dtype, width, mask)
        vector = ir.VectorType(llvm_type(self.dtype), width)
        gather = self.s.function(f"llvm.masked.gather.v{width}{self.dtype}.v{width}p0", vector,
                                 [place.type, mask_type(width), vector])
        call = self.b.call(gather, [place, all_lanes(mask, width), ir.Constant(vector, None)],
                           arg_attrs={0: ()})
        call.arg_attributes[0].align = BYTES[self.dtype]
        return call

    def store_c(self, value: ir.Value, place: ir.Value, mask: ir.Value | None) -> None:
        """The inverse of `load_c` (scattered where `place` is a vector of addresses)."""
        if self.c_sj == 1:
            store_vector(self.s, value, place, self.dtype, mask)
            return
        width = value.type.count
        scatter = self.s.function(f"llvm.masked.scatter.v{width}{self.dtype}.v{width}p0",
                                  ir.VoidType(), [value.type, place.type, mask_type(width)])
        call = self.b.call(scatter, [value, place, all_lanes(mask, width)], arg_attrs={1: ()})
        call.arg_attributes[1].align = BYTES[self.dtype]



def mask_type(width: int) -> ir.VectorType:
    return ir.VectorType(ir.IntType(1), width)


def all_lanes(mask: ir.Value | None, width: int) -> ir.Value:
    """The mask, or one setting every lane."""
    return mask if mask is not None else ir.Constant(mask_type(width), [1] * width)


def lane_masks(b: ir.IRBuilder, count: ir.Value, tiling: Tiling) -> list[ir.Value]:
    """For each vector of a tile, which of its lanes are among the first `count` columns."""
    lanes = ir.VectorType(I32, tiling.width)
    limit = splat(b, b.trunc(count, I32), lanes)
    return [b.icmp_unsigned("<", ir.Constant(lanes, [v * tiling.width + lane
                                                    for lane in range(tiling.width)]), limit)
            for v in range(tiling.vectors)]


def load_vector(s: Scalar, ptr: ir.Value, dtype: str, width: int, mask: ir.Value | None,
                name: str = "") -> ir.Value:
    """`width` elements from memory; under a mask, zeros in the lanes it leaves out, which are
    not read (the masked intrinsics take the alignment as the pointer's attribute)."""
    vector = ir.VectorType(llvm_type(dtype), width)
    if mask is None:
        return s.b.load(ptr, typ=vector, align=BYTES[dtype], name=name)
    load = s.function(f"llvm.masked.load.v{width}{dtype}.p0", vector,
                      [ptr.type, mask.type, vector])
    call = s.b.call(load, [ptr, mask, ir.Constant(vector, None)], name=name, arg_attrs={0: ()})
    call.arg_attributes[0].align = BYTES[dtype]
    return call


def store_vector(s: Scalar, value: ir.Value, ptr: ir.Value, dtype: str,
                 mask: ir.Value | None) -> None:
    """A vector to memory; under a mask, only the lanes it sets."""
    if mask is None:
        s.b.store(value, ptr, align=BYTES[dtype])
        return
    store = s.function(f"llvm.masked.store.v{value.type.count}{dtype}.p0", ir.VoidType(),
                       [value.type, ptr.type, mask.type])
    call = s.b.call(store, [value, ptr, mask], arg_attrs={1: ()})
    call.arg_attributes[1].align = BYTES[dtype]


def splat(b: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    single = b.insert_element(ir.Constant(vector, ir.Undefined), value, ir.Constant(I32, 0))
    mask = ir.Constant(ir.VectorType(I32, vector.count), [0] * vector.count)
    return b.shuffle_vector(single, ir.Constant(vector, ir.Undefined), mask)


def vector_fma(s: Scalar, a, b, c, dtype: str, width: int) -> ir.Value:
    if not s.fma:
        return s.b.fadd(c, s.b.fmul(a, b))
    vector = a.type
    return s.b.call(s.function(f"llvm.fma.v{width}{dtype}", vector, [vector] * 3), [a, b, c])


def multiply_add(s: Scalar, a, b, c, dtype: str, name: str) -> ir.Value:
    """c + a * b, fused where the CPU has FMA (as the tiled path's vector steps)."""
    if not is_float(dtype):
        return s.b.add(c, s.b.mul(a, b), name=name)
    if s.fma:
        return s.intrinsic("fma", dtype, [a, b, c], name)
    return s.b.fadd(c, s.b.fmul(a, b), name=name)
