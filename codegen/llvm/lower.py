"""A `Function` becomes one LLVM module with one native entry function.

    define void @model(ptr noalias %x, ptr noalias %W1, ..., ptr noalias %"hidden_out.out",
                       ptr noalias %scratch, i64 %N)

The entry takes a pointer to every argument, every output buffer (allocated by the caller), a
scratch buffer for intermediates, then the run-time size of every symbolic dim. Its body is one
call per kernel (kernels.py), each named after the value it computes (`@"model.hidden_out"`).

Intermediates live in the scratch buffer, which the caller allocates once and reuses across runs:
their sizes depend on the symbolic dims, so the caller asks `Signature.scratch_bytes(sizes)`, and
reusing memory avoids the page faults of fresh allocations, which cost more than the arithmetic
of an elementwise kernel (LLVM-NOTES). Each intermediate has its own slot for now; sharing slots
between values that are not live together is the memory planner's job.

View ops (reshape of a dense buffer, transpose, broadcast_to, slice) emit no code: their result
is the operand's buffer with another `Layout`, and the kernels reading it index accordingly.
A value computed by a kernel is written straight into its output buffer when it is an output;
outputs that are views, arguments, constants or repeats are copied there at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from ...ir.core import Function, Op, Value
from ...ir.errors import Error
from ...ir.ops.reduce import reduced_axes
from ...ir.ops.shape import permutation, slice_bounds
from ...ir.printer import Namer
from ...ir.registry import REGISTRY, normalize_axis
from ...ir.types import Dim, TensorType, dim_product
from ...passes.plan_memory import memory_plan
from . import kernels, matmul, reductions
from .abi import PYTHON_API, SCRATCH_ALIGN, Options, Signature, threads_global
from .debug import DebugInfo
from .elementwise import SCALAR
from .fused import lower_fused
from .kernels import PTR, Buffer, Kernel, Threads, add, evaluate_dim
from .layout import Layout, contiguous
from .scalar import BYTES, I8, I32, I64, const, llvm_type
from .target import Target


@dataclass(frozen=True)
class Lowered:
    module: ir.Module
    signature: Signature


def lower(func: Function, target: Target, options: Options = Options()) -> Lowered:
    return Lowerer(func, target, options).run()


class Lowerer:
    """What the lowerings use: `buffer`, `storage`, `name`, `kernel`, `launch`, the kernel
    `templates` (codegen/ptx's lowerer offers the same, so the lowerings that only differ by
    those are shared)."""

    templates = kernels

    def __init__(self, func: Function, target: Target, options: Options):
        self.func = func
        self.options = options
        self.module = ir.Module(name=func.name)
        self.module.triple = target.triple
        self.module.data_layout = target.data_layout

        self.names = Namer()
        for value in func.args:
            self.names.define(value)
        for op in func.ops:
            self.define_names(op)

        params = [self.names[v] for v in func.args]
        params += [f"{out.step}.{out.label}" if out.step else f"{out.label}.out"
                   for out in func.outputs]
        params += ["scratch"]
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(params) + [I64] * len(func.dims))
        self.entry = ir.Function(self.module, fnty, func.name)
        for param, name in zip(self.entry.args, params + list(func.dims)):
            param.name = name
        for param in self.entry.args[:len(params)]:
            param.add_attribute("noalias")
        self.b = ir.IRBuilder(self.entry.append_basic_block("entry"))
        first = next((op.loc for op in func.ops if op.loc is not None), None)
        self.debug = DebugInfo(self.module, first)
        self.debug.place([self.b], self.entry, first)
        self.loc = first  # of the op being lowered
        nargs, nouts = len(func.args), len(func.outputs)
        self.output_params = list(self.entry.args[nargs:nargs + nouts])
        self.scratch = self.entry.args[nargs + nouts]
        self.sizes = dict(zip(func.dims, self.entry.args[len(params):]))

        self.env: dict[Value, Buffer] = {}
        for value, param in zip(func.args, self.entry.args):
            self.env[value] = Buffer(param, value.type.dtype, contiguous(value.type.shape),
                                     self.names[value])
        # where each output ends up: its output buffer, or (a step's update written in place)
        # its param's own buffer
        self.in_place = in_place_updates(func)
        arg_params = dict(zip(func.args, self.entry.args))
        self.arg_params = set(arg_params.values())
        self.targets = [arg_params[self.in_place[out.value]] if out.value in self.in_place
                        else param for out, param in zip(func.outputs, self.output_params)]
        self.unclaimed = {}  # value → the buffer its kernel writes directly
        for out, target in zip(func.outputs, self.targets):
            self.unclaimed.setdefault(out.value, target)
        self.slots: list[Dim] = []
        self.scratch_end: ir.Value = ir.Constant(I64, 0)
        # how many threads kernels may use: set by the caller through the engine (jit.py)
        self.thread_count = ir.GlobalVariable(self.module, I32, threads_global(func.name))
        self.thread_count.initializer = ir.Constant(I32, 1)
        self._dims: dict[Dim, ir.Value] = {}

    def define_names(self, op: Op) -> None:
        """Names as `tflc dump` prints them: results, then a region's arguments and ops."""
        for result in op.results:
            self.names.define(result)
        if op.region is not None:
            for arg in op.region.args:
                self.names.define(arg)
            for inner in op.region.ops:
                self.define_names(inner)

    # -- what lowerings use ----------------------------------------------------------------------

    def buffer(self, value: Value) -> Buffer:
        return self.env[value]

    def storage(self, value: Value) -> Buffer:
        """A fresh dense buffer for `value`: its output buffer when it is an output, else a
        scratch slot."""
        param = self.unclaimed.pop(value, None)
        if param is not None:
            buffer = Buffer(param, value.type.dtype, contiguous(value.type.shape),
                            self.names[value])
        else:
            buffer = self.temporary(value.type, self.names[value])
        self.env[value] = buffer
        return buffer

    def is_argument(self, buffer: Buffer) -> bool:
        """Whether the buffer is an argument's (a param updated in place included)."""
        return buffer.base in self.arg_params

    def temporary(self, type_: TensorType, name: str) -> Buffer:
        """A scratch slot for a value of that type."""
        nbytes = dim_product((*type_.shape, BYTES[type_.dtype]))
        self.slots.append(nbytes)
        start = self.scratch_end
        size = self.b.and_(self.b.add(self.dim(nbytes), ir.Constant(I64, SCRATCH_ALIGN - 1)),
                           ir.Constant(I64, -SCRATCH_ALIGN))
        self.scratch_end = add(self.b, start, size)
        base = self.b.gep(self.scratch, [start], inbounds=True, source_etype=I8, name=name)
        return Buffer(base, type_.dtype, contiguous(type_.shape), name)

    def packing_buffer(self, b: Buffer, name: str) -> Buffer | None:
        """Scratch for the dense copy of a matmul's B, where it needs one (matmul.py)."""
        packed = matmul.packed_type(b)
        return None if packed is None else self.temporary(packed, f"{name}.packed")

    def dim(self, d: Dim) -> ir.Value:
        if d not in self._dims:
            self._dims[d] = evaluate_dim(self.b, d, self.sizes)
        return self._dims[d]

    def kernel(self, name: str, buffers: list[Buffer], work: Dim | None = None) -> Kernel:
        """A kernel; with `work` (element operations), one whose loop nests are all divided
        among threads (`shared`), run on several when the work is large enough."""
        threads = None
        if work is not None and self.options.threads:
            threads = Threads(self.thread_count, self.options.parallel_work)
        return Kernel(self.module, f"{self.func.name}.{name}", buffers, self.func.dims,
                      fma=self.options.fma, threads=threads, work=work or 0, debug=self.debug,
                      loc=self.loc, masked_tails=self.options.masked_tails)

    def launch(self, kernel: Kernel) -> None:
        """The kernel is complete: the entry calls it here."""
        kernel.call(self.b, self.sizes)

    def name(self, value: Value) -> str:
        return self.names[value]

    # -- the function ------------------------------------------------------------------------------

    def run(self) -> Lowered:
        for op in self.func.ops:
            lowering = LOWERINGS.get(op.opcode)
            if lowering is None and REGISTRY[op.opcode].kind == "elementwise":
                lowering = lower_elementwise
            if lowering is None:
                raise Error(f"the llvm backend has no lowering for '{op.opcode}' "
                            "(composites and grad must be expanded by the passes first)", op.loc)
            self.loc = op.loc
            lowering(self, op)
        self.loc = None
        for out, target in zip(self.func.outputs, self.targets):
            source = self.env[out.value]
            if source.base is not target:
                buffer = Buffer(target, source.dtype, contiguous(out.value.type.shape), out.label)
                copy(self, f"{out.label}.copy", buffer, source)
        self.b.ret_void()
        boxed = None if self.options.array_data_offset is None else self.boxed_entry()
        args = list(self.func.args)
        signature = Signature(
            entry=self.entry.name, dims=self.func.dims,
            args=tuple(v.type.dtype for v in self.func.args),
            outputs=tuple((out.value.type.shape, out.value.type.dtype)
                          for out in self.func.outputs),
            scratch=tuple(self.slots),
            in_place=tuple((i, args.index(self.in_place[out.value]))
                           for i, out in enumerate(self.func.outputs)
                           if out.value in self.in_place),
            boxed=boxed)
        return Lowered(self.module, signature)

    def boxed_entry(self) -> str:
        """`@"<entry>.boxed"`: the entry as a CPython function (`METH_FASTCALL`:
        `PyObject *f(PyObject *self, PyObject *const *args, Py_ssize_t nargs)`) taking each
        argument, each output and the scratch buffer as the NumPy array object itself, whose
        data pointer it reads, then each dim's size as a Python int. Python calls it as any
        builtin (~0.1 us; through ctypes ~0.6 us an array, more than a small kernel). It lets
        other Python threads run meanwhile, and returns None. The CPython functions it calls
        and None are found in globals (`PYTHON_API`) that the loader sets (jit.py)."""
        arrays = len(self.func.args) + len(self.func.outputs) + 1
        api = {name: ir.GlobalVariable(self.module, PTR, f"tflc.{name}") for name in PYTHON_API}
        for variable in api.values():
            variable.initializer = ir.Constant(PTR, None)
        wrapper = ir.Function(self.module, ir.FunctionType(PTR, [PTR, PTR, I64]),
                              f"{self.entry.name}.boxed")
        b = ir.IRBuilder(wrapper.append_basic_block("entry"))
        offset = ir.Constant(I64, self.options.array_data_offset)

        def c_api(name: str, result, params, args, label=""):
            function = b.load(api[name], typ=ir.FunctionType(result, params).as_pointer(),
                              name=name)
            return b.call(function, args, name=label)

        values = []
        for i, param in enumerate(self.entry.args[:arrays]):
            slot = b.gep(wrapper.args[1], [ir.Constant(I64, i)], inbounds=True, source_etype=PTR)
            obj = b.load(slot, typ=PTR, align=8, name=f"{param.name}.array")
            field = b.gep(obj, [offset], inbounds=True, source_etype=I8)
            values.append(b.load(field, typ=PTR, align=8, name=param.name))
        for i, param in enumerate(self.entry.args[arrays:]):
            slot = b.gep(wrapper.args[1], [ir.Constant(I64, arrays + i)], inbounds=True,
                         source_etype=PTR)
            obj = b.load(slot, typ=PTR, align=8)
            values.append(c_api("PyLong_AsSsize_t", I64, [PTR], [obj], param.name))
        state = c_api("PyEval_SaveThread", PTR, [], [], "thread")
        b.call(self.entry, values)
        c_api("PyEval_RestoreThread", ir.VoidType(), [PTR], [state])
        none = b.load(api["Py_None"], typ=PTR, name="None")
        c_api("Py_IncRef", ir.VoidType(), [PTR], [none])
        b.ret(none)
        return wrapper.name


