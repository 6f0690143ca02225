"""Compiling a function to object code (or finding it in the cache), loading it (loading.py: a
shared library, or MCJIT), and calling its entry function from Python."""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import time
import weakref
from typing import TYPE_CHECKING

import numpy as np

from ...ir.core import Function
from ...ir.errors import Error
from ...ir.types import NUMPY_DTYPES, eval_dim
from . import cache as compile_cache
from . import loading
from . import threads as threads_module
from .abi import PYTHON_API, Options, threads_global
from .target import Target, host, optimize

if TYPE_CHECKING:
    import llvmlite.binding as llvm

EMIT_KINDS = ("llvm", "llvm-opt", "asm")


def options_for(target: Target, fast_math: bool = False) -> Options:
    vector_bytes = 64 if target.has("avx512f") else 32 if target.has("avx") else 16
    return Options(fast_math=fast_math, fma=target.has("fma"), vector_bytes=vector_bytes,
                   masked_tails=target.has("avx512f"), threads=threads_module.runtime(),
                   array_data_offset=array_data_offset())


@functools.cache
def array_data_offset() -> int | None:
    """Where a NumPy array object holds its data pointer: right after the object header
    (NumPy's PyArrayObject), checked on arrays whose addresses are known; None if it is not
    there, or where ctypes does not reach CPython's C API (the entry reading it is a CPython
    function, lower.py), and then callers pass addresses."""
    if not hasattr(ctypes, "pythonapi"):
        return None
    offset = object.__basicsize__
    samples = [np.empty(n, np.float32) for n in (1, 7, 1000)]
    stored = [ctypes.c_void_p.from_address(id(a) + offset).value for a in samples]
    return offset if stored == [a.ctypes.data for a in samples] else None


def build(func: Function, target: Target, options: Options) -> llvm.ModuleRef:
    """The verified, unoptimised LLVM module of `func`."""
    import llvmlite.binding as llvm

    from .lower import lower

    module = llvm.parse_assembly(str(lower(func, target, options).module))
    module.verify()
    return module


def object_code(func: Function, target: Target, options: Options,
                link: bool = False) -> compile_cache.Entry:
    """Lowered, verified, optimised at O3 and compiled for the host; with `link`, also linked
    into a shared library where the machine can (loading.py)."""
    import llvmlite.binding as llvm

    from .lower import lower

    lowered = lower(func, target, options)
    module = llvm.parse_assembly(str(lowered.module))
    module.verify()
    machine = target.machine()
    optimize(module, machine)
    code = machine.emit_object(module)
    return compile_cache.Entry(lowered.signature, code, loading.link(code) if link else None)


def emit(func: Function, kind: str = "llvm", *, fast_math: bool = False) -> str:
    """LLVM IR as generated (`llvm`), after O3 (`llvm-opt`), or the host's assembly (`asm`)."""
    if kind not in EMIT_KINDS:
        raise Error(f"unknown emit kind '{kind}' (one of: {', '.join(EMIT_KINDS)})")
    from .lower import lower

    target = host()
    options = options_for(target, fast_math)
    if kind == "llvm":
        return str(lower(func, target, options).module)
    module = build(func, target, options)
    machine = target.machine()
    optimize(module, machine)
    return str(module) if kind == "llvm-opt" else machine.emit_assembly(module)


def compile(func: Function, *, fast_math: bool = False, threads: int | None = None,
            cache: bool = True) -> Compiled:
    """Native code for `func` on this machine. `fast_math` lets float sums and products be
    reassociated (vectorised reductions; results may differ in the last bits). `threads`: how
    many threads large kernels may use (default `TFLC_NUM_THREADS`, else every core); results
    do not depend on it. With `cache`, object code is kept on disk (cache.py) and a function
    compiled before is only loaded. `TFLC_LOG_COMPILES=1` reports each one on stderr."""
    started = time.perf_counter()
    target = host()
    options = options_for(target, fast_math)
    cache_key = compile_cache.key(func, target, options) if cache else None
    entry = compile_cache.load(cache_key) if cache else None
    how = "loaded from the cache"
    if entry is None:
        entry = object_code(func, target, options, link=cache)  # a library loads without LLVM
        how = "compiled (not in the cache)" if cache else "compiled (cache off)"
        if cache:
            compile_cache.save(cache_key, entry)
    compiled = Compiled(entry, target)
    compiled.threads = threads_module.default_count() if threads is None else threads
    if os.environ.get("TFLC_LOG_COMPILES") == "1":
        print(f"tflc: llvm @{func.name}: {how} in {time.perf_counter() - started:.3f} s",
              file=sys.stderr)
    return compiled


