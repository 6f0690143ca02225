"""Scalar code: LLVM types of the dtypes, constants, and `Scalar`, where one element's code goes.

In registers a bool is `i1`; in memory it is NumPy's one byte (`i8`, any nonzero value true).
"""

from __future__ import annotations

from llvmlite import ir

from ...ir.types import FLOAT_DTYPES

I1 = ir.IntType(1)
I8 = ir.IntType(8)
I32 = ir.IntType(32)
I64 = ir.IntType(64)
LLVM_TYPES = {"f32": ir.FloatType(), "f64": ir.DoubleType(), "i32": ir.IntType(32),
              "i64": I64, "bool": I1}
BYTES = {"f32": 4, "f64": 8, "i32": 4, "i64": 8, "bool": 1}


def llvm_type(dtype: str) -> ir.Type:
    """The type of a value in registers (bool is i1; in memory it is NumPy's 1-byte i8)."""
    return LLVM_TYPES[dtype]


def memory_type(dtype: str) -> ir.Type:
    return I8 if dtype == "bool" else LLVM_TYPES[dtype]


def const(dtype: str, value) -> ir.Constant:
    if dtype in FLOAT_DTYPES:
        return ir.Constant(llvm_type(dtype), float(value))
    return ir.Constant(llvm_type(dtype), int(value))


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


class Scalar:
    """Where scalar code goes: a builder, the module for intrinsics and helper functions, and
    whether fused multiply-adds may be used (the CPU has FMA)."""

    def __init__(self, builder: ir.IRBuilder, fma: bool = False):
        self.b = builder
        self.fma = fma

    @property
    def module(self) -> ir.Module:
        return self.b.module

    def function(self, name: str, ret: ir.Type, params: list[ir.Type]) -> ir.Function:
        """The module's function `name`, declared on first use."""
        existing = self.module.globals.get(name)
        if existing is not None:
            return existing
        return ir.Function(self.module, ir.FunctionType(ret, params), name)

    def intrinsic(self, name: str, dtype: str, args: list[ir.Value], result: str = "") -> ir.Value:
        """Calls `llvm.NAME.<dtype>` (e.g. `llvm.exp.f32`): tflc's dtype names are LLVM's
        type suffixes."""
        fn = self.function(f"llvm.{name}.{dtype}", llvm_type(dtype), [a.type for a in args])
        return self.b.call(fn, args, name=result)

    def math(self, function: str, x: ir.Value, dtype: str, name: str = "") -> ir.Value:
        """`exp`, `log` or `tanh` of a float: written out in IR (mathfns.py), so that loops
        using them vectorise. A target with its own math library calls it instead."""
        from .mathfns import WRITTEN_OUT  # mathfns builds on this module
        return WRITTEN_OUT[function](self, x, dtype, name)

    def load(self, ptr: ir.Value, dtype: str, name: str = "") -> ir.Value:
        value = self.b.load(ptr, typ=memory_type(dtype), name=name)
        if dtype == "bool":  # any nonzero byte is true, as for NumPy
            return self.b.icmp_unsigned("!=", value, ir.Constant(I8, 0), name=name)
        return value

    def store(self, value: ir.Value, ptr: ir.Value, dtype: str) -> None:
        if dtype == "bool":
            value = self.b.zext(value, I8)
        self.b.store(value, ptr)
