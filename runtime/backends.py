"""The backends a model or a jitted function can run on, by name.

Each is a module offering `compile(func, **options) -> Compiled` (callable as
`compiled(sizes, args) -> outputs`), `emit(func, kind) -> str` and `EMIT_KINDS`. The numpy and
llvm backends live in `codegen/`; the cuda backend's code is built by `codegen.ptx` and loaded
onto the GPU by `runtime.cuda`, so the runtime's module is the one to run. Each is imported on
first use, so `import tflc` loads no compiler toolchain.
"""

from __future__ import annotations

import importlib

from ..ir.errors import Error

# backend name → module (relative to the tflc package); a new backend adds its line here.
BACKENDS = {"numpy": "codegen.numpy_backend", "llvm": "codegen.llvm", "cuda": "runtime.cuda"}
DEFAULT_BACKEND = "llvm"


def backend(name: str):
    if name not in BACKENDS:
        raise Error(f"unknown backend '{name}' (backends: {', '.join(BACKENDS)})")
    return importlib.import_module(f"{__package__.rpartition('.')[0]}.{BACKENDS[name]}")
