"""What the reductions share, fused or not: where an accumulation starts and how it combines."""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from ...ir.types import NUMPY_DTYPES
from .elementwise import SCALAR
from .scalar import Scalar, const, is_float

COMBINERS = {"sum": "add", "prod": "mul", "max": "maximum", "min": "minimum"}


def identity(opcode: str, dtype: str) -> ir.Constant:
    """The start of an accumulation: -0.0 for float sums, since -0.0 + x is x even for -0.0."""
    if is_float(dtype):
        value = {"sum": -0.0, "prod": 1.0, "max": -np.inf, "min": np.inf}[opcode]
    else:
        info = np.iinfo(NUMPY_DTYPES[dtype])
        value = {"sum": 0, "prod": 1, "max": info.min, "min": info.max}[opcode]
    return const(dtype, value)


def combine(s: Scalar, opcode: str, acc: ir.Value, x: ir.Value, dtype: str, fast_math: bool,
            name: str) -> ir.Value:
    """acc ⊕ x, on scalars or on vectors of them (a row's lanes, kernels.py). With fast_math,
    float sums and products may be reassociated further."""
    if fast_math and is_float(dtype) and opcode in ("sum", "prod"):
        instruction = s.b.fadd if opcode == "sum" else s.b.fmul
        return instruction(acc, x, name=name, flags=("reassoc", "contract"))
    if isinstance(acc.type, ir.VectorType) and is_float(dtype) and opcode in ("max", "min"):
        # the scalar body's intrinsic, overloaded on the vector type
        vector = acc.type
        intrinsic = s.function(f"llvm.{COMBINERS[opcode]}.v{vector.count}{dtype}", vector,
                               [vector, vector])
        return s.b.call(intrinsic, [acc, x], name=name)
    return SCALAR[COMBINERS[opcode]](s, [acc, x], (dtype, dtype), {}, name)
