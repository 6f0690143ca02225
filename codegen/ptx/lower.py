"""A `Function` becomes one NVPTX module (a kernel per op, or per fused op: fused.py) and the
`Plan` that launches them.

The structure is the CPU lowering's (codegen/llvm/lower.py), and its rules are used directly:
view ops (`transpose`, `broadcast_to`, `slice`, `reshape` of a dense buffer) are layouts, not
copies; constants are globals the kernels read; a value computed by a kernel goes straight into
its output buffer when it is an output, other outputs are copied at the end. The differences:

- there is no entry function: the host launches the kernels in order (`Plan`), and each kernel
  gets device pointers to the buffers it touches: an argument, an output, or a scratch slot
  (`Ref`s, resolved by the runtime at each run from the sizes);
- the templates (kernels.py) spread work over threads: grid-stride loops for elementwise ops,
  warps or blocks per row for reductions along the last axis, a thread per output for the
  others, shared-memory tiles for matmul.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from llvmlite import ir

from ...ir.core import Function, Op, Value
from ...ir.errors import Error
from ...ir.ops.reduce import reduced_axes
from ...ir.printer import Namer
from ...ir.registry import REGISTRY
from ...ir.types import Dim, TensorType, dim_product
from ..llvm import kernels as cpu_kernels
from ..llvm import lower as cpu
from ..llvm import reductions
from ..llvm.kernels import Buffer, Operand
from ..llvm.layout import Layout, contiguous
from ..llvm.matmul import matmul_layouts
from ..llvm.scalar import BYTES
from . import kernels
from .fused import lower_fused
from .kernels import DeviceKernel
from .plan import Grid, Launch, Plan, Ref
from .target import TRIPLE, check_declarations, data_layout, identifier


@dataclass(frozen=True)
class Lowered:
    module: ir.Module
    plan: Plan


def lower(func: Function, arch: str) -> Lowered:
    return Lowerer(func, arch).run()


class Lowerer:
    """What the lowerings use: `buffer`, `storage`, `name`, `kernel`, `launch`, the kernel
    `templates` (and `module`, `func`, `env`): what the CPU's lowerer offers, so that the CPU's
    lowerings of elementwise ops, copies, argmax/argmin, views, constants, concat, pad, one_hot,
    shape and rng_uniform, and the CPU's reading of fused regions, are used as they are (math
    functions reach libdevice through `DeviceScalar`)."""

    templates = kernels

    def __init__(self, func: Function, arch: str):
        self.func = func
        self.module = ir.Module(name=func.name)
        self.module.triple = TRIPLE
        self.module.data_layout = data_layout(arch)
        # strict IEEE in libdevice: subnormals are kept, not flushed to zero
        flag = self.module.add_metadata([ir.Constant(ir.IntType(32), 4),
                                         ir.MetaDataString(self.module, "nvvm-reflect-ftz"),
                                         ir.Constant(ir.IntType(32), 0)])
        self.module.add_named_metadata("llvm.module.flags", flag)

        self.names = Namer()
        for value in func.args:
            self.names.define(value)
        self.define_names(func.ops)
        self.env: dict[Value, Buffer] = {}
        for index, value in enumerate(func.args):
            name = self.names[value]
            self.env[value] = Buffer(Ref("arg", index, name), value.type.dtype,
                                     contiguous(value.type.shape), name)
        self.outputs = [Ref("out", index, f"{out.step}.{out.label}" if out.step else out.label)
                        for index, out in enumerate(func.outputs)]
        self.unclaimed: dict[Value, Ref] = {}  # value → the output its kernel writes directly
        for out, ref in zip(func.outputs, self.outputs):
            self.unclaimed.setdefault(out.value, ref)
        self.slots: list[Dim] = []
        self.launches: list[Launch] = []
        self.kernel_names: set[str] = set()

    def define_names(self, ops) -> None:
        """Names for the values ops compute, those inside fused ops' regions too."""
        for op in ops:
            for result in op.results:
                self.names.define(result)
            if op.region is not None:
                self.define_names(op.region.ops)

    def buffer(self, value: Value) -> Buffer:
        return self.env[value]

    def name(self, value: Value) -> str:
        return self.names[value]

    def storage(self, value: Value) -> Buffer:
        """A fresh dense buffer for `value`: its output when it is one, else a scratch slot."""
        ref = self.unclaimed.pop(value, None)
        name = self.names[value]
        buffer = self.temporary(value.type, name) if ref is None else \
            Buffer(ref, value.type.dtype, contiguous(value.type.shape), name)
        self.env[value] = buffer
        return buffer

    def temporary(self, type_: TensorType, name: str) -> Buffer:
        """A scratch slot for a value of that type (left out of the plan if no kernel uses it:
        a fused kernel keeps its reductions' results in registers)."""
        ref = Ref("slot", len(self.slots), name)
        self.slots.append(dim_product((*type_.shape, BYTES[type_.dtype])))
        return Buffer(ref, type_.dtype, contiguous(type_.shape), name)

    @staticmethod
    def is_argument(buffer: Buffer) -> bool:
        return isinstance(buffer.base, Ref) and buffer.base.kind == "arg"

    @staticmethod
    def packing_buffer(b: Buffer, name: str) -> Buffer | None:
        """None: the GPU's matmul reads B through its strides (the CPU's vector tiles need a
        dense copy of a strided B; shared-memory tiles do not)."""
        return None

    def kernel(self, name: str, buffers: list[Buffer], work: Dim | None = None) -> DeviceKernel:
        """A kernel touching `buffers`, launched by default one thread per element of
        `buffers[0]` (what it writes). `work` is for the CPU (whether a kernel is worth several
        threads): every GPU kernel runs on many."""
        base = identifier(f"{self.func.name}_{name}")
        unique, n = base, 1
        while unique in self.kernel_names:
            n += 1
            unique = f"{base}_{n}"
        self.kernel_names.add(unique)
        return DeviceKernel(self.module, unique, buffers, self.func.dims)

    def launch(self, k: DeviceKernel, grid: Grid | None = None) -> None:
        """The kernel is complete: launched next with `grid`, by default (grid-stride loops)
        one thread per element it writes."""
        k.finish()
        grid = grid or kernels.one_per_thread(k.elements)
        self.launches.append(Launch(k.function.name, tuple(k.bases), grid))

    def lower_ops(self, ops) -> None:
        for op in ops:
            lowering = LOWERINGS.get(op.opcode)
            if lowering is None and REGISTRY[op.opcode].kind == "elementwise":
                lowering = cpu.lower_elementwise
            if lowering is None:
                raise Error(f"the cuda backend has no lowering for '{op.opcode}' "
                            "(composites and grad must be expanded by the passes first)", op.loc)
            lowering(self, op)

    def run(self) -> Lowered:
        self.lower_ops(self.func.ops)
        for out, ref in zip(self.func.outputs, self.outputs):
            source = self.env[out.value]
            if source.base is not ref:
                target = Buffer(ref, source.dtype, contiguous(out.value.type.shape), ref.name)
                cpu.copy(self, f"{ref.name}.copy", target, source)
        check_declarations([f.name for f in self.module.functions if f.is_declaration])
        slots, launches = self.used_slots()
        plan = Plan(dims=self.func.dims,
                    args=tuple((v.type.shape, v.type.dtype) for v in self.func.args),
                    outputs=tuple((out.value.type.shape, out.value.type.dtype)
                                  for out in self.func.outputs),
                    slots=slots, launches=launches)
        return Lowered(self.module, plan)

    def used_slots(self) -> tuple[tuple[Dim, ...], tuple[Launch, ...]]:
        """The slots some kernel uses, numbered in order of first use, and the launches
        referring to them by those numbers."""
        used = dict.fromkeys(ref for launch in self.launches for ref in launch.buffers
                             if ref.kind == "slot")
        numbered = {ref: Ref("slot", index, ref.name) for index, ref in enumerate(used)}
        launches = tuple(replace(launch, buffers=tuple(numbered.get(ref, ref)
                                                       for ref in launch.buffers))
                         for launch in self.launches)
        return tuple(self.slots[ref.index] for ref in used), launches