class Compiled:
    """`compiled(sizes, args) -> outputs`: one native call per run.

    The caller has checked the arguments (runtime/feeds.py, jit.py): C-ordered arrays of the
    signature's dtypes and of the shapes `sizes` give, which the native code trusts. Outputs are
    fresh NumPy arrays, except a step's update of a param that the memory plan lets
    overwrite the param (`signature.in_place`): that output is the argument array itself,
    updated in place (the caller must not expect it to keep the old value). The scratch buffer
    for intermediates is kept between calls (one per thread, grown for larger batches)."""

    def __init__(self, entry: compile_cache.Entry, target: Target):
        self.signature = signature = entry.signature
        self._code = code = loading.load(entry.object_code, entry.library, target)
        self._boxed = signature.boxed is not None
        if self._boxed:  # a CPython function taking the arrays themselves (lower.py)
            for name, value in python_api().items():
                ctypes.c_void_p.from_address(code.address(f"tflc.{name}")).value = value
            self._entry, self._definition = builtin(code.address(signature.boxed),
                                                    signature.boxed)
        else:
            prototype = ctypes.CFUNCTYPE(
                None, *[ctypes.c_void_p] * (len(signature.args) + len(signature.outputs) + 1),
                *[ctypes.c_int64] * len(signature.dims))
            self._entry = prototype(code.address(signature.entry))
        self._local = threading.local()
        self._out_dtypes = [NUMPY_DTYPES[dtype] for _, dtype in signature.outputs]
        in_place = dict(signature.in_place)  # the argument each output is written into, if any
        self._written_in = [in_place.get(i) for i in range(len(signature.outputs))]
        self._layouts: dict[tuple[int, ...], tuple] = {}
        count_address = code.address(threads_global(signature.entry))
        self._thread_count = ctypes.c_int32.from_address(count_address)
        LIVE.add(self)

    @property
    def threads(self) -> int:
        return self._thread_count.value

    @threads.setter
    def threads(self, count: int) -> None:
        """How many threads large kernels may use from the next call on (one in a process
        forked after threads ran: see threads.py)."""
        if not isinstance(count, int) or count < 1:
            raise Error(f"threads must be a positive integer, got {count!r}")
        self._thread_count.value = 1 if threads_module.forked else count

    def __call__(self, sizes: dict[str, int], args: list[np.ndarray]) -> list[np.ndarray]:
        # (the per-run path: a few microseconds matter here, as a small kernel takes as long)
        dims = tuple([sizes[d] for d in self.signature.dims])
        shapes, nbytes = self._layouts.get(dims) or self._layout(dims, sizes)
        outputs = [np.empty(shape, dtype) if argument is None else args[argument]
                   for shape, dtype, argument in zip(shapes, self._out_dtypes, self._written_in)]
        if self._boxed:
            self._entry(*args, *outputs, self._scratch(nbytes), *dims)
        else:
            self._entry(*map(address, args), *map(address, outputs), self._scratch(nbytes),
                        *dims)
        return outputs

    def inline(self, args: list[str], sizes: dict[str, str]) -> tuple[list[str], dict, list[str]]:
        """What `__call__` does, as Python statements for a caller that generates its per-run
        code (runtime/lean.py): `args` name the variables holding the arguments, checked as
        `__call__` requires, `sizes` the variable holding each dim's size. Returns the
        statements, the names they use (all starting with `native_`), and the variables
        holding the outputs after them: fresh arrays, or the argument an output is written
        into (as `__call__`'s)."""
        namespace = {"native_entry": self._entry, "native_empty": np.empty,
                     "native_address": address, "native_scratch": self._scratch,
                     "native_layouts": self._layouts, "native_layout": self._layout,
                     "native_no_scratch": self._scratch(0)}  # (never written: no slots)
        if self.signature.dims:  # the layout for these sizes, as __call__ finds it
            dims = "(" + "".join(f"{sizes[d]}, " for d in self.signature.dims) + ")"
            named = "{" + ", ".join(f"{d!r}: {sizes[d]}" for d in self.signature.dims) + "}"
            lines = [f"native_shapes, native_bytes = native_layouts.get({dims}) or "
                     f"native_layout({dims}, {named})"]
        else:  # one layout for every run
            namespace["native_shapes"], namespace["native_bytes"] = self._layout((), {})
            lines = []
        outputs = []
        for i, ((_, dtype), argument) in enumerate(zip(self.signature.outputs, self._written_in)):
            if argument is not None:
                outputs.append(args[argument])
                continue
            namespace[f"native_{dtype}"] = np.dtype(NUMPY_DTYPES[dtype])
            lines.append(f"native_out{i} = native_empty(native_shapes[{i}], native_{dtype})")
            outputs.append(f"native_out{i}")
        arrays = args + outputs if self._boxed else \
            [f"native_address({array})" for array in args + outputs]
        scratch = "native_scratch(native_bytes)" if self.signature.scratch else "native_no_scratch"
        call = [*arrays, scratch, *[sizes[d] for d in self.signature.dims]]
        lines.append(f"native_entry({', '.join(call)})")
        return lines, namespace, outputs

    def _layout(self, dims: tuple[int, ...], sizes: dict[str, int]):
        """The output shapes and scratch bytes for these sizes (kept for the next call:
        evaluating every symbolic size again would cost more than a small kernel)."""
        shapes = [tuple(eval_dim(d, sizes) for d in shape) for shape, _ in self.signature.outputs]
        layout = shapes, self.signature.scratch_bytes(sizes)
        if len(self._layouts) >= 64:
            self._layouts.clear()
        self._layouts[dims] = layout
        return layout

    def _scratch(self, nbytes: int) -> np.ndarray | int:
        """This thread's scratch buffer, of at least `nbytes`, as the entry takes it: the array
        itself, or its address."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or scratch[0].nbytes < nbytes:
            buffer = np.empty(max(nbytes, 1), np.uint8)
            scratch = self._local.scratch = (buffer, buffer if self._boxed else address(buffer))
        return scratch[1]


class MethodDef(ctypes.Structure):
    """CPython's PyMethodDef: how a builtin function is called."""

    _fields_ = [("name", ctypes.c_char_p), ("function", ctypes.c_void_p),
                ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]


