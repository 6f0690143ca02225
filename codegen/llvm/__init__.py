"""The LLVM CPU backend: a function becomes native code for the host, called once per run.

    compiled = compile(func)                      # O3 for the host CPU, through MCJIT
    outputs = compiled({"N": 100}, [x, W1, b1])   # one native call
    print(emit(func, "llvm-opt"))                 # or "llvm", "asm"

See lower.py for the entry function's signature and memory, kernels.py for the loop nests,
scalar.py for each elementwise op's code.
"""

from .jit import EMIT_KINDS, Compiled, compile, emit

__all__ = ["EMIT_KINDS", "Compiled", "compile", "emit"]
