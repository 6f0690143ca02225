"""The backends a model or a jitted function can run on, by name.

Each is a module offering `compile(func, **options) -> Compiled` (callable as
`compiled(sizes, args) -> outputs`), `emit(func, kind) -> str` and `EMIT_KINDS`. The numpy and
llvm backends live in `codegen/`; the cuda backend's code is built by `codegen.ptx` and loaded
onto the GPU by `runtime.cuda`, so the runtime's module is the one to run. Each is imported on
first use, so `import tflc` loads no compiler toolchain.
"""

from __future__ import annotations

import importlib
import os

from ..ir.errors import Error

# backend name → module (relative to the tflc package); a new backend adds its line here.
BACKENDS = {"numpy": "codegen.numpy_backend", "llvm": "codegen.llvm", "cuda": "runtime.cuda"}
DEFAULT_BACKEND = "llvm"


def backend(name: str):
    if name not in BACKENDS:
        raise Error(f"unknown backend '{name}' (backends: {', '.join(BACKENDS)})")
    return importlib.import_module(f"{__package__.rpartition('.')[0]}.{BACKENDS[name]}")


DEBUG_NANS = "TFLC_DEBUG_NANS"


def compiler_for(name: str, debug_nans: bool):
    """The backend module to compile with and its options: under debug_nans the numpy backend,
    whose generated code checks every op's result (no other backend does)."""
    if debug_nans:
        backend(name)  # still reject an unknown name
        return backend("numpy"), {"debug_nans": True}
    return backend(name), {}


def debug_nans_from_environment() -> bool:
    """`TFLC_DEBUG_NANS`: 1 (or true, yes, on) turns debug_nans on; unset, empty, 0 (or false,
    no, off) leave it off."""
    text = os.environ.get(DEBUG_NANS, "").strip().lower()
    if text in ("", "0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise Error(f"{DEBUG_NANS}={os.environ[DEBUG_NANS]}: expected 1 (on) or 0 (off)")
