"""Running the cuda backend's programs on an NVIDIA GPU, through pycuda.

    compiled = compile(func)             # PTX for the first GPU's arch and driver, loaded
    outputs = compiled({"N": 64}, args)  # copies args in, launches the plan, fetches the outputs

This module is the `cuda` backend as the runtime sees it (`compile`, `emit`, `EMIT_KINDS`): the
code is built by `codegen.ptx`, which needs no GPU; loading and launching it is runtime work.

pycuda is optional (`pip install 'tflc[cuda]'`) and imported on first use, so tflc runs without
it; missing pycuda, a missing driver and a machine without a GPU each give a `tflc.Error` that
says which. The process uses the GPU's primary context (the one the CUDA runtime, PyTorch and
CuPy share), made current on first use.

Device memory: one allocation per compiled function (its "arena"), kept between runs and grown
when a larger batch needs more; arguments, outputs and scratch slots sit in it at 256-byte
aligned offsets computed from the sizes. Loaded PTX modules are cached per (architecture,
driver version, PTX text).
"""

from __future__ import annotations

import atexit
import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from ..codegen.ptx import EMIT_KINDS, build, emit
from ..codegen.ptx.plan import Plan, align
from ..codegen.ptx.target import arch_of_capability, check_arch, format_release, ptx_version
from ..ir.core import Function
from ..ir.errors import Error
from ..ir.types import NUMPY_DTYPES, Dim, eval_dim

INSTALL_HINT = "pip install 'tflc[cuda]'"

__all__ = ["EMIT_KINDS", "Compiled", "compile", "device", "emit"]


def compile(func: Function, arch: str | None = None) -> Compiled:
    """The function on this machine's GPU: PTX for its architecture (or `arch`), at the newest
    PTX version its driver accepts."""
    gpu = device()
    arch = check_arch(arch or gpu.arch)
    return Compiled(build(func, arch, ptx_version(arch, gpu.driver_version)), gpu)


def driver():
    """pycuda.driver, initialised."""
    try:
        import pycuda  # noqa: F401
    except ImportError:
        raise Error("the cuda backend needs pycuda, which is not installed",
                    hint=INSTALL_HINT) from None
    try:
        import pycuda.driver as cuda
    except ImportError as e:  # pycuda is there, the driver's libcuda.so.1 is not
        raise Error(f"pycuda could not load the NVIDIA driver: {e}",
                    hint="install the NVIDIA driver (no GPU driver on this machine?)") from None
    try:
        cuda.init()
    except cuda.Error as e:
        raise Error(f"the CUDA driver did not start: {e}",
                    hint="check that this machine has an NVIDIA GPU and its driver") from None
    return cuda


@dataclass(frozen=True)
class Device:
    name: str
    arch: str  # what to compile for (sm_90 ...)
    capability: tuple[int, int]
    driver_version: int  # CUDA's number for the driver's API: 13000 is CUDA 13.0

    def __str__(self) -> str:
        return (f"{self.name} (compute capability {self.capability[0]}.{self.capability[1]}, "
                f"driver CUDA {format_release(self.driver_version)})")


@cache
def device() -> Device:
    """The first GPU, with its primary context made current for this process."""
    cuda = driver()
    if cuda.Device.count() == 0:
        raise Error("the CUDA driver found no GPU on this machine")
    gpu = cuda.Device(0)
    context = gpu.retain_primary_context()
    context.push()
    atexit.register(context.pop)
    capability = gpu.compute_capability()
    return Device(gpu.name(), arch_of_capability(*capability), capability,
                  cuda.get_driver_version())


_modules: dict[tuple[str, int, str], object] = {}