METH_FASTCALL = 0x80


def builtin(function: int, name: str) -> tuple[object, MethodDef]:
    """A builtin function object calling the native `function` (METH_FASTCALL), and its
    definition, which must live as long as it."""
    definition = MethodDef(name.encode(), function, METH_FASTCALL, None)
    new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.POINTER(MethodDef), ctypes.py_object,
                            ctypes.py_object)(("PyCFunction_NewEx", ctypes.pythonapi))
    return new(ctypes.byref(definition), None, None), definition


@functools.cache
def python_api() -> dict[str, int]:
    """The addresses of what the Python-callable entry calls (abi.PYTHON_API) in this
    process."""
    return {name: id(None) if name == "Py_None" else
            ctypes.cast(getattr(ctypes.pythonapi, name), ctypes.c_void_p).value
            for name in PYTHON_API}


LIVE: weakref.WeakSet[Compiled] = weakref.WeakSet()


def _one_thread_each() -> None:
    for compiled in list(LIVE):
        compiled.threads = 1


threads_module.after_fork.append(_one_thread_each)


def address(array: np.ndarray) -> int:
    """The data pointer of a contiguous array: through ctypes' buffer view, three times faster
    than `array.ctypes.data`, which read-only and empty arrays still need."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError):
        return array.ctypes.data
