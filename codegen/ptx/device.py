"""Scalar code on the GPU, and the GPU's own instructions (thread indices, shuffles, barriers,
shared memory).

The elementwise ops' scalar bodies are the LLVM CPU backend's (`codegen/llvm/elementwise.py`):
the same instructions for the same op, so both backends mean the same thing. What differs is how
a math function is reached: `DeviceScalar.intrinsic` keeps the LLVM intrinsics NVPTX lowers
(sqrt, fabs, fma, maximum, ...) and sends exp, log, tanh, sin, cos and pow to libdevice, whose
functions are accurate to an ulp or two. exp, log and tanh, which the CPU writes out as
polynomials so that loops vectorise (`Scalar.math`), are libdevice calls here.
"""

from __future__ import annotations

from llvmlite import ir

from ..llvm.scalar import Scalar, llvm_type, memory_type
from .target import LIBDEVICE

I32 = ir.IntType(32)
I64 = ir.IntType(64)
GLOBAL = 1  # NVPTX address spaces
SHARED = 3
GLOBAL_PTR = ir.PointerType(addrspace=GLOBAL)
WARP = 32
FULL_MASK = ir.Constant(I32, -1)


class DeviceScalar(Scalar):
    """`Scalar` for NVPTX: math functions through libdevice."""

    def intrinsic(self, name: str, dtype: str, args: list[ir.Value], result: str = "") -> ir.Value:
        if name not in LIBDEVICE:
            return super().intrinsic(name, dtype, args, result)
        f32_name, f64_name = LIBDEVICE[name]
        fn = self.function(f32_name if dtype == "f32" else f64_name, llvm_type(dtype),
                           [a.type for a in args])
        return self.b.call(fn, args, name=result)

    def math(self, function: str, x: ir.Value, dtype: str, name: str = "") -> ir.Value:
        return self.intrinsic(function, dtype, [x], name)


# -- threads ---------------------------------------------------------------------------------------

def special_register(b: ir.IRBuilder, register: str) -> ir.Value:
    """`tid.x`, `ntid.x`, `ctaid.x`, `nctaid.x` ... as an i64."""
    module = b.module
    name = f"llvm.nvvm.read.ptx.sreg.{register}"
    fn = module.globals.get(name) or ir.Function(module, ir.FunctionType(I32, []), name)
    return b.zext(b.call(fn, []), I64, name=register.replace(".x", ""))


def barrier(b: ir.IRBuilder) -> None:
    """`bar.sync 0`: every thread of the block waits here."""
    name = "llvm.nvvm.barrier.cta.sync.aligned.all"
    module = b.module
    fn = module.globals.get(name) or ir.Function(module, ir.FunctionType(ir.VoidType(), [I32]),
                                                 name)
    b.call(fn, [ir.Constant(I32, 0)])


def shuffle(s: Scalar, value: ir.Value, dtype: str, mode: str, operand: int) -> ir.Value:
    """Another lane's value: with `mode` "down", lane `lane + operand`'s (a lane past the warp's
    end gets its own); with "idx", lane `operand`'s. Shuffles move 32 bits: 64-bit values go in
    two halves."""
    b = s.b
    if dtype in ("f32", "i32"):
        fn = s.function(f"llvm.nvvm.shfl.sync.{mode}.{dtype}", value.type,
                        [I32, value.type, I32, I32])
        return b.call(fn, [FULL_MASK, value, ir.Constant(I32, operand), ir.Constant(I32, WARP - 1)])
    bits = b.bitcast(value, I64) if dtype == "f64" else value
    halves = [b.trunc(bits, I32), b.trunc(b.lshr(bits, ir.Constant(I64, 32)), I32)]
    low, high = (b.zext(shuffle(s, half, "i32", mode, operand), I64) for half in halves)
    moved = b.or_(low, b.shl(high, ir.Constant(I64, 32)))
    return b.bitcast(moved, value.type) if dtype == "f64" else moved


def shared_array(module: ir.Module, name: str, dtype: str, count: int) -> ir.GlobalVariable:
    """A block's static shared memory: `count` elements, uninitialised."""
    array_type = ir.ArrayType(memory_type(dtype), count)
    array = ir.GlobalVariable(module, array_type, module.get_unique_name(name), addrspace=SHARED)
    array.linkage = "internal"
    array.initializer = ir.Constant(array_type, ir.Undefined)
    array.align = 16
    return array


def shared_element(b: ir.IRBuilder, array: ir.GlobalVariable, index: ir.Value) -> ir.Value:
    """A pointer to `array[index]` (the array's own type indexes it: llvmlite types globals'
    pointers, and a load or store checks the element type against them)."""
    return b.gep(array, [ir.Constant(I64, 0), index], inbounds=True)