# -- lowerings, keyed by opcode ----------------------------------------------------------------

Lowering = Callable[[Lowerer, Op], None]


def lower_reduce(lw: Lowerer, op: Op) -> None:
    """Along the last axis, a warp (or block) per output, combining as a tree; otherwise a
    thread per output, combining in x's order as the CPU does (neighbouring threads then read
    neighbouring elements)."""
    x_value = op.operands[0]
    x = lw.buffer(x_value)
    dtype = x.dtype
    rank = x_value.type.rank
    axes = reduced_axes(x_value.type, op.attrs["axis"])
    kept = tuple(i for i in range(rank) if i not in axes)
    out = lw.storage(op.result)
    name = lw.name(op.result)

    def combine(s, acc, value):
        return reductions.combine(s, op.opcode, acc, value, dtype, False, name)

    init = reductions.identity(op.opcode, dtype)
    layout = x.layout.transpose(kept + axes)  # kept dims first
    kept_shape, reduced_shape = layout.shape[:len(kept)], layout.shape[len(kept):]
    result = contiguous(kept_shape)  # the result's elements, with or without keepdims
    k = lw.kernel(name, [out, x])
    grid = None  # a thread per output
    if rank - 1 in axes:
        grid = kernels.reduce_rows(k, k.operand(out, result), k.operand(x, layout), len(kept),
                                   combine, init, kernels.row_group(dim_product(reduced_shape)))
    else:
        outer = Layout(kept_shape, layout.strides[:len(kept)], layout.offset)
        inner = Layout(reduced_shape, layout.strides[len(kept):])
        with kernels.each_output(k, k.operand(out, result), k.operand(x, outer)) as (acc, start):
            cpu_kernels.fill(k, acc, init)
            spread = Layout(reduced_shape, (0,) * len(reduced_shape))
            cpu_kernels.elementwise(k, [Operand(acc.ptr, dtype, spread, acc.name)],
                                    [Operand(start.ptr, dtype, inner, start.name)],
                                    lambda s, values, index: [combine(s, *values)],
                                    accumulate=init)
    lw.launch(k, grid)