VIEW_OPS = ("transpose", "broadcast_to", "slice", "reshape")  # may read their operand in place


def in_place_updates(func: Function) -> dict[Value, Value]:
    """Step updates written over their param's own buffer (new value → param argument): those
    the memory plan allows (passes/plan_memory.py), less those whose param is still read after
    the update through a view, which this backend reads in place rather than copying."""
    producer = {r: i for i, op in enumerate(func.ops) for r in op.results}
    allowed = {}
    for value, param in memory_plan(func).in_place.items():
        views = {param}
        for op in func.ops:
            if op.opcode in VIEW_OPS and op.operands[0] in views:
                views.add(op.result)
        later = func.ops[producer[value] + 1:]
        read_later = any(u in views for op in later for u in operands_within(op))
        fetched = any(out.value in views for out in func.outputs)
        if not read_later and not fetched:
            allowed[value] = param
    return allowed


def operands_within(op: Op) -> list[Value]:
    """An op's operands, and the values of the enclosing function its region uses directly."""
    if op.region is None:
        return list(op.operands)
    return list(op.operands) + [u for inner in op.region.ops for u in operands_within(inner)]


# -- lowerings, keyed by opcode (to move into each op's OpDef.lowering) --------------------------
# Those using only what both lowerers offer (copy, elementwise ops, argmax/argmin, reshape, the
# views, concat, pad, one_hot, shape, rng_uniform, const) are codegen/ptx's too.

