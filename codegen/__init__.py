"""codegen stage: a function in, code out.

Every backend is a module offering `compile(func) -> Compiled`, where
`compiled(sizes, args) -> list of arrays` (see docs/internals.md), and `emit(func) -> str`:
`numpy_backend` (readable Python), `llvm` (native CPU code), `ptx` (NVIDIA GPUs; it builds PTX,
and `runtime.cuda` loads it). `runtime.backends` picks one by name.
"""
