"""codegen stage: a function in, code out.

Every backend is a module offering `compile(func) -> Compiled`, where
`compiled(sizes, args) -> list of arrays` (see docs/internals.md), and `emit(func) -> str`.
`backend(name)` imports one on demand, so `import tflc` loads no compiler toolchain.
"""

from __future__ import annotations

import importlib

from ..ir.errors import Error

# backend name → module in this package; a new backend adds its line here.
BACKENDS = {"numpy": "numpy_backend", "llvm": "llvm"}


def backend(name: str):
    if name not in BACKENDS:
        raise Error(f"unknown backend '{name}' (backends: {', '.join(BACKENDS)})")
    return importlib.import_module(f"{__package__}.{BACKENDS[name]}")