Lowering = Callable[[Lowerer, Op], None]


def copy(lw: Lowerer, name: str, target: Buffer, source: Buffer) -> None:
    """target[...] = source[...] (same shape, any layouts)."""
    k = lw.kernel(name, [target, source], work=dim_product(target.layout.shape))
    lw.templates.elementwise(k, [k.operand(target)], [k.operand(source)],
                             lambda s, values, index: values, shared=True)
    lw.launch(k)


def broadcast_operands(lw: Lowerer, op: Op, shape) -> list[Buffer]:
    return [lw.buffer(v).view(lw.buffer(v).layout.broadcast_to(shape)) for v in op.operands]


def lower_elementwise(lw: Lowerer, op: Op) -> None:
    out = lw.storage(op.result)
    ins = broadcast_operands(lw, op, op.result.type.shape)
    emit = SCALAR[op.opcode]
    dtypes = tuple(v.type.dtype for v in op.operands)
    name = lw.name(op.result)

    def body(s, values, index):
        return [emit(s, values, dtypes, op.attrs, name)]

    k = lw.kernel(name, [out, *ins], work=dim_product(op.result.type.shape))
    lw.templates.elementwise(k, [k.operand(out)], [k.operand(b) for b in ins], body,
                             shared=True)
    lw.launch(k)