def load(ptx: str, gpu: Device):
    """The PTX as a loaded module, compiled by the driver once per (arch, driver, text)."""
    key = (gpu.arch, gpu.driver_version, hashlib.sha256(ptx.encode()).hexdigest())
    if key not in _modules:
        cuda = driver()
        try:
            _modules[key] = cuda.module_from_buffer(ptx.encode())
        except cuda.Error as e:
            raise Error(f"the CUDA driver refused the PTX for {gpu.arch}: {e}") from None
    return _modules[key]


class Compiled:
    """`compiled(sizes, args) -> outputs`: arguments copied to the GPU, the plan's kernels
    launched in order, outputs copied back as fresh NumPy arrays."""

    def __init__(self, program, gpu: Device):
        self.program = program
        self.gpu = gpu
        module = load(program.ptx, gpu)
        self._kernels = []
        for launch in program.plan.launches:
            kernel = module.get_function(launch.kernel)
            kernel.prepare("P" * len(launch.buffers) + "q" * len(program.plan.dims))
            self._kernels.append(kernel)
        self._arena = None
        self._arena_bytes = 0

    def __call__(self, sizes: dict[str, int], args: list[np.ndarray]) -> list[np.ndarray]:
        cuda = driver()
        plan: Plan = self.program.plan
        arrays = [np.ascontiguousarray(a, dtype=NUMPY_DTYPES[dtype])
                  for a, (_, dtype) in zip(args, plan.args)]
        outputs = [np.empty(tuple(eval_dim(d, sizes) for d in shape), NUMPY_DTYPES[dtype])
                   for shape, dtype in plan.outputs]
        offsets, total = arena_layout(plan, sizes)
        base = self._memory(total)
        dims = [sizes[d] for d in plan.dims]
        try:
            for index, array in enumerate(arrays):
                if array.nbytes:
                    cuda.memcpy_htod(base + offsets["arg", index], array)
            for launch, kernel in zip(plan.launches, self._kernels):
                blocks = launch.grid.blocks(sizes)
                if blocks:
                    pointers = [base + offsets[ref.kind, ref.index] for ref in launch.buffers]
                    kernel.prepared_call((blocks, 1, 1), launch.grid.block, *pointers, *dims)
            for index, out in enumerate(outputs):
                if out.nbytes:
                    cuda.memcpy_dtoh(out, base + offsets["out", index])
        except cuda.Error as e:
            raise Error(f"CUDA error while running '{self.program.name}' on {self.gpu}: "
                        f"{e}") from None
        return outputs

    def _memory(self, nbytes: int) -> int:
        """The arena's device address, grown (never shrunk) to `nbytes`."""
        if self._arena is None or self._arena_bytes < nbytes:
            cuda = driver()
            self._arena = None  # free the old one first
            try:
                self._arena = cuda.mem_alloc(max(nbytes, 1))
            except cuda.Error as e:
                raise Error(f"cannot allocate {nbytes} bytes on {self.gpu}: {e}") from None
            self._arena_bytes = nbytes
        return int(self._arena)


def arena_layout(plan: Plan, sizes: dict[str, int]) -> tuple[dict[tuple[str, int], int], int]:
    """Where each argument, output and scratch slot starts in the arena, and its total size."""
    offsets: dict[tuple[str, int], int] = {}
    end = 0

    def place(kind: str, index: int, nbytes: int) -> None:
        nonlocal end
        offsets[kind, index] = end
        end += align(nbytes)

    for index, (shape, dtype) in enumerate(plan.args):
        place("arg", index, nbytes_of(shape, dtype, sizes))
    for index, (shape, dtype) in enumerate(plan.outputs):
        place("out", index, nbytes_of(shape, dtype, sizes))
    for index, nbytes in enumerate(plan.slots):
        place("slot", index, eval_dim(nbytes, sizes))
    return offsets, end


def nbytes_of(shape: tuple[Dim, ...], dtype: str, sizes: dict[str, int]) -> int:
    count = 1
    for d in shape:
        count *= eval_dim(d, sizes)
    return count * np.dtype(NUMPY_DTYPES[dtype]).itemsize