def lower_matmul(lw: Lowerer, op: Op) -> None:
    a, b = (lw.buffer(v) for v in op.operands)
    out = lw.storage(op.result)
    out_layout, a_layout, b_layout = matmul_layouts(out, a, b)
    name = lw.name(op.result)
    k = lw.kernel(name, [out, a, b])

    def store(value, pointers):
        k.s.store(value, pointers[0], out.dtype)

    grid = kernels.matmul(k, k.operand(a, a_layout), k.operand(b, b_layout),
                          [k.operand(out, out_layout)], store, name)
    lw.launch(k, grid)


LOWERINGS: dict[str, Lowering] = {
    "sum": lower_reduce,
    "prod": lower_reduce,
    "max": lower_reduce,
    "min": lower_reduce,
    "argmax": cpu.lower_argreduce,
    "argmin": cpu.lower_argreduce,
    "matmul": lower_matmul,
    "reshape": cpu.lower_reshape,
    "transpose": cpu.lower_transpose,
    "broadcast_to": cpu.lower_broadcast_to,
    "slice": cpu.lower_slice,
    "concat": cpu.lower_concat,
    "pad": cpu.lower_pad,
    "one_hot": cpu.lower_one_hot,
    "shape": cpu.lower_shape,
    "rng_uniform": cpu.lower_rng_uniform,
    "const": cpu.lower_const,
    "fused": lower_fused,
}