def lower_reduce(lw: Lowerer, op: Op) -> None:
    """Accumulates into the result in x's memory order: the result, seen with x's shape and
    stride 0 along the reduced axes, is combined with every element of x."""
    x_value = op.operands[0]
    x = lw.buffer(x_value)
    dtype = x.dtype
    axes = reduced_axes(x_value.type, op.attrs["axis"])
    out = lw.storage(op.result)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x_value.type.shape))
    accumulator = out.view(contiguous(kept).broadcast_to(x_value.type.shape))
    name = lw.name(op.result)

    def body(s, values, index):
        acc, element = values
        return [reductions.combine(s, op.opcode, acc, element, dtype, lw.options.fast_math, name)]

    k = lw.kernel(name, [out, x])
    identity = reductions.identity(op.opcode, dtype)
    kernels.fill(k, k.operand(out), identity)
    kernels.elementwise(k, [k.operand(accumulator)], [k.operand(x)], body, accumulate=identity)
    lw.launch(k)


def lower_argreduce(lw: Lowerer, op: Op) -> None:
    x_value = op.operands[0]
    x = lw.buffer(x_value)
    axis = normalize_axis(op.attrs["axis"], x_value.type.rank, op.opcode)
    layout = x.layout
    outer = Layout(layout.shape[:axis] + layout.shape[axis + 1:],
                   layout.strides[:axis] + layout.strides[axis + 1:], layout.offset)
    out = lw.storage(op.result)
    k = lw.kernel(lw.name(op.result), [out, x])
    better = kernels.first_extreme(">" if op.opcode == "argmax" else "<")
    lw.templates.argreduce(k, k.operand(out), k.operand(x, outer), layout.shape[axis],
                           layout.strides[axis], better)
    lw.launch(k)


def lower_matmul(lw: Lowerer, op: Op) -> None:
    a, b = (lw.buffer(v) for v in op.operands)
    out = lw.storage(op.result)
    packed = lw.packing_buffer(b, lw.name(op.result))
    k = lw.kernel(lw.name(op.result), [out, a, b] + ([packed] if packed else []),
                  work=matmul.work(op.result.type, op.operands[0].type))
    matmul.emit(k, out, a, b, lw.options.vector_bytes, packed)
    lw.launch(k)


def lower_reshape(lw: Lowerer, op: Op) -> None:
    x = lw.buffer(op.operands[0])
    shape = op.result.type.shape
    if x.layout.is_dense:
        lw.env[op.result] = x.view(contiguous(shape).at(x.layout.offset), lw.name(op.result))
        return
    out = lw.storage(op.result)  # the same elements in row-major order: x's shape, dense
    copy(lw, lw.name(op.result), out.view(contiguous(x.layout.shape)), x)


def lower_transpose(lw: Lowerer, op: Op) -> None:
    x = lw.buffer(op.operands[0])
    perm = permutation(op.operands[0].type, op.attrs["perm"])
    lw.env[op.result] = x.view(x.layout.transpose(perm), lw.name(op.result))


def lower_broadcast_to(lw: Lowerer, op: Op) -> None:
    x = lw.buffer(op.operands[0])
    lw.env[op.result] = x.view(x.layout.broadcast_to(op.result.type.shape), lw.name(op.result))


def lower_slice(lw: Lowerer, op: Op) -> None:
    x = lw.buffer(op.operands[0])
    starts = tuple(start for start, _ in slice_bounds(op.operands[0].type, op.attrs))
    layout = x.layout.shifted(starts).with_shape(op.result.type.shape)
    lw.env[op.result] = x.view(layout, lw.name(op.result))


def lower_concat(lw: Lowerer, op: Op) -> None:
    """One kernel copying each operand into its part of the result."""
    out = lw.storage(op.result)
    axis = normalize_axis(op.attrs["axis"], op.result.type.rank, "concat")
    parts = [lw.buffer(v) for v in op.operands]
    k = lw.kernel(lw.name(op.result), [out, *parts])
    start = 0
    for value, part in zip(op.operands, parts):
        starts = tuple(start if d == axis else 0 for d in range(op.result.type.rank))
        region = out.layout.shifted(starts).with_shape(value.type.shape)
        lw.templates.elementwise(k, [k.operand(out, region)], [k.operand(part)],
                                 lambda s, values, index: values)
        start += value.type.shape[axis]
    lw.launch(k)


def lower_pad(lw: Lowerer, op: Op) -> None:
    """Zeros, then x into the interior: two kernels, since on the GPU the threads of one kernel
    do not run in order."""
    x_value = op.operands[0]
    x = lw.buffer(x_value)
    out = lw.storage(op.result)
    name = lw.name(op.result)
    k = lw.kernel(f"{name}.zeros", [out], work=dim_product(op.result.type.shape))
    lw.templates.fill(k, k.operand(out), const(out.dtype, 0), shared=True)
    lw.launch(k)
    interior = out.layout.shifted(tuple(op.attrs["before"])).with_shape(x_value.type.shape)
    copy(lw, name, out.view(interior), x)


def lower_one_hot(lw: Lowerer, op: Op) -> None:
    """out[..., j] = (indices[...] == j): the indices read with stride 0 along the new dim."""
    indices = lw.buffer(op.operands[0])
    out = lw.storage(op.result)
    layout = indices.layout
    spread = indices.view(Layout(layout.shape + (op.attrs["depth"],), layout.strides + (0,),
                                 layout.offset))
    name = lw.name(op.result)

    def body(s, values, index):
        position = s.b.sext(values[0], I64) if values[0].type != I64 else values[0]
        hit = s.b.icmp_signed("==", position, index.loops[-1])
        return [s.b.select(hit, const("f32", 1), const("f32", 0), name=name)]

    k = lw.kernel(name, [out, spread], work=dim_product(op.result.type.shape))
    lw.templates.elementwise(k, [k.operand(out)], [k.operand(spread)], body, keep_dims=True,
                             shared=True)
    lw.launch(k)


def lower_shape(lw: Lowerer, op: Op) -> None:
    value = op.operands[0]
    axis = normalize_axis(op.attrs["axis"], value.type.rank, "shape")
    out = lw.storage(op.result)
    k = lw.kernel(lw.name(op.result), [out])
    lw.templates.fill(k, k.operand(out), k.dim(value.type.shape[axis]))
    lw.launch(k)


MASK64 = 2 ** 64 - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15


def mix(z: int) -> int:
    """splitmix64's finalizer on Python ints (for the compile-time part of the key)."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def u64(value: int) -> ir.Constant:
    """An i64 constant from an unsigned 64-bit number (LLVM writes i64 constants signed)."""
    return ir.Constant(I64, value - 2 ** 64 if value >= 2 ** 63 else value)


def emit_mix(b: ir.IRBuilder, z: ir.Value) -> ir.Value:
    for shift, multiplier in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
        z = b.mul(b.xor(z, b.lshr(z, u64(shift))), u64(multiplier))
    return b.xor(z, b.lshr(z, u64(31)))


def lower_rng_uniform(lw: Lowerer, op: Op) -> None:
    """docs/ops.md's counter-based generator; seed and stream are folded at compile time."""
    counter = lw.buffer(op.operands[1])
    out = lw.storage(op.result)
    counter = counter.view(counter.layout.broadcast_to(op.result.type.shape))
    seeded = mix(mix(op.attrs["seed"]) ^ op.attrs["stream"])
    dtype = out.dtype
    name = lw.name(op.result)

    def body(s, values, index):
        b = s.b
        key = emit_mix(b, b.xor(values[0], u64(seeded)))
        step = b.mul(b.add(index.flat(b), u64(1)), u64(GOLDEN_GAMMA))
        bits = emit_mix(b, b.add(key, step))
        top = b.uitofp(b.lshr(bits, u64(40)), llvm_type(dtype))
        return [b.fmul(top, const(dtype, 2.0 ** -24), name=name)]

    k = lw.kernel(name, [out, counter], work=dim_product(op.result.type.shape))
    lw.templates.elementwise(k, [k.operand(out)], [k.operand(counter)], body, shared=True)
    lw.launch(k)


def lower_const(lw: Lowerer, op: Op) -> None:
    """A private constant global holding the array's bytes; kernels read it directly, so LLVM
    folds scalar constants into the code."""
    value = np.ascontiguousarray(op.attrs["value"])
    data = bytearray(value.tobytes())
    array_type = ir.ArrayType(I8, len(data))
    name = lw.name(op.result)
    constant = ir.GlobalVariable(lw.module, array_type, lw.module.get_unique_name(
        f"{lw.func.name}.{name}"))
    constant.global_constant = True
    constant.linkage = "private"
    constant.unnamed_addr = True
    constant.align = SCRATCH_ALIGN
    constant.initializer = ir.Constant(array_type, data)
    lw.env[op.result] = Buffer(constant, op.result.type.dtype, contiguous(value.shape), name)


LOWERINGS: dict[str, Lowering] = {
    "sum": lower_reduce,
    "prod": lower_reduce,
    "max": lower_reduce,
    "min": lower_reduce,
    "argmax": lower_argreduce,
    "argmin": lower_argreduce,
    "matmul": lower_matmul,
    "reshape": lower_reshape,
    "transpose": lower_transpose,
    "broadcast_to": lower_broadcast_to,
    "slice": lower_slice,
    "concat": lower_concat,
    "pad": lower_pad,
    "one_hot": lower_one_hot,
    "shape": lower_shape,
    "rng_uniform": lower_rng_uniform,
    "const": lower_const,
    "fused": lower_fused,
}
